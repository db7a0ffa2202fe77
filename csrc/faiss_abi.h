// Our declaration of the part of the Faiss C++ ABI that pyfaiss-dpq binds to.
//
// The faiss-cpu wheel ships libfaiss.so with exported C++ symbols but no
// headers, so this file restates the layout of the types we subclass or call,
// for the Faiss releases listed below. It was written from Faiss's own headers
// (faiss/Index.h, faiss/impl/IDSelector.h, faiss/impl/AuxIndexStructures.h,
// faiss/impl/DistanceComputer.h, faiss/MetricType.h) at
// tags v1.14.2, v1.14.3 and v1.15.0: between them those headers differ only in
// the version macros and in FlatCodesDistanceComputer (which we do not use),
// so one declaration serves both minor releases. (v1.14.1 declared
// train_with_queries as an overload of train, and v1.13.x lacks it and
// search1: other vtables, not declared here.)
//
// CMakeLists.txt passes the installed faiss's DPQ_FAISS_VERSION_MAJOR/MINOR;
// a release without a declaration here stops the build.
//
// Rules: declare virtual methods in the same order as Faiss (the vtable slot
// order is the ABI), keep non-inline methods undefined here so they bind to
// libfaiss.so, and keep data members byte-for-byte identical. The import-time
// check in abi_check.cpp verifies this against the live library.
#pragma once

#include <cstddef>
#include <cstdint>

#if !defined(DPQ_FAISS_VERSION_MAJOR) || !defined(DPQ_FAISS_VERSION_MINOR)
#error "define DPQ_FAISS_VERSION_MAJOR/MINOR as the linked faiss release (CMakeLists.txt does)"
#elif DPQ_FAISS_VERSION_MAJOR == 1 && (DPQ_FAISS_VERSION_MINOR == 14 || DPQ_FAISS_VERSION_MINOR == 15)
// The releases that share the declaration below (space-separated major.minor).
#define DPQ_FAISS_ABI_RELEASES "1.14 1.15"
#else
#error "pyfaiss-dpq declares the faiss::Index ABI of faiss-cpu 1.14 (>= 1.14.2) and 1.15 only: install one of them"
#endif

// Symbols declared here live in libfaiss.so: they must keep default
// visibility even though our own module is built with -fvisibility=hidden.
#pragma GCC visibility push(default)

namespace faiss {

using idx_t = int64_t;

// All of Faiss's enumerators: they fix the enum's range of valid values.
enum MetricType {
    METRIC_INNER_PRODUCT = 0,
    METRIC_L2 = 1,
    METRIC_L1,
    METRIC_Linf,
    METRIC_Lp,
    METRIC_Canberra = 20,
    METRIC_BrayCurtis,
    METRIC_JensenShannon,
    METRIC_Jaccard,
    METRIC_NaNEuclidean,
    METRIC_GOWER,
};

enum NumericType {
    Float32,
    Float16,
    UInt8,
    Int8,
};

struct IDSelector {
    virtual bool is_member(idx_t id) const = 0;
    virtual ~IDSelector() {}
};

struct SearchParameters {
    IDSelector* sel = nullptr;
    virtual ~SearchParameters() {}
};

// faiss/IndexIVF.h (v1.15.0). Only nprobe and max_codes are read by us;
// the import-time check (abi_check.cpp) reads them from a live object.
struct SearchParametersIVF : SearchParameters {
    size_t nprobe = 1;
    size_t max_codes = 0;
    size_t max_lists_num = 0;
    bool ensure_topk_full = false;
    size_t max_empty_result_buckets = 0;
    SearchParameters* quantizer_params = nullptr;
    void* inverted_list_context = nullptr;
    virtual ~SearchParametersIVF() {}
};

struct RangeSearchResult {
    size_t nq;
    size_t* lims;
    idx_t* labels;
    float* distances;
    size_t buffer_size;

