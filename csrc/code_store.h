// The database of an IndexDPQ: blocked codes (code_layout.h) plus the
// prefix-norm columns its NormSpec asks for (norm_quantizer.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "code_layout.h"
#include "norm_quantizer.h"

namespace dpq {

class CodeStore {
   public:
    CodeStore(int levels, int nbits, const NormSpec& norms);

    const CodeLayout& layout() const { return layout_; }
    const NormSpec& norm_spec() const { return spec_; }
    size_t size() const { return n_; }

    // codes: n x levels, one level index per byte; norms: n x levels values
    // to keep (IndexDPQ::norm_terms), or null when the spec keeps none.
    // Quantized kinds code them with q (trained).
    void append(size_t n, const uint8_t* codes, const float* norms, const NormQuantizer& q);
    // Writes vector i's levels codes (one per byte) into out.
    void get_code(size_t i, uint8_t* out) const;
    // Column of stored prefix slot j (NormSpec::slot), block 0 first.
    const uint8_t* norm_column(int j) const { return norms_[j].data(); }
    const NormColumn& column_format() const { return column_; }
    // The norm kept for vector i at stored slot j: the float32, or its
    // code's centroid.
    float norm_value(size_t i, int j, const NormQuantizer& q) const;
    // norm_value of vectors [i0, i0 + n) into out (a scan's chunk at once).
    void norm_values(size_t i0, size_t n, int j, const NormQuantizer& q, float* out) const;
    // The float32 norm of vector i at slot j (kind kFloat32 only).
    float norm_float(size_t i, int j) const {
        float v;
        std::memcpy(&v, norms_[j].data() + 4 * i, 4);
        return v;
    }
    // Keeps the vectors whose keep[i] is true, in order.
    void compact(const std::vector<bool>& keep);
    void clear();

    const uint8_t* block(size_t b) const { return codes_.data() + b * layout_.block_bytes(); }
    size_t memory_bytes() const;

   private:
    void resize(size_t n);

    CodeLayout layout_;
    NormSpec spec_;
    NormColumn column_;
    size_t n_ = 0;
    std::vector<uint8_t> codes_;
    std::vector<std::vector<uint8_t>> norms_;  // one column per stored prefix
};

}  // namespace dpq
