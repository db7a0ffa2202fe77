// Cosine indexes (IndexDPQ's `cosine`) see unit vectors: training, added
// and query vectors are scaled to norm 1 on the way in, and reconstructions
// r_m are projected onto the sphere, r_m / ||r_m||, on the way out.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "check.h"

namespace dpq {

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
