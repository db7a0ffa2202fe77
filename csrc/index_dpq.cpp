#include "index_dpq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "lut.h"
#include "scan/search.h"

namespace dpq {

namespace {

using faiss::idx_t;

void check_finite(idx_t n, int d, const float* x, const char* what) {
    for (idx_t i = 0; i < n * d; i++)
        if (!std::isfinite(x[i]))
            throw std::invalid_argument(std::string(what) + ": input contains NaN or infinity (vector " +
                                        std::to_string(i / d) + ")");
}

void check_float32(faiss::NumericType t) {
    if (t != faiss::Float32) throw std::invalid_argument("IndexDPQ: only float32 vectors are supported");
}

// Faiss's IDSelector as the scan's id filter.
class SelectorFilter final : public scan::IdFilter {
   public:
    explicit SelectorFilter(const faiss::IDSelector* sel) : sel_(sel) {}
    bool keep(int64_t id) const override { return sel_->is_member(idx_t(id)); }

   private:
    const faiss::IDSelector* sel_;
};

}  // namespace

IndexDPQ::IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric)
        : faiss::Index(d, metric), codec_(d, levels, nbits),
          store_(levels, nbits, metric == faiss::METRIC_L2) {
    if (d <= 0) throw std::invalid_argument("IndexDPQ: d must be positive, got " + std::to_string(d));
    if (levels <= 0 || levels > 255)
        throw std::invalid_argument("IndexDPQ: levels must be in [1, 255], got " + std::to_string(levels));
    if (nbits != 4 && nbits != 8)
        throw std::invalid_argument("IndexDPQ: nbits must be 4 or 8, got " + std::to_string(nbits));
    if (metric != faiss::METRIC_L2 && metric != faiss::METRIC_INNER_PRODUCT)
        throw std::invalid_argument("IndexDPQ: metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
    search_levels = levels;
    is_trained = false;
}

IndexDPQ* as_dpq(faiss::Index* index) { return dynamic_cast<IndexDPQ*>(index); }

void IndexDPQ::require_trained() const {
    if (!is_trained) throw std::runtime_error("IndexDPQ: the index is not trained (call train or set codebooks)");
}

void IndexDPQ::set_codebooks(const float* C) {
    std::unique_lock lock(mutex_);
    if (ntotal > 0)
        throw std::runtime_error("IndexDPQ: cannot replace codebooks while the index holds vectors; reset() first");
    check_finite(idx_t(levels()) * codec_.K(), d, C, "IndexDPQ.codebooks");
    codec_.set_codebooks(C);
    is_trained = true;
}

size_t IndexDPQ::bytes_per_vector() const {
    return codec_.packed_size() + (is_l2() ? sizeof(float) * levels() : 0);
}

void IndexDPQ::get_codes(idx_t i0, idx_t n, uint8_t* codes) const {
    std::shared_lock lock(mutex_);
    if (i0 < 0 || n < 0 || i0 + n > ntotal) throw std::out_of_range("IndexDPQ: code range out of bounds");
    for (idx_t i = 0; i < n; i++) store_.get_code(size_t(i0 + i), codes + i * levels());
}

void IndexDPQ::add_codes(idx_t n, const uint8_t* codes) {
    if (n < 0) throw std::invalid_argument("IndexDPQ: negative count");
    const int K = codec_.K();
    for (idx_t i = 0; i < n * levels(); i++)
        if (codes[i] >= K) throw std::invalid_argument("IndexDPQ: code value out of range for nbits");
    std::vector<float> norms;
    if (is_l2()) {
        norms.resize(size_t(n) * levels());
        codec_.prefix_norms(size_t(n), codes, norms.data());
    }
    std::unique_lock lock(mutex_);
    store_.append(size_t(n), codes, norms.empty() ? nullptr : norms.data());
    ntotal = idx_t(store_.size());
}

// ---------------------------------------------------------------- training

void IndexDPQ::train(idx_t n, const float* x) {
    if (n < codec_.K())
        throw std::invalid_argument("IndexDPQ.train: need at least " + std::to_string(codec_.K()) +
                                    " training vectors (K codewords per level), got " + std::to_string(n));
    check_finite(n, d, x, "IndexDPQ.train");
    set_codebooks(train_codebooks(size_t(n), d, x, levels(), nbits(), *train_params).data());
}

void IndexDPQ::train_with_queries(idx_t n, const float* x, idx_t, const float*) { train(n, x); }

void IndexDPQ::train_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t);
    train(n, static_cast<const float*>(x));
}

// ---------------------------------------------------------------- adding

void IndexDPQ::add(idx_t n, const float* x) {
    require_trained();
    if (n < 0) throw std::invalid_argument("IndexDPQ.add: negative count");
    check_finite(n, d, x, "IndexDPQ.add");
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.encode(size_t(n), x, codes.data(), beam_size);
    add_codes(n, codes.data());
}

void IndexDPQ::add_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t);
    add(n, static_cast<const float*>(x));
}

