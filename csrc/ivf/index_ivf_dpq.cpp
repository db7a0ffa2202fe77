#include "index_ivf_dpq.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "../check.h"
#include "../faiss_adapters.h"
#include "../index_dpq.h"
#include "../scan/tables.h"
#include "../unit_rows.h"
#include "buckets.h"
#include "search_lists.h"

namespace dpq {

namespace {

using faiss::idx_t;

const NormSpec& checked(faiss::Index* quantizer, int d, size_t nlist, int levels, int nbits,
                        faiss::MetricType metric, const NormSpec& norms, bool cosine) {
    DPQ_CHECK(d > 0, std::invalid_argument, "IndexIVFDPQ: d must be positive, got %d", d);
    // A null quantizer is set later (set_quantizer): files store it apart.
    DPQ_CHECK(!quantizer || quantizer->d == d, std::invalid_argument,
              "IndexIVFDPQ: the quantizer's dimension %d differs from d = %d", quantizer->d, d);
    DPQ_CHECK(nlist >= 1 && nlist <= (size_t(1) << 31), std::invalid_argument,
              "IndexIVFDPQ: nlist must be in [1, 2^31], got %zu", nlist);
    DPQ_CHECK(levels >= 1 && levels <= 255, std::invalid_argument,
              "IndexIVFDPQ: levels must be in [1, 255], got %d", levels);
    DPQ_CHECK(nbits == 4 || nbits == 8, std::invalid_argument, "IndexIVFDPQ: nbits must be 4 or 8, got %d", nbits);
    DPQ_CHECK(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT, std::invalid_argument,
              "IndexIVFDPQ: metric must be METRIC_L2 or METRIC_INNER_PRODUCT, got %d", int(metric));
    norms.check(levels);
    if (metric == faiss::METRIC_L2)
        DPQ_CHECK(norms.kind != NormKind::kNone, std::invalid_argument,
                  "IndexIVFDPQ: METRIC_L2 keeps norms (float32, 8bit or 4bit, of at least one prefix), got "
                  "norms='%s'",
                  norm_kind_name(norms.kind).c_str());
    else
        DPQ_CHECK(inner_product_may_keep(norms.kind, cosine), std::invalid_argument,
                  "IndexIVFDPQ: inner product keeps no norms (a cosine index may keep float32 ones), got norms='%s'",
                  norm_kind_name(norms.kind).c_str());
    check_cosine_metric(cosine, metric, "IndexIVFDPQ");
    return norms;
}

}  // namespace

IndexIVFDPQ::IndexIVFDPQ(faiss::Index* quantizer, int d, size_t nlist, int levels, int nbits,
                         faiss::MetricType metric, const NormSpec& norms, bool cosine)
        : faiss::Index(d, metric), quantizer_(quantizer), nlist_(nlist), codec_(d, levels, nbits),
          norms_(checked(quantizer, d, nlist, levels, nbits, metric, norms, cosine)), norm_quantizer_(norms_),
          cosine_(cosine),
          lists_(std::make_unique<ivf::RamLists>(nlist, list_format())) {
    search_levels = levels;
    // Codes of ||r_m||^2 (one quantizer for every list) need relative norms.
    relative_norms_ = relative_norms_set_ = norms_.quantized();
    is_trained = false;
}

IndexIVFDPQ::~IndexIVFDPQ() {
    if (own_quantizer_) delete quantizer_;
}

IndexIVFDPQ* as_ivf_dpq(faiss::Index* index) { return dynamic_cast<IndexIVFDPQ*>(index); }

void IndexIVFDPQ::set_quantizer(faiss::Index* q, bool own) {
    DPQ_CHECK(q && q->d == d, std::invalid_argument, "IndexIVFDPQ: the quantizer must have dimension %d", d);
    DPQ_CHECK(!has_centroids() || size_t(q->ntotal) == nlist_, std::invalid_argument,
              "IndexIVFDPQ: the quantizer holds %lld centroids, the index has nlist = %zu", (long long)q->ntotal,
              nlist_);
    std::unique_lock lock(mutex_);
    if (own_quantizer_ && quantizer_ != q) delete quantizer_;
    quantizer_ = q;
    own_quantizer_ = own;
    refresh_coarse();
}

void IndexIVFDPQ::refresh_coarse() {
    searches_centroids_ = quantizer_ && has_centroids() &&
                          ivf::CentroidSearch::stands_in_for(*quantizer_, centroids_.data(), nlist_, d);
    coarse_ = searches_centroids_ ? ivf::CentroidSearch(centroids_.data(), nlist_, d, quantizer_->metric_type)
                                  : ivf::CentroidSearch();
}

void IndexIVFDPQ::set_relative_norms(bool relative) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error, "IndexIVFDPQ: cannot change what norms mean while vectors are stored");
    DPQ_CHECK(!relative || is_l2(), std::invalid_argument, "IndexIVFDPQ: only METRIC_L2 keeps relative norms");
    DPQ_CHECK(relative || !norms_.quantized(), std::invalid_argument,
              "IndexIVFDPQ: quantized norms (norms='%s') are always relative to the centroid",
              norm_kind_name(norms_.kind).c_str());
    relative_norms_ = relative;
    relative_norms_set_ = true;
    refresh_centroid_tables();
}

