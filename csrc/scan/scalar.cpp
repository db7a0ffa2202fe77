// The reference scan: plain loops, the ground truth for every fast path.
#include "scan.h"

namespace dpq::scan {

void scan_float_scalar(const CodeStore& store, int m, const float* lut, float bias,
                       size_t b0, size_t b1, float* out) {
    const CodeLayout& lay = store.layout();
    const int K = 1 << lay.nbits;
    for (size_t b = b0; b < b1; b++) {
        const uint8_t* blk = store.block(b);
        const float* norms = store.block_norms(b, m);
        float* o = out + (b - b0) * kBlockSize;
        for (size_t s = 0; s < kBlockSize; s++) {
            float acc = bias + (norms ? norms[s] : 0.f);
            for (int l = 0; l < m; l++) acc += lut[l * K + lay.get(blk, l, s)];
            o[s] = acc;
        }
    }
}

}  // namespace dpq::scan