void IndexDPQ::add_with_ids_ex(idx_t, const void*, faiss::NumericType, const idx_t*) {
    throw std::runtime_error("IndexDPQ: add_with_ids is not supported; wrap the index in faiss.IndexIDMap2");
}

void IndexDPQ::add_sa_codes(idx_t n, const uint8_t* bytes, const idx_t* xids) {
    require_trained();
    if (xids) throw std::runtime_error("IndexDPQ: add_sa_codes takes no ids; wrap the index in faiss.IndexIDMap2");
    std::vector<uint8_t> codes(size_t(n) * levels());
    if (!codec_.unpack(size_t(n), bytes, codes.data()))
        throw std::invalid_argument("IndexDPQ.add_sa_codes: a code has bits set past its last level");
    add_codes(n, codes.data());
}

void IndexDPQ::reset() {
    std::unique_lock lock(mutex_);
    store_.clear();
    ntotal = 0;
}

size_t IndexDPQ::remove_ids(const faiss::IDSelector& sel) {
    std::unique_lock lock(mutex_);
    std::vector<bool> keep(store_.size());
    size_t removed = 0;
    for (size_t i = 0; i < keep.size(); i++) {
        keep[i] = !sel.is_member(idx_t(i));
        removed += !keep[i];
    }
    if (removed) store_.compact(keep);
    ntotal = idx_t(store_.size());
    return removed;
}

void IndexDPQ::check_compatible_for_merge(const faiss::Index& other_in) const {
    auto* other = dynamic_cast<const IndexDPQ*>(&other_in);
    if (!other) throw std::invalid_argument("IndexDPQ.merge_from: the other index is not an IndexDPQ");
    if (other->d != d || other->metric_type != metric_type || other->levels() != levels() ||
        other->nbits() != nbits())
        throw std::invalid_argument("IndexDPQ.merge_from: d, metric, levels or nbits differ");
    if (other->codec_.codebooks() != codec_.codebooks())
        throw std::invalid_argument("IndexDPQ.merge_from: the codebooks differ");
}

void IndexDPQ::merge_from(faiss::Index& other_in, idx_t add_id) {
    if (add_id != 0) throw std::invalid_argument("IndexDPQ.merge_from: add_id must be 0 (ids are sequential)");
    check_compatible_for_merge(other_in);
    auto& other = dynamic_cast<IndexDPQ&>(other_in);
    if (&other == this) throw std::invalid_argument("IndexDPQ.merge_from: cannot merge an index into itself");
    std::vector<uint8_t> codes(size_t(other.ntotal) * levels());
    other.get_codes(0, other.ntotal, codes.data());
    add_codes(other.ntotal, codes.data());
    other.reset();
}

// ---------------------------------------------------------------- codec

size_t IndexDPQ::sa_code_size() const { return codec_.packed_size(); }

void IndexDPQ::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
    require_trained();
    check_finite(n, d, x, "IndexDPQ.sa_encode");
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.encode(size_t(n), x, codes.data(), beam_size);
    codec_.pack(size_t(n), codes.data(), bytes);
}

void IndexDPQ::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    require_trained();
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.unpack(size_t(n), bytes, codes.data());
    codec_.decode(size_t(n), codes.data(), levels(), x);
}

void IndexDPQ::reconstruct_prefix(idx_t i, int m, float* recons) const {
    std::shared_lock lock(mutex_);
    if (i < 0 || i >= ntotal)
        throw std::out_of_range("IndexDPQ.reconstruct: key " + std::to_string(i) + " out of range [0, " +
                                std::to_string(ntotal) + ")");
    if (m < 1 || m > levels()) throw std::invalid_argument("IndexDPQ.reconstruct: levels out of range");
    std::vector<uint8_t> code(levels());
    store_.get_code(size_t(i), code.data());
    codec_.decode(1, code.data(), m, recons);
}

float IndexDPQ::prefix_norm(idx_t i, int m) const {
    std::shared_lock lock(mutex_);
    if (i < 0 || i >= ntotal || m < 1 || m > levels() || !store_.has_norms())
        throw std::out_of_range("IndexDPQ.prefix_norm: bad key or levels");
    return store_.norm(size_t(i), m);
}

void IndexDPQ::reconstruct(idx_t key, float* recons) const { reconstruct_prefix(key, levels(), recons); }

void IndexDPQ::reconstruct_batch(idx_t n, const idx_t* keys, float* recons) const {
    for (idx_t i = 0; i < n; i++) reconstruct(keys[i], recons + size_t(i) * d);
}

void IndexDPQ::reconstruct_n(idx_t i0, idx_t ni, float* recons) const {
    if (i0 < 0 || ni < 0 || i0 + ni > ntotal) throw std::out_of_range("IndexDPQ.reconstruct_n: range out of bounds");
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, recons + size_t(i) * d);
}

// ---------------------------------------------------------------- search