void IndexIVFDPQ::set_max_centroid_table_bytes(size_t bytes) {
    std::unique_lock lock(mutex_);
    max_centroid_table_bytes_ = bytes;
    refresh_centroid_tables();
}

void IndexIVFDPQ::refresh_centroid_tables() {
    centroid_tables_.clear();
    products_ = CodewordProducts();
    centroid_norms_.clear();
    if (!has_codebooks_ || !has_centroids()) return;
    const bool cosine_sums = cosine_ && codec_.K() == 16;
    if (cosine_sums || norms_.quantized()) products_ = CodewordProducts(codec_);
    if (cosine_sums) {
        centroid_norms_.resize(nlist_);
        for (size_t l = 0; l < nlist_; l++) {
            const float* c = centroids_.data() + l * d;
            float s = 0;
            for (int j = 0; j < d; j++) s += c[j] * c[j];
            centroid_norms_[l] = s;
        }
    }
    if (!(relative_norms_ || cosine_sums) || !centroid_tables_fit()) return;
    centroid_tables_.resize(nlist_ * size_t(levels()) * codec_.K());
    std::vector<float> biases(nlist_);
    scan::compute_luts(codec_, true, nlist_, centroids_.data(), levels(), centroid_tables_.data(), biases.data(),
                       omp_get_max_threads());
}

void IndexIVFDPQ::require_trained(const char* what) const {
    DPQ_CHECK(is_trained, std::runtime_error, "IndexIVFDPQ.%s: the index is not trained (call train)", what);
    DPQ_CHECK(quantizer_ && size_t(quantizer_->ntotal) == nlist_, std::runtime_error,
              "IndexIVFDPQ.%s: the quantizer holds %lld centroids, nlist = %zu", what,
              quantizer_ ? (long long)quantizer_->ntotal : -1LL, nlist_);
}

void IndexIVFDPQ::require_writable(const char* what) const {
    DPQ_CHECK(lists_->writable(), std::runtime_error,
              "IndexIVFDPQ.%s: the index is read-only (memory-mapped); read it without mmap to modify it", what);
}

void IndexIVFDPQ::set_codebooks(const float* C) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error, "IndexIVFDPQ: cannot replace codebooks while vectors are stored");
    check_finite(idx_t(levels()) * codec_.K(), d, C, "IndexIVFDPQ.codebooks");
    codec_.set_codebooks(C);
    has_codebooks_ = true;
    norm_quantizer_.reset();  // its terms depend on the codewords
    refresh_centroid_tables();
    is_trained = has_centroids();
}

void IndexIVFDPQ::set_centroids(const float* c) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error, "IndexIVFDPQ: cannot replace centroids while vectors are stored");
    check_finite(idx_t(nlist_), d, c, "IndexIVFDPQ.centroids");
    centroids_.assign(c, c + nlist_ * size_t(d));
    refresh_coarse();
    refresh_centroid_tables();
    is_trained = has_codebooks_;
}

void IndexIVFDPQ::set_norm_centroids(const std::vector<float>& c) {
    std::unique_lock lock(mutex_);
    DPQ_CHECK(ntotal == 0, std::runtime_error, "IndexIVFDPQ: cannot replace norm centroids while vectors are stored");
    norm_quantizer_.set_centroids(c);
}

size_t IndexIVFDPQ::bytes_per_vector() const {
    // As IndexDPQ's: 4-bit codes and 4-bit norms share bytes in the lists' blocks.
    return (size_t(levels()) * nbits() + norms_.prefixes.size() * norm_bits(norms_.kind) + 7) / 8;
}

void IndexIVFDPQ::set_lists(std::unique_ptr<ivf::ListStore> lists) {
    DPQ_CHECK(lists->nlist() == nlist_, std::invalid_argument, "IndexIVFDPQ: %zu lists for nlist = %zu",
              lists->nlist(), nlist_);
    std::unique_lock lock(mutex_);
    lists_ = std::move(lists);
    size_t n = 0;
    for (size_t l = 0; l < nlist_; l++) n += lists_->list_size(l);
    ntotal = idx_t(n);
    if (direct_map_) *direct_map_ = ivf::DirectMap::of(*lists_);
}

