// Storage layout of IndexDPQ codes: blocks of 32 vectors, level-major.
//
// Block b holds vectors [32b, 32b+32). Inside a block, level l's codes for
// all 32 slots are contiguous (level_bytes bytes), so a search at prefix m
// reads only the first m * level_bytes bytes of every block.
//   nbits = 8: byte j of a level is slot j's code (32 bytes a level).
//   nbits = 4: byte j holds slot j in its low nibble and slot j + 16 in its
//              high nibble (16 bytes a level) — the order an in-register
//              16-entry byte shuffle consumes directly.
// Prefix norms (norm_quantizer.h) live apart from the codes, prefix-major:
// one column per stored prefix, vectors in order (see NormColumn), so that
// a scan at prefix m reads that prefix's norms contiguously.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dpq {

constexpr size_t kBlockSize = 32;

struct CodeLayout {
    int levels = 0;
    int nbits = 8;

    size_t level_bytes() const { return kBlockSize * nbits / 8; }
    size_t block_bytes() const { return level_bytes() * levels; }
    static size_t nblocks(size_t n) { return (n + kBlockSize - 1) / kBlockSize; }

    // Byte offset of vector i's block in the code array. size_t throughout:
    // databases past 2^31 vectors or bytes are expected.
    size_t block_offset(size_t i) const { return (i / kBlockSize) * block_bytes(); }

    // The `levels` codes of vector i of a code array whose block 0 is at `codes`.
    void get_code(const uint8_t* codes, size_t i, uint8_t* out) const {
        const uint8_t* blk = codes + block_offset(i);
        for (int l = 0; l < levels; l++) out[l] = get(blk, l, i % kBlockSize);
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

namespace dpq {

// One prefix's norms for every stored vector, padded to whole blocks:
//   bits 32: float32 element i;  bits 8: byte i (a code);
//   bits 4:  block b's 16 bytes at 16 b, slot s in the low nibble of byte s
//            (s < 16) or the high nibble of byte s - 16: exactly a 4-bit
//            level of a block, so a 4-bit scan adds it as one more column.
struct NormColumn {
    int bits = 0;
    size_t block_bytes() const { return kBlockSize * bits / 8; }
    // The element of vector i: a float32's bits or a code.
    uint32_t get(const uint8_t* col, size_t i) const {
        if (bits == 32) {
            uint32_t v;
            std::memcpy(&v, col + 4 * i, 4);
            return v;
        }
        if (bits == 8) return col[i];
        const size_t s = i % kBlockSize;
        const uint8_t byte = col[(i / kBlockSize) * 16 + (s & 15)];
        return s < 16 ? byte & 15 : byte >> 4;
    }
    void set(uint8_t* col, size_t i, uint32_t v) const {
        if (bits == 32) {
            std::memcpy(col + 4 * i, &v, 4);
        } else if (bits == 8) {
            col[i] = uint8_t(v);
        } else {
            const size_t s = i % kBlockSize;
            uint8_t& byte = col[(i / kBlockSize) * 16 + (s & 15)];
            byte = s < 16 ? uint8_t((byte & 0xF0) | (v & 15)) : uint8_t((byte & 0x0F) | (v << 4));
        }
    }
};

}  // namespace dpq
