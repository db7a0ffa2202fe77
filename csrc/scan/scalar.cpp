// The scalar kernels: the float reference scan and the reference quantized
// sums that every SIMD kernel must reproduce bit for bit.
#include "kernels.h"
#include "scan.h"

namespace dpq::scan {

void scan_float_scalar(const CodeStore& store, int m, const float* lut, float bias,
                       size_t b0, size_t b1, float* out) {
    const CodeLayout& lay = store.layout();
    for (size_t b = b0; b < b1; b++) {
        const uint8_t* blk = store.block(b);
        const float* norms = store.block_norms(b, m);
        float* o = out + (b - b0) * kBlockSize;
        for (size_t s = 0; s < kBlockSize; s++)
            o[s] = exact_distance(lay, blk, s, m, lut, bias + (norms ? norms[s] : 0.f));
    }
}

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

}  // namespace

const KernelSet kScalar{"scalar", nullptr, nullptr, sums4_scalar, sums8_scalar};

}  // namespace dpq::scan