void IndexIVFDPQ::make_direct_map(bool on) {
    std::unique_lock lock(mutex_);
    direct_map_ = on ? std::make_unique<ivf::DirectMap>(ivf::DirectMap::of(*lists_)) : nullptr;
}

size_t IndexIVFDPQ::list_size(size_t l) const {
    DPQ_CHECK(l < nlist_, std::out_of_range, "IndexIVFDPQ: list %zu out of range [0, %zu)", l, nlist_);
    return lists_->list_size(l);
}

std::vector<int64_t> IndexIVFDPQ::list_ids(size_t l) const {
    DPQ_CHECK(l < nlist_, std::out_of_range, "IndexIVFDPQ: list %zu out of range [0, %zu)", l, nlist_);
    std::shared_lock lock(mutex_);
    const ivf::ListRef L = lists_->list(l);
    return std::vector<int64_t>(L.ids, L.ids + L.n);
}

std::vector<uint8_t> IndexIVFDPQ::list_codes(size_t l) const {
    DPQ_CHECK(l < nlist_, std::out_of_range, "IndexIVFDPQ: list %zu out of range [0, %zu)", l, nlist_);
    std::shared_lock lock(mutex_);
    const ivf::ListRef L = lists_->list(l);
    const CodeLayout lay{levels(), nbits()};
    std::vector<uint8_t> out(L.n * levels());
    for (size_t i = 0; i < L.n; i++) lay.get_code(L.codes, i, out.data() + i * levels());
    return out;
}

void IndexIVFDPQ::verify() const {
    std::shared_lock lock(mutex_);
    for (size_t l = 0; l < nlist_; l++) lists_->verify(l);
}

// ---------------------------------------------------------------- training

void IndexIVFDPQ::train(idx_t n, const float* x) {
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.train: negative count");
    check_finite(n, d, x, "IndexIVFDPQ.train");
    DPQ_CHECK(ntotal == 0, std::runtime_error, "IndexIVFDPQ.train: the index holds vectors; reset() first");
    DPQ_CHECK(quantizer_, std::runtime_error, "IndexIVFDPQ.train: no quantizer");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexIVFDPQ.train");
    std::vector<float> centroids(nlist_ * size_t(d));
    if (quantizer_->ntotal == 0) {
        DPQ_CHECK(size_t(n) >= nlist_, std::invalid_argument,
                  "IndexIVFDPQ.train: need at least nlist = %zu training vectors, got %lld", nlist_, (long long)n);
        const size_t from = two_level_min_nlist;
        ivf::train_coarse(size_t(n), d, x, nlist_, from && nlist_ >= from, uint64_t(train_params->seed),
                          centroids.data());
        if (!quantizer_->is_trained) quantizer_->train(idx_t(nlist_), centroids.data());
        quantizer_->add(idx_t(nlist_), centroids.data());
    } else {
        DPQ_CHECK(size_t(quantizer_->ntotal) == nlist_, std::invalid_argument,
                  "IndexIVFDPQ.train: the quantizer holds %lld vectors, expected 0 or nlist = %zu",
                  (long long)quantizer_->ntotal, nlist_);
        quantizer_->reconstruct_n(0, idx_t(nlist_), centroids.data());
    }
    set_centroids(centroids.data());
    // Given codebooks: the coarse level only (and the norm codes).
    if (has_codebooks_ && (relative_norms_set_ || !is_l2()) && !norms_.quantized()) return;
    std::vector<idx_t> assign(n);
    quantizer_->assign(n, x, assign.data(), 1);
    // Residuals are kept only when the codebooks or norm codes are trained here.
    std::vector<float> residuals(has_codebooks_ && !norms_.quantized() ? 0 : size_t(n) * d);
    double energy = 0, residual_energy = 0;
    for (idx_t i = 0; i < n; i++) {
        DPQ_CHECK(assign[i] >= 0 && size_t(assign[i]) < nlist_, std::runtime_error,
                  "IndexIVFDPQ.train: the quantizer assigned list %lld", (long long)assign[i]);
        for (int j = 0; j < d; j++) {
            const float v = x[size_t(i) * d + j], r = v - centroids[assign[i] * d + j];
            if (!residuals.empty()) residuals[size_t(i) * d + j] = r;
            energy += double(v) * v;
            residual_energy += double(r) * r;
        }
    }
    if (is_l2() && !relative_norms_set_) {
        std::unique_lock lock(mutex_);
        relative_norms_ = residual_energy < kRelativeNormsBelow * energy && centroid_tables_fit();
        refresh_centroid_tables();
    }
    if (!has_codebooks_) {
        DPQ_CHECK(n >= codec_.K(), std::invalid_argument,
                  "IndexIVFDPQ.train: need at least %d training vectors (K codewords per level), got %lld",
                  codec_.K(), (long long)n);
        set_codebooks(train_codebooks(size_t(n), d, residuals.data(), levels(), nbits(), *train_params).data());
    }
    train_norm_codes(size_t(n), residuals.data());
}

