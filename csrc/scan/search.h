// k-NN and range search over a CodeStore with the active scan kernel.
//
// Fast kernels scan quantized tables and hand every slot that may beat a
// query's threshold (with the margin of tables.h) to a collector, which
// re-scores it with the float tables exactly as the reference scan does.
// Results are therefore those of the float reference, bit for bit: the
// margin only decides how many candidates get re-scored. Where the scan's
// distance is not the exact one (prefix norms kept as codes or not at all,
// or progressive re-ranking), its best `shortlist` (`rerank_k`) are
// re-scored exactly (rescore.h) and the returned distances are those. Queries are
// processed in groups that share every code load, groups in cache-sized
// chunks of the database; OpenMP threads split the queries of a batch, or
// the database when the batch has fewer queries than threads.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "../code_store.h"
#include "../codec.h"

namespace dpq::scan {

// The ids a search may return (the index adapts Faiss's IDSelector to it).
class IdFilter {
   public:
    virtual ~IdFilter() = default;
    virtual bool keep(int64_t id) const = 0;
};

struct SearchSpec {
    const Codec* codec = nullptr;
    const CodeStore* store = nullptr;
    const NormQuantizer* norms = nullptr;  // the store's quantizer (quantized norm kinds)
    // levels x K: ||c_lk||^2. L2 scans without a float32 norm add them to
    // their lookup tables (the norms' own terms, exact), ranking with
    //   ||q||^2 + sum_l (-2 <q, c_l> + ||c_l||^2) + coded cross terms (or 0),
    // before the shortlist is re-scored exactly.
    const float* codeword_norms = nullptr;
    // 4-bit codes: codeword cross products (IndexDPQ::cross_products), the
    // exact re-score's norms from a table; null: by decoding.
    const float* cross_products = nullptr;
    bool l2 = true;
    // Inner product over unit reconstructions (IndexDPQ's cosine): the scan
    // ranks by <q, r_m> and its best `shortlist` are re-scored with
    // <q, r_m> / ||r_m||, the exact norm computed from the code.
    bool cosine = false;
    int levels = 0;         // prefix scanned
    int rerank_levels = 0;  // > levels: re-score rerank_k candidates with this many levels
    size_t rerank_k = 0;
    // L2 where the store keeps no float32 norm of the scanned prefix, and
    // cosine: the scan ranks with what it keeps (norm codes, or no norm) and
    // this many of its best are re-scored exactly (at least k).
    size_t shortlist = 0;
    const IdFilter* filter = nullptr;
};

// k nearest neighbours of nq queries (x: nq x d), with Faiss's conventions:
// L2 distances ascending, inner products descending, ties to the smaller id,
// missing results as (+-FLT_MAX, -1).
void knn(const SearchSpec& spec, size_t nq, const float* x, size_t k, float* distances, int64_t* labels);

using RangeHits = std::vector<std::pair<int64_t, float>>;  // (id, distance or inner product)

// Per query, every vector with L2 distance < radius (inner product > radius),
// ids ascending.
std::vector<RangeHits> range(const SearchSpec& spec, size_t nq, const float* x, float radius);

}  // namespace dpq::scan
