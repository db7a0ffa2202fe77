// Storage layout of IndexDPQ codes: blocks of 32 vectors, level-major.
//
// Block b holds vectors [32b, 32b+32). Inside a block, level l's codes for
// all 32 slots are contiguous (level_bytes bytes), so a search at prefix m
// reads only the first m * level_bytes bytes of every block.
//   nbits = 8: byte j of a level is slot j's code (32 bytes a level).
//   nbits = 4: byte j holds slot j in its low nibble and slot j + 16 in its
//              high nibble (16 bytes a level) — the order an in-register
//              16-entry byte shuffle consumes directly.
// For METRIC_L2 the exact squared norm of every prefix reconstruction is
// kept beside the codes, blocked the same way: norms[b][m - 1][slot] (float32).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dpq {

constexpr size_t kBlockSize = 32;

struct CodeLayout {
    int levels = 0;
    int nbits = 8;

    size_t level_bytes() const { return kBlockSize * nbits / 8; }
    size_t block_bytes() const { return level_bytes() * levels; }
    size_t block_norms() const { return kBlockSize * levels; }
    static size_t nblocks(size_t n) { return (n + kBlockSize - 1) / kBlockSize; }

    // Byte offset of vector i's block in the code array, and float offset of
    // its prefix-m norm in the norm array. size_t throughout: databases past
    // 2^31 vectors or bytes are expected.
    size_t block_offset(size_t i) const { return (i / kBlockSize) * block_bytes(); }
    size_t norm_offset(size_t i, int m) const {
        return (i / kBlockSize) * block_norms() + size_t(m - 1) * kBlockSize + i % kBlockSize;
    }

    // Code of vector slot `slot` at level `l` inside block `block`.
    uint8_t get(const uint8_t* block, int l, size_t slot) const {
        const uint8_t* lv = block + l * level_bytes();
        if (nbits == 8) return lv[slot];
        return slot < 16 ? (lv[slot] & 15) : (lv[slot - 16] >> 4);
    }
    void set(uint8_t* block, int l, size_t slot, uint8_t c) const {
        uint8_t* lv = block + l * level_bytes();
        if (nbits == 8) {
            lv[slot] = c;
        } else if (slot < 16) {
            lv[slot] = (lv[slot] & 0xF0) | (c & 15);
        } else {
            lv[slot - 16] = (lv[slot - 16] & 0x0F) | uint8_t(c << 4);
        }
    }
};

}  // namespace dpq
