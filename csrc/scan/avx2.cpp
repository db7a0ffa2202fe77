// AVX2 kernels; this file alone is compiled with -mavx2 -mfma. The bodies
// are simd_body.h's, over the trait below; the 8-bit scan's vector tests
// are this file's own.
#include <immintrin.h>

#include "simd_body.h"

namespace dpq::scan {
namespace {

inline __m256 to_float(__m128i u16x8) { return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(u16x8)); }

struct Avx2 {
    // ---- 4-bit codes: one column a register (its 16 bytes in both 128-bit lanes)
    using Bytes = __m256i;
    static constexpr int kColumns = 1;
    struct Acc4 {
        Bytes raw, odd;
    };
    static Bytes zero() { return _mm256_setzero_si256(); }
    static Bytes load_columns(const uint8_t* p) {
        return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static Bytes load_columns(const uint8_t* const* cols, int) { return load_columns(cols[0]); }
    static Bytes nibbles(Bytes c) {
        return _mm256_and_si256(_mm256_srlv_epi32(c, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(15));
    }
    static Bytes lookup(Bytes table, Bytes codes) { return _mm256_shuffle_epi8(table, codes); }
    static Bytes add16(Bytes a, Bytes b) { return _mm256_add_epi16(a, b); }
    static Bytes high_bytes(Bytes v) { return _mm256_srli_epi16(v, 8); }

    // Even-slot sums: lane 0 slots 0, 2, .., 14, lane 1 slots 16, .., 30.
    static Bytes evens(const Acc4& a) { return _mm256_sub_epi16(a.raw, _mm256_slli_epi16(a.odd, 8)); }

    // Norms of the 32 slots, scaled, in fold order, 8 per register.
    struct Norms4 {
        __m256 v[4];
    };
    static void evens_odds(const float* n, __m256 f, __m256* ev, __m256* od) {
        const __m256 a = _mm256_loadu_ps(n), b = _mm256_loadu_ps(n + 8);
        const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        *ev = _mm256_mul_ps(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))), f);
        *od = _mm256_mul_ps(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))), f);
    }
    static Norms4 load_norms4(const float* n, float factor) {
        Norms4 r;
        const __m256 f = _mm256_set1_ps(factor);
        evens_odds(n, f, &r.v[0], &r.v[1]);
        evens_odds(n + 16, f, &r.v[2], &r.v[3]);
        return r;
    }

    static uint32_t test_ip4(const Acc4& a, int32_t qthr) {
        const __m256i t = _mm256_set1_epi16(int16_t(uint16_t(qthr)));
        const __m256i e = evens(a);
        const __m256i ce = _mm256_cmpeq_epi16(_mm256_min_epu16(e, t), e);
        const __m256i co = _mm256_cmpeq_epi16(_mm256_min_epu16(a.odd, t), a.odd);
        return uint32_t(_mm256_movemask_epi8(_mm256_packs_epi16(ce, co)));
    }

    static uint32_t test_l24(const Acc4& a, const Norms4& nv, float inv_scale, float fthr) {
        const __m256 is = _mm256_set1_ps(inv_scale), ft = _mm256_set1_ps(fthr);
        const __m256i e = evens(a);
        const __m256 x[4] = {to_float(_mm256_castsi256_si128(e)), to_float(_mm256_castsi256_si128(a.odd)),
                             to_float(_mm256_extracti128_si256(e, 1)), to_float(_mm256_extracti128_si256(a.odd, 1))};
        uint32_t mk = 0;
        for (int i = 0; i < 4; i++)
            mk |= uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_fmadd_ps(x[i], is, nv.v[i]), ft, _CMP_LE_OQ)))
                  << (8 * i);
        return mk;
    }

    static void store_folded(const Acc4& a, uint16_t* z) {
        const __m256i e = evens(a);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(z), _mm256_permute2x128_si256(e, a.odd, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(z + 16), _mm256_permute2x128_si256(e, a.odd, 0x31));
    }

    // ---- lookup tables
    using Floats = __m256;
    static constexpr int kFloats = 8;
    static Floats fzero() { return _mm256_setzero_ps(); }
    static Floats fload(const float* p) { return _mm256_loadu_ps(p); }
    static void fstore(float* p, Floats v) { _mm256_storeu_ps(p, v); }
    static Floats fbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static Floats fmadd(Floats a, Floats b, Floats c) { return _mm256_fmadd_ps(a, b, c); }
    static Floats fadd(Floats a, Floats b) { return _mm256_add_ps(a, b); }
    static Floats fsub(Floats a, Floats b) { return _mm256_sub_ps(a, b); }
    static Floats fmul(Floats a, Floats b) { return _mm256_mul_ps(a, b); }
    static Floats fmin(Floats a, Floats b) { return _mm256_min_ps(a, b); }
    static Floats fmax(Floats a, Floats b) { return _mm256_max_ps(a, b); }
    static float hmin(Floats a) {
        __m128 x = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        x = _mm_min_ps(x, _mm_movehl_ps(x, x));
        return _mm_cvtss_f32(_mm_min_ss(x, _mm_shuffle_ps(x, x, 1)));
    }
    static float hmax(Floats a) {
        __m128 x = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
    }
    // Signed 32 -> unsigned 16 -> unsigned 8, saturating (values fit 16 bits signed).
    static void store_bytes16(const Floats* y, int sub, uint8_t* out) {
        const __m256i s = _mm256_set1_epi32(sub);
        const __m256i a = _mm256_sub_epi32(_mm256_cvttps_epi32(y[0]), s), b = _mm256_sub_epi32(_mm256_cvttps_epi32(y[1]), s);
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);  // 16 x u16, in order
        const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(w, w), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(bytes));
    }

    // ---- exact 4-bit distances: a level's 16 floats in two registers,
    // picked by bit 3 of the code
    struct Table16 {
        __m256 lo, hi;
    };
    static Table16 table16(const float* t) { return {_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8)}; }
    // Slots [8v, 8v + 8): bytes 8 (v & 1) .. + 8, low nibbles for v < 2, high after.
    static __m256i slot_codes(const uint8_t* level, int v) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(level + 8 * (v & 1))));
        return _mm256_and_si256(v >= 2 ? _mm256_srli_epi32(b, 4) : b, _mm256_set1_epi32(15));
    }
    static Floats lookup16(const Table16& t, __m256i codes) {
        const __m256 high = _mm256_castsi256_ps(_mm256_slli_epi32(codes, 28));  // bit 3 -> sign
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t.lo, codes), _mm256_permutevar8x32_ps(t.hi, codes), high);
    }
};

