// Plain C++ shared by the ISA kernel files (each includes it and compiles it
// with its own flags). Everything here has internal linkage on purpose: an
// inline function with external linkage compiled for AVX-512 in one file
// could be the copy the linker keeps for all of them.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace dpq::scan {
namespace {

// The SIMD 4-bit kernels compare sums in "fold order": mask bits 0-7 are the
// even slots 0..14, bits 8-15 odd slots 1..15, bits 16-23 even slots
// 16..30, bits 24-31 odd slots 17..31. Survivors are rare; remap them only.
inline int fold_slot(int p) { return 2 * (p & 7) + ((p >> 3) & 1) + 16 * (p >> 4); }

inline uint32_t unfold_mask(uint32_t mk) {
    uint32_t slots = 0;
    for (; mk; mk &= mk - 1) slots |= 1u << fold_slot(__builtin_ctz(mk));
    return slots;
}

// GCC vectorizes accumulate8's level loop into emulated gathers. Measured:
// 10% faster than scalar code with AVX2 on Zen 3 (4 lanes), 2.3x slower with
// AVX-512 on Sapphire Rapids (8 lanes); a kernel file opts out by defining
// this before including common.h.
#ifndef DPQ_ACCUMULATE8_ATTRIBUTES
#define DPQ_ACCUMULATE8_ATTRIBUTES inline
#endif

// 8-bit codes, up to 4 queries at once: each 64-bit table entry packs the
// 16-bit quantized values of 4 queries, so one load and one 64-bit add do 4
// lookups. Lanes never carry into each other: every lane's sum is at most
// columns * floor(32767 / columns) < 2^15 (lut.h). Sums of 8 slots, codes
// read 8 at a time; nc (8 norm codes, or null) is one more column, table m.
DPQ_ACCUMULATE8_ATTRIBUTES void accumulate8(const uint8_t* c, int m, const uint64_t* t, const uint8_t* nc,
                                            uint64_t* a) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    auto column = [&](const uint8_t* p) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        a0 += t[w & 255];
        a1 += t[(w >> 8) & 255];
        a2 += t[(w >> 16) & 255];
        a3 += t[(w >> 24) & 255];
        a4 += t[(w >> 32) & 255];
        a5 += t[(w >> 40) & 255];
        a6 += t[(w >> 48) & 255];
        a7 += t[w >> 56];
    };
    for (int l = 0; l < m; l++, c += 32, t += 256) column(c);
    if (nc) column(nc);
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3, a[4] = a4, a[5] = a5, a[6] = a6, a[7] = a7;
}

inline void sums8_blocks(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint64_t* lut8,
                         uint64_t* out) {
    for (size_t b = 0; b < nblocks; b++)
        for (int s0 = 0; s0 < 32; s0 += 8)
            accumulate8(codes + b * block_bytes + s0, m, lut8, nullptr, out + b * 32 + s0);
}

// 8-bit scans read 32 bytes a level, a block at a time, at a stride that
// hardware prefetchers follow late: asking for the block a few ahead gains
// 5-10% (measured) when the codes come from memory. Prefix norms (floats or
// codes) are read in order from their own column: prefetchers follow them.
constexpr size_t kPrefetchAhead = 8;

inline void prefetch_block(const Blocks& bl, size_t b) {
    const char* p = reinterpret_cast<const char*>(bl.codes + b * bl.block_bytes);
    for (size_t o = 0; o < size_t(bl.m) * 32; o += 64) __builtin_prefetch(p + o);
}

// The threshold test of 8-bit sums, in the same 64-bit words: every lane of
// `thr` holds 0x8000 + the largest sum it admits, so lane q of thr - sum
// keeps bit 15 exactly when sum_q <= its threshold (sums stay below 2^15:
// no lane ever borrows from the next). `live` holds bit 15 of the lanes
// that may admit anything.
struct LaneTest {
    uint64_t thr = 0x8000800080008000ull, live = 0;
    void admit(int q, int32_t max_sum) {
        if (max_sum < 0) return;
        thr |= uint64_t(max_sum < 32767 ? max_sum : 32767) << (16 * q);
        live |= uint64_t(0x8000) << (16 * q);
    }
};

