// The scalar kernel set: the reference quantized sums that every SIMD kernel
// must reproduce bit for bit, and the plain dot products of the lookup tables.
// It scans with the float reference scan (reference.h), so it has no scan4/scan8.
#include <algorithm>
#include "../code_layout.h"
#include "../codec.h"
#include "kernels.h"
#include "reference.h"

namespace dpq::scan {

namespace {

void sums4_scalar(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint8_t* lut4,
                  const SplitColumns4& split, uint16_t* out) {
    const CodeLayout lay{int(block_bytes / 16), 4};
    for (size_t b = 0; b < nblocks; b++)
        for (size_t s = 0; s < kBlockSize; s++) {
            uint32_t acc = 0;
            for (int l = 0; l < m; l++) acc += lut4[l * 16 + lay.get(codes + b * block_bytes, l, s)];
            for (int j = 0; j < split.n; j++)
                acc += lut4[(m + j) * 16 + lay.get(codes + b * block_bytes, split.src[j], s)];
            out[b * kBlockSize + s] = uint16_t(acc);
        }
}

void sums8_scalar(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint64_t* lut8,
                  uint64_t* out) {
    for (size_t b = 0; b < nblocks; b++)
        for (size_t s = 0; s < kBlockSize; s++) {
            uint64_t acc = 0;
            for (int l = 0; l < m; l++) acc += lut8[l * 256 + codes[b * block_bytes + l * kBlockSize + s]];
            out[b * kBlockSize + s] = acc;
        }
}

void exact4_scalar(const uint8_t* block, int m, const float* lut, const float* init, float* out) {
    const CodeLayout lay{m, 4};
    for (size_t s = 0; s < kBlockSize; s++) out[s] = exact_distance(lay, block, s, m, lut, init[s]);
}

// The reference: each output one plain sum over t = 0..d-1, a panel's
// kTablePanel sums advanced together.
void dots_scalar(const float* X, size_t nx, const float* panels, size_t n, int d, float* out, size_t out_stride) {
    for (size_t j = 0; j < n; j += kTablePanel) {
        const float* panel = panels + j * size_t(d);
        const size_t cols = std::min<size_t>(kTablePanel, n - j);
        for (size_t i = 0; i < nx; i++) {
            float acc[kTablePanel] = {};
            for (int t = 0; t < d; t++) {
                const float x = X[i * d + t];
#pragma omp simd
                for (int r = 0; r < kTablePanel; r++) acc[r] += x * panel[size_t(t) * kTablePanel + r];
            }
            std::copy(acc, acc + cols, out + i * out_stride + j);
        }
    }
}

void stats4_scalar(const float* t, int m, float* lo, float* hi) {
    for (int l = 0; l < m; l++) {
        float mn = t[16 * l], mx = mn;
        for (int k = 1; k < 16; k++) {
            mn = std::min(t[16 * l + k], mn);  // as _mm_min_ps(mn, x): mn where x is NaN
            mx = std::max(t[16 * l + k], mx);
        }
        lo[l] = mn, hi[l] = mx;
    }
}

void quantize4_scalar(const float* t, int m, const float* lo, float scale, const int* width, uint8_t* out) {
    for (int l = 0, next = m; l < m; l++) {
        const float qmax = float(255 * width[l]);
        int32_t v[16];
        for (int k = 0; k < 16; k++) {
            const float y = (t[16 * l + k] - lo[l]) * scale + 0.5f;
            v[k] = int32_t(y < qmax ? y : qmax);
        }
        for (int i = 0; i < width[l]; i++) {
            uint8_t* o = out + 16 * (i == 0 ? l : next++);
            for (int k = 0; k < 16; k++) o[k] = uint8_t(std::clamp(v[k] - 255 * i, 0, 255));
        }
    }
}

}  // namespace

const KernelSet kScalar{"scalar",    nullptr,      nullptr,       sums4_scalar,    sums8_scalar,
                        exact4_scalar, dots_scalar, stats4_scalar, quantize4_scalar};

}  // namespace dpq::scan
