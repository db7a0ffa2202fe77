// The interface between the search driver and the per-ISA scan kernels.
//
// A kernel scans a range of code blocks (code_layout.h) for a group of up to
// kGroup queries at once, so every code byte it loads serves all of them. It
// works on quantized lookup tables (tables.h) and reports the slots whose
// approximate distance passes a query's current threshold to a BlockSink,
// which re-scores them exactly and may tighten the threshold in between.
// Kernels know the code layout, never Faiss.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dpq::scan {

constexpr int kGroup = 4;  // queries one kernel call scans together

// Receives the candidates of a block for one query of the group.
class BlockSink {
   public:
    virtual ~BlockSink() = default;
    // Bit s of `slots` set: vector 32 * block + s may beat query q's threshold.
    virtual void accept(int q, size_t block, uint32_t slots) = 0;
};

// The blocks to scan at prefix m.
struct Blocks {
    const uint8_t* codes = nullptr;  // block 0
    size_t block_bytes = 0;
    size_t b0 = 0, b1 = 0;           // scan blocks [b0, b1)
    int m = 0;                       // levels read from each block
    // L2 with float prefix norms: block b's 32 floats are block_norms(b);
    // they enter the threshold test scaled by norm_factor. Null otherwise.
    const float* norms = nullptr;
    size_t norms_b0 = 0;  // the block whose norms `norms` points at
    float norm_factor = 1.f;
    // L2 with prefix-norm codes as wide as the level codes: one more level,
    // column m of the tables. Block b's codes are at ncodes + b * ncode_bytes,
    // laid out as a level of a block (16 bytes of nibbles, or 32 codes). Null
    // otherwise; the slot test is then the integer one.
    const uint8_t* ncodes = nullptr;
    size_t ncode_bytes = 0;

    const float* block_norms(size_t b) const { return norms + (b - norms_b0) * 32; }
    const uint8_t* block_ncodes(size_t b) const { return ncodes ? ncodes + b * ncode_bytes : nullptr; }
    int columns() const { return m + (ncodes != nullptr); }
};

// 4-bit tables: columns past the sources (the m levels, then the norm
// codes' if Blocks::ncodes) that look up a source's codes again, each with
// its own share of that source's table values (tables.h: plan_split4).
// Column sources + j reads the codes of source src[j] (m: the norm codes).
constexpr int kMaxSplitColumns = 16;
struct SplitColumns4 {
    int n = 0;
    uint8_t src[kMaxSplitColumns] = {};
};

// Quantized tables of a query group. Lanes q >= nq are unused.
struct GroupTables {
    int nq = 0;
    // Columns: the m levels, then the norm codes' table if Blocks::ncodes.
    // nbits = 4: per query, those and the split's columns, padded with zero
    // tables to a multiple of 4, 16 bytes each (tables.h: quantize_lut4).
    // Sums4Fn takes the same layout.
    const uint8_t* lut4[kGroup] = {};
    SplitColumns4 split;
    // nbits = 8: columns x 256 entries, 16-bit lane q of entry (l, c) is query q's
    // quantized table value (tables.h: quantize_lut8).
    const uint64_t* lut8 = nullptr;
    float inv_scale[kGroup] = {};  // quantized units -> distance units
};

// Admission thresholds of a group, kept current by the sink.
//   integer test (no float norms): slot passes iff qsum <= qthr[q] (qthr < 0: nothing passes)
//   float norms:   slot passes iff qsum * inv_scale[q] + norm * norm_factor <= fthr[q]
struct Thresholds {
    int32_t qthr[kGroup] = {};
    float fthr[kGroup] = {};
};

// Filtering scan of Blocks for a group (nq <= kGroup).
using ScanFn = void (*)(const Blocks&, const GroupTables&, Thresholds&, BlockSink&);
// Raw quantized sums, the kernels' bit-exact test seam:
//   nbits 4: out[b * 32 + s] = sum_{l < m} lut4[l * 16 + code_l(b, s)]
//                              + sum_{j < split.n} lut4[(m + j) * 16 + code_{split.src[j]}(b, s)]
//            (split.src[j] < m: no norm codes)
//   nbits 8: out[b * 32 + s] = sum_{l < m} lut8[l * 256 + code_l(b, s)]  (mod 2^64; its 16-bit
//            lane q is query q's sum while no lane's sum reaches 2^16; scans keep them below 2^15)
using Sums4Fn = void (*)(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m,
                         const uint8_t* lut4, const SplitColumns4& split, uint16_t* out);
using Sums8Fn = void (*)(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m,
                         const uint64_t* lut8, uint64_t* out);

// Exact float distances of the 32 slots of a 4-bit block (code_layout.h)
// at prefix m, summed in reference.h's one order (exact_distance), so that
// every kernel's equal the reference's bit for bit:
//   out[s] = init[s] + sum_{l < m} lut[l * 16 + code_l(s)]
// Re-scores a block's candidates at once (the SIMD kernels look up 16 slots
// a register) where several passed the quantized test.
using Exact4Fn = void (*)(const uint8_t* block, int m, const float* lut, const float* init, float* out);

// Inner products of nx vectors X (nx x d) with the n rows of a matrix in
// table panels (codec.h pack_table_panels): out[i * out_stride + j] =
// <X_i, row j>, j < n. Builds the float lookup tables (tables.h), which
// every scan kernel then shares.
using DotsFn = void (*)(const float* X, size_t nx, const float* panels, size_t n, int d, float* out,
                        size_t out_stride);

// Quantizing 4-bit tables (tables.h), whose levels are 16 floats t[l * 16 + k]
// (an inverted file quantizes one per (query, list) pair probed):
//   Stats4Fn:    lo[l] = min_k t, hi[l] = max_k t, for l < m;
//   Quantize4Fn: v = trunc(min((t - lo[l]) * scale + 0.5, 255 width[l])) (no
//                fused multiply-add), laid out over level l's width[l]
//                columns: column l holds min(v, 255), its extra columns (the
//                next ones from column m on) v - 255 i clamped to [0, 255].
// Finite tables: every kernel's equal the scalar reference's bit for bit.
using Stats4Fn = void (*)(const float* t, int m, float* lo, float* hi);
using Quantize4Fn = void (*)(const float* t, int m, const float* lo, float scale, const int* width, uint8_t* out);

struct KernelSet {
    const char* name;
    ScanFn scan4, scan8;  // null for the scalar reference (it scans float tables)
    Sums4Fn sums4;
    Sums8Fn sums8;
    Exact4Fn exact4;
    DotsFn dots;
    Stats4Fn stats4;
    Quantize4Fn quantize4;
};

// One per ISA, each defined in its own translation unit with its own flags.
extern const KernelSet kScalar;
extern const KernelSet kAvx2;
extern const KernelSet kAvx512;

}  // namespace dpq::scan
