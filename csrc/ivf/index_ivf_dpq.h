// IndexIVFDPQ: an inverted file of progressive (residual) codes.
//
// Our own faiss::Index subclass (not faiss::IndexIVF, whose ABI we do not
// declare): the coarse quantizer is any faiss::Index, called through the
// declared vtable, and a copy of its centroids keeps the per-list terms
// exact whatever the quantizer returns. Each vector is coded as the
// residual from its list's centroid (the centroid is level 0), so one lookup
// table per query serves all its lists (search_lists.h). L2 keeps the norms
// ||r_m||^2 of the declared prefixes, as float32 (files before format 4:
// ||c + r_m||^2, still read and searched) or as 4- or 8-bit codes of their
// cross terms (norm_quantizer.h; the scan ranks with them and re-scores its
// best exactly); inner product keeps none.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "../codec.h"
#include "../faiss_abi.h"
#include "../norm_quantizer.h"
#include "../train.h"
#include "coarse.h"
#include "direct_map.h"
#include "list_store.h"
#include "search_lists.h"

namespace dpq {

struct SearchParametersIVFDPQ : faiss::SearchParametersIVF {
    int levels = 0;         // prefix to scan; 0: the index's search_levels
    int rerank_levels = 0;  // if > levels: re-score the best rerank_k with this many levels
    faiss::idx_t rerank_k = 0;
    faiss::idx_t shortlist = 0;  // cosine: scan candidates re-scored; 0: kDefaultShortlist (at least k)
    ~SearchParametersIVFDPQ() override {}
};

class IndexIVFDPQ : public faiss::Index {
   public:
    // quantizer: null (set_quantizer later) or d-dimensional, empty (train() fills it by k-means) or
    // holding nlist centroids. Not owned unless own_quantizer. norms: L2
    // kFloat32, kBits8 or kBits4 (codes: relative norms, always); IP kNone.
    // cosine (IP): as IndexDPQ's (index_dpq.h),
    // over c + r_m: inputs scaled to unit norm, searches rank by
    // <q, c + r_m> / ||c + r_m||, reconstructions projected onto the sphere;
    // it may keep float32 norms ||c + r_m||^2 (its re-score reads them
    // instead of computing them, search_lists.h).
    // Throws std::invalid_argument.
    IndexIVFDPQ(faiss::Index* quantizer, int d, size_t nlist, int levels, int nbits, faiss::MetricType metric,
                const NormSpec& norms, bool cosine = false);
    ~IndexIVFDPQ() override;

    faiss::Index* quantizer() const { return quantizer_; }
    // Replaces the quantizer (d and, once trained, nlist must match).
    void set_quantizer(faiss::Index* q, bool own);
    size_t nlist() const { return nlist_; }
    int levels() const { return codec_.levels(); }
    int nbits() const { return codec_.nbits(); }
    const Codec& codec() const { return codec_; }
    const NormSpec& norm_spec() const { return norms_; }
    // Quantized norm kinds: one 1-D quantizer per stored prefix, trained by
    // train() (or, with codebooks and centroids set directly, on the first
    // vectors added) on ||r_m||^2 - sum_{l<m} ||c_l||^2.
    const NormQuantizer& norm_quantizer() const { return norm_quantizer_; }
    // Refused while vectors are stored (a file's, or another index's).
    void set_norm_centroids(const std::vector<float>& c);
    NormColumn norm_column() const { return NormColumn{norm_bits(norms_.kind)}; }
    // How this index's lists lay out their bytes, in RAM and in its files.
    ivf::ListFormat list_format() const {
        return {CodeLayout{levels(), nbits()}, norm_column(), int(norms_.prefixes.size())};
    }
    bool cosine() const { return cosine_; }
    // L2: whether the stored norms are ||r_m||^2, relative to the centroid,
    // or ||c + r_m||^2 (as every file before format 4). Relative norms make
    // each (query, list) pair quantize its own table (search_lists.h): finer
    // where vectors lie far from the origin, a cost per pair elsewhere. Unless
    // set, train() chooses relative norms where the training vectors'
    // residuals hold less than kRelativeNormsBelow of their energy and the
    // centroid tables fit in max_centroid_table_bytes (computing a list's
    // table per scan, levels x K x d products, would cost more than the finer
    // scan saves). False for inner product.
    bool relative_norms() const { return relative_norms_; }
    // Fixes the choice (train() keeps it); refused while vectors are stored,
    // and false refused for quantized norms.
    void set_relative_norms(bool relative);
    // Mean ||x - c||^2 / mean ||x||^2 below which train() picks relative
    // norms: their tables' entries then span under a quarter of the query's
    // (image patches, 256 lists: 0.017, 9x narrower tables, 1.5x the QPS;
    // synthetic unit vectors: 0.28-0.49, where pairs' tables cost 20-40% QPS).
    static constexpr double kRelativeNormsBelow = 1.0 / 16;
    // Relative norms: the L2 tables of the centroids (nlist x levels x K,
    // -2 <c, c_lk>), which turn a query's table into each list's (search_lists.h);
    // cosine with 4-bit codes: with products() they make ||c + r_m||^2 a sum of
    // table entries (no decoding).
    // Kept where they take at most max_centroid_table_bytes(); searches
    // compute a list's otherwise (null then), with the same results.
    const float* centroid_tables() const { return centroid_tables_.empty() ? nullptr : centroid_tables_.data(); }
    size_t max_centroid_table_bytes() const { return max_centroid_table_bytes_; }
    // Bytes the centroid tables kept take (0: none kept).
    size_t centroid_table_bytes() const { return centroid_tables_.size() * sizeof(float); }
    void set_max_centroid_table_bytes(size_t bytes);
    // Cosine with 4-bit codes, and quantized norms: the codewords' norms and
    // (4-bit codes) cross products; cosine with 4-bit codes: ||c||^2 of
    // every centroid. Empty otherwise.
    const CodewordProducts& products() const { return products_; }
    const std::vector<float>& centroid_norms() const { return centroid_norms_; }
    std::atomic<size_t> nprobe{1};
    std::atomic<int> search_levels{0};
    std::atomic<int> beam_size{1};
    // Coarse k-means is two-level (coarse.h: train_coarse) from this nlist
    // on; 0: always flat.
    std::atomic<size_t> two_level_min_nlist{kTwoLevelMinNlist};
    static constexpr size_t kTwoLevelMinNlist = 4096;
    std::shared_ptr<TrainParams> train_params = std::make_shared<TrainParams>();

