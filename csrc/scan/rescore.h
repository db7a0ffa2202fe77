// The exact distance a search returns for a stored vector: its first M
// levels against the float lookup tables, summed in the scan's one order
// (sum_levels), plus for L2 its exact prefix norm ||r_M||^2 — the stored
// float32 where the index keeps it for M, else computed from the code; for
// cosine, that sum (minus <q, r_M>) over ||r_M|| (0 where r_M is 0).
// Used by the search's final re-score and by the distance computer, so that
// the two agree bit for bit.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
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
            : codec_(*spec.codec), store_(*spec.store), l2_(spec.l2), cosine_(spec.cosine), M_(M),
              own_(spec.codeword_norms), cross_(decode_exact_norms().load() ? nullptr : spec.cross_products),
              code_(store_.layout().levels), r_(codec_.d()) {
        const NormSpec& ns = store_.norm_spec();
        if (ns.kind == NormKind::kFloat32) stored_ = ns.slot(M);
    }

    int levels() const { return M_; }

    // Smaller is better: L2 distance, or minus the inner product (cosine:
    // with the unit reconstruction).
    float operator()(size_t id, const float* lut, float bias) {
        const size_t b = id / kBlockSize, s = id % kBlockSize;
        const float norm = l2_ || cosine_ ? exact_norm(id) : 0.f;
        const float dist = exact_distance(store_.layout(), store_.block(b), s, M_, lut, bias + (l2_ ? norm : 0.f));
        if (!cosine_) return dist;
        return norm > 0 ? dist / std::sqrt(norm) : 0.f;
    }

    // ||r_M||^2 of stored vector id.
    float exact_norm(size_t id) {
        if (stored_ >= 0) return store_.norm_float(id, stored_);
        store_.get_code(id, code_.data());
        return prefix_norm(codec_, own_, cross_, code_.data(), M_, r_.data());
    }

   private:
    const Codec& codec_;
    const CodeStore& store_;
    bool l2_, cosine_;
    int M_;
    const float* own_;    // levels x K: ||c||^2
    const float* cross_;  // null: decode
    int stored_ = -1;     // float32 slot of prefix M, or -1
    std::vector<uint8_t> code_;
    std::vector<float> r_;
};

// Lower bounds on the exact distances of candidates that a scan ranked
// with a prefix norm code (the code's centroid in place of the norm's cross
// terms): a code's value is at most NormQuantizer::below under its
// centroid, so
//   exact >= scan distance - below(code) - slack,
// where slack bounds the float rounding of both distances and of the coded
// value (sums of at most m^2 / 2 + m + d terms, each at most `magnitude`).
// A shortlist candidate whose bound exceeds the k-th exact distance found
// so far cannot be returned: it is not re-scored, and the results are those
// of re-scoring every candidate.
class NormCodeBound {
   public:
    // slot: the stored prefix the scan added norm codes of (spec.levels).
    NormCodeBound(const SearchSpec& spec, int slot)
            : store_(*spec.store), col_(spec.store->norm_column(slot)), m_(spec.levels) {
        const NormQuantizer& q = *spec.norms;
        const int K = spec.codec->K(), KN = q.spec().K();
        below_.resize(KN);
        float tmax = 0;
        for (int c = 0; c < KN; c++) {
            below_[c] = q.below(slot, c);
            tmax = std::max(tmax, std::fabs(q.table(slot)[c]));
        }
        float root = 0;  // sum_l max_k ||c_lk||: its square bounds ||r||^2 and every cross sum
        for (int l = 0; l < m_; l++)
            root += std::sqrt(*std::max_element(spec.codeword_norms + size_t(l) * K,
                                                spec.codeword_norms + size_t(l + 1) * K));
        fixed_ = root * root + tmax;
        eps_ = 2.f * float(size_t(m_) * m_ + m_ + spec.codec->d() + 16) * std::ldexp(1.f, -24);
        K_ = K;
    }

    // The query's tables: lut (exact re-score's) and scan_lut (the scan's).
    void set_query(const float* lut, const float* scan_lut, float bias) {
        float mag = std::fabs(bias) + fixed_;
        for (int l = 0; l < m_; l++) {
            float a = 0, b = 0;
            for (int k = 0; k < K_; k++) {
                a = std::max(a, std::fabs(lut[l * K_ + k]));
                b = std::max(b, std::fabs(scan_lut[l * K_ + k]));
            }
            mag += a + b;
        }
        slack_ = eps_ * mag;
    }

    float lower(size_t id, float scan_distance) const {
        return scan_distance - below_[store_.column_format().get(col_, id)] - slack_;
    }

   private:
    const CodeStore& store_;
    const uint8_t* col_;
    int m_, K_ = 0;
    std::vector<float> below_;
    float fixed_ = 0, eps_ = 0, slack_ = 0;
};

}  // namespace dpq::scan
