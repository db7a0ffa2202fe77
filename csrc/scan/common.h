// Plain C++ shared by the ISA kernel files (each includes it and compiles it
// with its own flags). Everything here has internal linkage on purpose: an
// inline function with external linkage compiled for AVX-512 in one file
// could be the copy the linker keeps for all of them.
#pragma once

#include <cstdint>
#include <cstring>

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

// 8-bit codes, up to 4 queries at once: each 64-bit table entry packs the
// 16-bit quantized values of 4 queries, so one load and one 64-bit add do 4
// lookups. Lanes never carry into each other: every lane's sum is at most
// m * floor(65535 / m) (lut.h). Codes are read 8 at a time.
inline void swar8_block(const uint8_t* blk, int m, const uint64_t* lut8, uint64_t* acc) {
    for (int s0 = 0; s0 < 32; s0 += 8) {
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        const uint8_t* c = blk + s0;
        const uint64_t* t = lut8;
        for (int l = 0; l < m; l++, c += 32, t += 256) {
            uint64_t w;
            std::memcpy(&w, c, 8);
            a0 += t[w & 255];
            a1 += t[(w >> 8) & 255];
            a2 += t[(w >> 16) & 255];
            a3 += t[(w >> 24) & 255];
            a4 += t[(w >> 32) & 255];
            a5 += t[(w >> 40) & 255];
            a6 += t[(w >> 48) & 255];
            a7 += t[w >> 56];
        }
        uint64_t* o = acc + s0;
        o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3, o[4] = a4, o[5] = a5, o[6] = a6, o[7] = a7;
    }
}

// 8-bit scans read 32 bytes a level, a block at a time, at a stride that
// hardware prefetchers follow late: asking for the block a few ahead gains
// 5-10% (measured) when the codes come from memory.
constexpr size_t kPrefetchAhead = 4;

inline void prefetch_block(const Blocks& bl, size_t b) {
    const char* p = reinterpret_cast<const char*>(bl.codes + b * bl.block_bytes);
    for (size_t o = 0; o < size_t(bl.m) * 32; o += 64) __builtin_prefetch(p + o);
}

inline void sums8_blocks(const uint8_t* codes, size_t block_bytes, size_t nblocks, int m, const uint64_t* lut8,
                         uint64_t* out) {
    for (size_t b = 0; b < nblocks; b++) swar8_block(codes + b * block_bytes, m, lut8, out + b * 32);
}

// Thresholds of the live lanes packed like a lut8 entry; dead or unused
// lanes get 0 and are masked out by `alive`.
inline uint64_t pack_thresholds(const Thresholds& th, int nq, uint32_t* alive) {
    uint64_t t = 0;
    *alive = 0;
    for (int q = 0; q < nq; q++)
        if (th.qthr[q] >= 0) {
            t |= uint64_t(uint16_t(th.qthr[q])) << (16 * q);
            *alive |= 1u << q;
        }
    return t;
}

inline void report(BlockSink& sink, size_t b, const uint32_t* qmask, int nq) {
    for (int q = 0; q < nq; q++)
        if (qmask[q]) sink.accept(q, b, qmask[q]);
}

}  // namespace
}  // namespace dpq::scan
