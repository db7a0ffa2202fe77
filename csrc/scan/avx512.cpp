// AVX-512 kernels; this file alone is compiled with -mavx512f -mavx512bw
// (plus -mavx2 -mfma, which those imply on every AVX-512 CPU). The bodies
// are simd_body.h's, over the trait below.
#include <immintrin.h>

// GCC 12 warns about its own AVX-512 intrinsics (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define DPQ_ACCUMULATE8_ATTRIBUTES __attribute__((noinline, optimize("no-tree-vectorize")))
#include "simd_body.h"

namespace dpq::scan {
namespace {

inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m512 to_float(__m256i u16x16) { return _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(u16x16)); }

struct Avx512 {
    // ---- 4-bit codes: two columns a register, 128-bit lanes (column l:
    // slots 0-15, l+1: slots 0-15, l: 16-31, l+1: 16-31); lanes 0 and 1
    // (2 and 3) add up when the sums are folded.
    using Bytes = __m512i;
    static constexpr int kColumns = 2;
    struct Acc4 {
        Bytes raw, odd;
    };
    static Bytes zero() { return _mm512_setzero_si512(); }
    static Bytes load_columns(const uint8_t* p) {
        return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static Bytes load_columns(const uint8_t* const* cols, int n) {
        if (n == 1) return _mm512_broadcast_i32x4(load16(cols[0]));  // the table after it is a zero pad
        return _mm512_broadcast_i64x4(_mm256_inserti128_si256(_mm256_castsi128_si256(load16(cols[0])), load16(cols[1]), 1));
    }
    static Bytes nibbles(Bytes c) {
        const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        return _mm512_and_si512(_mm512_srlv_epi32(c, shift), _mm512_set1_epi8(15));
    }
    static Bytes lookup(Bytes table, Bytes codes) { return _mm512_shuffle_epi8(table, codes); }
    static Bytes add16(Bytes a, Bytes b) { return _mm512_add_epi16(a, b); }
    static Bytes high_bytes(Bytes v) { return _mm512_srli_epi16(v, 8); }

    // The 32 sums in fold order.
    static __m512i fold(const Acc4& a) {
        const __m512i raw = _mm512_add_epi16(a.raw, _mm512_shuffle_i64x2(a.raw, a.raw, _MM_SHUFFLE(2, 3, 0, 1)));
        const __m512i odd = _mm512_add_epi16(a.odd, _mm512_shuffle_i64x2(a.odd, a.odd, _MM_SHUFFLE(2, 3, 0, 1)));
        const __m512i even = _mm512_sub_epi16(raw, _mm512_slli_epi16(odd, 8));
        const __m512i pick = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);  // even 0, odd 0, even 2, odd 2
        return _mm512_permutex2var_epi64(even, pick, odd);
    }

    struct Norms4 {
        __m512 lo, hi;  // slots in fold order: 0, 2, .., 14, 1, .., 15 and the same + 16; scaled
    };
    static Norms4 load_norms4(const float* n, float factor) {
        const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        const __m512 f = _mm512_set1_ps(factor);
        return {_mm512_mul_ps(_mm512_permutexvar_ps(idx, _mm512_loadu_ps(n)), f),
                _mm512_mul_ps(_mm512_permutexvar_ps(idx, _mm512_loadu_ps(n + 16)), f)};
    }

    static uint32_t test_ip4(const Acc4& a, int32_t qthr) {
        return _mm512_cmple_epu16_mask(fold(a), _mm512_set1_epi16(int16_t(uint16_t(qthr))));
    }

    static uint32_t test_l24(const Acc4& a, const Norms4& nv, float inv_scale, float fthr) {
        const __m512i z = fold(a);
        const __m512 is = _mm512_set1_ps(inv_scale), ft = _mm512_set1_ps(fthr);
        const __mmask16 lo =
            _mm512_cmp_ps_mask(_mm512_fmadd_ps(to_float(_mm512_castsi512_si256(z)), is, nv.lo), ft, _CMP_LE_OQ);
        const __mmask16 hi =
            _mm512_cmp_ps_mask(_mm512_fmadd_ps(to_float(_mm512_extracti64x4_epi64(z, 1)), is, nv.hi), ft, _CMP_LE_OQ);
        return uint32_t(lo) | uint32_t(hi) << 16;
    }

    static void store_folded(const Acc4& a, uint16_t* z) { _mm512_storeu_si512(z, fold(a)); }

    // ---- lookup tables
    using Floats = __m512;
    static constexpr int kFloats = 16;
    static Floats fzero() { return _mm512_setzero_ps(); }
    static Floats fload(const float* p) { return _mm512_loadu_ps(p); }
    static void fstore(float* p, Floats v) { _mm512_storeu_ps(p, v); }
    static Floats fbroadcast(const float* p) { return _mm512_set1_ps(*p); }
    static Floats fmadd(Floats a, Floats b, Floats c) { return _mm512_fmadd_ps(a, b, c); }
    static Floats fadd(Floats a, Floats b) { return _mm512_add_ps(a, b); }
    static Floats fsub(Floats a, Floats b) { return _mm512_sub_ps(a, b); }
    static Floats fmul(Floats a, Floats b) { return _mm512_mul_ps(a, b); }
    static Floats fmin(Floats a, Floats b) { return _mm512_min_ps(a, b); }
    static Floats fmax(Floats a, Floats b) { return _mm512_max_ps(a, b); }
    static float hmin(Floats a) { return _mm512_reduce_min_ps(a); }
    static float hmax(Floats a) { return _mm512_reduce_max_ps(a); }
    static void store_bytes16(const Floats* y, int sub, uint8_t* out) {
        const __m512i v = _mm512_max_epi32(_mm512_sub_epi32(_mm512_cvttps_epi32(y[0]), _mm512_set1_epi32(sub)),
                                           _mm512_setzero_si512());
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtusepi32_epi8(v));
    }

    // ---- exact 4-bit distances: a level's 16 floats in one register
    using Table16 = __m512;
    static Table16 table16(const float* t) { return _mm512_loadu_ps(t); }
    static __m512i slot_codes(const uint8_t* level, int v) {  // v = 0: low nibbles, 1: high
        const __m512i b = _mm512_cvtepu8_epi32(load16(level));
        return _mm512_and_si512(v ? _mm512_srli_epi32(b, 4) : b, _mm512_set1_epi32(15));
    }
    static Floats lookup16(Table16 t, __m512i codes) { return _mm512_permutexvar_ps(codes, t); }
};

}  // namespace

// 8-bit codes: scan8_swar_any (simd_body.h), 64-bit SWAR lookups and
// threshold tests, the sums never leaving their registers. Measured on
// Sapphire Rapids: as fast as storing the sums and testing them with 512-bit
// compares.
const KernelSet kAvx512 = kernel_set<Avx512>("avx512", scan8_swar_any);

}  // namespace dpq::scan
