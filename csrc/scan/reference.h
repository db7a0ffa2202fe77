// The float reference scan: plain loops over the code layout and the float
// lookup tables, the ground truth for every fast path (whose survivors it
// also re-scores), and the one summation order every path shares.
#pragma once

#include <cstddef>

#include "../code_store.h"
#include "kernels.h"

namespace dpq::scan {

// Distance of slot s of a block at prefix m, where init = bias + (L2 ?
// ||r_m||^2 : 0). Every path sums in this one order, so that they agree bit
// for bit: four running sums over the levels l = 0, 1, 2, 3 (mod 4), then
//   init + ((p0 + p1) + (p2 + p3)).
// (Four independent chains: one would wait on each addition's latency.)
template <class Code>
inline float sum_levels(int m, const float* lut, int K, float init, Code code) {
    float p[4] = {0.f, 0.f, 0.f, 0.f};
    int l = 0;
    for (; l + 4 <= m; l += 4)
        for (int j = 0; j < 4; j++) p[j] += lut[(l + j) * K + code(l + j)];
    for (int j = 0; l + j < m; j++) p[j] += lut[(l + j) * K + code(l + j)];
    return init + ((p[0] + p[1]) + (p[2] + p[3]));
}

inline float exact_distance(const CodeLayout& lay, const uint8_t* blk, size_t s, int m, const float* lut,
                            float init) {
    if (lay.nbits == 8) return sum_levels(m, lut, 256, init, [&](int l) { return blk[l * kBlockSize + s]; });
    const uint8_t* b = blk + (s & 15);
    const int shift = s < 16 ? 0 : 4;
    return sum_levels(m, lut, 16, init, [&](int l) { return (b[l * 16] >> shift) & 15; });
}

// exact_distance of the slots set in `slots` of a block, passed in slot
// order to emit(s, distance); init(s) is slot s's bias + norm. exact4 (null:
// none) is a kernel's Exact4Fn, bit for bit the same sums: with 4-bit codes
// and two candidates or more it re-scores the whole block at once.
template <class Init, class Emit>
inline void exact_distances(const CodeLayout& lay, const uint8_t* blk, uint32_t slots, int m, const float* lut,
                            Exact4Fn exact4, Init init, Emit emit) {
    if (exact4 && lay.nbits == 4 && (slots & (slots - 1))) {
        alignas(64) float in[kBlockSize] = {}, out[kBlockSize];
        for (uint32_t r = slots; r; r &= r - 1) in[__builtin_ctz(r)] = init(size_t(__builtin_ctz(r)));
        exact4(blk, m, lut, in, out);
        for (; slots; slots &= slots - 1) emit(size_t(__builtin_ctz(slots)), out[__builtin_ctz(slots)]);
        return;
    }
    for (; slots; slots &= slots - 1) {
        const size_t s = size_t(__builtin_ctz(slots));
        emit(s, exact_distance(lay, blk, s, m, lut, init(s)));
    }
}

// The slots of block b that hold one of n vectors (the last block's are padded).
inline uint32_t stored_slots(size_t b, size_t n) {
    const size_t first = b * kBlockSize;
    return n >= first + kBlockSize ? 0xFFFFFFFFu : (n > first ? (1u << (n - first)) - 1 : 0u);
}

// The prefix norm a scan at some prefix adds for each vector: the stored
// float32 or code centroid of that prefix (slot >= 0), or nothing.
struct ScanNorms {
    const CodeStore* store = nullptr;
    const NormQuantizer* quantizer = nullptr;
    int slot = -1;
    float at(size_t i) const { return slot < 0 ? 0.f : store->norm_value(i, slot, *quantizer); }
    // at(i) of vectors [i0, i0 + n) (slot >= 0).
    void values(size_t i0, size_t n, float* out) const { store->norm_values(i0, n, slot, *quantizer, out); }
};

// Distances of every vector of blocks [b0, b1) at prefix m:
//   out[i] = bias + norms.at(i) + sum_{l < m} lut[l * K + code_l(i)]
// summed as exact_distance does.
// out holds (b1 - b0) * 32 floats; padding slots of the last block are
// computed too and must be ignored by the caller.
void reference_scan(const CodeStore& store, int m, const float* lut, float bias, const ScanNorms& norms, size_t b0,
                    size_t b1, float* out);

}  // namespace dpq::scan
