// The SIMD kernels, written once. Each ISA translation unit (avx2.cpp,
// avx512.cpp) defines a small trait (its vector types and the handful of
// operations that differ: loads, byte lookup, threshold tests, horizontal
// sum), includes this file and instantiates the bodies below with it under
// its own compiler flags. The scalar reference (scalar.cpp, reference.h)
// stays separate on purpose: it is what these are tested against.
//
// Everything here has internal linkage on purpose: an inline function with
// external linkage compiled for AVX-512 in one file could be the copy the
// linker keeps for all of them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../codec.h"
#include "kernels.h"

namespace dpq::scan {
namespace {

constexpr float kHalf = 0.5f;

// ------------------------------------------------------------ 4-bit codes
//
// Level l of a block is 16 bytes: slot j in the low nibble of byte j, slot
// j + 16 in the high nibble. An ISA register holds Isa::kColumns columns
// (levels, or the norm codes) of 16 bytes in its low half and the same
// bytes again in its high half; shifted by 0 bits in the low half and 4 in
// the high half, its low nibbles are the slots 0-15 and 16-31 of those
// columns. One byte shuffle against the columns' tables (laid out the same
// way) looks them all up. Bytes widen into 16-bit accumulators two at a
// time: `raw` adds each byte pair as one 16-bit number (even + 256 odd),
// `odd` adds the odd byte alone, and even = raw - 256 odd (mod 2^16, exact
// because every sum fits 16 bits). Two accumulators a query: a group of 4
// stays in registers and shares every code load.
//
// The ISA trait gives, for its byte vector type Bytes, and Acc4 {Bytes raw, odd}:
//   kColumns, zero(), load_columns(p) (kColumns contiguous columns),
//   load_columns(ptrs, n) (n <= kColumns columns from anywhere; the tables
//   after the n-th are zero pads), nibbles(v), lookup(table, codes),
//   add16(a, b), high_bytes(v) (each 16-bit lane shifted right by 8);
// and the tests of an accumulator, whose masks are in fold order:
//   Norms4, load_norms4(norms, factor), test_ip4(acc, qthr),
//   test_l24(acc, norms, inv_scale, fthr), store_folded(acc, uint16_t[32]).

// The SIMD 4-bit kernels compare sums in "fold order": mask bits 0-7 are the
// even slots 0..14, bits 8-15 odd slots 1..15, bits 16-23 even slots
// 16..30, bits 24-31 odd slots 17..31. Survivors are rare; remap them only.
inline int fold_slot(int p) { return 2 * (p & 7) + ((p >> 3) & 1) + 16 * (p >> 4); }

inline uint32_t unfold_mask(uint32_t mk) {
    uint32_t slots = 0;
    for (; mk; mk &= mk - 1) slots |= 1u << fold_slot(__builtin_ctz(mk));
    return slots;
}

// nc: the block's norm codes (a level's 16 bytes, table m), or null; then
// the split's extra columns (kernels.h), each the codes of a level or nc.
template <class Isa, int NQ>
inline void accumulate4(const uint8_t* blk, int m, const uint8_t* nc, const SplitColumns4& split,
                        const uint8_t* const* luts, typename Isa::Acc4* acc) {
    using Bytes = typename Isa::Bytes;
    constexpr int S = Isa::kColumns;
    for (int q = 0; q < NQ; q++) acc[q] = {Isa::zero(), Isa::zero()};
    // Columns [col, col + S) from the register c.
    auto step = [&](Bytes c, int col) {
        const Bytes codes = Isa::nibbles(c);
        for (int q = 0; q < NQ; q++) {
            const Bytes r = Isa::lookup(Isa::load_columns(luts[q] + 16 * col), codes);
            acc[q].raw = Isa::add16(acc[q].raw, r);
            acc[q].odd = Isa::add16(acc[q].odd, Isa::high_bytes(r));
        }
    };
    // Two registers an iteration: the accumulators then keep their registers.
    int l = 0;
    for (; l + 2 * S <= m; l += 2 * S) {
        step(Isa::load_columns(blk + 16 * l), l);
        step(Isa::load_columns(blk + 16 * (l + S)), l + S);
    }
    if (l + S <= m) {
        step(Isa::load_columns(blk + 16 * l), l);
        l += S;
    }
    // The columns of no whole register of levels: the last levels, the norm
    // codes and the extra columns, S at a time from anywhere.
    const uint8_t* rest[S];
    int n = 0, col = l;
    auto add = [&](const uint8_t* p) {
        rest[n++] = p;
        if (n == S) {
            step(Isa::load_columns(rest, S), col);
            col += S;
            n = 0;
        }
    };
    for (; l < m; l++) add(blk + 16 * l);
    if (nc) add(nc);
    for (int j = 0; j < split.n; j++) add(split.src[j] < m ? blk + 16 * split.src[j] : nc);
    if (n) step(Isa::load_columns(rest, n), col);
}

template <class Isa, int NQ>
void scan4_group(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    for (size_t b = bl.b0; b < bl.b1; b++) {
        typename Isa::Acc4 acc[NQ];
        accumulate4<Isa, NQ>(bl.codes + b * bl.block_bytes, bl.m, bl.block_ncodes(b), t.split, t.lut4, acc);
        if (bl.norms) {
            const typename Isa::Norms4 nv = Isa::load_norms4(bl.block_norms(b), bl.norm_factor);
            for (int q = 0; q < NQ; q++)
                if (const uint32_t mk = Isa::test_l24(acc[q], nv, t.inv_scale[q], th.fthr[q]))
                    sink.accept(q, b, unfold_mask(mk));
        } else {
            for (int q = 0; q < NQ; q++)
                if (th.qthr[q] >= 0)
                    if (const uint32_t mk = Isa::test_ip4(acc[q], th.qthr[q])) sink.accept(q, b, unfold_mask(mk));
        }
    }
}

template <class Isa>
void scan4(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    switch (t.nq) {
        case 1: return scan4_group<Isa, 1>(bl, t, th, sink);
        case 2: return scan4_group<Isa, 2>(bl, t, th, sink);
        case 3: return scan4_group<Isa, 3>(bl, t, th, sink);
        default: return scan4_group<Isa, 4>(bl, t, th, sink);
    }
}

template <class Isa>
void sums4(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint8_t* lut4,
           const SplitColumns4& split, uint16_t* out) {
    for (size_t b = 0; b < nblocks; b++) {
        typename Isa::Acc4 acc;
        accumulate4<Isa, 1>(codes + b * block_bytes, m, nullptr, split, &lut4, &acc);
        alignas(64) uint16_t z[32];
        Isa::store_folded(acc, z);
        for (int p = 0; p < 32; p++) out[b * 32 + fold_slot(p)] = z[p];
    }
}

// Exact4Fn (kernels.h): the float tables of a level are 16 floats, looked up
// for a register of slots at once (Isa::lookup16), in the reference's order:
// four running sums over the levels l mod 4, then init + ((p0 + p1) + (p2 + p3)),
// lane by lane the same additions as exact_distance (no contraction: there
// are no products). The trait gives Table16, table16(lut), slot_codes(level,
// v) (the codes of slots [v kFloats, (v + 1) kFloats) as 32-bit indices),
// lookup16(table, codes) and fadd.
template <class Isa>
void exact4(const uint8_t* blk, int m, const float* lut, const float* init, float* out) {
    using Floats = typename Isa::Floats;
    constexpr int V = 32 / Isa::kFloats;
    Floats p[4][V];
    for (int j = 0; j < 4; j++)
        for (int v = 0; v < V; v++) p[j][v] = Isa::fzero();
    auto level = [&](int l, Floats* acc) {
        const typename Isa::Table16 t = Isa::table16(lut + 16 * l);
        for (int v = 0; v < V; v++) acc[v] = Isa::fadd(acc[v], Isa::lookup16(t, Isa::slot_codes(blk + 16 * l, v)));
    };
    int l = 0;
    for (; l + 4 <= m; l += 4)
        for (int j = 0; j < 4; j++) level(l + j, p[j]);
    for (int j = 0; l + j < m; j++) level(l + j, p[j]);
    for (int v = 0; v < V; v++) {
        const Floats sum = Isa::fadd(Isa::fadd(p[0][v], p[1][v]), Isa::fadd(p[2][v], p[3][v]));
        Isa::fstore(out + v * Isa::kFloats, Isa::fadd(Isa::fload(init + v * Isa::kFloats), sum));
    }
}

// ------------------------------------------------------------ 8-bit codes

// GCC vectorizes accumulate8's level loop into emulated gathers. Measured:
// 10% faster than scalar code with AVX2 on Zen 3 (4 lanes), 2.3x slower with
// AVX-512 on Sapphire Rapids (8 lanes); a kernel file opts out by defining
// this before including simd_body.h.
#ifndef DPQ_ACCUMULATE8_ATTRIBUTES
#define DPQ_ACCUMULATE8_ATTRIBUTES inline
#endif

// 8-bit codes, up to 4 queries at once: each 64-bit table entry packs the
// 16-bit quantized values of 4 queries, so one load and one 64-bit add do 4
// lookups. Lanes never carry into each other: every lane's sum is at most
// columns * floor(32767 / columns) < 2^15 (tables.h). Sums of 8 slots, codes
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

// ------------------------------------------------------------ lookup tables
//
// The trait gives, for its float vector type Floats: kFloats (lanes),
// fzero(), fload(p), fstore(p, v), fbroadcast(p) (*p in every lane),
// fmadd(a, b, c).

// One tile: NX vectors x the kTablePanel rows of one panel (codec.h), held
// in NX * NV registers and accumulated over t = 0..d-1, each step one
// broadcast of x_i[t] per vector and NV loads of the panel: no horizontal
// sums, and the panel stays in cache while every tile of vectors passes it.
// Writes the first `cols` outputs of each vector.
template <class Isa, int NX>
inline void panel_tile(const float* X, int d, const float* panel, float* out, size_t out_stride, int cols) {
    constexpr int NV = kTablePanel / Isa::kFloats;
    typename Isa::Floats a[NX][NV];
    for (int i = 0; i < NX; i++)
        for (int v = 0; v < NV; v++) a[i][v] = Isa::fzero();
    for (int t = 0; t < d; t++) {
        typename Isa::Floats x[NX];
        for (int i = 0; i < NX; i++) x[i] = Isa::fbroadcast(X + size_t(i) * d + t);
        for (int v = 0; v < NV; v++) {
            const typename Isa::Floats c = Isa::fload(panel + size_t(t) * kTablePanel + v * Isa::kFloats);
            for (int i = 0; i < NX; i++) a[i][v] = Isa::fmadd(x[i], c, a[i][v]);
        }
    }
    for (int i = 0; i < NX; i++) {
        alignas(64) float row[kTablePanel];
        float* dst = cols == kTablePanel ? out + i * out_stride : row;
        for (int v = 0; v < NV; v++) Isa::fstore(dst + v * Isa::kFloats, a[i][v]);
        if (dst == row) std::memcpy(out + i * out_stride, row, sizeof(float) * size_t(cols));
    }
}

// The last nx < NX vectors of a panel, by the tile of their count.
template <class Isa, int NX>
inline void panel_tail(size_t nx, const float* X, int d, const float* panel, float* out, size_t out_stride, int cols) {
    if constexpr (NX > 0) {
        if (nx == NX)
            panel_tile<Isa, NX>(X, d, panel, out, out_stride, cols);
        else
            panel_tail<Isa, NX - 1>(nx, X, d, panel, out, out_stride, cols);
    }
}

// kernels.h DotsFn: panel by panel, tiles of NX vectors (AVX2: 3 vectors x
// 4 registers, with their broadcasts all 16 registers; AVX-512: 8 x 2, so a
// batch of 8 queries is one tile). 1.7-1.9x the previous kernel (4
// row-major codewords against 3 vectors, horizontal sums at the end) on 64
// MiniLM queries, level with numpy's OpenBLAS sgemm (benchmarks/peers.py luts).
template <class Isa>
void dots(const float* X, size_t nx, const float* panels, size_t n, int d, float* out, size_t out_stride) {
    constexpr int NX = Isa::kFloats == 16 ? 8 : 3;
    for (size_t j = 0; j < n; j += kTablePanel) {
        const float* panel = panels + j * size_t(d);
        const int cols = int(std::min<size_t>(kTablePanel, n - j));
        size_t i = 0;
        for (; i + NX <= nx; i += NX) panel_tile<Isa, NX>(X + i * d, d, panel, out + i * out_stride + j, out_stride, cols);
        panel_tail<Isa, NX - 1>(nx - i, X + i * d, d, panel, out + i * out_stride + j, out_stride, cols);
    }
}

// ------------------------------------------------------------ quantizing 4-bit tables
//
// A level's 16 floats are 16 / kFloats registers. The trait gives fsub,
// fmul, fmin, fmax (as _mm_min_ps: the second operand where either is
// NaN), hmin and hmax (over the lanes), and store_bytes16(y, sub, out):
// out[k] = trunc(y_k) - sub clamped to [0, 255], k < 16, for the registers y.

template <class Isa>
void stats4(const float* t, int m, float* lo, float* hi) {
    constexpr int V = 16 / Isa::kFloats;
    for (int l = 0; l < m; l++) {
        typename Isa::Floats mn = Isa::fload(t + 16 * l), mx = mn;
        for (int v = 1; v < V; v++) {
            const typename Isa::Floats x = Isa::fload(t + 16 * l + v * Isa::kFloats);
            mn = Isa::fmin(mn, x);
            mx = Isa::fmax(mx, x);
        }
        lo[l] = Isa::hmin(mn);
        hi[l] = Isa::hmax(mx);
    }
}

template <class Isa>
void quantize4(const float* t, int m, const float* lo, float scale, const int* width, uint8_t* out) {
    using Floats = typename Isa::Floats;
    constexpr int V = 16 / Isa::kFloats;
    const Floats sc = Isa::fbroadcast(&scale), half = Isa::fbroadcast(&kHalf);
    for (int l = 0, next = m; l < m; l++) {
        const float qmax = float(255 * width[l]);
        const Floats lv = Isa::fbroadcast(lo + l), top = Isa::fbroadcast(&qmax);
        Floats y[V];
        for (int v = 0; v < V; v++)
            y[v] = Isa::fmin(Isa::fadd(Isa::fmul(Isa::fsub(Isa::fload(t + 16 * l + v * Isa::kFloats), lv), sc), half),
                             top);
        Isa::store_bytes16(y, 0, out + 16 * l);
        for (int i = 1; i < width[l]; i++) Isa::store_bytes16(y, 255 * i, out + 16 * next++);
    }
}

// The kernel set of an ISA whose 8-bit scan is scan8.
template <class Isa>
constexpr KernelSet kernel_set(const char* name, ScanFn scan8) {
    return {name, scan4<Isa>, scan8, sums4<Isa>, sums8_blocks, exact4<Isa>, dots<Isa>, stats4<Isa>, quantize4<Isa>};
}

}  // namespace
}  // namespace dpq::scan
