// IndexDPQ: a faiss::Index whose codes are progressive (residual) levels,
// searchable at any prefix of its levels.
#pragma once

#include <memory>
#include <shared_mutex>
#include <vector>

#include "code_store.h"
#include "codec.h"
#include "faiss_abi.h"
#include "train.h"

namespace dpq {

struct SearchParametersDPQ : faiss::SearchParameters {
    int levels = 0;         // prefix length to scan; 0: the index's search_levels
    int rerank_levels = 0;  // if > levels: re-score the best rerank_k with this many levels
    faiss::idx_t rerank_k = 0;
    ~SearchParametersDPQ() override {}
};

class IndexDPQ : public faiss::Index {
   public:
    IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric);

    // --- state of our own (exposed to Python as attributes) ---
    int levels() const { return codec_.levels(); }
    int nbits() const { return codec_.nbits(); }
    int search_levels = 0;  // default prefix for search, 1..levels
    int beam_size = 1;      // 1: greedy encoding
    // Knobs of train(); shared so that Python edits the live object.
    std::shared_ptr<TrainParams> train_params = std::make_shared<TrainParams>();
    const Codec& codec() const { return codec_; }
    std::vector<float> get_codebooks() const { return codec_.codebooks(); }
    // Replaces the codebooks (levels x K x d); refused while vectors are stored.
    void set_codebooks(const float* C);
    // Bytes per stored vector: packed codes plus, for L2, prefix norms.
    size_t bytes_per_vector() const;
    // Unpacked codes (n x levels) of stored vectors [i0, i0 + n).
    void get_codes(faiss::idx_t i0, faiss::idx_t n, uint8_t* codes) const;
    // Appends already-computed codes (n x levels, one index per byte).
    void add_codes(faiss::idx_t n, const uint8_t* codes);

    // --- faiss::Index ---
    void train(faiss::idx_t n, const float* x) override;
    void train_with_queries(faiss::idx_t n, const float* x, faiss::idx_t nq, const float* xq) override;
    void train_ex(faiss::idx_t n, const void* x, faiss::NumericType t) override;
    void add(faiss::idx_t n, const float* x) override;
    void add_ex(faiss::idx_t n, const void* x, faiss::NumericType t) override;
    void add_with_ids_ex(faiss::idx_t n, const void* x, faiss::NumericType t,
                         const faiss::idx_t* ids) override;
    void search(faiss::idx_t n, const float* x, faiss::idx_t k, float* distances,
                faiss::idx_t* labels, const faiss::SearchParameters* params = nullptr) const override;
    void search_ex(faiss::idx_t n, const void* x, faiss::NumericType t, faiss::idx_t k,
                   float* distances, faiss::idx_t* labels,
                   const faiss::SearchParameters* params = nullptr) const override;
    void range_search(faiss::idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                      const faiss::SearchParameters* params = nullptr) const override;
    void reset() override;
    size_t remove_ids(const faiss::IDSelector& sel) override;
    void reconstruct(faiss::idx_t key, float* recons) const override;
    void reconstruct_batch(faiss::idx_t n, const faiss::idx_t* keys, float* recons) const override;
    void reconstruct_n(faiss::idx_t i0, faiss::idx_t ni, float* recons) const override;
    faiss::DistanceComputer* get_distance_computer() const override;
    size_t sa_code_size() const override;
    void sa_encode(faiss::idx_t n, const float* x, uint8_t* bytes) const override;
    void sa_decode(faiss::idx_t n, const uint8_t* bytes, float* x) const override;
    void merge_from(faiss::Index& other, faiss::idx_t add_id = 0) override;
    void check_compatible_for_merge(const faiss::Index& other) const override;
    void add_sa_codes(faiss::idx_t n, const uint8_t* codes, const faiss::idx_t* xids) override;

    // Reconstruction of stored vector i from its first m levels.
    void reconstruct_prefix(faiss::idx_t i, int m, float* recons) const;
    // ||reconstruction of vector i from m levels||^2 (exact; kept for L2).
    float prefix_norm(faiss::idx_t i, int m) const;

   private:
    struct Plan {
        int levels, rerank_levels;
        size_t rerank_k;
        const faiss::IDSelector* sel;
    };
    Plan make_plan(faiss::idx_t k, const faiss::SearchParameters* params) const;
    void require_trained() const;
    bool is_l2() const { return metric_type == faiss::METRIC_L2; }

    Codec codec_;
    CodeStore store_;
    // Searches share; add/remove/reset/merge are exclusive.
    mutable std::shared_mutex mutex_;
};

// The index behind a Faiss index pointer, or null when it is not an IndexDPQ.
IndexDPQ* as_dpq(faiss::Index* index);

}  // namespace dpq
