// The database of an IndexDPQ: blocked codes plus (for L2) prefix norms.
#pragma once

#include <cstdint>
#include <vector>

#include "code_layout.h"

namespace dpq {

class CodeStore {
   public:
    CodeStore(int levels, int nbits, bool with_norms);

    const CodeLayout& layout() const { return layout_; }
    size_t size() const { return n_; }
    bool has_norms() const { return with_norms_; }

    // codes: n x levels, one level index per byte; norms: n x levels or null
    // when the store keeps none.
    void append(size_t n, const uint8_t* codes, const float* norms);
    // Writes vector i's levels codes (one per byte) into out.
    void get_code(size_t i, uint8_t* out) const;
    float norm(size_t i, int m) const;
    // Keeps the vectors whose keep[i] is true, in order.
    void compact(const std::vector<bool>& keep);
    void clear();

    const uint8_t* block(size_t b) const { return codes_.data() + b * layout_.block_bytes(); }
    // Norms of prefix m for the 32 slots of block b, or null without norms.
    const float* block_norms(size_t b, int m) const {
        return with_norms_ ? norms_.data() + b * layout_.block_norms() + (m - 1) * kBlockSize
                           : nullptr;
    }
    size_t memory_bytes() const;

   private:
    CodeLayout layout_;
    bool with_norms_;
    size_t n_ = 0;
    std::vector<uint8_t> codes_;
    std::vector<float> norms_;
};

}  // namespace dpq
