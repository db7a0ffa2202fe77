// The scalar kernel set: the reference quantized sums that every SIMD kernel
// must reproduce bit for bit, and the plain dot products of the lookup tables.
// It scans with the float reference scan (reference.h), so it has no scan4/scan8.
#include "../code_layout.h"
#include "kernels.h"

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

// Four rows at a time: four independent sums keep the vector units busy
// where one dot product would wait on its own additions.
void dots_scalar(const float* X, size_t nx, const float* C, size_t n, int d, float* out, size_t out_stride) {
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *c0 = C + j * d, *c1 = c0 + d, *c2 = c1 + d, *c3 = c2 + d;
        for (size_t i = 0; i < nx; i++) {
            const float* x = X + i * d;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int t = 0; t < d; t++) {
                s0 += x[t] * c0[t];
                s1 += x[t] * c1[t];
                s2 += x[t] * c2[t];
                s3 += x[t] * c3[t];
            }
            float* o = out + i * out_stride + j;
            o[0] = s0, o[1] = s1, o[2] = s2, o[3] = s3;
        }
    }
    for (; j < n; j++)
        for (size_t i = 0; i < nx; i++) {
            float s = 0;
            for (int t = 0; t < d; t++) s += X[i * d + t] * C[j * d + t];
            out[i * out_stride + j] = s;
        }
}

}  // namespace

const KernelSet kScalar{"scalar", nullptr, nullptr, sums4_scalar, sums8_scalar, dots_scalar};

}  // namespace dpq::scan