void IndexIVFDPQ::train_norm_codes(size_t n, const float* residuals) {
    if (!norms_.quantized()) return;
    // Enough samples for 256 one-dimensional centroids, as IndexDPQ's.
    const size_t ns = std::min<size_t>(n, 65536);
    std::vector<uint8_t> codes(ns * levels());
    codec_.encode(ns, residuals, codes.data(), beam_size);
    const std::vector<float> terms = norms_of(ns, nullptr, codes.data(), true);
    std::unique_lock lock(mutex_);
    norm_quantizer_.train(ns, levels(), terms.data());
}

void IndexIVFDPQ::train_with_queries(idx_t n, const float* x, idx_t, const float*) { train(n, x); }

void IndexIVFDPQ::train_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t, "IndexIVFDPQ");
    train(n, static_cast<const float*>(x));
}

// ---------------------------------------------------------------- adding

std::vector<float> IndexIVFDPQ::norms_of(size_t n, const int64_t* list_nos, const uint8_t* codes,
                                         bool every_level) const {
    const int L = levels(), K = codec_.K(), slots = every_level ? L : int(norms_.prefixes.size());
    const bool own_terms = norms_.quantized();
    std::vector<float> out(n * slots);
    if (!slots) return out;
#pragma omp parallel if (n > 1000)
    {
        std::vector<float> v(d);
#pragma omp for
        for (size_t i = 0; i < n; i++) {
            if (relative_norms_) {
                std::fill(v.begin(), v.end(), 0.f);
            } else {
                const float* c = centroids_.data() + size_t(list_nos[i]) * d;
                std::copy(c, c + d, v.begin());
            }
            float own = 0;
            for (int l = 0; l < L; l++) {
                const float* w = codec_.codeword(l, codes[i * L + l]);
                for (int j = 0; j < d; j++) v[j] += w[j];
                if (own_terms) own += products_.norms[size_t(l) * K + codes[i * L + l]];
                const int s = every_level ? l : norms_.slot(l + 1);
                if (s < 0) continue;
                float nn = 0;
                for (int j = 0; j < d; j++) nn += v[j] * v[j];
                out[i * slots + s] = nn - own;
            }
        }
    }
    return out;
}

void IndexIVFDPQ::add_codes(idx_t n, const int64_t* list_nos, const uint8_t* codes, const idx_t* ids) {
    require_trained("add");
    require_writable("add");
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.add: negative count");
    const int L = levels(), slots = int(norms_.prefixes.size());
    for (idx_t i = 0; i < n; i++) {
        DPQ_CHECK(list_nos[i] >= 0 && size_t(list_nos[i]) < nlist_, std::invalid_argument,
                  "IndexIVFDPQ.add: list number %lld out of range [0, %zu)", (long long)list_nos[i], nlist_);
        for (int l = 0; l < L; l++)
            DPQ_CHECK(codes[i * L + l] < codec_.K(), std::invalid_argument, "IndexIVFDPQ.add: code out of range");
    }
    const std::vector<float> norms = norms_of(size_t(n), list_nos, codes);
    // Bucket by list, then lists fill in parallel.
    const ivf::Buckets by_list = ivf::bucket_rows(size_t(n), list_nos, nlist_);
    std::vector<uint8_t> c(size_t(n) * L);
    std::vector<uint32_t> nm(size_t(n) * slots);  // float32 bits or codes
    std::vector<int64_t> id(n);
    std::unique_lock lock(mutex_);
    if (norms_.quantized() && !norm_quantizer_.trained() && n > 0) {
        // Codebooks and centroids set directly: the first vectors added train the norm codes.
        const std::vector<float> terms = norms_of(size_t(n), list_nos, codes, true);
        norm_quantizer_.train(size_t(n), L, terms.data());
    }
    for (idx_t j = 0; j < n; j++) {
        const size_t i = by_list.order[j];
        std::copy_n(codes + i * L, L, c.data() + j * L);
        for (int s = 0; s < slots; s++) {
            const float v = norms[i * slots + s];
            uint32_t& e = nm[j * slots + s];
            if (norms_.quantized())
                e = norm_quantizer_.encode(s, v);
            else
                std::memcpy(&e, &v, 4);
        }
        id[j] = ids ? ids[i] : ntotal + idx_t(i);
    }
    auto& ram = static_cast<ivf::RamLists&>(*lists_);
    std::vector<size_t> before(nlist_);
    for (size_t l = 0; l < nlist_; l++) {
        before[l] = ram.list_size(l);
        DPQ_CHECK(before[l] + by_list.size(l) < (size_t(1) << 32), std::runtime_error,
                  "IndexIVFDPQ.add: list %zu would exceed 2^32 vectors", l);
    }
    if (direct_map_) direct_map_->check_new(size_t(n), id.data());
#pragma omp parallel for schedule(dynamic, 16) if (n > 10000)
    for (size_t l = 0; l < nlist_; l++) {
        const size_t a = by_list.start[l], cnt = by_list.size(l);
        if (cnt) ram.append(l, cnt, c.data() + a * L, nm.data() + a * slots, id.data() + a);
    }
    if (direct_map_) {
        direct_map_->reserve(direct_map_->size() + size_t(n));
        for (size_t l = 0; l < nlist_; l++)
            for (size_t i = 0; i < by_list.size(l); i++) direct_map_->set(id[by_list.start[l] + i], l, before[l] + i);
    }
    ntotal += n;
}