    explicit RangeSearchResult(size_t nq, bool alloc_lims = true);
    // Expects lims[i] to hold the result count of query i; turns lims into
    // offsets and allocates labels/distances (freed by the destructor).
    virtual void do_allocation();
    virtual ~RangeSearchResult();
};

struct DistanceComputer {
    virtual void set_query(const float* x) = 0;
    virtual float operator()(idx_t i) = 0;
    virtual void distances_batch_4(
            const idx_t idx0, const idx_t idx1, const idx_t idx2,
            const idx_t idx3, float& dis0, float& dis1, float& dis2,
            float& dis3) {
        const float d0 = (*this)(idx0);
        const float d1 = (*this)(idx1);
        const float d2 = (*this)(idx2);
        const float d3 = (*this)(idx3);
        dis0 = d0;
        dis1 = d1;
        dis2 = d2;
        dis3 = d3;
    }
    virtual float symmetric_dis(idx_t i, idx_t j) = 0;
    virtual ~DistanceComputer() {}
};

template <typename T, typename TI>
struct ResultHandlerUnordered;
using ResultHandler = ResultHandlerUnordered<float, idx_t>;

// The inline *_ex methods of faiss::Index only forward float32 input; ours
// throw for other types through our own overrides, so their bodies here are
// never relied upon by Faiss.
struct Index {
    int d;
    idx_t ntotal;
    bool verbose;
    bool is_trained;
    MetricType metric_type;
    float metric_arg;

    explicit Index(idx_t d_in = 0, MetricType metric = METRIC_L2)
            : d(static_cast<int>(d_in)),
              ntotal(0),
              verbose(false),
              is_trained(true),
              metric_type(metric),
              metric_arg(0) {}

    virtual ~Index();
    virtual void train(idx_t n, const float* x);
    virtual void train_with_queries(
            idx_t n, const float* x, idx_t n_train_q, const float* xq_train);
    virtual void train_ex(idx_t n, const void* x, NumericType numeric_type);
    virtual void add(idx_t n, const float* x) = 0;
    virtual void add_ex(idx_t n, const void* x, NumericType numeric_type);
    virtual void add_with_ids(idx_t n, const float* x, const idx_t* xids);
    virtual void add_with_ids_ex(
            idx_t n, const void* x, NumericType numeric_type,
            const idx_t* xids);
    virtual void search(
            idx_t n, const float* x, idx_t k, float* distances,
            idx_t* labels, const SearchParameters* params = nullptr) const = 0;
    virtual void search_ex(
            idx_t n, const void* x, NumericType numeric_type, idx_t k,
            float* distances, idx_t* labels,
            const SearchParameters* params = nullptr) const;
    virtual void search1(
            const float* x, ResultHandler& handler,
            SearchParameters* params = nullptr) const;
    virtual void range_search(
            idx_t n, const float* x, float radius, RangeSearchResult* result,
            const SearchParameters* params = nullptr) const;
    virtual void assign(idx_t n, const float* x, idx_t* labels, idx_t k = 1)
            const;
    virtual void reset() = 0;
    virtual size_t remove_ids(const IDSelector& sel);
    virtual void reconstruct(idx_t key, float* recons) const;
    virtual void reconstruct_batch(idx_t n, const idx_t* keys, float* recons)
            const;
    virtual void reconstruct_n(idx_t i0, idx_t ni, float* recons) const;
    virtual void search_and_reconstruct(
            idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
            float* recons, const SearchParameters* params = nullptr) const;
    virtual void search_subset(
            idx_t n, const float* x, idx_t k_base, const idx_t* base_labels,
            idx_t k, float* distances, idx_t* labels) const;
    virtual void compute_residual(const float* x, float* residual, idx_t key)
            const;
    virtual void compute_residual_n(
            idx_t n, const float* xs, float* residuals,
            const idx_t* keys) const;
    virtual DistanceComputer* get_distance_computer() const;
    virtual size_t sa_code_size() const;
    virtual void sa_encode(idx_t n, const float* x, uint8_t* bytes) const;
    virtual void sa_decode(idx_t n, const uint8_t* bytes, float* x) const;
    virtual void merge_from(Index& otherIndex, idx_t add_id = 0);
    virtual void check_compatible_for_merge(const Index& otherIndex) const;
    virtual void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* xids);
};

}  // namespace faiss

#pragma GCC visibility pop

// Facts about this ABI that abi_check.cpp verifies at import time.
namespace dpq::abi {
constexpr size_t kIndexSize = 40;
constexpr int kIndexVirtualSlots = 30;  // counting both destructor entries
}  // namespace dpq::abi
