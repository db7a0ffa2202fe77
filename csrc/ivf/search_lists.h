// k-NN and range search over inverted lists of progressive codes.
//
// With residual coding against the list's centroid c, a stored vector is
// c + r_m and (smaller is better inside the index)
//   L2: ||q - c - r_m||^2 = ||q - c||^2 + sum_l -2 <q - c, c_l> + ||r_m||^2
//   IP: -<q, c + r_m>     = -<q, c>     + sum_l -<q, c_l>
// The float table of a (query, list) pair is the query's table (computed
// once per query, for all its lists) less, for L2, the centroid's
// (-2 <c, c_lk>, kept per list by the index or computed per list scanned),
// so each pair adds one bias (the first term) and L2 the stored float32
// norm ||r_m||^2. Quantizing the pair's table (its entries span
// <q - c, c_lk>, not <q, c_lk>) keeps the scan's admission margin small
// where vectors lie far from the origin (image pixels: 9x smaller there).
// Files before format 4 store ||c + r_m||^2 instead; their L2 pairs use
// the query's table as it is, with bias ||q||^2 - 2 <q, c>. Norms kept as
// codes (of ||r_m||^2 less its own terms sum_l ||c_l||^2, which the scan's
// tables then carry) rank the scan, whose best `shortlist` are re-scored
// exactly from the decoded vector; where the codes are as wide as the level
// codes they are one more kernel column. A range search with norm codes
// scans without any norm (a lower bound, ||r_m||^2 >= 0) and adds the exact
// one (4-bit codes: sums of codeword products; 8-bit: decoding) to what passes.
// Cosine (unit vectors) ranks by the IP scan and
// re-scores its best `shortlist` as -<q, c + r_m> / ||c + r_m||, the norm
// stored where the index keeps it for m, else (4-bit codes) a sum of
// codeword and centroid products, or (8-bit) from the decoded vector. The (query, list) pairs of a batch of queries
// are regrouped by list, in rounds of probe rank (each query's nearest list
// in the first): a list is scanned once a round for every group of up to
// kGroup queries of the batch that probe it, by the flat index's kernels
// (scan/kernels.h). Candidates the kernels pass are re-scored with the float
// tables in the reference order (scan/scan.h), so results equal the float
// reference scan's; the reference itself runs where no fast kernel does.
#pragma once

#include <cstdint>
#include <vector>

#include "../codec.h"
#include "../norm_quantizer.h"
#include "../scan/search.h"
#include "list_store.h"

namespace dpq::ivf {

struct ListSearch {
    const Codec* codec = nullptr;
    const ListStore* lists = nullptr;
    const float* centroids = nullptr;  // nlist x d: the exact per-list terms
    bool l2 = true;
    bool relative_norms = false;             // L2: norms are ||r_m||^2 (see above)
    const float* centroid_tables = nullptr;  // relative norms: nlist x levels x K, or null (computed per list)
    // Cosine, 4-bit codes, centroid tables kept: ||c + r_m||^2 = ||c||^2 + 2 <c, r_m> + ||r_m||^2 as
    // sums of table entries (IndexIVFDPQ::products); null: by decoding.
    // Norm codes: codeword_norms (levels x K, ||c_lk||^2) always, cross_products for 4-bit codes.
    const float* codeword_norms = nullptr;
    const float* cross_products = nullptr;
    // L2 norms kept as codes (relative norms): their quantizer; null otherwise.
    const NormQuantizer* norm_codes = nullptr;
    const float* centroid_norms = nullptr;  // nlist: ||c||^2
    int levels = 0;          // prefix scanned
    int norm_slot = -1;      // L2 (or cosine, where kept): the norm column of prefix `levels`
    int rerank_levels = 0;   // > levels: re-score rerank_k candidates with this many levels
    int rerank_slot = -1;    // L2 (or cosine, where kept): the norm column of prefix rerank_levels
    size_t rerank_k = 0;
    bool cosine = false;   // IP over unit reconstructions (see above)
    size_t shortlist = 0;  // cosine without re-ranking: scan candidates re-scored (at least k)
    const scan::IdFilter* filter = nullptr;

    // The scan adds norm codes of prefix `levels` (and their own terms to its tables).
    bool scans_norm_codes() const { return norm_codes && norm_slot >= 0; }
    // ... as one more kernel column (codes as wide as the level codes).
    bool norm_code_column() const { return scans_norm_codes() && norm_codes->spec().K() == codec->K(); }
    // Columns of the scan's quantized tables.
    int columns() const { return levels + norm_code_column(); }
};

// probes: nq x nprobe list numbers (-1: none). Faiss's conventions: L2
// ascending, inner products descending, (+-FLT_MAX, -1) where fewer than k.
// Throws (before any work) when a probed list fails verification.
void knn(const ListSearch& s, size_t nq, const float* x, const int64_t* probes, size_t nprobe, size_t k,
         float* distances, int64_t* labels);

// Per query, every probed vector with L2 distance < radius (inner product >
// radius), ids ascending.
std::vector<scan::RangeHits> range(const ListSearch& s, size_t nq, const float* x, const int64_t* probes,
                                   size_t nprobe, float radius);

}  // namespace dpq::ivf
