// pybind11 entry points of IndexIVFDPQ (registered by module.cpp): converts
// arrays and proxies, releases the GIL, nothing more.
#include "bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "../abi_check.h"
#include "../binding_helpers.h"
#include "../check.h"
#include "../swig_bridge.h"
#include "index_ivf_dpq.h"
#include "ivf_file.h"

namespace py = pybind11;

namespace dpq::ivf {

namespace {

using bind::ByteArray;
using bind::count_vectors;
using bind::FloatArray;
using bind::IdArray;
using bind::norm_centroid_array;
using bind::params_or_null;
using bind::steal;

IndexIVFDPQ& ivf_of(py::handle proxy) {
    faiss::Index* index = swig::unwrap_index(proxy.ptr());
    if (!index) throw py::error_already_set();
    IndexIVFDPQ* ivf = as_ivf_dpq(index);
    if (!ivf) throw py::type_error("expected an IndexIVFDPQ, got another faiss.Index");
    return *ivf;
}

SearchParametersIVFDPQ& params_of(py::handle proxy) {
    faiss::SearchParameters* p = swig::unwrap_search_parameters(proxy.ptr());
    if (!p) throw py::error_already_set();
    auto* dp = dynamic_cast<SearchParametersIVFDPQ*>(p);
    if (!dp) throw py::type_error("expected a SearchParametersIVFDPQ");
    return *dp;
}

}  // namespace

py::object wrap_owned(std::unique_ptr<IndexIVFDPQ> index) {
    py::object obj = steal(swig::wrap_index(index.get(), true));
    index.release();
    return obj;
}

void register_bindings(py::module_& m) {
    m.def("abi_check_search_parameters_ivf", [](py::handle live, size_t nprobe, size_t max_codes) {
        faiss::SearchParameters* p = swig::unwrap_search_parameters(live.ptr());
        if (!p) throw py::error_already_set();
        return abi::check_search_parameters_ivf(p, nprobe, max_codes);
    });
    // norms: None (L2: "float32"; cosine: "float32" where prefixes are
    // declared), or as IndexDPQ's; prefixes: None for every prefix (L2) or none (cosine).
    m.def("ivf_new", [](py::handle quantizer, int d, size_t nlist, int levels, int nbits, int metric,
                        std::optional<std::string> norms, std::optional<std::vector<int>> prefixes, bool cosine) {
        faiss::Index* q = swig::unwrap_index(quantizer.ptr());
        if (!q) throw py::error_already_set();
        DPQ_CHECK(!prefixes || metric == faiss::METRIC_L2 || cosine, std::invalid_argument,
                  "IndexIVFDPQ: norm_prefixes serve METRIC_L2 and cosine indexes (inner product keeps no norms)");
        NormSpec spec;
        if (metric == faiss::METRIC_L2) spec = NormSpec::all(NormKind::kFloat32, levels);
        if (prefixes) {
            spec.kind = prefixes->empty() && metric != faiss::METRIC_L2 ? NormKind::kNone : NormKind::kFloat32;
            spec.prefixes = std::move(*prefixes);
        }
        if (norms) {  // the constructor checks the kind against the metric
            spec.kind = norm_kind_from_name(*norms, "IndexIVFDPQ");
            if (!prefixes) spec.prefixes = NormSpec::all(spec.kind, levels).prefixes;
        }
        DPQ_CHECK(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT, std::invalid_argument,
                  "IndexIVFDPQ: metric must be METRIC_L2 or METRIC_INNER_PRODUCT, got %d", metric);
        return wrap_owned(
                std::make_unique<IndexIVFDPQ>(q, d, nlist, levels, nbits, faiss::MetricType(metric), spec, cosine));
    });
    m.def("is_ivf_dpq", [](py::handle proxy) {
        faiss::Index* index = swig::unwrap_index(proxy.ptr());
        if (!index) {
            PyErr_Clear();
            return false;
        }
        return as_ivf_dpq(index) != nullptr;
    });
    m.def("ivf_quantizer", [](py::handle p) {
        return steal(swig::wrap_index(ivf_of(p).quantizer(), false));
    });
    m.def("ivf_set_quantizer", [](py::handle p, py::handle q, bool own) {
        faiss::Index* qi = swig::unwrap_index(q.ptr());
        if (!qi) throw py::error_already_set();
        ivf_of(p).set_quantizer(qi, own);
    });
    // merge_from's checks, raised as ValueError before Faiss's wrapper would turn them into RuntimeError.
    m.def("ivf_check_merge",
          [](py::handle p, py::handle other) { ivf_of(p).check_compatible_for_merge(ivf_of(other)); });
    m.def("ivf_set_relative_norms", [](py::handle p, bool on) { ivf_of(p).set_relative_norms(on); });
    m.def("ivf_info", [](py::handle p) {
        IndexIVFDPQ& ix = ivf_of(p);
        py::dict out;
        out["nlist"] = ix.nlist();
        out["levels"] = ix.levels();
        out["nbits"] = ix.nbits();
        out["norm_prefixes"] = ix.norm_spec().prefixes;
        out["norms"] = norm_kind_name(ix.norm_spec().kind);
        out["cosine"] = ix.cosine();
        out["relative_norms"] = ix.relative_norms();
        out["centroid_table_bytes"] = ix.centroid_table_bytes();
        out["bytes_per_vector"] = ix.bytes_per_vector();
        out["has_codebooks"] = ix.has_codebooks();
        out["has_centroids"] = ix.has_centroids();
        out["writable"] = ix.lists().writable();
        out["coarse_search"] = ix.searches_centroids() ? "centroids" : "quantizer";
        return out;
    });
    m.def("ivf_get", [](py::handle p, const std::string& name) -> int64_t {
        IndexIVFDPQ& ix = ivf_of(p);
        if (name == "nprobe") return int64_t(ix.nprobe.load());
        if (name == "search_levels") return ix.search_levels;
        if (name == "beam_size") return ix.beam_size;
        if (name == "two_level_min_nlist") return int64_t(ix.two_level_min_nlist.load());
        if (name == "max_centroid_table_bytes") return int64_t(ix.max_centroid_table_bytes());
        throw py::attribute_error(name);
    });
    m.def("ivf_set", [](py::handle p, const std::string& name, int64_t v) {
        IndexIVFDPQ& ix = ivf_of(p);
        if (name == "nprobe") {
            DPQ_CHECK(v >= 1, std::invalid_argument, "IndexIVFDPQ.nprobe must be >= 1, got %lld", (long long)v);
            ix.nprobe = size_t(v);
        } else if (name == "search_levels") {
            DPQ_CHECK(v >= 1 && v <= ix.levels(), std::invalid_argument,
                      "IndexIVFDPQ.search_levels must be in [1, %d], got %lld", ix.levels(), (long long)v);
            ix.search_levels = int(v);
        } else if (name == "beam_size") {
            DPQ_CHECK(v >= 1 && v <= 1024, std::invalid_argument, "IndexIVFDPQ.beam_size must be in [1, 1024], got %lld",
                      (long long)v);
            ix.beam_size = int(v);
        } else if (name == "two_level_min_nlist") {
            DPQ_CHECK(v >= 0, std::invalid_argument, "IndexIVFDPQ.two_level_min_nlist must be >= 0, got %lld",
                      (long long)v);
            ix.two_level_min_nlist = size_t(v);
        } else if (name == "max_centroid_table_bytes") {
            DPQ_CHECK(v >= 0, std::invalid_argument, "IndexIVFDPQ.max_centroid_table_bytes must be >= 0, got %lld",
                      (long long)v);
            ix.set_max_centroid_table_bytes(size_t(v));
        } else {
            throw py::attribute_error(name);
        }
    });
    m.def("ivf_get_train_params", [](py::handle p) { return ivf_of(p).train_params; });
    m.def("ivf_set_train_params", [](py::handle p, const TrainParams& params) {
        params.validate(ivf_of(p).levels());
        *ivf_of(p).train_params = params;
    });
    m.def("ivf_get_norm_centroids", [](py::handle p) { return norm_centroid_array(ivf_of(p).norm_quantizer()); });
    m.def("ivf_get_codebooks", [](py::handle p) {
        IndexIVFDPQ& ix = ivf_of(p);
        const std::vector<float>& C = ix.codec().codebooks();
        py::array_t<float> out({size_t(ix.levels()), size_t(ix.codec().K()), size_t(ix.d)});
        std::copy(C.begin(), C.end(), out.mutable_data());
        return out;
    });
    m.def("ivf_set_codebooks", [](py::handle p, FloatArray C) {
        IndexIVFDPQ& ix = ivf_of(p);
        DPQ_CHECK(C.ndim() == 3 && C.shape(0) == ix.levels() && C.shape(1) == ix.codec().K() && C.shape(2) == ix.d,
                  std::invalid_argument, "codebooks must have shape (%d, %d, %d)", ix.levels(), ix.codec().K(), ix.d);
        py::gil_scoped_release nogil;
        ix.set_codebooks(C.data());
    });
    m.def("ivf_get_centroids", [](py::handle p) {
        IndexIVFDPQ& ix = ivf_of(p);
        const std::vector<float>& c = ix.centroids();
        py::array_t<float> out({c.size() / size_t(ix.d), size_t(ix.d)});
        std::copy(c.begin(), c.end(), out.mutable_data());
        return out;
    });
    m.def("ivf_set_centroids", [](py::handle p, FloatArray c) {
        IndexIVFDPQ& ix = ivf_of(p);
        DPQ_CHECK(c.ndim() == 2 && size_t(c.shape(0)) == ix.nlist() && c.shape(1) == ix.d, std::invalid_argument,
                  "centroids must have shape (%zu, %d)", ix.nlist(), ix.d);
        ix.set_centroids(c.data());
    });
    m.def("ivf_list_sizes", [](py::handle p) {
        IndexIVFDPQ& ix = ivf_of(p);
        py::array_t<int64_t> out(ix.nlist());
        for (size_t l = 0; l < ix.nlist(); l++) out.mutable_data()[l] = int64_t(ix.lists().list_size(l));
        return out;
    });
    m.def("ivf_list_ids", [](py::handle p, int64_t l) {
        IndexIVFDPQ& ix = ivf_of(p);
        DPQ_CHECK(l >= 0, std::out_of_range, "list %lld out of range", (long long)l);
        std::vector<int64_t> ids = ix.list_ids(size_t(l));
        py::array_t<int64_t> out(ids.size());
        std::copy(ids.begin(), ids.end(), out.mutable_data());
        return out;
    });
    m.def("ivf_list_codes", [](py::handle p, int64_t l) {
        IndexIVFDPQ& ix = ivf_of(p);
        DPQ_CHECK(l >= 0, std::out_of_range, "list %lld out of range", (long long)l);
        std::vector<uint8_t> c = ix.list_codes(size_t(l));
        py::array_t<uint8_t> out({c.size() / size_t(ix.levels()), size_t(ix.levels())});
        std::copy(c.begin(), c.end(), out.mutable_data());
        return out;
    });
    m.def("ivf_verify", [](py::handle p) {
        IndexIVFDPQ& ix = ivf_of(p);
        py::gil_scoped_release nogil;
        ix.verify();
    });
    m.def("ivf_train", [](py::handle p, FloatArray x) {
        IndexIVFDPQ& ix = ivf_of(p);
        const int64_t n = count_vectors(ix, x);
        py::gil_scoped_release nogil;
        ix.train(n, x.data());
    });
    m.def("ivf_add", [](py::handle p, FloatArray x, py::object ids) {
        IndexIVFDPQ& ix = ivf_of(p);
        const int64_t n = count_vectors(ix, x);
        IdArray id;
        if (!ids.is_none()) {
            id = ids.cast<IdArray>();
            DPQ_CHECK(id.ndim() == 1 && id.shape(0) == n, std::invalid_argument, "ids must have shape (%lld,)",
                      (long long)n);
        }
        const int64_t* idp = ids.is_none() ? nullptr : id.data();
        py::gil_scoped_release nogil;
        ix.add_with_ids(n, x.data(), idp);
    });
    m.def("ivf_make_direct_map", [](py::handle p, bool on) {
        IndexIVFDPQ& ix = ivf_of(p);
        py::gil_scoped_release nogil;
        ix.make_direct_map(on);
    });
    m.def("ivf_has_direct_map", [](py::handle p) { return ivf_of(p).has_direct_map(); });
    m.def("ivf_reconstruct", [](py::handle p, py::array_t<int64_t, py::array::c_style | py::array::forcecast> keys) {
        IndexIVFDPQ& ix = ivf_of(p);
        DPQ_CHECK(keys.ndim() == 1, std::invalid_argument, "IndexIVFDPQ.reconstruct: keys must be 1-D");
        py::array_t<float> out({size_t(keys.shape(0)), size_t(ix.d)});
        ix.reconstruct_batch(keys.shape(0), keys.data(), out.mutable_data());
        return out;
    });

    m.def("ivf_serialize", [](py::handle p, py::bytes quantizer) {
        IndexIVFDPQ& ix = ivf_of(p);
        const std::string q = quantizer;
        std::vector<uint8_t> body;
        {
            py::gil_scoped_release nogil;
            body = serialize_ivf(ix, q);
        }
        return py::bytes(reinterpret_cast<const char*>(body.data()), body.size());
    });
    m.def("ivf_deserialize", [](py::buffer data) {
        py::buffer_info info = data.request();
        std::string q;
        std::unique_ptr<IndexIVFDPQ> index;
        {
            py::gil_scoped_release nogil;
            index = deserialize_ivf(static_cast<const uint8_t*>(info.ptr), size_t(info.size * info.itemsize), &q);
        }
        return py::make_tuple(wrap_owned(std::move(index)), py::bytes(q));
    });
    m.def("ivf_map", [](const std::string& path) {
        std::string q;
        std::unique_ptr<IndexIVFDPQ> index;
        {
            py::gil_scoped_release nogil;
            index = map_ivf(path, &q);
        }
        return py::make_tuple(wrap_owned(std::move(index)), py::bytes(q));
    });

    m.def("ivf_new_search_parameters", []() {
        auto p = std::make_unique<SearchParametersIVFDPQ>();
        p->nprobe = 0;  // 0: the index's nprobe
        py::object obj = steal(swig::wrap_search_parameters_ivf(p.get(), true));
        p.release();
        return obj;
    });
    m.def("ivf_params_get", [](py::handle p, const std::string& name) -> int64_t {
        SearchParametersIVFDPQ& sp = params_of(p);
        if (name == "levels") return sp.levels;
        if (name == "rerank_levels") return sp.rerank_levels;
        if (name == "rerank_k") return sp.rerank_k;
        if (name == "shortlist") return sp.shortlist;
        throw py::attribute_error(name);
    });
    m.def("ivf_params_set", [](py::handle p, const std::string& name, int64_t v) {
        SearchParametersIVFDPQ& sp = params_of(p);
        DPQ_CHECK(v >= 0 && (name == "rerank_k" || name == "shortlist" || v <= INT32_MAX), std::invalid_argument,
                  "SearchParametersIVFDPQ.%s must be a non-negative integer, got %lld", name.c_str(), (long long)v);
        if (name == "levels") sp.levels = int(v);
        else if (name == "rerank_levels") sp.rerank_levels = int(v);
        else if (name == "rerank_k") sp.rerank_k = v;
        else if (name == "shortlist") sp.shortlist = v;
        else throw py::attribute_error(name);
    });
}

}  // namespace dpq::ivf
