// What the pybind11 entry points of both indexes (module.cpp, ivf/bindings.cpp)
// share: array types, SWIG proxies to C++ pointers, and search results handed
// back as numpy arrays with the GIL released around the C++ work.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include "check.h"
#include "faiss_abi.h"
#include "norm_quantizer.h"
#include "swig_bridge.h"

namespace dpq::bind {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using ByteArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using IdArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// A new reference from the C API as a py::object (a null one re-raises).
inline py::object steal(PyObject* obj) {
    if (!obj) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(obj);
}

// A norm quantizer's centroids as a (stored prefixes, K) array ((0, K) untrained).
inline py::array_t<float> norm_centroid_array(const NormQuantizer& q) {
    const std::vector<float>& c = q.centroids();
    const size_t K = size_t(q.spec().K());
    py::array_t<float> out({K ? c.size() / K : size_t(0), K});
    std::copy(c.begin(), c.end(), out.mutable_data());
    return out;
}

// The C++ object behind a faiss.Index proxy.
inline faiss::Index& index_of(py::handle proxy) {
    faiss::Index* index = swig::unwrap_index(proxy.ptr());
    if (!index) throw py::error_already_set();
    return *index;
}

// The C++ object behind a faiss.SearchParameters proxy, or null for None.
inline const faiss::SearchParameters* params_or_null(py::handle params) {
    if (params.is_none()) return nullptr;
    faiss::SearchParameters* p = swig::unwrap_search_parameters(params.ptr());
    if (!p) throw py::error_already_set();
    return p;
}

// n vectors of the index's dimension (Python's array converter shaped them).
inline int64_t count_vectors(const faiss::Index& index, const FloatArray& x) {
    DPQ_CHECK(x.ndim() == 2 && x.shape(1) == index.d, std::invalid_argument, "vectors must have shape (n, %d)",
              index.d);
    return int64_t(x.shape(0));
}

// index.search(x, k, params) as a (D, I) tuple.
inline py::tuple search(const faiss::Index& index, const FloatArray& x, int64_t k, py::handle params) {
    const int64_t n = count_vectors(index, x);
    const faiss::SearchParameters* sp = params_or_null(params);
    py::array_t<float> D({n, std::max<int64_t>(k, 0)});
    py::array_t<faiss::idx_t> I({n, std::max<int64_t>(k, 0)});
    float* dp = D.mutable_data();
    faiss::idx_t* ip = I.mutable_data();
    {
        py::gil_scoped_release nogil;
        index.search(n, x.data(), k, dp, ip, sp);
    }
    return py::make_tuple(D, I);
}

// index.range_search(x, radius, params) as a (lims, D, I) tuple.
inline py::tuple range_search(const faiss::Index& index, const FloatArray& x, float radius, py::handle params) {
    const int64_t n = count_vectors(index, x);
    const faiss::SearchParameters* sp = params_or_null(params);
    faiss::RangeSearchResult result{size_t(n)};
    {
        py::gil_scoped_release nogil;
        index.range_search(n, x.data(), radius, &result, sp);
    }
    const size_t total = result.lims[n];
    py::array_t<uint64_t> lims(size_t(n) + 1);
    py::array_t<float> D(total);
    py::array_t<faiss::idx_t> I(total);
    std::copy(result.lims, result.lims + n + 1, lims.mutable_data());
    std::copy(result.distances, result.distances + total, D.mutable_data());
    std::copy(result.labels, result.labels + total, I.mutable_data());
    return py::make_tuple(lims, D, I);
}

}  // namespace dpq::bind