void IndexIVFDPQ::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    require_writable("add");
    const Encoded e = assign_and_encode(n, x, "add");
    add_codes(n, e.list_nos.data(), e.codes.data(), ids);
}

IndexIVFDPQ::Encoded IndexIVFDPQ::assign_and_encode(idx_t n, const float* x, const char* what) const {
    require_trained(what);
    const std::string name = std::string("IndexIVFDPQ.") + what;
    DPQ_CHECK(n >= 0, std::invalid_argument, "%s: negative count", name.c_str());
    check_finite(n, d, x, name.c_str());
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, name);
    Encoded e{std::vector<int64_t>(n), std::vector<uint8_t>(size_t(n) * levels())};
    quantizer_->assign(n, x, e.list_nos.data(), 1);
    std::vector<float> residuals(size_t(n) * d);
    for (idx_t i = 0; i < n; i++) {
        const int64_t l = e.list_nos[i];
        DPQ_CHECK(l >= 0 && size_t(l) < nlist_, std::runtime_error, "%s: the quantizer assigned list %lld",
                  name.c_str(), (long long)l);
        const float* c = centroids_.data() + size_t(l) * d;
        for (int j = 0; j < d; j++) residuals[size_t(i) * d + j] = x[size_t(i) * d + j] - c[j];
    }
    codec_.encode(size_t(n), residuals.data(), e.codes.data(), beam_size);
    return e;
}

size_t IndexIVFDPQ::list_no_bytes() const {
    size_t bytes = 0;
    for (size_t rest = nlist_ - 1; rest; rest >>= 8) bytes++;
    return bytes;
}

size_t IndexIVFDPQ::sa_code_size() const { return list_no_bytes() + codec_.packed_size(); }

void IndexIVFDPQ::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
    const Encoded e = assign_and_encode(n, x, "sa_encode");
    const size_t lb = list_no_bytes(), cs = sa_code_size();
    for (idx_t i = 0; i < n; i++) {
        uint8_t* out = bytes + size_t(i) * cs;
        for (size_t b = 0; b < lb; b++) out[b] = uint8_t(uint64_t(e.list_nos[i]) >> (8 * b));
        codec_.pack(1, e.codes.data() + size_t(i) * levels(), out + lb);
    }
}

namespace {

// List numbers and unpacked codes of n standalone codes; throws naming `what`.
void split_sa_codes(const Codec& codec, size_t nlist, size_t lb, idx_t n, const uint8_t* bytes, const char* what,
                    int64_t* list_nos, uint8_t* codes) {
    const size_t cs = lb + codec.packed_size();
    for (idx_t i = 0; i < n; i++) {
        const uint8_t* in = bytes + size_t(i) * cs;
        uint64_t l = 0;
        for (size_t b = 0; b < lb; b++) l |= uint64_t(in[b]) << (8 * b);
        DPQ_CHECK(l < nlist, std::invalid_argument, "%s: code %lld holds list number %llu, not below nlist = %zu",
                  what, (long long)i, (unsigned long long)l, nlist);
        list_nos[i] = int64_t(l);
        DPQ_CHECK(codec.unpack(1, in + lb, codes + size_t(i) * codec.levels()), std::invalid_argument,
                  "%s: code %lld has bits set past its last level", what, (long long)i);
    }
}

}  // namespace

void IndexIVFDPQ::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    require_trained("sa_decode");
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.sa_decode: negative count");
    std::vector<int64_t> assign(n);
    std::vector<uint8_t> codes(size_t(n) * levels());
    split_sa_codes(codec_, nlist_, list_no_bytes(), n, bytes, "IndexIVFDPQ.sa_decode", assign.data(), codes.data());
    codec_.decode(size_t(n), codes.data(), levels(), x);
    for (idx_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[size_t(i) * d + j] += centroids_[size_t(assign[i]) * d + j];
    if (cosine_) project_to_sphere(n, d, x);
}

