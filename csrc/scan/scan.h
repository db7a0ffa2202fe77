// The float reference scan: plain loops over the code layout, the ground
// truth for every fast path (whose survivors it also re-scores).
#pragma once

#include <cstddef>

#include "../code_store.h"

namespace dpq::scan {

// Distance of slot s of a block at prefix m, summed in the reference order:
//   init + lut[0][code_0] + lut[1][code_1] + ... + lut[m-1][code_{m-1}]
// where init = bias + (L2 ? ||r_m||^2 : 0).
inline float exact_distance(const CodeLayout& lay, const uint8_t* blk, size_t s, int m, const float* lut,
                            float init) {
    const int K = 1 << lay.nbits;
    float acc = init;
    if (lay.nbits == 8) {
        for (int l = 0; l < m; l++) acc += lut[l * K + blk[l * kBlockSize + s]];
    } else {
        const uint8_t* b = blk + (s & 15);
        const int shift = s < 16 ? 0 : 4;
        for (int l = 0; l < m; l++) acc += lut[l * K + ((b[l * 16] >> shift) & 15)];
    }
    return acc;
}

// Distances of every vector of blocks [b0, b1) at prefix m:
//   out[i] = bias + (norms ? ||r_m(i)||^2 : 0) + sum_{l < m} lut[l * K + code_l(i)]
// out holds (b1 - b0) * 32 floats; padding slots of the last block are
// computed too and must be ignored by the caller.
void scan_float_scalar(const CodeStore& store, int m, const float* lut, float bias,
                       size_t b0, size_t b1, float* out);

}  // namespace dpq::scan
