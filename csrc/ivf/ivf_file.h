// The IndexIVFDPQ file: a header (checksummed) with the list table, then
// the lists as the search reads them, so that a memory-mapped file is
// searched in place.
//
//   magic "PFDPQIVF" | version u32 | header length u64 | header crc32 u32
//   header: d, metric, nlist, levels, nbits, knobs, norm prefixes, flags
//           (cosine from version 3, relative norms from 4), the norm kind
//           and quantized norms' centroids (from 5; float32 before),
//           codebooks, centroids, the quantizer (Faiss bytes, written and
//           read by the Python side), ntotal, per list {offset, n, crc32}
//   lists, each at a 64-byte aligned offset: codes (blocks), norm columns
//           (NormColumn, whole blocks: float32 ||r_m||^2 or, without the
//           relative norms flag, ||c + r_m||^2; or codes), int64 ids
//
// The version is the one format version of pyfaiss-dpq (serialize.h).
// Opening checks the header and its checksum only (its size grows with
// nlist, not with ntotal); each list is checked when first read, or by
// IndexIVFDPQ::verify.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index_ivf_dpq.h"

namespace dpq::ivf {

constexpr char kIvfMagic[8] = {'P', 'F', 'D', 'P', 'Q', 'I', 'V', 'F'};

std::vector<uint8_t> serialize_ivf(const IndexIVFDPQ& index, const std::string& quantizer_bytes);

// An index with its lists in RAM (every list checked). The quantizer's
// bytes are returned for the caller to rebuild and attach.
std::unique_ptr<IndexIVFDPQ> deserialize_ivf(const uint8_t* data, size_t size, std::string* quantizer_bytes);

// A read-only index searching the file in place (mmap).
std::unique_ptr<IndexIVFDPQ> map_ivf(const std::string& path, std::string* quantizer_bytes);

}  // namespace dpq::ivf
