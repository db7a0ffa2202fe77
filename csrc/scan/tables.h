// Per-query lookup tables: one score per (level, codeword).
//
// Distances are kept "smaller is better" inside the index:
//   L2: dist = ||q||^2 + sum_l lut[l][c_l] + ||r_m||^2, lut[l][k] = -2 <q, c_lk>
//   IP: dist = sum_l lut[l][c_l] = -<q, r_m>,           lut[l][k] = -<q, c_lk>
//
// Quantized tables (for the SIMD scans) keep, per level, lut - min_k lut
// scaled by one global factor and rounded:
//   q[l][k] = round((lut[l][k] - lo_l) * scale),  0 <= q <= qmax w_l,
//   scale = qmax / max_l ((max_k lut[l][k] - lo_l) / w_l),
// with qmax = 255 for 4-bit codes (byte shuffles) and floor(32767 / m) for
// 8-bit codes (16-bit lanes whose sums never carry and keep their top bit
// free for the threshold test, simd_body.h). w_l = 1, except for 4-bit
// levels split over w_l columns (plan_split4), whose values the columns
// share (each at most 255, summing to q). A code's approximate distance
//   approx = base + qsum / scale (+ ||r_m||^2),  base = bias + sum_l lo_l
// differs from the float-table distance (as the scalar reference sums it) by
//   |approx - exact| <= err + rel * (A + ||r_m||^2)
//   err = m * (0.5 + qmax max_l w_l 2^-20) / scale   (rounding of every
//                                   entry, plus float error in computing it)
//   rel = 4 (m + 8) 2^-24,  A = |bias| + sum_l max_k |lut[l][k]|
// where the rel term bounds the float rounding of both sums (each at most
// (m + 14) 2^-24 (A + norm); rel is twice that or more).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../codec.h"
#include "kernels.h"

namespace dpq::scan {

// Tables of nq queries x (nq x d) for the first `levels` levels:
// luts[q * levels * K + l * K + k]; biases[q] = ||x_q||^2 for L2, 0 for IP.
// The products of all queries with all levels' codewords are one blocked
// matrix product (kernels.h DotsFn over Codec::table_panels), so each
// codebook streams from memory once per call: batch the queries. With
// threads > 1 (called outside a parallel region) each thread multiplies all
// the queries by its share of the codebooks; the tables are the same for
// any thread count.
void compute_luts(const Codec& codec, bool l2, size_t nq, const float* x, int levels, float* luts, float* biases,
                  int threads = 1);
// One query's tables (levels x K); returns its bias.
float compute_lut(const Codec& codec, bool l2, const float* q, int levels, float* lut);

// The kernel compute_luts multiplies with:
//   "simd"   the fastest scan kernel set's register-tiled FMA product over
//            the codebooks' transposed panels (the default; as fast as
//            numpy's OpenBLAS sgemm from 64 queries at once, benchmarks/peers.py luts),
//   "scalar" the plain loop, the reference "simd" is tested against.
// Their tables agree to float rounding, not bit for bit (summation orders
// differ); each gives a query the same tables whatever the other queries of
// the call, and a search takes all its tables from one kernel.
std::vector<std::string> lut_kernels();
// "auto" (simd) or one of lut_kernels(); throws std::invalid_argument
// otherwise. Returns the previous setting.
std::string force_lut_kernel(const std::string& name);
std::string active_lut_kernel();
// compute_luts with a named kernel (for tests and benchmarks).
void compute_luts_with(const std::string& kernel, const Codec& codec, bool l2, size_t nq, const float* x, int levels,
                       float* luts, float* biases);

inline int padded_levels4(int m) { return (m + 3) / 4 * 4; }

struct QuantizedLut {
    float base = 0;       // bias + sum_l lo_l
    float scale = 0;      // quantized units per distance unit (0: every table is flat)
    float inv_scale = 0;
    float err = 0;        // see the header comment
    float rel = 0;
    float magnitude = 0;  // A
    bool ok = false;      // false when the float table is not finite

