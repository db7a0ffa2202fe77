#include "reference.h"

namespace dpq::scan {

void reference_scan(const CodeStore& store, int m, const float* lut, float bias, const ScanNorms& norms, size_t b0,
                    size_t b1, float* out) {
    const CodeLayout& lay = store.layout();
    for (size_t b = b0; b < b1; b++) {
        const uint8_t* blk = store.block(b);
        float* o = out + (b - b0) * kBlockSize;
        for (size_t s = 0; s < kBlockSize; s++)
            o[s] = exact_distance(lay, blk, s, m, lut, bias + norms.at(b * kBlockSize + s));
    }
}

}  // namespace dpq::scan
