#include "index_dpq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "check.h"
#include "faiss_adapters.h"
#include "scan/search.h"
#include "unit_rows.h"

namespace dpq {

using faiss::idx_t;

namespace {

// Checks the constructor's arguments before any member is built from them.
const NormSpec& checked(int d, int levels, int nbits, faiss::MetricType metric, const NormSpec& norms,
                        bool cosine) {
    DPQ_CHECK(d > 0, std::invalid_argument, "IndexDPQ: d must be positive, got %d", d);
    DPQ_CHECK(levels >= 1 && levels <= 255, std::invalid_argument, "IndexDPQ: levels must be in [1, 255], got %d",
              levels);
    DPQ_CHECK(nbits == 4 || nbits == 8, std::invalid_argument, "IndexDPQ: nbits must be 4 or 8, got %d", nbits);
    DPQ_CHECK(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT, std::invalid_argument,
              "IndexDPQ: metric must be METRIC_L2 or METRIC_INNER_PRODUCT, got %d", int(metric));
    norms.check(levels);
    DPQ_CHECK(metric == faiss::METRIC_L2 || inner_product_may_keep(norms.kind, cosine), std::invalid_argument,
              "IndexDPQ: prefix norms serve METRIC_L2 (and float32 ones a cosine index; inner product has no norm "
              "term); got norms='%s'",
              std::string(norm_kind_name(norms.kind)).c_str());
    check_cosine_metric(cosine, metric, "IndexDPQ");
    return norms;
}

}  // namespace

IndexDPQ::IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric, const NormSpec& norms, bool cosine)
        : faiss::Index(d, metric), codec_(d, levels, nbits), cosine_(cosine),
          norm_q_(checked(d, levels, nbits, metric, norms, cosine)), store_(levels, nbits, norms) {
    search_levels = levels;
    is_trained = false;
}

IndexDPQ::IndexDPQ(int d, int levels, int nbits, faiss::MetricType metric)
        : IndexDPQ(d, levels, nbits, metric,
                   NormSpec::all(metric == faiss::METRIC_L2 ? NormKind::kFloat32 : NormKind::kNone, levels)) {}

IndexDPQ* as_dpq(faiss::Index* index) { return dynamic_cast<IndexDPQ*>(index); }

void IndexDPQ::require_trained() const {
    DPQ_CHECK(is_trained, std::runtime_error, "IndexDPQ: the index is not trained (call train or set codebooks)");
}

void IndexDPQ::decode(size_t n, const uint8_t* codes, int m, float* out) const {
    codec_.decode(n, codes, m, out);
    if (cosine_) project_to_sphere(idx_t(n), d, out);
}

void IndexDPQ::set_codebooks(const float* C) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error,
              "IndexDPQ: cannot replace codebooks while the index holds vectors; reset() first");
    check_finite(idx_t(levels()) * codec_.K(), d, C, "IndexDPQ.codebooks");
    codec_.set_codebooks(C);
    // 4-bit: every pair of levels' codeword inner products too, so that an
    // exact prefix norm is a sum of table entries.
    products_ = CodewordProducts(codec_);
    norm_q_.reset();  // trained for other codebooks: retrained on the next train() or add
    is_trained = true;
}

void IndexDPQ::set_norm_centroids(const std::vector<float>& c) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error,
              "IndexDPQ: cannot replace norm centroids while the index holds vectors; reset() first");
    norm_q_.set_centroids(c);
}

size_t IndexDPQ::bytes_per_vector() const {
    const size_t bits = size_t(levels()) * nbits() + norm_spec().prefixes.size() * norm_bits(norm_spec().kind);
    return (bits + 7) / 8;
}

std::vector<float> IndexDPQ::norm_terms(size_t n, const uint8_t* codes) const {
    const int L = levels(), K = codec_.K();
    std::vector<float> norms(n * L);
    codec_.prefix_norms(n, codes, norms.data());
    if (!norm_spec().quantized()) return norms;
    for (size_t i = 0; i < n; i++) {
        float own = 0;
        for (int l = 0; l < L; l++) {
            own += products_.norms[size_t(l) * K + codes[i * L + l]];
            norms[i * L + l] -= own;
        }
    }
    return norms;
}

