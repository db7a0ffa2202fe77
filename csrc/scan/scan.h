// Lookup-table scan kernels. They know the code layout, never Faiss.
#pragma once

#include <cstddef>

#include "../code_store.h"

namespace dpq::scan {

// Distances of every vector of blocks [b0, b1) at prefix m:
//   out[i] = bias + sum_{l < m} lut[l * K + code_l(i)] + (norms ? ||r_m(i)||^2 : 0)
// out holds (b1 - b0) * 32 floats; padding slots of the last block are
// computed too and must be ignored by the caller.
void scan_float_scalar(const CodeStore& store, int m, const float* lut, float bias,
                       size_t b0, size_t b1, float* out);

}  // namespace dpq::scan
