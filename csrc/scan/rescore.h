// The exact distance a search returns for a stored vector: its first M
// levels against the float lookup tables, summed in the scan's one order
// (sum_levels), plus for L2 its exact prefix norm ||r_M||^2 — the stored
// float32 where the index keeps it for M, else computed from the code.
// Used by the search's final re-score and by the distance computer, so that
// the two agree bit for bit.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "../code_store.h"
#include "../codec.h"
#include "reference.h"
#include "search.h"

namespace dpq::scan {

// How exact prefix norms are computed where no float32 is stored: "table"
// (4-bit codes: sum of codeword norms and cross products, the default) or
// "decode" (sum the codewords, then the squared norm). A benchmark seam.
inline std::atomic<bool>& decode_exact_norms() {
    static std::atomic<bool> flag{false};
    return flag;
}

class Rescorer {
   public:
    Rescorer(const SearchSpec& spec, int M)
            : codec_(*spec.codec), store_(*spec.store), l2_(spec.l2), M_(M), own_(spec.codeword_norms),
              cross_(decode_exact_norms().load() ? nullptr : spec.cross_products), code_(store_.layout().levels),
              r_(codec_.d()) {
        const NormSpec& ns = store_.norm_spec();
        if (ns.kind == NormKind::kFloat32) stored_ = ns.slot(M);
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
        if (cross_) {  // sum_l ||c_l||^2 + 2 sum_{l < l2} <c_l, c_l2>, in this order
            float own = 0, cross = 0;
            for (int l2 = 0; l2 < M_; l2++) {
                own += own_[l2 * 16 + code_[l2]];
                const float* t = cross_ + size_t(l2) * (l2 - 1) / 2 * 256 + code_[l2];
                for (int l = 0; l < l2; l++) cross += t[l * 256 + code_[l] * 16];
            }
            return own + 2.f * cross;
        }
        const int d = codec_.d();
        const float* c0 = codec_.codeword(0, code_[0]);
        for (int j = 0; j < d; j++) r_[j] = c0[j];
        for (int l = 1; l < M_; l++) {
            const float* c = codec_.codeword(l, code_[l]);
            for (int j = 0; j < d; j++) r_[j] += c[j];
        }
        // In order, as Codec::prefix_norms sums the float32 norms it stores
        // (and no translation unit may vectorize the sum into another order).
        float n = 0;
        for (int j = 0; j < d; j++) n += r_[j] * r_[j];
        return n;
    }

   private:
    const Codec& codec_;
    const CodeStore& store_;
    bool l2_;
    int M_;
    const float* own_;    // levels x K: ||c||^2
    const float* cross_;  // null: decode
    int stored_ = -1;     // float32 slot of prefix M, or -1
    std::vector<uint8_t> code_;
    std::vector<float> r_;
};

}  // namespace dpq::scan
