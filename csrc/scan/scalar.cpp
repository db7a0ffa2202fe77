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
                  uint16_t* out) {
    const CodeLayout lay{int(block_bytes / 16), 4};
    for (size_t b = 0; b < nblocks; b++)
        for (size_t s = 0; s < kBlockSize; s++) {
            uint32_t acc = 0;
            for (int l = 0; l < m; l++) acc += lut4[l * 16 + lay.get(codes + b * block_bytes, l, s)];
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

}  // namespace

const KernelSet kScalar{"scalar", nullptr, nullptr, sums4_scalar, sums8_scalar, exact4_scalar, dots_scalar};

}  // namespace dpq::scan