    // Largest approximate distance (without the norm slack, see
    // norm_factor) a code may have and still beat exact threshold T.
    float admit(float T) const;
    // L2 norms enter the admission test multiplied by this (1 - rel), which
    // moves their share of the float slack to the left-hand side.
    float norm_factor() const { return 1.f - rel; }
    // Inner product: the largest quantized sum admitted for exact threshold
    // T, or -1 when no code can be admitted; at most 65535.
    int32_t admit_sum(float T) const;
    // A kernel's thresholds (kernels.h: Thresholds) for exact threshold T;
    // T = +inf admits everything.
    void thresholds_for(float T, int32_t& qthr, float& fthr) const {
        if (T == std::numeric_limits<float>::infinity()) {
            qthr = 65535;
            fthr = T;
        } else {
            qthr = admit_sum(T);
            fthr = admit(T) - base;
        }
    }
};

// 4-bit tables of `sources` columns (the levels, then any norm codes'
// table) and the extra columns of `split` (kernels.h: SplitColumns4): out
// holds lut4_bytes(sources, split) bytes, the columns past the last zero.
// With splits, one step scale serves every level and err counts one
// rounding per source, however many columns it spans.
QuantizedLut quantize_lut4(const float* lut, int sources, float bias, const SplitColumns4& split, uint8_t* out);

// The split shared by the 4-bit tables luts[0..nq) of `sources` columns
// (16 entries each), which a kernel group scans together. Sources whose
// entries span far more than the others' (the first levels of a residual
// code, the norm codes) set the one quantization step of every column; each
// of their extra columns halves, thirds, ... their span, so that the step
// (and the admission slack, the candidates re-scored) shrinks, at the cost
// of one more lookup per extra column. Each source gets the fewest columns
// that each span at most kSplitTo x the mean span of the sources (the
// largest over the tables); if that takes more than max(1, sources / 4)
// extra columns, that many go one by one to the widest source per column.
constexpr float kSplitTo = 2.f;
SplitColumns4 plan_split4(const float* const* luts, int nq, int sources);

// Splits pay only where the scan re-scores many of the slots it scans (the
// slack is wide against the gaps between distances); elsewhere the extra
// lookups are a pure cost. So a scan starts with unsplit tables and splits
// them once it has scanned kAdmissionSample slots and admitted more than
// kSplitWhenAdmitting of them. An inverted file's first probe round (each
// query's nearest list, which it starts with no threshold) admits more
// whatever the data and counts apart, against kSplitWhenAdmittingFirst.
// Measured (an instrumented build, nprobe 8, unsplit): image patches admit
// 37% of the slots of the first round and 21% / 6.5% / 1.5% of the next
// three; 1M synthetic unit vectors 9.8%, then 0.13% / 0.02% / 0.00%. Split
// tables are 1.1-1.4x faster on the patches (flat and IVF), and cost up to
// 17% on synthetic vectors (flat, 32 levels; benchmarks/splits.py).
constexpr double kSplitWhenAdmitting = 0.04, kSplitWhenAdmittingFirst = 0.2;
constexpr size_t kAdmissionSample = 4096;
struct AdmissionRate {
    size_t scanned = 0, admitted = 0;
    bool high(double above = kSplitWhenAdmitting) const {
        return scanned >= kAdmissionSample && double(admitted) > above * double(scanned);
    }
};

// When scans split their tables: kAuto (by their AdmissionRate, the
// default), kAlways or kNever. A test and benchmark seam.
enum class SplitMode { kAuto, kAlways, kNever };
std::atomic<SplitMode>& split_mode();
// Whether a scan splits its tables before it has admitted anything.
inline bool split_from_start() { return split_mode().load(std::memory_order_relaxed) == SplitMode::kAlways; }
// Whether a scan whose admissions so far are `rate` splits its tables now.
inline bool split_now(const AdmissionRate& rate, double above = kSplitWhenAdmitting) {
    const SplitMode mode = split_mode().load(std::memory_order_relaxed);
    return mode == SplitMode::kAlways || (mode == SplitMode::kAuto && rate.high(above));
}

// The tables luts[0..nq) quantized, with their plan_split4 split if `split`
// (else none); returns the split: query q's into out + q * stride
// (lut4_bytes(sources, split) bytes used; stride at least
// max_lut4_bytes(sources)), ql[q] its quantization.
SplitColumns4 quantize_luts4(const float* const* luts, int nq, int sources, const float* biases, uint8_t* out,
                             size_t stride, QuantizedLut* ql, bool split);
inline size_t lut4_bytes(int sources, const SplitColumns4& split) {
    return size_t(padded_levels4(sources + split.n)) * 16;
}
// The most bytes lut4_bytes gives for `sources` columns (buffers sized before a plan).
inline size_t max_lut4_bytes(int sources) { return size_t(padded_levels4(sources + kMaxSplitColumns)) * 16; }
// 8-bit tables of up to kLanes8 queries: the 64-bit entry table[l * 256 + k]
// (l < m) holds query q's value in its 16-bit lane q (little-endian), zero
// in lanes q >= nq. out[q] is query q's quantization; returns false, leaving
// the table undefined, when some query's tables are not finite.
constexpr int kLanes8 = 4;
bool quantize_lut8(const float* const* luts, int nq, int m, const float* biases, QuantizedLut* out, uint64_t* table);

}  // namespace dpq::scan