void IndexIVFDPQ::add_sa_codes(idx_t n, const uint8_t* bytes, const idx_t* xids) {
    require_trained("add_sa_codes");
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.add_sa_codes: negative count");
    std::vector<int64_t> assign(n);
    std::vector<uint8_t> codes(size_t(n) * levels());
    split_sa_codes(codec_, nlist_, list_no_bytes(), n, bytes, "IndexIVFDPQ.add_sa_codes", assign.data(),
                   codes.data());
    add_codes(n, assign.data(), codes.data(), xids);
}

void IndexIVFDPQ::add(idx_t n, const float* x) { add_with_ids(n, x, nullptr); }

void IndexIVFDPQ::add_ex(idx_t n, const void* x, faiss::NumericType t) {
    check_float32(t, "IndexIVFDPQ");
    add(n, static_cast<const float*>(x));
}

void IndexIVFDPQ::add_with_ids_ex(idx_t n, const void* x, faiss::NumericType t, const idx_t* ids) {
    check_float32(t, "IndexIVFDPQ");
    add_with_ids(n, static_cast<const float*>(x), ids);
}

void IndexIVFDPQ::reset() {
    require_writable("reset");
    std::unique_lock lock(mutex_);
    static_cast<ivf::RamLists&>(*lists_).clear();
    if (direct_map_) direct_map_->clear();
    ntotal = 0;
}

size_t IndexIVFDPQ::remove_ids(const faiss::IDSelector& sel) {
    require_writable("remove_ids");
    std::unique_lock lock(mutex_);
    auto& ram = static_cast<ivf::RamLists&>(*lists_);
    size_t removed = 0;
    for (size_t l = 0; l < nlist_; l++) {
        const ivf::ListRef L = ram.list(l);
        std::vector<bool> keep(L.n);
        bool any = false;
        for (size_t i = 0; i < L.n; i++) {
            keep[i] = !sel.is_member(L.ids[i]);
            any |= !keep[i];
            if (!keep[i] && direct_map_) direct_map_->erase(L.ids[i]);
        }
        if (!any) continue;
        removed += ram.compact(l, keep);
        if (direct_map_) direct_map_->map_list(l, ram.list(l));  // the survivors moved up
    }
    ntotal -= idx_t(removed);
    return removed;
}

void IndexIVFDPQ::decode_stored(const ivf::ListRef& L, size_t l, size_t i, float* out) const {
    std::vector<uint8_t> code(levels());
    CodeLayout{levels(), nbits()}.get_code(L.codes, i, code.data());
    codec_.decode(1, code.data(), levels(), out);
    for (int j = 0; j < d; j++) out[j] += centroids_[l * d + j];
    if (cosine_) project_to_sphere(1, d, out);
}

void IndexIVFDPQ::reconstruct(idx_t key, float* recons) const { reconstruct_batch(1, &key, recons); }

void IndexIVFDPQ::reconstruct_batch(idx_t n, const idx_t* keys, float* recons) const {
    require_trained("reconstruct");
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.reconstruct: negative count");
    std::unordered_map<int64_t, std::vector<size_t>> rows;  // key -> output rows (keys may repeat)
    for (idx_t r = 0; r < n; r++) rows[keys[r]].push_back(size_t(r));
    // Decodes the vector at offset i of list l into every row asking for key
    // `it`, which is then answered.
    const auto answer = [&](auto it, const ivf::ListRef& L, size_t l, size_t i) {
        float* first = recons + it->second[0] * size_t(d);
        decode_stored(L, l, i, first);
        for (size_t k = 1; k < it->second.size(); k++) std::copy_n(first, d, recons + it->second[k] * size_t(d));
        return rows.erase(it);
    };
    std::shared_lock lock(mutex_);
    if (direct_map_) {
        ivf::DirectMap::Location at;
        for (auto it = rows.begin(); it != rows.end() && direct_map_->find(it->first, at);)
            it = answer(it, lists_->list(at.list), at.list, at.offset);
    } else {
        for (size_t l = 0; l < nlist_ && !rows.empty(); l++) {
            const ivf::ListRef L = lists_->list(l);
            for (size_t i = 0; i < L.n && !rows.empty(); i++) {
                const auto it = rows.find(L.ids[i]);
                if (it != rows.end()) answer(it, L, l, i);
            }
        }
    }
    DPQ_CHECK(rows.empty(), std::out_of_range, "IndexIVFDPQ.reconstruct: id %lld is not stored",
              rows.empty() ? 0LL : (long long)rows.begin()->first);
}

