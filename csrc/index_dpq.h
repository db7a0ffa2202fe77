// IndexDPQ: a faiss::Index whose codes are progressive (residual) levels,
// searchable at any prefix of its levels.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "code_store.h"
#include "codec.h"
#include "faiss_abi.h"
#include "norm_quantizer.h"
#include "scan/search.h"
#include "train.h"

namespace dpq {

struct SearchParametersDPQ : faiss::SearchParameters {
    int levels = 0;         // prefix length to scan; 0: the index's search_levels
    int rerank_levels = 0;  // if > levels: re-score the best rerank_k with this many levels
    faiss::idx_t rerank_k = 0;
    // L2 without a float32 norm of the scanned prefix, and cosine: scan
    // candidates re-scored exactly; 0: kDefaultShortlist (at least k either way).
    faiss::idx_t shortlist = 0;
    ~SearchParametersDPQ() override {}
};

// The shortlist re-scored when a search is not given one (see README,
// "Prefix norms": the recall/QPS trade-off behind it).
constexpr faiss::idx_t kDefaultShortlist = 100;

class IndexDPQ : public faiss::Index {
   public:
    // norms: how L2 keeps prefix norms (norm_quantizer.h); inner product
    // keeps none. cosine (inner product only): vectors are compared by
    // direction (unit_rows.h): inputs are scaled to unit norm, searches rank
    // by <q, r_m> / ||r_m|| (the scan by <q, r_m>, then a shortlist re-scored
    // exactly) and reconstructions are r_m / ||r_m||; it may keep float32
    // norms, which the re-score then reads. Throws std::invalid_argument
    // naming a bad argument.
    IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric, const NormSpec& norms, bool cosine = false);
    // Today's default: float32 norms of every prefix for L2, none for inner product.
    IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric);

    // --- state of our own (exposed to Python as attributes) ---
    int levels() const { return codec_.levels(); }
    int nbits() const { return codec_.nbits(); }
    bool cosine() const { return cosine_; }
    // Written from Python while GIL-free searches read them: atomic.
    std::atomic<int> search_levels{0};  // default prefix for search, 1..levels
    std::atomic<int> beam_size{1};      // 1: greedy encoding, at most kMaxBeamSize
    static constexpr int kMaxBeamSize = 1024;
    // Knobs of train(); shared so that Python edits the live object.
    std::shared_ptr<TrainParams> train_params = std::make_shared<TrainParams>();
    const Codec& codec() const { return codec_; }
    const NormSpec& norm_spec() const { return store_.norm_spec(); }
    const NormQuantizer& norm_quantizer() const { return norm_q_; }
    // Norm centroids (prefixes x K, ascending); refused while vectors are stored.
    void set_norm_centroids(const std::vector<float>& c);
    // The first m levels as an index of their own, codes copied, not re-encoded:
    // equal to a fresh m-level index given the same codebooks, norm
    // centroids and codes. Norms: the stored prefixes <= m, or those of
    // `keep` (each stored and <= m; empty: none).
    std::unique_ptr<IndexDPQ> truncated(int m, const std::vector<int>* keep = nullptr) const;
    // Codes and norms stay valid only under this lock (the distance computer holds it).
    std::shared_lock<std::shared_mutex> read_lock() const { return std::shared_lock(mutex_); }
    const CodeStore& store() const { return store_; }
    // levels x K: ||c_lk||^2.
    const float* codeword_norms() const { return products_.norms.data(); }
    // 4-bit codes: <c_lk, c_l'k'> for l < l', at ((l' (l' - 1) / 2 + l) * 256 + 16 k + k'); else null.
    const float* cross_products() const { return products_.cross.empty() ? nullptr : products_.cross.data(); }
    std::vector<float> get_codebooks() const { return codec_.codebooks(); }
    // Replaces the codebooks (levels x K x d); refused while vectors are stored.
    void set_codebooks(const float* C);
    // Bytes per stored vector: packed codes plus the stored prefix norms
    // (rounded up to whole bytes).
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
    // For IndexHNSW storage and IndexRefine: distances at search_levels,
    // computed as search() returns them (scan/rescore.h), so the two agree
    // bit for bit. The computer holds the read lock for its lifetime: one
    // lock per computer, none per distance; adding waits until it is
    // destroyed. Defined in distance_computer.cpp.
    faiss::DistanceComputer* get_distance_computer() const override;
    size_t sa_code_size() const override;
    void sa_encode(faiss::idx_t n, const float* x, uint8_t* bytes) const override;
    void sa_decode(faiss::idx_t n, const uint8_t* bytes, float* x) const override;
    void merge_from(faiss::Index& other, faiss::idx_t add_id = 0) override;
    void check_compatible_for_merge(const faiss::Index& other) const override;
    void add_sa_codes(faiss::idx_t n, const uint8_t* codes, const faiss::idx_t* xids) override;

    // Reconstruction of stored vector i from its first m levels.
    void reconstruct_prefix(faiss::idx_t i, int m, float* recons) const;
    // The reconstructions of n codes (n x levels) from their first m levels
    // (cosine: projected onto the sphere). Takes no lock.
    void decode(size_t n, const uint8_t* codes, int m, float* out) const;

    // What the scan needs of this index: its data, the default prefix
    // (search_levels), the default shortlist, no re-ranking, no filter.
    // The pointers stay valid under read_lock().
    scan::SearchSpec scan_spec() const;

   private:
    // scan_spec() with a search's parameters applied and checked; `filter`
    // (kept alive by the caller) stands for the parameters' IDSelector.
    scan::SearchSpec search_spec(faiss::idx_t k, const faiss::SearchParameters* params,
                                 const scan::IdFilter* filter) const;
    void require_trained() const;
    bool is_l2() const { return metric_type == faiss::METRIC_L2; }
    // Trains the norm quantizers on the prefix norms of vectors x (encoded).
    void train_norms(faiss::idx_t n, const float* x);
    // Per code (n x levels), what the norm storage keeps of each prefix norm:
    // ||r_m||^2 for float32; for quantized kinds only its cross terms
    // ||r_m||^2 - sum_{l<m} ||c_l||^2 (the own terms are exact in the scan's
    // lookup tables, see scan/search.h), a far narrower range to code.
    std::vector<float> norm_terms(size_t n, const uint8_t* codes) const;

    Codec codec_;
    bool cosine_;
    CodewordProducts products_;  // codeword_norms(), cross_products()
    NormQuantizer norm_q_;
    CodeStore store_;
    // Searches share; add/remove/reset/merge are exclusive.
    mutable std::shared_mutex mutex_;
};

// The index behind a Faiss index pointer, or null when it is not an IndexDPQ.
IndexDPQ* as_dpq(faiss::Index* index);

}  // namespace dpq