    bool has_codebooks() const { return has_codebooks_; }
    bool has_centroids() const { return !centroids_.empty(); }
    // levels x K x d residual codebooks (a trained flat IndexDPQ's serve too);
    // refused while vectors are stored.
    void set_codebooks(const float* C);
    // nlist x d: the centroid copy; refused while vectors are stored.
    void set_centroids(const float* c);
    const std::vector<float>& centroids() const { return centroids_; }
    // Whether searches rank the lists from the centroid copy (coarse.h: the
    // quantizer is a flat index holding those centroids) rather than by
    // calling the quantizer. Decided when the quantizer or centroids are set.
    bool searches_centroids() const { return searches_centroids_; }
    // Codes (1 byte a level) plus stored norms; ids (8 bytes) not counted.
    size_t bytes_per_vector() const;

    const ivf::ListStore& lists() const { return *lists_; }
    // Replaces the lists (e.g. by a mapped file's); sets ntotal.
    void set_lists(std::unique_ptr<ivf::ListStore> lists);
    size_t list_size(size_t l) const;
    std::vector<int64_t> list_ids(size_t l) const;
    // Codes (n x levels) of list l.
    std::vector<uint8_t> list_codes(size_t l) const;
    // Checks every list (a mapped index's checksums); throws on the first failure.
    void verify() const;
    // Keeps (on) or drops an id -> (list, offset) map (direct_map.h), so that
    // reconstruction by id does not scan the lists. Building it reads every
    // list's ids (a mapped index's too) and throws std::invalid_argument,
    // keeping none, when an id is stored twice.
    void make_direct_map(bool on);
    bool has_direct_map() const { return direct_map_ != nullptr; }
    // Appends vectors given by list numbers and codes (n x levels), computing their norms.
    void add_codes(faiss::idx_t n, const int64_t* list_nos, const uint8_t* codes, const faiss::idx_t* ids);
    std::shared_lock<std::shared_mutex> read_lock() const { return std::shared_lock(mutex_); }

