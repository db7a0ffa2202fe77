// CRC-32 (IEEE 802.3, reflected, the polynomial of zlib.crc32): the
// checksum of IndexIVFDPQ files' header and lists, so that Python's zlib
// computes the same values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace dpq::ivf {

inline const std::array<uint32_t, 256>& crc32_table() {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    return table;
}

inline uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
    const auto& t = crc32_table();
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

}  // namespace dpq::ivf