void IndexDPQ::train_norms(idx_t n, const float* x) {
    if (!norm_spec().quantized()) return;
    // Enough samples for 256 one-dimensional centroids; Faiss's k-means
    // would subsample more anyway.
    const idx_t ns = std::min<idx_t>(n, 65536);
    std::vector<uint8_t> codes(size_t(ns) * levels());
    codec_.encode(size_t(ns), x, codes.data(), beam_size);
    const std::vector<float> norms = norm_terms(size_t(ns), codes.data());
    std::unique_lock lock(mutex_);
    norm_q_.train(size_t(ns), levels(), norms.data());
}

void IndexDPQ::get_codes(idx_t i0, idx_t n, uint8_t* codes) const {
    std::shared_lock lock(mutex_);
    DPQ_CHECK(i0 >= 0 && n >= 0 && i0 + n <= ntotal, std::out_of_range, "IndexDPQ: code range out of bounds");
    for (idx_t i = 0; i < n; i++) store_.get_code(size_t(i0 + i), codes + i * levels());
}

void IndexDPQ::add_codes(idx_t n, const uint8_t* codes) {
    require_trained();
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexDPQ: negative count");
    const int K = codec_.K();
    for (idx_t i = 0; i < n * levels(); i++)
        DPQ_CHECK(codes[i] < K, std::invalid_argument, "IndexDPQ.add_codes: codes must be in [0, %d), got %d", K,
                  int(codes[i]));
    std::vector<float> norms;
    if (norm_spec().kind != NormKind::kNone) norms = norm_terms(size_t(n), codes);
    std::unique_lock lock(mutex_);
    // Codebooks set directly: the first vectors added train the norm quantizers.
    if (!norm_q_.trained() && n > 0) norm_q_.train(size_t(n), levels(), norms.data());
    store_.append(size_t(n), codes, norms.empty() ? nullptr : norms.data(), norm_q_);
    ntotal = idx_t(store_.size());
}

// ---------------------------------------------------------------- training

void IndexDPQ::train(idx_t n, const float* x) {
    DPQ_CHECK(n >= codec_.K(), std::invalid_argument,
              "IndexDPQ.train: need at least %d training vectors (K codewords per level), got %lld", codec_.K(),
              (long long)n);
    check_finite(n, d, x, "IndexDPQ.train");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexDPQ.train");
    set_codebooks(train_codebooks(size_t(n), d, x, levels(), nbits(), *train_params).data());
    train_norms(n, x);
}

void IndexDPQ::train_with_queries(idx_t n, const float* x, idx_t, const float*) { train(n, x); }

void IndexDPQ::train_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t, "IndexDPQ");
    train(n, static_cast<const float*>(x));
}

// ---------------------------------------------------------------- adding

void IndexDPQ::add(idx_t n, const float* x) {
    require_trained();
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexDPQ.add: negative count");
    check_finite(n, d, x, "IndexDPQ.add");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexDPQ.add");
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.encode(size_t(n), x, codes.data(), beam_size);
    add_codes(n, codes.data());
}

void IndexDPQ::add_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t, "IndexDPQ");
    add(n, static_cast<const float*>(x));
}

void IndexDPQ::add_with_ids_ex(idx_t, const void*, faiss::NumericType, const idx_t*) {
    DPQ_CHECK(false, std::runtime_error, "IndexDPQ: add_with_ids is not supported; wrap the index in faiss.IndexIDMap2");
}

void IndexDPQ::add_sa_codes(idx_t n, const uint8_t* bytes, const idx_t* xids) {
    require_trained();
    DPQ_CHECK(!xids, std::runtime_error, "IndexDPQ: add_sa_codes takes no ids; wrap the index in faiss.IndexIDMap2");
    std::vector<uint8_t> codes(size_t(n) * levels());
    DPQ_CHECK(codec_.unpack(size_t(n), bytes, codes.data()), std::invalid_argument,
              "IndexDPQ.add_sa_codes: a code has bits set past its last level");
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
    DPQ_CHECK(other, std::invalid_argument, "IndexDPQ.merge_from: the other index is not an IndexDPQ");
    DPQ_CHECK(other->d == d && other->metric_type == metric_type && other->levels() == levels() &&
                      other->nbits() == nbits() && other->norm_spec() == norm_spec() && other->cosine_ == cosine_,
              std::invalid_argument, "IndexDPQ.merge_from: d, metric, cosine, levels, nbits or norm storage differ");
    DPQ_CHECK(other->codec_.codebooks() == codec_.codebooks(), std::invalid_argument,
              "IndexDPQ.merge_from: the codebooks differ");
    DPQ_CHECK(other->ntotal == 0 || ntotal == 0 || other->norm_q_.centroids() == norm_q_.centroids(),
              std::invalid_argument, "IndexDPQ.merge_from: the norm centroids differ");
}

