// The body of an IndexDPQ file: every field and code, bounds-checked on
// read. The envelope (magic, version, length, checksum) and the atomic
// write are the Python side's job (pyfaiss_dpq/io.py).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index_dpq.h"

namespace dpq {

constexpr uint32_t kBodyVersion = 1;

std::vector<uint8_t> serialize(const IndexDPQ& index);
// Throws std::invalid_argument describing the first inconsistency found.
std::unique_ptr<IndexDPQ> deserialize(const uint8_t* data, size_t size);

}  // namespace dpq
