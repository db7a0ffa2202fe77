// AVX-512 kernels; this file alone is compiled with -mavx512f -mavx512bw
// (plus -mavx2 -mfma, which those imply on every AVX-512 CPU).
#include <immintrin.h>

#define DPQ_ACCUMULATE8_ATTRIBUTES __attribute__((noinline, optimize("no-tree-vectorize")))
#include "common.h"

// GCC 12 warns about its own AVX-512 intrinsics (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace dpq::scan {
namespace {

// ------------------------------------------------------------ 4-bit codes
//
// As in avx2.cpp, two levels at a time: the 32 code bytes of levels l, l+1
// broadcast to both 256-bit halves, the upper half shifted by 4 bits, give
// 128-bit lanes (l: slots 0-15, l+1: slots 0-15, l: 16-31, l+1: 16-31); the
// two tables broadcast the same way, one vpshufb looks up 64 (slot, level)
// pairs. Lanes 0 and 1 (2 and 3) add up at the end.

struct Acc4 {
    __m512i raw, odd;
};

inline __m512i broadcast32(const uint8_t* p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// nc: the block's norm codes (a level's 16 bytes, table m), or null. With an
// odd m it pairs with level m - 1; alone, table m + 1 is a zero pad.
template <int NQ>
inline void accumulate4(const uint8_t* blk, int m, const uint8_t* nc, const uint8_t* const* luts, Acc4* acc) {
    const __m512i nib = _mm512_set1_epi8(15);
    const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    for (int q = 0; q < NQ; q++) acc[q] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    auto step = [&](__m512i c, int l) {
        const __m512i codes = _mm512_and_si512(_mm512_srlv_epi32(c, shift), nib);
        for (int q = 0; q < NQ; q++) {
            const __m512i r = _mm512_shuffle_epi8(broadcast32(luts[q] + 16 * l), codes);
            acc[q].raw = _mm512_add_epi16(acc[q].raw, r);
            acc[q].odd = _mm512_add_epi16(acc[q].odd, _mm512_srli_epi16(r, 8));
        }
    };
    auto load16 = [](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
    int l = 0;
    for (; l + 2 <= m; l += 2) step(broadcast32(blk + 16 * l), l);
    if (l < m && nc) {  // the odd last level and the norm codes, tables m - 1 and m
        step(_mm512_broadcast_i64x4(_mm256_inserti128_si256(_mm256_castsi128_si256(load16(blk + 16 * l)), load16(nc), 1)),
             l);
        return;
    }
    // An odd last level alone (the block may end there); the table after it is zero.
    if (l < m) step(_mm512_broadcast_i32x4(load16(blk + 16 * l)), l);
    if (nc) step(_mm512_broadcast_i32x4(load16(nc)), m);
}

// The 32 sums in fold order (common.h).
inline __m512i fold(const Acc4& a) {
    const __m512i raw = _mm512_add_epi16(a.raw, _mm512_shuffle_i64x2(a.raw, a.raw, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m512i odd = _mm512_add_epi16(a.odd, _mm512_shuffle_i64x2(a.odd, a.odd, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m512i even = _mm512_sub_epi16(raw, _mm512_slli_epi16(odd, 8));
    const __m512i pick = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);  // even 0, odd 0, even 2, odd 2
    return _mm512_permutex2var_epi64(even, pick, odd);
}

struct Norms4 {
    __m512 lo, hi;  // slots in fold order: 0, 2, .., 14, 1, .., 15 and the same + 16; scaled
};

inline Norms4 load_norms4(const float* n, float factor) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m512 f = _mm512_set1_ps(factor);
    return {_mm512_mul_ps(_mm512_permutexvar_ps(idx, _mm512_loadu_ps(n)), f),
            _mm512_mul_ps(_mm512_permutexvar_ps(idx, _mm512_loadu_ps(n + 16)), f)};
}

inline __m512 to_float(__m256i u16x16) { return _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(u16x16)); }

inline uint32_t test_l24(__m512i z, const Norms4& nv, float inv_scale, float fthr) {
    const __m512 is = _mm512_set1_ps(inv_scale), ft = _mm512_set1_ps(fthr);
    const __mmask16 lo =
        _mm512_cmp_ps_mask(_mm512_fmadd_ps(to_float(_mm512_castsi512_si256(z)), is, nv.lo), ft, _CMP_LE_OQ);
    const __mmask16 hi =
        _mm512_cmp_ps_mask(_mm512_fmadd_ps(to_float(_mm512_extracti64x4_epi64(z, 1)), is, nv.hi), ft, _CMP_LE_OQ);
    return uint32_t(lo) | uint32_t(hi) << 16;
}

template <int NQ>
void scan4_group(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    for (size_t b = bl.b0; b < bl.b1; b++) {
        Acc4 acc[NQ];
        accumulate4<NQ>(bl.codes + b * bl.block_bytes, bl.m, bl.block_ncodes(b), t.lut4, acc);
        if (bl.norms) {
            const Norms4 nv = load_norms4(bl.block_norms(b), bl.norm_factor);
            for (int q = 0; q < NQ; q++)
                if (const uint32_t mk = test_l24(fold(acc[q]), nv, t.inv_scale[q], th.fthr[q]))
                    sink.accept(q, b, unfold_mask(mk));
        } else {
            for (int q = 0; q < NQ; q++) {
                if (th.qthr[q] < 0) continue;
                const __m512i thr = _mm512_set1_epi16(int16_t(uint16_t(th.qthr[q])));
                if (const uint32_t mk = _mm512_cmple_epu16_mask(fold(acc[q]), thr)) sink.accept(q, b, unfold_mask(mk));
            }
        }
    }
}

void scan4(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    switch (t.nq) {
        case 1: return scan4_group<1>(bl, t, th, sink);
        case 2: return scan4_group<2>(bl, t, th, sink);
        case 3: return scan4_group<3>(bl, t, th, sink);
        default: return scan4_group<4>(bl, t, th, sink);
    }
}

void sums4(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint8_t* lut4, uint16_t* out) {
    for (size_t b = 0; b < nblocks; b++) {
        Acc4 acc;
        accumulate4<1>(codes + b * block_bytes, m, nullptr, &lut4, &acc);
        alignas(64) uint16_t z[32];
        _mm512_store_si512(z, fold(acc));
        for (int p = 0; p < 32; p++) out[b * 32 + fold_slot(p)] = z[p];
    }
}

// ------------------------------------------------------------ 8-bit codes
//
// scan8_swar_any (common.h): 64-bit SWAR lookups and threshold tests, the
// sums never leaving their registers. Measured on Sapphire Rapids: as fast
// as storing the sums and testing them with 512-bit compares.

// ------------------------------------------------------------ lookup tables

// [sum(a0), sum(a1), sum(a2), sum(a3)]
inline __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    auto half = [](__m512 v) {
        return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    };
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half(a0), half(a1)), _mm256_hadd_ps(half(a2), half(a3)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// <x_i, c_r> for NX vectors x_i and 4 rows c_r, as in avx2.cpp.
template <int NX>
inline void dot_block(const float* x, const float* c, int d, float* out, size_t out_stride) {
    __m512 a[NX][4];
    for (int i = 0; i < NX; i++)
        for (int r = 0; r < 4; r++) a[i][r] = _mm512_setzero_ps();
    int t = 0;
    for (; t + 16 <= d; t += 16) {
        __m512 cr[4];
        for (int r = 0; r < 4; r++) cr[r] = _mm512_loadu_ps(c + r * d + t);
        for (int i = 0; i < NX; i++) {
            const __m512 v = _mm512_loadu_ps(x + i * d + t);
            for (int r = 0; r < 4; r++) a[i][r] = _mm512_fmadd_ps(v, cr[r], a[i][r]);
        }
    }
    for (int i = 0; i < NX; i++) {
        alignas(16) float sum[4];
        _mm_store_ps(sum, hsum4(a[i][0], a[i][1], a[i][2], a[i][3]));
        for (int r = 0; r < 4; r++) {
            for (int u = t; u < d; u++) sum[r] += x[i * d + u] * c[r * d + u];
            out[i * out_stride + r] = sum[r];
        }
    }
}

void dots(const float* X, size_t nx, const float* C, size_t n, int d, float* out, size_t out_stride) {
    blocked_dots([](auto NX, auto... args) { dot_block<decltype(NX)::value>(args...); }, X, nx, C, n, d, out,
                 out_stride);
}

}  // namespace

const KernelSet kAvx512{"avx512", scan4, scan8_swar_any, sums4, sums8_blocks, dots};

}  // namespace dpq::scan