    // --- faiss::Index ---
    void train(faiss::idx_t n, const float* x) override;
    void train_with_queries(faiss::idx_t n, const float* x, faiss::idx_t nq, const float* xq) override;
    void train_ex(faiss::idx_t n, const void* x, faiss::NumericType t) override;
    void add(faiss::idx_t n, const float* x) override;
    void add_ex(faiss::idx_t n, const void* x, faiss::NumericType t) override;
    void add_with_ids(faiss::idx_t n, const float* x, const faiss::idx_t* ids) override;
    void add_with_ids_ex(faiss::idx_t n, const void* x, faiss::NumericType t, const faiss::idx_t* ids) override;
    void search(faiss::idx_t n, const float* x, faiss::idx_t k, float* distances, faiss::idx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override;
    void search_ex(faiss::idx_t n, const void* x, faiss::NumericType t, faiss::idx_t k, float* distances,
                   faiss::idx_t* labels, const faiss::SearchParameters* params = nullptr) const override;
    void range_search(faiss::idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                      const faiss::SearchParameters* params = nullptr) const override;
    void reset() override;
    size_t remove_ids(const faiss::IDSelector& sel) override;
    // By id: from the direct map where one is kept, else a scan of the
    // lists' ids, one for all the keys of a batch, where the first vector
    // stored with a key (in list order) answers it; std::out_of_range names
    // a key that is not stored.
    void reconstruct(faiss::idx_t key, float* recons) const override;
    void reconstruct_batch(faiss::idx_t n, const faiss::idx_t* keys, float* recons) const override;
    void merge_from(faiss::Index& other, faiss::idx_t add_id = 0) override;
    void check_compatible_for_merge(const faiss::Index& other) const override;
    // Standalone codes (what a sharded build encodes apart): the list number
    // in the fewest little-endian bytes that hold nlist - 1 (as Faiss's IVF
    // codes), then the packed level codes of the residual.
    size_t sa_code_size() const override;
    void sa_encode(faiss::idx_t n, const float* x, uint8_t* bytes) const override;
    void sa_decode(faiss::idx_t n, const uint8_t* bytes, float* x) const override;
    // Appends standalone codes as add_with_ids would have appended their vectors.
    void add_sa_codes(faiss::idx_t n, const uint8_t* bytes, const faiss::idx_t* xids) override;

   private:
    struct Plan {
        int levels, rerank_levels;
        size_t rerank_k, nprobe, max_codes, shortlist;
        const faiss::IDSelector* sel;
        const faiss::SearchParameters* quantizer_params;
    };
    Plan make_plan(faiss::idx_t k, const faiss::SearchParameters* params) const;
    // nq x nprobe list numbers, -1 past max_codes.
    std::vector<int64_t> probe(faiss::idx_t n, const float* x, const Plan& plan) const;
    // The list search of `plan` (callers hold the shared lock while it runs).
    ivf::ListSearch list_search(const Plan& plan, const scan::IdFilter* filter) const;
    void require_trained(const char* what) const;
    // Centroid plus every level of the vector at offset i of list l, L (callers hold the lock).
    void decode_stored(const ivf::ListRef& L, size_t l, size_t i, float* out) const;
    // Re-decides searches_centroids (callers hold the unique lock).
    void refresh_coarse();
    // Recomputes centroid_tables, products and centroid_norms (callers hold the unique lock).
    void refresh_centroid_tables();
    // Whether tables for every centroid fit in max_centroid_table_bytes.
    bool centroid_tables_fit() const {
        return nlist_ * size_t(levels()) * codec_.K() * sizeof(float) <= max_centroid_table_bytes_;
    }
    void require_writable(const char* what) const;
    // Norms of the prefix reconstructions (plus the centroid unless
    // relative_norms), less their own terms sum_{l<m} ||c_l||^2 for quantized
    // kinds: n x stored prefixes, or n x levels if every_level.
    std::vector<float> norms_of(size_t n, const int64_t* list_nos, const uint8_t* codes,
                                bool every_level = false) const;
    // Trains the norm quantizer on n residuals (quantized kinds).
    void train_norm_codes(size_t n, const float* residuals);
    bool is_l2() const { return metric_type == faiss::METRIC_L2; }
    size_t list_no_bytes() const;
    struct Encoded {
        std::vector<int64_t> list_nos;  // n
        std::vector<uint8_t> codes;     // n x levels, residuals from the list's centroid
    };
    // Checks the index and x (errors name IndexIVFDPQ.`what`), then assigns and encodes x.
    Encoded assign_and_encode(faiss::idx_t n, const float* x, const char* what) const;

    faiss::Index* quantizer_ = nullptr;
    bool own_quantizer_ = false;
    size_t nlist_;
    Codec codec_;
    NormSpec norms_;
    NormQuantizer norm_quantizer_;
    bool cosine_;
    bool relative_norms_ = false;
    bool relative_norms_set_ = false;  // by set_relative_norms: train() keeps it
    bool has_codebooks_ = false;
    std::vector<float> centroid_tables_;  // see centroid_tables()
    CodewordProducts products_;           // see products()
    std::vector<float> centroid_norms_;
    size_t max_centroid_table_bytes_ = size_t(2) << 30;  // Faiss's default for its precomputed tables
    std::vector<float> centroids_;  // nlist x d
    ivf::CentroidSearch coarse_;    // stands in for the quantizer where searches_centroids_
    bool searches_centroids_ = false;
    std::unique_ptr<ivf::ListStore> lists_;
    std::unique_ptr<ivf::DirectMap> direct_map_;  // null: none kept
    mutable std::shared_mutex mutex_;  // searches share; add/remove/reset/merge are exclusive
};

IndexIVFDPQ* as_ivf_dpq(faiss::Index* index);

}  // namespace dpq
