// The exact distance a search returns for a stored vector: its first M
// levels against the float lookup tables, summed in the scan's one order
// (sum_levels), plus for L2 its exact prefix norm ||r_M||^2 — the stored
// float32 where the index keeps it for M, else computed from the code.
// Used by the search's final re-score and by the distance computer, so that
// the two agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "../code_store.h"
#include "../codec.h"
#include "scan.h"

namespace dpq::scan {

class Rescorer {
   public:
    Rescorer(const Codec& codec, const CodeStore& store, bool l2, int M)
            : codec_(codec), store_(store), l2_(l2), M_(M), code_(store.layout().levels), r_(codec.d()) {
        const NormSpec& spec = store.norm_spec();
        if (spec.kind == NormKind::kFloat32) stored_ = spec.slot(M);
    }

    int levels() const { return M_; }

    // Smaller is better: L2 distance, or minus the inner product.
    float operator()(size_t id, const float* lut, float bias) {
        const size_t b = id / kBlockSize, s = id % kBlockSize;
        const float norm = l2_ ? exact_norm(id) : 0.f;
        return exact_distance(store_.layout(), store_.block(b), s, M_, lut, bias + norm);
    }

    // ||r_M||^2 of stored vector id.
    float exact_norm(size_t id) {
        if (stored_ >= 0) return store_.norm_float(id, stored_);
        store_.get_code(id, code_.data());
        const int d = codec_.d();
        const float* c0 = codec_.codeword(0, code_[0]);
        for (int j = 0; j < d; j++) r_[j] = c0[j];
        for (int l = 1; l < M_; l++) {
            const float* c = codec_.codeword(l, code_[l]);
            for (int j = 0; j < d; j++) r_[j] += c[j];
        }
        // In order, as Codec::prefix_norms sums the float32 norms it stores:
        // every norm choice returns the same distance for the same code (and
        // no translation unit may vectorize the sum into another order).
        float n = 0;
        for (int j = 0; j < d; j++) n += r_[j] * r_[j];
        return n;
    }

   private:
    const Codec& codec_;
    const CodeStore& store_;
    bool l2_;
    int M_;
    int stored_ = -1;  // float32 slot of prefix M, or -1
    std::vector<uint8_t> code_;
    std::vector<float> r_;
};

}  // namespace dpq::scan