void IndexDPQ::merge_from(faiss::Index& other_in, idx_t add_id) {
    DPQ_CHECK(add_id == 0, std::invalid_argument, "IndexDPQ.merge_from: add_id must be 0 (ids are sequential)");
    check_compatible_for_merge(other_in);
    auto& other = dynamic_cast<IndexDPQ&>(other_in);
    DPQ_CHECK(&other != this, std::invalid_argument, "IndexDPQ.merge_from: cannot merge an index into itself");
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
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexDPQ.sa_encode");
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.encode(size_t(n), x, codes.data(), beam_size);
    codec_.pack(size_t(n), codes.data(), bytes);
}

void IndexDPQ::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    require_trained();
    std::vector<uint8_t> codes(size_t(n) * levels());
    codec_.unpack(size_t(n), bytes, codes.data());
    decode(size_t(n), codes.data(), levels(), x);
}

void IndexDPQ::reconstruct_prefix(idx_t i, int m, float* recons) const {
    std::shared_lock lock(mutex_);
    DPQ_CHECK(i >= 0 && i < ntotal, std::out_of_range, "IndexDPQ.reconstruct: key %lld out of range [0, %lld)",
              (long long)i, (long long)ntotal);
    DPQ_CHECK(m >= 1 && m <= levels(), std::invalid_argument, "IndexDPQ.reconstruct: levels must be in [1, %d], got %d",
              levels(), m);
    std::vector<uint8_t> code(levels());
    store_.get_code(size_t(i), code.data());
    decode(1, code.data(), m, recons);
}

std::unique_ptr<IndexDPQ> IndexDPQ::truncated(int m, const std::vector<int>* keep) const {
    require_trained();
    DPQ_CHECK(m >= 1 && m <= levels(), std::invalid_argument, "IndexDPQ.truncated: levels must be in [1, %d], got %d",
              levels(), m);
    NormSpec spec = norm_spec().truncated(m);
    if (keep) {
        for (int p : *keep)
            DPQ_CHECK(p <= m && norm_spec().slot(p) >= 0, std::invalid_argument,
                      "IndexDPQ.truncated: norm_prefixes must be stored prefixes <= %d; %d is not", m, p);
        spec.prefixes = *keep;
        std::sort(spec.prefixes.begin(), spec.prefixes.end());
        const auto twice = std::adjacent_find(spec.prefixes.begin(), spec.prefixes.end());
        DPQ_CHECK(twice == spec.prefixes.end(), std::invalid_argument,
                  "IndexDPQ.truncated: norm_prefixes must be distinct; %d is given twice", *twice);
        if (spec.prefixes.empty()) spec.kind = NormKind::kNone;
    }
    auto out = std::make_unique<IndexDPQ>(d, m, nbits(), metric_type, spec, cosine_);
    out->beam_size = int(beam_size);
    out->search_levels = std::min(int(search_levels), m);
    const std::vector<float>& C = codec_.codebooks();
    out->set_codebooks(C.data());  // the first m levels' codebooks come first
    std::shared_lock lock(mutex_);
    if (spec.quantized() && norm_q_.trained()) {
        const int K = spec.K();
        std::vector<float> c;
        for (int p : spec.prefixes) {
            const float* t = norm_q_.table(norm_spec().slot(p));
            c.insert(c.end(), t, t + K);
        }
        out->set_norm_centroids(c);
    }
    const size_t n = store_.size();
    std::vector<uint8_t> codes(n * m), code(levels());
    for (size_t i = 0; i < n; i++) {
        store_.get_code(i, code.data());
        std::copy(code.begin(), code.begin() + m, codes.begin() + i * m);
    }
    lock.unlock();
    out->add_codes(idx_t(n), codes.data());
    return out;
}

