// Cosine indexes (IndexDPQ's and IndexIVFDPQ's `cosine`) see unit vectors:
// training, added and query vectors are scaled to norm 1 on the way in, and
// reconstructions r_m are projected onto the sphere, r_m / ||r_m||, on the
// way out. Their rules, shared by both indexes, are here too.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "check.h"
#include "faiss_abi.h"
#include "norm_quantizer.h"

namespace dpq {

// A cosine index ranks by similarity (larger is better): its metric is
// inner product. Throws std::invalid_argument naming `index`.
inline void check_cosine_metric(bool cosine, faiss::MetricType metric, const char* index) {
    DPQ_CHECK(!cosine || metric == faiss::METRIC_INNER_PRODUCT, std::invalid_argument,
              "%s: cosine ranks by similarity (larger is better): its metric must be METRIC_INNER_PRODUCT, got %d",
              index, int(metric));
}

// Whether an inner-product index may keep norms of this kind: none, or
// (cosine) float32 ones, which its exact re-score reads instead of computing.
inline bool inner_product_may_keep(NormKind kind, bool cosine) {
    return kind == NormKind::kNone || (cosine && kind == NormKind::kFloat32);
}

// The rows of x (n x d) scaled to unit norm, a copy; throws
// std::invalid_argument naming `what` and the first row whose norm is zero.
inline std::vector<float> unit_rows(int64_t n, int d, const float* x, const char* what) {
    std::vector<float> out(size_t(n) * size_t(d));
    for (int64_t i = 0; i < n; i++) {
        const float* r = x + size_t(i) * d;
        float s = 0;
        for (int j = 0; j < d; j++) s += r[j] * r[j];
        DPQ_CHECK(s > 0, std::invalid_argument,
                  "%s: vector %lld has norm 0, which has no direction (a cosine index compares directions)", what,
                  (long long)i);
        const float inv = 1.f / std::sqrt(s);
        for (int j = 0; j < d; j++) out[size_t(i) * d + j] = r[j] * inv;
    }
    return out;
}

// x itself, or for a cosine index its rows scaled to unit norm, kept in buf
// (errors name `what`, as unit_rows').
inline const float* directions(bool cosine, int64_t n, int d, const float* x, std::vector<float>& buf,
                               const std::string& what) {
    if (!cosine) return x;
    buf = unit_rows(n, d, x, what.c_str());
    return buf.data();
}

// Scales each of the n rows of x (n x d) to unit norm in place; a zero row
// (a reconstruction whose codewords cancel) stays zero.
inline void project_to_sphere(int64_t n, int d, float* x) {
    for (int64_t i = 0; i < n; i++) {
        float* r = x + size_t(i) * d;
        float s = 0;
        for (int j = 0; j < d; j++) s += r[j] * r[j];
        if (!(s > 0)) continue;
        const float inv = 1.f / std::sqrt(s);
        for (int j = 0; j < d; j++) r[j] *= inv;
    }
}

}  // namespace dpq