// ------------------------------------------------------------ 8-bit codes
//
// Sums come from accumulate8 (simd_body.h), stored: 32 slots x 4 lanes of 16
// bits, four slots to a 256-bit register, lanes ordered (slot, query), then
// tested with vector compares (measured 6-10% faster on AMD Zen 3 than
// scan8_swar's 64-bit tests).

// Thresholds of the live lanes packed like a lut8 entry; dead or unused
// lanes get 0 and are masked out by `alive`.
uint64_t pack_thresholds(const Thresholds& th, int nq, uint32_t* alive) {
    uint64_t t = 0;
    *alive = 0;
    for (int q = 0; q < nq; q++)
        if (th.qthr[q] >= 0) {
            t |= uint64_t(uint16_t(th.qthr[q])) << (16 * q);
            *alive |= 1u << q;
        }
    return t;
}

void test_ip8(const uint64_t* acc, const Thresholds& th, int nq, uint32_t* qmask) {
    uint32_t alive;
    const __m256i t = _mm256_set1_epi64x(int64_t(pack_thresholds(th, nq, &alive)));
    // movemask_epi8 gives 2 bits per 16-bit lane; keep the low bit of live lanes.
    uint32_t keep = 0;
    for (int j = 0; j < 4; j++)
        for (int q = 0; q < 4; q++)
            if (alive >> q & 1) keep |= 1u << (2 * (4 * j + q));
    if (!keep) return;
    for (int i = 0; i < 8; i++) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 4 * i));
        uint32_t mk = uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_min_epu16(v, t), v))) & keep;
        for (; mk; mk &= mk - 1) {
            const int lane = __builtin_ctz(mk) >> 1;
            qmask[lane & 3] |= 1u << (4 * i + (lane >> 2));
        }
    }
}

void test_l28(const uint64_t* acc, const float* norms, float factor, const GroupTables& t, const Thresholds& th,
              uint32_t* qmask) {
    alignas(32) float is[8], ft[8];
    for (int q = 0; q < 4; q++) {
        const bool live = q < t.nq;
        is[q] = is[q + 4] = live ? t.inv_scale[q] : 0.f;
        ft[q] = ft[q + 4] = live ? th.fthr[q] : -__builtin_inff();
    }
    const __m256 vis = _mm256_load_ps(is), vft = _mm256_load_ps(ft), f = _mm256_set1_ps(factor);
    for (int g = 0; g < 4; g++) {
        const __m256 nv = _mm256_mul_ps(_mm256_loadu_ps(norms + 8 * g), f);
        for (int h = 0; h < 4; h++) {
            const int s = 8 * g + 2 * h;  // slots s and s + 1
            const __m256i idx = _mm256_setr_epi32(2 * h, 2 * h, 2 * h, 2 * h, 2 * h + 1, 2 * h + 1, 2 * h + 1, 2 * h + 1);
            const __m256 x = _mm256_fmadd_ps(to_float(_mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + s))), vis,
                                             _mm256_permutevar8x32_ps(nv, idx));
            uint32_t mk = uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(x, vft, _CMP_LE_OQ)));
            for (; mk; mk &= mk - 1) {
                const int p = __builtin_ctz(mk);
                qmask[p & 3] |= 1u << (s + (p >> 2));
            }
        }
    }
}

void scan8(const Blocks& bl, const GroupTables& t, Thresholds& th, BlockSink& sink) {
    alignas(32) uint64_t acc[32];
    for (size_t b = bl.b0; b < bl.b1; b++) {
        if (b + kPrefetchAhead < bl.b1) prefetch_block(bl, b + kPrefetchAhead);
        const uint8_t* nc = bl.block_ncodes(b);
        for (int s0 = 0; s0 < 32; s0 += 8)
            accumulate8(bl.codes + b * bl.block_bytes + s0, bl.m, t.lut8, nc ? nc + s0 : nullptr, acc + s0);
        uint32_t qmask[kGroup] = {0, 0, 0, 0};
        if (bl.norms)
            test_l28(acc, bl.block_norms(b), bl.norm_factor, t, th, qmask);
        else
            test_ip8(acc, th, t.nq, qmask);
        for (int q = 0; q < t.nq; q++)
            if (qmask[q]) sink.accept(q, b, qmask[q]);
    }
}

}  // namespace

const KernelSet kAvx2 = kernel_set<Avx2>("avx2", scan8);

}  // namespace dpq::scan
