// Per-query lookup tables: one score per (level, codeword).
//
// Distances are kept "smaller is better" inside the index:
//   L2: dist = ||q||^2 + sum_l lut[l][c_l] + ||r_m||^2, lut[l][k] = -2 <q, c_lk>
//   IP: dist = sum_l lut[l][c_l] = -<q, r_m>,           lut[l][k] = -<q, c_lk>
#pragma once

#include "codec.h"

namespace dpq {

// lut: levels x K floats for the first `levels` levels; returns the bias
// (||q||^2 for L2, 0 for IP).
float compute_lut(const Codec& codec, bool l2, const float* q, int levels, float* lut);

}  // namespace dpq
