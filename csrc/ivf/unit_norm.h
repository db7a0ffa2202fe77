// The norm ||c + r_M|| a cosine IndexIVFDPQ divides by (search_lists.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../code_layout.h"
#include "list_store.h"
#include "search_lists.h"

namespace dpq::ivf {

// ||c + r_M|| of the vector at offset i of list `list` (cosine): the
// stored float32 ||c + r_M||^2 of norm slot `slot`, or (slot -1) from the
// codeword and centroid products where the search has them, else by decoding.
class UnitNorm {
   public:
    explicit UnitNorm(const ListSearch& s)
            : s_(s), lay_{s.codec->levels(), s.codec->nbits()}, code_(s.codec->levels()), v_(s.codec->d()) {}
    float operator()(const ListRef& L, size_t list, size_t i, int M, int slot);
    // Smaller is better: -<q, c + r_M> over that norm (0 for a zero vector).
    float cosine(float minus_ip, const ListRef& L, size_t list, size_t i, int M, int slot) {
        const float n = (*this)(L, list, i, M, slot);
        return n > 0 ? minus_ip / n : 0.f;
    }

   private:
    const ListSearch& s_;
    CodeLayout lay_;
    std::vector<uint8_t> code_;
    std::vector<float> v_;
};

}  // namespace dpq::ivf