// Integer test (no float norms): the kernel's thresholds as they stand.
inline LaneTest lanes_ip(const GroupTables& t, const Thresholds& th) {
    LaneTest lt;
    for (int q = 0; q < t.nq; q++) lt.admit(q, th.qthr[q]);
    return lt;
}

// Float norms: for block b, the largest sum that the float test below could admit
// for some slot, i.e. with the block's smallest (scaled) norm.
inline LaneTest lanes_l2(const GroupTables& t, const Thresholds& th, float min_norm) {
    LaneTest lt;
    for (int q = 0; q < t.nq; q++) {
        const float room = th.fthr[q] - min_norm;
        if (!(room >= 0)) continue;
        const float x = t.inv_scale[q] > 0 ? room / t.inv_scale[q] : 32767.f;
        lt.admit(q, x >= 32766.f ? 32767 : int32_t(x) + 1);
    }
    return lt;
}

// The scan: sums of 8 slots at a time stay in registers, and are tested
// there; only slots some lane admits go further (with float norms, through
// the float test of kernels.h with the slot's own norm) to the sink.
template <bool L2>
void scan8_swar(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    for (size_t b = bl.b0; b < bl.b1; b++) {
        if (b + kPrefetchAhead < bl.b1) prefetch_block(bl, b + kPrefetchAhead);
        const float* norms = L2 ? bl.block_norms(b) : nullptr;
        LaneTest lt;
        if (L2) {
            float mn = norms[0];
#pragma omp simd reduction(min : mn)
            for (int s = 0; s < 32; s++) mn = mn < norms[s] ? mn : norms[s];
            lt = lanes_l2(t, th, mn * bl.norm_factor);
        } else {
            lt = lanes_ip(t, th);
        }
        if (!lt.live) continue;
        uint32_t qmask[kGroup] = {0, 0, 0, 0};
        const uint8_t* blk = bl.codes + b * bl.block_bytes;
        const uint8_t* nc = bl.block_ncodes(b);
        for (int s0 = 0; s0 < 32; s0 += 8) {
            uint64_t a[8];
            accumulate8(blk + s0, bl.m, t.lut8, nc ? nc + s0 : nullptr, a);
            uint64_t any = 0;
            for (int j = 0; j < 8; j++) any |= lt.thr - a[j];
            if (!(any & lt.live)) continue;
            for (int j = 0; j < 8; j++)
                for (uint64_t p = (lt.thr - a[j]) & lt.live; p; p &= p - 1) {
                    const int q = __builtin_ctzll(p) >> 4, s = s0 + j;
                    const float sum = float((a[j] >> (16 * q)) & 0xFFFF);
                    if (L2 && !(__builtin_fmaf(sum, t.inv_scale[q], norms[s] * bl.norm_factor) <= th.fthr[q]))
                        continue;
                    qmask[q] |= 1u << s;
                }
        }
        for (int q = 0; q < t.nq; q++)
            if (qmask[q]) sink.accept(q, b, qmask[q]);
    }
}

inline void scan8_swar_any(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    if (bl.norms)
        scan8_swar<true>(bl, t, th, sink);
    else
        scan8_swar<false>(bl, t, th, sink);
}

// Inner products out[i * out_stride + j] = <X_i, C_j> for the lookup tables.
// block(NX, x, c, d, out, out_stride) is an ISA's register-blocked kernel for
// NX (an integral_constant: 3, 2 or 1) vectors against 4 rows; rows past the
// last multiple of 4 take a plain loop.
template <class Block>
void blocked_dots(Block block, const float* X, size_t nx, const float* C, size_t n, int d, float* out,
                  size_t out_stride) {
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        size_t i = 0;
        for (; i + 3 <= nx; i += 3)
            block(std::integral_constant<int, 3>(), X + i * d, C + j * d, d, out + i * out_stride + j, out_stride);
        if (nx - i == 2)
            block(std::integral_constant<int, 2>(), X + i * d, C + j * d, d, out + i * out_stride + j, out_stride);
        if (nx - i == 1)
            block(std::integral_constant<int, 1>(), X + i * d, C + j * d, d, out + i * out_stride + j, out_stride);
    }
    for (; j < n; j++)
        for (size_t i = 0; i < nx; i++) {
            float s = 0;
            for (int u = 0; u < d; u++) s += X[i * d + u] * C[j * d + u];
            out[i * out_stride + j] = s;
        }
}

}  // namespace
}  // namespace dpq::scan