IndexDPQ::Plan IndexDPQ::make_plan(idx_t k, const faiss::SearchParameters* params) const {
    Plan plan{search_levels, 0, 0, nullptr};
    if (params) {
        plan.sel = params->sel;
        if (auto* p = dynamic_cast<const SearchParametersDPQ*>(params)) {
            if (p->levels) plan.levels = p->levels;
            plan.rerank_levels = p->rerank_levels;
            if (p->rerank_k < 0) throw std::invalid_argument("SearchParametersDPQ: rerank_k must be >= 0");
            plan.rerank_k = size_t(p->rerank_k);
        }
    }
    const int L = levels();
    if (plan.levels < 1 || plan.levels > L)
        throw std::invalid_argument("IndexDPQ.search: levels must be in [1, " + std::to_string(L) + "], got " +
                                    std::to_string(plan.levels));
    if (plan.rerank_levels) {
        if (plan.rerank_levels < plan.levels || plan.rerank_levels > L)
            throw std::invalid_argument("SearchParametersDPQ: rerank_levels must be in [levels, " +
                                        std::to_string(L) + "], got " + std::to_string(plan.rerank_levels));
        plan.rerank_k = std::max(plan.rerank_k, size_t(k));
    } else if (plan.rerank_k) {
        throw std::invalid_argument("SearchParametersDPQ: rerank_k needs rerank_levels");
    }
    return plan;
}

void IndexDPQ::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                      const faiss::SearchParameters* params) const {
    require_trained();
    if (k <= 0) throw std::invalid_argument("IndexDPQ.search: k must be positive, got " + std::to_string(k));
    if (n < 0) throw std::invalid_argument("IndexDPQ.search: negative number of queries");
    check_finite(n, d, x, "IndexDPQ.search");
    const Plan plan = make_plan(k, params);
    std::shared_lock lock(mutex_);
    const SelectorFilter filter(plan.sel);
    const scan::SearchSpec spec{&codec_, &store_, is_l2(), plan.levels, plan.rerank_levels, plan.rerank_k,
                                plan.sel ? &filter : nullptr};
    // Exceptions must not escape the OpenMP regions inside: none is thrown past here.
    scan::knn(spec, size_t(n), x, size_t(k), distances, labels);
}

void IndexDPQ::search_ex(idx_t n, const void* x, faiss::NumericType t, idx_t k, float* distances,
                         idx_t* labels, const faiss::SearchParameters* params) const {
    check_float32(t);
    search(n, static_cast<const float*>(x), k, distances, labels, params);
}

void IndexDPQ::range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                            const faiss::SearchParameters* params) const {
    require_trained();
    check_finite(n, d, x, "IndexDPQ.range_search");
    const Plan plan = make_plan(1, params);
    if (plan.rerank_levels) throw std::invalid_argument("IndexDPQ.range_search: re-ranking is not supported");
    std::shared_lock lock(mutex_);
    const SelectorFilter filter(plan.sel);
    const scan::SearchSpec spec{&codec_, &store_, is_l2(), plan.levels, 0, 0, plan.sel ? &filter : nullptr};
    const std::vector<scan::RangeHits> hits = scan::range(spec, size_t(n), x, radius);
    for (idx_t qi = 0; qi < n; qi++) result->lims[qi] = hits[qi].size();
    result->do_allocation();
    for (idx_t qi = 0; qi < n; qi++)
        for (size_t j = 0; j < hits[qi].size(); j++) {
            result->labels[result->lims[qi] + j] = hits[qi][j].first;
            result->distances[result->lims[qi] + j] = hits[qi][j].second;
        }
}

// ---------------------------------------------------------------- distance computer

namespace {

class DPQDistanceComputer : public faiss::DistanceComputer {
   public:
    explicit DPQDistanceComputer(const IndexDPQ& index)
            : index_(index), m_(index.search_levels), l2_(index.metric_type == faiss::METRIC_L2),
              lut_(size_t(index.search_levels) * index.codec().K()), code_(index.levels()),
              a_(index.d), b_(index.d) {}

    void set_query(const float* x) override { bias_ = compute_lut(index_.codec(), l2_, x, m_, lut_.data()); }

    // Faiss's distance computers return similarities for inner product.
    float operator()(faiss::idx_t i) override {
        index_.get_codes(i, 1, code_.data());
        const int K = index_.codec().K();
        float acc = 0;
        for (int l = 0; l < m_; l++) acc += lut_[size_t(l) * K + code_[l]];
        if (!l2_) return -acc;
        return bias_ + acc + index_.prefix_norm(i, m_);
    }

    float symmetric_dis(faiss::idx_t i, faiss::idx_t j) override {
        index_.reconstruct_prefix(i, m_, a_.data());
        index_.reconstruct_prefix(j, m_, b_.data());
        float s = 0;
        for (size_t t = 0; t < a_.size(); t++) s += l2_ ? (a_[t] - b_[t]) * (a_[t] - b_[t]) : a_[t] * b_[t];
        return s;
    }

   private:
    const IndexDPQ& index_;
    int m_;
    bool l2_;
    float bias_ = 0;
    std::vector<float> lut_;
    std::vector<uint8_t> code_;
    std::vector<float> a_, b_;
};

}  // namespace

faiss::DistanceComputer* IndexDPQ::get_distance_computer() const {
    require_trained();
    return new DPQDistanceComputer(*this);
}

}  // namespace dpq
