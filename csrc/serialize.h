// The body of an IndexDPQ file: every field and code, bounds-checked on
// read. The envelope (magic, version, length, checksum) and the atomic
// write are the Python side's job (pyfaiss_dpq/persist.py), which writes this
// same version number: the one version of the file format.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index_dpq.h"

namespace dpq {

// 1: pyfaiss-dpq 0.1.0 (L2 float32 norms of every prefix, implied).
// 2: records the norm storage (kind, prefixes, quantizer centroids).
// 3: records the cosine flag (IndexDPQ and IndexIVFDPQ files).
// 4: IndexIVFDPQ's L2 norms are ||r_m||^2, relative to the centroid (a flag);
//    IndexDPQ files are as in 3.
// 5: IndexIVFDPQ's L2 norms may be 4- or 8-bit codes (their kind and
//    centroids); IndexDPQ files are as in 3.
constexpr uint32_t kFormatVersion = 5;
constexpr uint32_t kOldestFormatVersion = 1;  // still read

std::vector<uint8_t> serialize(const IndexDPQ& index);
// Throws std::invalid_argument describing the first inconsistency found.
std::unique_ptr<IndexDPQ> deserialize(const uint8_t* data, size_t size);

}  // namespace dpq