void IndexIVFDPQ::check_compatible_for_merge(const faiss::Index& other_in) const {
    auto* other = dynamic_cast<const IndexIVFDPQ*>(&other_in);
    DPQ_CHECK(other, std::invalid_argument, "IndexIVFDPQ.merge_from: the other index is not an IndexIVFDPQ");
    DPQ_CHECK(other->d == d && other->metric_type == metric_type && other->nlist_ == nlist_ &&
                      other->levels() == levels() && other->nbits() == nbits() && other->norms_ == norms_ &&
                      other->cosine_ == cosine_ && other->relative_norms_ == relative_norms_ &&
                      other->norm_quantizer_.centroids() == norm_quantizer_.centroids(),
              std::invalid_argument,
              "IndexIVFDPQ.merge_from: d, metric, cosine, nlist, levels, nbits or norms (their kind, prefixes, "
              "codes, or what they are relative to) differ");
    DPQ_CHECK(other->codec_.codebooks() == codec_.codebooks() && other->centroids_ == centroids_,
              std::invalid_argument, "IndexIVFDPQ.merge_from: the codebooks or centroids differ");
}

void IndexIVFDPQ::merge_from(faiss::Index& other_in, idx_t add_id) {
    check_compatible_for_merge(other_in);
    auto& other = dynamic_cast<IndexIVFDPQ&>(other_in);
    DPQ_CHECK(&other != this, std::invalid_argument, "IndexIVFDPQ.merge_from: cannot merge an index into itself");
    require_writable("merge_from");
    other.require_writable("merge_from (the other index is emptied)");
    {
        std::unique_lock lock(mutex_);
        std::shared_lock other_lock(other.mutex_);
        auto& ram = static_cast<ivf::RamLists&>(*lists_);
        std::vector<std::vector<int64_t>> ids(nlist_);  // the other's ids, shifted
        std::vector<int64_t> all;
        for (size_t l = 0; l < nlist_; l++) {
            const ivf::ListRef L = other.lists_->list(l);
            ids[l].assign(L.ids, L.ids + L.n);
            for (auto& v : ids[l]) v += add_id;
            if (direct_map_) all.insert(all.end(), ids[l].begin(), ids[l].end());
        }
        if (direct_map_) direct_map_->check_new(all.size(), all.data());
        for (size_t l = 0; l < nlist_; l++) {
            ivf::ListRef L = other.lists_->list(l);
            const size_t before = ram.list_size(l);
            L.ids = ids[l].data();
            ram.append(l, L);
            if (direct_map_)
                for (size_t i = 0; i < L.n; i++) direct_map_->set(ids[l][i], l, before + i);
        }
        ntotal += other.ntotal;
    }
    other.reset();
}

// ---------------------------------------------------------------- search

IndexIVFDPQ::Plan IndexIVFDPQ::make_plan(idx_t k, const faiss::SearchParameters* params) const {
    Plan plan{search_levels.load(), 0, 0, nprobe.load(), 0, size_t(kDefaultShortlist), nullptr, nullptr};
    if (params) {
        plan.sel = params->sel;
        if (auto* ivfp = dynamic_cast<const faiss::SearchParametersIVF*>(params)) {
            // Faiss's own parameters set nprobe; ours leave 0 for the index's.
            if (ivfp->nprobe || !dynamic_cast<const SearchParametersIVFDPQ*>(params)) plan.nprobe = ivfp->nprobe;
            plan.max_codes = ivfp->max_codes;
            plan.quantizer_params = ivfp->quantizer_params;
        }
        if (auto* p = dynamic_cast<const SearchParametersIVFDPQ*>(params)) {
            if (p->levels) plan.levels = p->levels;
            plan.rerank_levels = p->rerank_levels;
            DPQ_CHECK(p->rerank_k >= 0, std::invalid_argument, "SearchParametersIVFDPQ: rerank_k must be >= 0");
            DPQ_CHECK(p->shortlist >= 0, std::invalid_argument, "SearchParametersIVFDPQ: shortlist must be >= 0");
            plan.rerank_k = size_t(p->rerank_k);
            if (p->shortlist) plan.shortlist = size_t(p->shortlist);
        }
    }
    check_search_levels("IndexIVFDPQ", "SearchParametersIVFDPQ", levels(), plan.levels, plan.rerank_levels,
                        plan.rerank_k);
    DPQ_CHECK(plan.nprobe >= 1 && plan.nprobe <= (size_t(1) << 31), std::invalid_argument,
              "IndexIVFDPQ.search: nprobe must be >= 1, got %lld", (long long)plan.nprobe);
    plan.nprobe = std::min(plan.nprobe, nlist_);  // as Faiss's IndexIVF
    if (is_l2()) {
        const int m[2] = {plan.levels, plan.rerank_levels};
        for (int v : m)
            DPQ_CHECK(!v || norms_.slot(v) >= 0, std::invalid_argument,
                      "IndexIVFDPQ.search: no norm is stored for prefix %d (the index keeps norm_prefixes of its "
                      "own; search one of those)",
                      v);
    }
    if (plan.rerank_levels) plan.rerank_k = std::max(plan.rerank_k, size_t(k));
    return plan;
}

