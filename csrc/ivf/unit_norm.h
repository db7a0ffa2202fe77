// The exact terms a list search computes from the codes (search_lists.h):
// ||c + r_M||, which a cosine IndexIVFDPQ divides by, and for an L2 one with
// norm codes ||r_M||^2 (range search) and ||q - c - r_M||^2 (the re-score).
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
    // ||r_M||^2 of the vector at offset i of L: from the codeword products
    // where the search has them (4-bit codes), else by decoding.
    float residual_norm(const ListRef& L, size_t i, int M);
    // ||q - c - r_M||^2 of the vector at offset i of list `list`, from the
    // decoded vector: d x M additions, which beat the pair's table plus
    // residual_norm's m^2 / 2 scattered lookups (image patches, 30 levels:
    // those took a quarter of a search with 8-bit norm codes).
    float distance(const ListRef& L, size_t list, size_t i, int M, const float* q);
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
