#include "unit_norm.h"

#include "lanes.h"

#include <algorithm>
#include <cmath>

namespace dpq::ivf {

float UnitNorm::operator()(const ListRef& L, size_t list, size_t i, int M, int slot) {
    if (slot >= 0) return std::sqrt(L.norm_floats(slot)[i]);
    lay_.get_code(L.codes, i, code_.data());
    if (s_.cross_products) {  // centroid tables hold -2 <c, c_lk>
        const float* ct = kept_centroid_table(s_, list);
        float twice_cr = 0;
        for (int l = 0; l < M; l++) twice_cr -= ct[l * 16 + code_[l]];
        const float n = s_.centroid_norms[list] + twice_cr +
                        prefix_norm_from_products(s_.codeword_norms, s_.cross_products, code_.data(), M);
        return std::sqrt(std::max(n, 0.f));
    }
    const int d = s_.codec->d();
    s_.codec->decode(1, code_.data(), M, v_.data());
    const float* c = s_.centroids + list * d;
    float n = 0;
    for (int j = 0; j < d; j++) n += (v_[j] + c[j]) * (v_[j] + c[j]);
    return std::sqrt(n);
}

float UnitNorm::residual_norm(const ListRef& L, size_t i, int M) {
    lay_.get_code(L.codes, i, code_.data());
    return prefix_norm(*s_.codec, s_.codeword_norms, s_.cross_products, code_.data(), M, v_.data());
}

float UnitNorm::distance(const ListRef& L, size_t list, size_t i, int M, const float* q) {
    lay_.get_code(L.codes, i, code_.data());
    const int d = s_.codec->d();
    // q - c - r_M, the codewords subtracted in level order (Codec::decode's
    // loop, without its parallel region: one vector here).
    const float* c = s_.centroids + list * d;
    float* v = v_.data();
    for (int j = 0; j < d; j++) v[j] = q[j] - c[j];
    for (int l = 0; l < M; l++) {
        const float* w = s_.codec->codeword(l, code_[l]);
        for (int j = 0; j < d; j++) v[j] -= w[j];
    }
    float n = 0;
    for (int j = 0; j < d; j++) n += v[j] * v[j];
    return n;
}

}  // namespace dpq::ivf