std::vector<int64_t> IndexIVFDPQ::probe(idx_t n, const float* x, const Plan& plan) const {
    const size_t np = plan.nprobe;
    std::vector<idx_t> I(size_t(n) * np);
    if (searches_centroids_ && !plan.quantizer_params) {
        coarse_.search(size_t(n), x, np, I.data());
    } else {
        std::vector<float> D(size_t(n) * np);
        quantizer_->search(n, x, idx_t(np), D.data(), I.data(), plan.quantizer_params);
    }
    for (idx_t q = 0; q < n; q++) {
        size_t codes = 0;
        for (size_t p = 0; p < np; p++) {
            idx_t& l = I[size_t(q) * np + p];
            DPQ_CHECK(l >= -1 && l < idx_t(nlist_), std::runtime_error,
                      "IndexIVFDPQ.search: the quantizer returned list %lld (nlist = %zu)", (long long)l, nlist_);
            if (plan.max_codes && codes >= plan.max_codes) l = -1;  // Faiss: stop once max_codes are visited
            if (l >= 0) codes += lists_->list_size(size_t(l));
        }
    }
    return std::vector<int64_t>(I.begin(), I.end());
}

ivf::ListSearch IndexIVFDPQ::list_search(const Plan& plan, const scan::IdFilter* filter) const {
    ivf::ListSearch s;
    s.codec = &codec_;
    s.lists = lists_.get();
    s.centroids = centroids_.data();
    s.l2 = is_l2();
    s.relative_norms = relative_norms_;
    s.centroid_tables = centroid_tables();
    if (cosine_ && s.centroid_tables && !products_.cross.empty()) {
        s.codeword_norms = products_.norms.data();
        s.cross_products = products_.cross.data();
        s.centroid_norms = centroid_norms_.data();
    }
    if (norms_.quantized()) {
        s.norm_codes = &norm_quantizer_;
        s.codeword_norms = products_.norms.data();
        s.cross_products = products_.cross.empty() ? nullptr : products_.cross.data();
    }
    s.levels = plan.levels;
    s.norm_slot = norms_.slot(plan.levels);
    s.rerank_levels = plan.rerank_levels;
    s.rerank_slot = plan.rerank_levels ? norms_.slot(plan.rerank_levels) : -1;
    s.rerank_k = plan.rerank_k;
    s.cosine = cosine_;
    s.shortlist = plan.shortlist;
    s.filter = filter;
    return s;
}

void IndexIVFDPQ::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                         const faiss::SearchParameters* params) const {
    require_trained("search");
    DPQ_CHECK(k > 0, std::invalid_argument, "IndexIVFDPQ.search: k must be positive, got %lld", (long long)k);
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.search: negative number of queries");
    check_finite(n, d, x, "IndexIVFDPQ.search");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexIVFDPQ.search");
    const Plan plan = make_plan(k, params);
    std::shared_lock lock(mutex_);
    const std::vector<int64_t> probes = probe(n, x, plan);
    const SelectorFilter filter(plan.sel);
    const ivf::ListSearch s = list_search(plan, plan.sel ? &filter : nullptr);
    ivf::knn(s, size_t(n), x, probes.data(), plan.nprobe, size_t(k), distances, labels);
}

void IndexIVFDPQ::search_ex(idx_t n, const void* x, faiss::NumericType t, idx_t k, float* distances,
                            idx_t* labels, const faiss::SearchParameters* params) const {
    check_float32(t, "IndexIVFDPQ");
    search(n, static_cast<const float*>(x), k, distances, labels, params);
}

void IndexIVFDPQ::range_search(idx_t n, const float* x, float radius, faiss::RangeSearchResult* result,
                               const faiss::SearchParameters* params) const {
    require_trained("range_search");
    DPQ_CHECK(n >= 0, std::invalid_argument, "IndexIVFDPQ.range_search: negative number of queries");
    check_finite(n, d, x, "IndexIVFDPQ.range_search");
    std::vector<float> unit;
    x = directions(cosine_, n, d, x, unit, "IndexIVFDPQ.range_search");
    const Plan plan = make_plan(1, params);
    DPQ_CHECK(!plan.rerank_levels, std::invalid_argument, "IndexIVFDPQ.range_search: re-ranking is not supported");
    std::shared_lock lock(mutex_);
    const std::vector<int64_t> probes = probe(n, x, plan);
    const SelectorFilter filter(plan.sel);
    const ivf::ListSearch s = list_search(plan, plan.sel ? &filter : nullptr);
    const std::vector<scan::RangeHits> hits = ivf::range(s, size_t(n), x, probes.data(), plan.nprobe, radius);
    fill_range_result(hits, result);
}

}  // namespace dpq
