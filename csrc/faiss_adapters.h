// What IndexDPQ and IndexIVFDPQ both need at their Faiss boundary: Faiss's
// IDSelector as the scan's id filter, the float32-only rule of the *_ex
// entry points, and range hits handed back as a RangeSearchResult.
#pragma once

#include <vector>

#include "check.h"
#include "faiss_abi.h"
#include "scan/search.h"

namespace dpq {

// `index_name` names the index in the message ("IndexDPQ", "IndexIVFDPQ").
inline void check_float32(faiss::NumericType t, const char* index_name) {
    DPQ_CHECK(t == faiss::Float32, std::invalid_argument, "%s: only float32 vectors are supported", index_name);
}

class SelectorFilter final : public scan::IdFilter {
   public:
    explicit SelectorFilter(const faiss::IDSelector* sel) : sel_(sel) {}
    bool keep(int64_t id) const override { return sel_->is_member(faiss::idx_t(id)); }

   private:
    const faiss::IDSelector* sel_;
};

// The prefix rules of one search call of an index with L levels: levels in
// [1, L]; rerank_levels 0 or in [levels, L]; rerank_k only with rerank_levels.
// `index` and `params` name the index and its parameters class in messages.
inline void check_search_levels(const char* index, const char* params, int L, int levels, int rerank_levels,
                                size_t rerank_k) {
    DPQ_CHECK(levels >= 1 && levels <= L, std::invalid_argument, "%s.search: levels must be in [1, %d], got %d",
              index, L, levels);
    DPQ_CHECK(!rerank_levels || (rerank_levels >= levels && rerank_levels <= L), std::invalid_argument,
              "%s: rerank_levels must be in [levels=%d, %d], got %d", params, levels, L, rerank_levels);
    DPQ_CHECK(rerank_levels || !rerank_k, std::invalid_argument, "%s: rerank_k needs rerank_levels", params);
}

// Copies per-query hits (ids ascending) into `result`, as Faiss lays it out.
inline void fill_range_result(const std::vector<scan::RangeHits>& hits, faiss::RangeSearchResult* result) {
    const size_t n = hits.size();
    for (size_t qi = 0; qi < n; qi++) result->lims[qi] = hits[qi].size();
    result->do_allocation();
    for (size_t qi = 0; qi < n; qi++)
        for (size_t j = 0; j < hits[qi].size(); j++) {
            result->labels[result->lims[qi] + j] = hits[qi][j].first;
            result->distances[result->lims[qi] + j] = hits[qi][j].second;
        }
}

}  // namespace dpq