void IndexDPQ::reconstruct(idx_t key, float* recons) const { reconstruct_prefix(key, levels(), recons); }

void IndexDPQ::reconstruct_batch(idx_t n, const idx_t* keys, float* recons) const {
    for (idx_t i = 0; i < n; i++) reconstruct(keys[i], recons + size_t(i) * d);
}

void IndexDPQ::reconstruct_n(idx_t i0, idx_t ni, float* recons) const {
    DPQ_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, std::out_of_range, "IndexDPQ.reconstruct_n: range out of bounds");
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, recons + size_t(i) * d);
}

// ---------------------------------------------------------------- search

scan::SearchSpec IndexDPQ::scan_spec() const {
    scan::SearchSpec spec;
    spec.codec = &codec_;
    spec.store = &store_;
    spec.norms = &norm_q_;
    spec.codeword_norms = codeword_norms();
    spec.cross_products = cross_products();
    spec.l2 = is_l2();
    spec.cosine = cosine_;
    spec.levels = search_levels.load();
    spec.shortlist = size_t(kDefaultShortlist);
    return spec;
}

scan::SearchSpec IndexDPQ::search_spec(idx_t k, const faiss::SearchParameters* params,
                                       const scan::IdFilter* filter) const {
    scan::SearchSpec spec = scan_spec();
    if (params) {
        if (params->sel) spec.filter = filter;
        if (auto* p = dynamic_cast<const SearchParametersDPQ*>(params)) {
            if (p->levels) spec.levels = p->levels;
            spec.rerank_levels = p->rerank_levels;
            DPQ_CHECK(p->rerank_k >= 0, std::invalid_argument, "SearchParametersDPQ: rerank_k must be >= 0");
            DPQ_CHECK(p->shortlist >= 0, std::invalid_argument, "SearchParametersDPQ: shortlist must be >= 0");
            spec.rerank_k = size_t(p->rerank_k);
            if (p->shortlist) spec.shortlist = size_t(p->shortlist);
        }
    }
    // levels=0 means the index's search_levels here too: [levels, L] is checked after it is resolved.
    check_search_levels("IndexDPQ", "SearchParametersDPQ", levels(), spec.levels, spec.rerank_levels, spec.rerank_k);
    if (spec.rerank_levels) spec.rerank_k = std::max(spec.rerank_k, size_t(k));
    return spec;
}

void IndexDPQ::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                      const faiss::SearchParameters* params) const {
    require_trained();
    DPQ_CHECK(k > 0, std::invalid_argument, "IndexDPQ.search: k must be positive, got %lld", (long long)k);
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexDPQ.search: negative number of queries");
    check_finite(n, d, x, "IndexDPQ.search");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexDPQ.search");
    const SelectorFilter filter(params ? params->sel : nullptr);
    std::shared_lock lock(mutex_);
    const scan::SearchSpec spec = search_spec(k, params, &filter);
    // Exceptions must not escape the OpenMP regions inside: none is thrown past here.
    scan::knn(spec, size_t(n), x, size_t(k), distances, labels);
}

void IndexDPQ::search_ex(idx_t n, const void* x, faiss::NumericType t, idx_t k, float* distances,
                         idx_t* labels, const faiss::SearchParameters* params) const {
    check_float32(t, "IndexDPQ");
    search(n, static_cast<const float*>(x), k, distances, labels, params);
}

void IndexDPQ::range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                            const faiss::SearchParameters* params) const {
    require_trained();
    check_finite(n, d, x, "IndexDPQ.range_search");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexDPQ.range_search");
    const SelectorFilter filter(params ? params->sel : nullptr);
    std::shared_lock lock(mutex_);
    const scan::SearchSpec spec = search_spec(1, params, &filter);
    DPQ_CHECK(!spec.rerank_levels, std::invalid_argument, "IndexDPQ.range_search: re-ranking is not supported");
    const std::vector<scan::RangeHits> hits = scan::range(spec, size_t(n), x, radius);
    fill_range_result(hits, result);
}

}  // namespace dpq
