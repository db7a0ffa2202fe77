// pybind11 module `pyfaiss_dpq._core`: converts arrays and proxies, releases
// the GIL around C++ work, nothing more. Index objects travel to Python as
// faiss SWIG proxies (see swig_bridge.h), never as pybind11 classes.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "abi_check.h"
#include "check.h"
#include "code_layout.h"
#include "index_dpq.h"
#include "kmeans.h"
#include "ivf/bindings.h"
#include "scan/dispatch.h"
#include "scan/rescore.h"
#include "scan/tables.h"
#include "serialize.h"
#include "swig_bridge.h"
#include "beam.h"
#include "binding_helpers.h"
#include "train.h"

namespace py = pybind11;
using dpq::IndexDPQ;
using dpq::SearchParametersDPQ;

namespace {

using dpq::bind::ByteArray;
using dpq::bind::count_vectors;
using dpq::bind::FloatArray;
using dpq::bind::IdArray;
using dpq::bind::norm_centroid_array;
using dpq::bind::params_or_null;
using dpq::bind::steal;

IndexDPQ& dpq_of(py::handle proxy) {
    faiss::Index* index = dpq::swig::unwrap_index(proxy.ptr());
    if (!index) throw py::error_already_set();
    IndexDPQ* dpq_index = dpq::as_dpq(index);
    if (!dpq_index) throw py::type_error("expected an IndexDPQ, got another faiss.Index");
    return *dpq_index;
}

SearchParametersDPQ& params_of(py::handle proxy) {
    faiss::SearchParameters* p = dpq::swig::unwrap_search_parameters(proxy.ptr());
    if (!p) throw py::error_already_set();
    auto* dp = dynamic_cast<SearchParametersDPQ*>(p);
    if (!dp) throw py::type_error("expected a SearchParametersDPQ");
    return *dp;
}

// An int as a faiss::MetricType, refusing what is none of Faiss's metrics (as
// Faiss's inline metric_type_from_int does: casting it would be undefined).
// Which metrics an IndexDPQ takes is its constructor's rule.
faiss::MetricType metric_from_int(int x) {
    DPQ_CHECK((x >= faiss::METRIC_INNER_PRODUCT && x <= faiss::METRIC_Lp) ||
                      (x >= faiss::METRIC_Canberra && x <= faiss::METRIC_GOWER),
              std::invalid_argument, "IndexDPQ: %d is not a faiss metric type", x);
    return faiss::MetricType(x);
}

// A read/write field of TrainParams whose setter validates the new value.
template <typename T>
void train_field(py::class_<dpq::TrainParams, std::shared_ptr<dpq::TrainParams>>& cls, const char* name,
                 T dpq::TrainParams::*field, const char* doc) {
    cls.def_property(
            name, [field](const dpq::TrainParams& p) { return p.*field; },
            [field](dpq::TrainParams& p, T value) {
                dpq::TrainParams q = p;
                q.*field = value;
                q.validate();
                p = q;
            },
            doc);
}

// (levels, K, d) codebooks and (n, d) vectors that agree with each other.
void check_codebooks(const FloatArray& C, const FloatArray& x) {
    if (C.ndim() != 3 || (C.shape(1) != 16 && C.shape(1) != 256) || C.shape(0) < 1 || C.shape(0) > 255)
        throw std::invalid_argument("codebooks must have shape (levels, K, d), K 16 or 256, 1 <= levels <= 255");
    if (x.ndim() != 2 || x.shape(1) != C.shape(2))
        throw std::invalid_argument("x must have shape (n, d) with d = codebooks.shape[2]");
}

// Codes of n vectors for codebooks of L levels x K codewords.
void check_codes(const ByteArray& codes, size_t n, int L, int K) {
    DPQ_CHECK(codes.ndim() == 2 && size_t(codes.shape(0)) == n && codes.shape(1) == L, std::invalid_argument,
              "codes must have shape (n, levels) = (%zu, %d)", n, L);
    for (size_t i = 0; i < n * L; i++)
        DPQ_CHECK(codes.data()[i] < K, std::invalid_argument, "codes must be < K = %d, got %d", K, int(codes.data()[i]));
}

std::vector<float> weights_of(py::object weights, int levels) {
    dpq::TrainParams p;
    if (!weights.is_none()) p.prefix_weights = weights.cast<std::vector<float>>();
    return dpq::resolve_prefix_weights(p, levels);
}

py::object wrap_owned(std::unique_ptr<IndexDPQ> index) {
    py::object obj = steal(dpq::swig::wrap_index(index.get(), true));
    index.release();  // now owned by the SWIG object
    return obj;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "C++ core of pyfaiss-dpq (internal; use the pyfaiss_dpq package)";
    m.attr("FAISS_ABI_RELEASES") = DPQ_FAISS_ABI_RELEASES;
    m.attr("FAISS_BUILT_AGAINST") = std::to_string(DPQ_FAISS_VERSION_MAJOR) + "." + std::to_string(DPQ_FAISS_VERSION_MINOR);

    m.def("swig_runtime_ok", &dpq::swig::runtime_available);
    // The OpenMP runtime we link is the faiss wheel's: this follows
    // faiss.omp_set_num_threads.
    m.def("omp_max_threads", []() { return omp_get_max_threads(); });
    m.def("abi_check", [](py::handle live, int d, int64_t ntotal, bool verbose, bool is_trained, int metric,
                          float metric_arg) {
        faiss::Index* index = dpq::swig::unwrap_index(live.ptr());
        if (!index) throw py::error_already_set();
        // The vtable is checked before any member of `index` is read.
        return dpq::abi::check(index, {d, ntotal, verbose, is_trained, metric, metric_arg});
    });

    m.attr("FORMAT_VERSION") = dpq::kFormatVersion;
    m.attr("OLDEST_FORMAT_VERSION") = dpq::kOldestFormatVersion;
    m.attr("DEFAULT_SHORTLIST") = dpq::kDefaultShortlist;

    m.def("layout_offsets", [](size_t i, int levels, int nbits) {
        dpq::CodeLayout layout{levels, nbits};
        return layout.block_offset(i);
    }, "Offset of vector i's block in the code array (for 64-bit arithmetic tests).");

    // norms: "none", "float32", "8bit", "4bit"; prefixes: None for every prefix
    // (the constructor checks what is given: NormSpec::check).
    m.def("new_index", [](int d, int levels, int nbits, int metric, const std::string& norms,
                          std::optional<std::vector<int>> prefixes, bool cosine) {
        dpq::NormSpec spec = dpq::NormSpec::all(dpq::norm_kind_from_name(norms, "IndexDPQ"), levels);
        if (prefixes) spec.prefixes = std::move(*prefixes);
        return wrap_owned(std::make_unique<IndexDPQ>(d, levels, nbits, metric_from_int(metric), spec, cosine));
    });
    m.def("cosine", [](py::handle p) { return dpq_of(p).cosine(); });
    m.def("norm_spec", [](py::handle p) {
        const dpq::NormSpec& s = dpq_of(p).norm_spec();
        return py::make_tuple(dpq::norm_kind_name(s.kind), s.prefixes);
    });
    m.def("get_norm_centroids", [](py::handle p) { return norm_centroid_array(dpq_of(p).norm_quantizer()); });
    m.def("set_norm_centroids", [](py::handle p, FloatArray c) {
        dpq_of(p).set_norm_centroids(std::vector<float>(c.data(), c.data() + c.size()));
    });
    m.def("truncated", [](py::handle p, int levels, std::optional<std::vector<int>> keep) {
        IndexDPQ& index = dpq_of(p);
        std::unique_ptr<IndexDPQ> out;
        {
            py::gil_scoped_release nogil;
            out = index.truncated(levels, keep ? &*keep : nullptr);
        }
        return wrap_owned(std::move(out));
    });
    m.def("is_dpq", [](py::handle proxy) {
        faiss::Index* index = dpq::swig::unwrap_index(proxy.ptr());
        if (!index) {
            PyErr_Clear();
            return false;
        }
        return dpq::as_dpq(index) != nullptr;
    });
    m.def("levels", [](py::handle p) { return dpq_of(p).levels(); });
    m.def("nbits", [](py::handle p) { return dpq_of(p).nbits(); });
    m.def("get_search_levels", [](py::handle p) -> int { return dpq_of(p).search_levels; });
    m.def("set_search_levels", [](py::handle p, int v) {
        IndexDPQ& index = dpq_of(p);
        DPQ_CHECK(v >= 1 && v <= index.levels(), std::invalid_argument, "IndexDPQ.search_levels must be in [1, %d], got %d",
                  index.levels(), v);
        index.search_levels = v;
    });
    m.def("get_beam_size", [](py::handle p) -> int { return dpq_of(p).beam_size; });
    m.def("set_beam_size", [](py::handle p, int v) {
        DPQ_CHECK(v >= 1 && v <= IndexDPQ::kMaxBeamSize, std::invalid_argument,
                  "IndexDPQ.beam_size must be in [1, %d], got %d", IndexDPQ::kMaxBeamSize, v);
        dpq_of(p).beam_size = v;
    });
    m.def("bytes_per_vector", [](py::handle p) { return dpq_of(p).bytes_per_vector(); });
    m.def("get_codebooks", [](py::handle p) {
        IndexDPQ& index = dpq_of(p);
        std::vector<float> C = index.get_codebooks();
        py::array_t<float> out({size_t(index.levels()), size_t(index.codec().K()), size_t(index.d)});
        std::copy(C.begin(), C.end(), out.mutable_data());
        return out;
    });
    m.def("set_codebooks", [](py::handle p, FloatArray C) {
        IndexDPQ& index = dpq_of(p);
        py::gil_scoped_release nogil;
        index.set_codebooks(C.data());
    });
    m.def("get_codes", [](py::handle p, int64_t i0, int64_t n) {
        IndexDPQ& index = dpq_of(p);
        py::array_t<uint8_t> out({size_t(n), size_t(index.levels())});
        uint8_t* dst = out.mutable_data();
        py::gil_scoped_release nogil;
        index.get_codes(i0, n, dst);
        return out;
    });
    m.def("add_codes", [](py::handle p, ByteArray codes) {
        IndexDPQ& index = dpq_of(p);
        py::gil_scoped_release nogil;
        index.add_codes(codes.shape(0), codes.data());
    });
    m.def("add_sa_codes", [](py::handle p, ByteArray codes) {
        IndexDPQ& index = dpq_of(p);
        py::gil_scoped_release nogil;
        index.add_sa_codes(codes.shape(0), codes.data(), nullptr);
    });
    m.def("reconstruct_prefix", [](py::handle p, int64_t i, int levels) {
        IndexDPQ& index = dpq_of(p);
        py::array_t<float> out(size_t(index.d));
        index.reconstruct_prefix(i, levels, out.mutable_data());
        return out;
    });
    m.def("serialize", [](py::handle p) {
        IndexDPQ& index = dpq_of(p);
        std::vector<uint8_t> body;
        {
            py::gil_scoped_release nogil;
            body = dpq::serialize(index);
        }
        return py::bytes(reinterpret_cast<const char*>(body.data()), body.size());
    });
    m.def("deserialize", [](py::buffer data) {
        py::buffer_info info = data.request();
        std::unique_ptr<IndexDPQ> index;
        {
            py::gil_scoped_release nogil;
            index = dpq::deserialize(static_cast<const uint8_t*>(info.ptr), size_t(info.size * info.itemsize));
        }
        return wrap_owned(std::move(index));
    });

    // The Python IndexDPQ's own entry points: called here rather than through
    // Faiss's SWIG wrappers so that the C++ checks reach Python with their
    // exception types (ValueError, IndexError) instead of RuntimeError.
    m.def("train", [](py::handle p, FloatArray x) {
        IndexDPQ& index = dpq_of(p);
        const int64_t n = count_vectors(index, x);
        py::gil_scoped_release nogil;
        index.train(n, x.data());
    });
    m.def("add", [](py::handle p, FloatArray x) {
        IndexDPQ& index = dpq_of(p);
        const int64_t n = count_vectors(index, x);
        py::gil_scoped_release nogil;
        index.add(n, x.data());
    });
    // Search entry points of every index of ours (IndexDPQ, IndexIVFDPQ): the
    // C++ object's own virtual search runs.
    m.def("index_search", [](py::handle p, FloatArray x, int64_t k, py::handle params) {
        return dpq::bind::search(dpq::bind::index_of(p), x, k, params);
    });
    m.def("index_range_search", [](py::handle p, FloatArray x, float radius, py::handle params) {
        return dpq::bind::range_search(dpq::bind::index_of(p), x, radius, params);
    });
    m.def("sa_encode", [](py::handle p, FloatArray x) {
        IndexDPQ& index = dpq_of(p);
        const int64_t n = count_vectors(index, x);
        py::array_t<uint8_t> out({size_t(n), index.sa_code_size()});
        uint8_t* dst = out.mutable_data();
        py::gil_scoped_release nogil;
        index.sa_encode(n, x.data(), dst);
        return out;
    });

    // ---------------------------------------------------------- training
    py::class_<dpq::TrainParams, std::shared_ptr<dpq::TrainParams>> tp(m, "TrainParameters");
    const dpq::TrainParams defaults;
    tp.def(py::init([](int rounds, int beam_size, std::vector<float> prefix_weights, int64_t seed,
                       int kmeans_max_points_per_centroid, int tail_kmeans_max_points, float ridge,
                       bool verbose) {
               auto p = std::make_shared<dpq::TrainParams>();
               *p = {rounds, beam_size, prefix_weights, seed, kmeans_max_points_per_centroid,
                     tail_kmeans_max_points, ridge, verbose};
               p->validate();
               return p;
           }),
           py::kw_only(), py::arg("rounds") = defaults.rounds, py::arg("beam_size") = defaults.beam_size,
           py::arg("prefix_weights") = defaults.prefix_weights, py::arg("seed") = defaults.seed,
           py::arg("kmeans_max_points_per_centroid") = defaults.kmeans_max_points_per_centroid,
           py::arg("tail_kmeans_max_points") = defaults.tail_kmeans_max_points,
           py::arg("ridge") = defaults.ridge, py::arg("verbose") = defaults.verbose);
    train_field(tp, "rounds", &dpq::TrainParams::rounds, "Beam-encode + least-squares rounds after the initialisation.");
    train_field(tp, "beam_size", &dpq::TrainParams::beam_size, "Beam width used in training (1: greedy).");
    train_field(tp, "prefix_weights", &dpq::TrainParams::prefix_weights,
                "Weights w_1..w_L of the prefix errors (normalised to sum 1); empty: the default.");
    train_field(tp, "seed", &dpq::TrainParams::seed, "Seed of the vector order of every level's k-means sample (the same at every level).");
    train_field(tp, "kmeans_max_points_per_centroid", &dpq::TrainParams::kmeans_max_points_per_centroid,
                "k-means subsamples at most K times this many residuals per level.");
    train_field(tp, "tail_kmeans_max_points", &dpq::TrainParams::tail_kmeans_max_points,
                "Levels l >= L / 2 see at most this many residuals in k-means (0: no further limit).");
    train_field(tp, "ridge", &dpq::TrainParams::ridge,
                "Least-squares pull toward the previous codebooks, relative to the mean diagonal.");
    train_field(tp, "verbose", &dpq::TrainParams::verbose, "Progress bar and per-round objective on stderr.");
    tp.def("validate", &dpq::TrainParams::validate, py::arg("levels") = 0,
           "Raise ValueError naming a bad field (levels: also check len(prefix_weights)).");
    tp.def("copy", [](const dpq::TrainParams& p) { return std::make_shared<dpq::TrainParams>(p); });
    tp.def("__repr__", [](const dpq::TrainParams& p) {
        std::string w = "[";
        for (size_t i = 0; i < p.prefix_weights.size(); i++) w += (i ? ", " : "") + std::to_string(p.prefix_weights[i]);
        return "TrainParameters(rounds=" + std::to_string(p.rounds) + ", beam_size=" + std::to_string(p.beam_size) +
               ", prefix_weights=" + w + "], seed=" + std::to_string(p.seed) + ", kmeans_max_points_per_centroid=" +
               std::to_string(p.kmeans_max_points_per_centroid) + ", tail_kmeans_max_points=" +
               std::to_string(p.tail_kmeans_max_points) + ", ridge=" + std::to_string(p.ridge) +
               ", verbose=" + (p.verbose ? "True" : "False") + ")";
    });
    m.def("default_prefix_weights", &dpq::default_prefix_weights, py::arg("levels"));
    m.def("get_train_params", [](py::handle p) { return dpq_of(p).train_params; });
    m.def("set_train_params", [](py::handle p, const dpq::TrainParams& params) {
        params.validate(dpq_of(p).levels());
        *dpq_of(p).train_params = params;
    });
    m.def("set_clustering", [](py::function fn) {
        // Leaked on purpose: the C++ side may call it until the process ends,
        // and its destructor must not run after the interpreter is gone.
        const auto* held = new py::function(std::move(fn));
        dpq::set_clustering([held](size_t n, int d, const float* x, int K, bool progressive_dim, float* out) {
            py::gil_scoped_acquire gil;
            py::array_t<float> view({py::ssize_t(n), py::ssize_t(d)}, x, py::none());
            view.attr("setflags")(py::arg("write") = false);
            auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure((*held)(view, K, progressive_dim));
            if (!c || c.ndim() != 2 || c.shape(0) != K || c.shape(1) != d)
                throw std::runtime_error("kmeans: the registered k-means must return a (K, d) float32 array");
            std::copy(c.data(), c.data() + size_t(K) * size_t(d), out);
        });
    }, py::arg("fn"), "Registers the k-means the C++ trainers call: fn(x, K, progressive_dim) -> (K, d) centroids.");
    m.def("train_codebooks", [](FloatArray x, int levels, int nbits, const dpq::TrainParams& params) {
        if (x.ndim() != 2) throw std::invalid_argument("x must have shape (n, d)");
        if (levels < 1 || levels > 255) throw std::invalid_argument("levels must be in [1, 255], got " + std::to_string(levels));
        if (nbits != 4 && nbits != 8) throw std::invalid_argument("nbits must be 4 or 8, got " + std::to_string(nbits));
        params.validate(levels);
        const size_t n = size_t(x.shape(0));
        const int d = int(x.shape(1));
        std::vector<float> C;
        {
            py::gil_scoped_release nogil;
            C = dpq::train_codebooks(n, d, x.data(), levels, nbits, params);
        }
        py::array_t<float> out({size_t(levels), size_t(1) << nbits, size_t(d)});
        std::copy(C.begin(), C.end(), out.mutable_data());
        return out;
    });
    m.def("beam_encode", [](FloatArray x, FloatArray C, int beam_size, py::object weights, int method) {
        check_codebooks(C, x);
        if (beam_size < 1 || beam_size > 256) throw std::invalid_argument("beam_size must be in [1, 256]");
        const int L = int(C.shape(0)), K = int(C.shape(1)), d = int(C.shape(2));
        const std::vector<float> w = weights_of(weights, L);
        const size_t n = size_t(x.shape(0));
        py::array_t<uint8_t> codes({n, size_t(L)});
        py::array_t<float> obj(n);
        uint8_t* pc = codes.mutable_data();
        float* po = obj.mutable_data();
        {
            py::gil_scoped_release nogil;
            dpq::beam_encode(n, d, L, K, C.data(), x.data(), beam_size, w.data(), pc, po, method);
        }
        return py::make_tuple(codes, obj);
    }, py::arg("x"), py::arg("codebooks"), py::arg("beam_size"), py::arg("weights"), py::arg("method") = -1);
    m.def("prefix_objective", [](FloatArray x, FloatArray C, ByteArray codes, py::object weights) {
        check_codebooks(C, x);
        const int L = int(C.shape(0)), K = int(C.shape(1)), d = int(C.shape(2));
        const size_t n = size_t(x.shape(0));
        check_codes(codes, n, L, K);
        const std::vector<float> w = weights_of(weights, L);
        py::array_t<float> obj(n);
        dpq::prefix_objective(n, d, L, K, C.data(), x.data(), codes.data(), w.data(), obj.mutable_data());
        return obj;
    });
    m.def("solve_codebooks", [](FloatArray x, FloatArray C_prev, ByteArray codes, py::object weights, float ridge) {
        check_codebooks(C_prev, x);
        const int L = int(C_prev.shape(0)), K = int(C_prev.shape(1)), d = int(C_prev.shape(2));
        const size_t n = size_t(x.shape(0));
        check_codes(codes, n, L, K);
        if (!(ridge > 0)) throw std::invalid_argument("ridge must be positive");
        const std::vector<float> w = weights_of(weights, L);
        py::array_t<float> out({size_t(L), size_t(K), size_t(d)});
        float* po = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            dpq::solve_codebooks(n, d, x.data(), L, K, codes.data(), w.data(), ridge, C_prev.data(), po);
        }
        return out;
    });

    m.def("new_search_parameters", []() {
        auto p = std::make_unique<SearchParametersDPQ>();
        py::object obj = steal(dpq::swig::wrap_search_parameters(p.get(), true));
        p.release();
        return obj;
    });
    m.def("is_dpq_params", [](py::handle proxy) {
        faiss::SearchParameters* p = dpq::swig::unwrap_search_parameters(proxy.ptr());
        if (!p) {
            PyErr_Clear();
            return false;
        }
        return dynamic_cast<SearchParametersDPQ*>(p) != nullptr;
    });
    m.def("params_get", [](py::handle p, const std::string& name) -> int64_t {
        SearchParametersDPQ& sp = params_of(p);
        if (name == "levels") return sp.levels;
        if (name == "rerank_levels") return sp.rerank_levels;
        if (name == "rerank_k") return sp.rerank_k;
        if (name == "shortlist") return sp.shortlist;
        throw py::attribute_error(name);
    });
    m.def("params_set", [](py::handle p, const std::string& name, int64_t v) {
        SearchParametersDPQ& sp = params_of(p);
        const bool wide = name == "rerank_k" || name == "shortlist";  // idx_t fields
        DPQ_CHECK(v >= 0 && (wide || v <= INT32_MAX), std::invalid_argument,
                  "SearchParametersDPQ.%s must be a non-negative %s, got %lld", name.c_str(), wide ? "int64" : "int32",
                  (long long)v);
        if (name == "levels") sp.levels = int(v);
        else if (name == "rerank_levels") sp.rerank_levels = int(v);
        else if (name == "rerank_k") sp.rerank_k = v;
        else if (name == "shortlist") sp.shortlist = v;
        else throw py::attribute_error(name);
    });

    // Scan kernels: which run, forcing one, and their raw quantized sums
    // (the bit-exact test seam; see scan/kernels.h).
    m.def("scan_kernels", &dpq::scan::supported_kernels, "Scan kernels this CPU supports, slowest first.");
    m.def("set_scan_kernel", &dpq::scan::force_kernel, py::arg("name"),
          "Force a scan kernel ('auto' restores CPU detection); returns the previous setting.");
    m.def("get_scan_kernel", &dpq::scan::forced_kernel, "'auto' or the forced kernel's name.");
    m.def("set_exact_norms", [](const std::string& how) {
        if (how != "table" && how != "decode")
            throw std::invalid_argument("set_exact_norms: 'table' or 'decode', got '" + how + "'");
        dpq::scan::decode_exact_norms() = how == "decode";
    }, "How the exact re-score computes prefix norms of 4-bit codes (benchmark seam).");
    m.def("set_split_columns", [](const std::string& mode) {
        using dpq::scan::SplitMode;
        static const char* names[] = {"auto", "always", "never"};  // by SplitMode value
        int i = 0;
        while (i < 3 && mode != names[i]) i++;
        DPQ_CHECK(i < 3, std::invalid_argument, "set_split_columns: 'auto', 'always' or 'never', got '%s'",
                  mode.c_str());
        return std::string(names[int(dpq::scan::split_mode().exchange(SplitMode(i)))]);
    }, py::arg("mode"),
          "When 4-bit scans split wide levels over extra columns: 'auto' (where they re-score many "
          "candidates), 'always' or 'never' (test and benchmark seam); returns the previous mode.");
    m.def("active_scan_kernel", [] { return std::string(dpq::scan::active_kernels().name); });
    // A split of 4-bit tables (kernels.h SplitColumns4) from Python: the source of each extra column.
    auto split_of = [](const std::vector<int>& src, int sources) {
        dpq::scan::SplitColumns4 split;
        DPQ_CHECK(src.size() <= size_t(dpq::scan::kMaxSplitColumns), std::invalid_argument,
                  "split: at most %d extra columns", dpq::scan::kMaxSplitColumns);
        for (int v : src) {
            DPQ_CHECK(v >= 0 && v < sources && (split.n == 0 || v >= split.src[split.n - 1]), std::invalid_argument,
                      "split: sources in [0, %d), in increasing order", sources);
            split.src[split.n++] = uint8_t(v);
        }
        return split;
    };
    m.def("plan_split", [](FloatArray luts) {
        DPQ_CHECK(luts.ndim() == 3 && luts.shape(0) >= 1 && luts.shape(0) <= dpq::scan::kGroup && luts.shape(2) == 16 &&
                          luts.shape(1) >= 1 && luts.shape(1) <= 255,
                  std::invalid_argument, "plan_split: luts must have shape (nq <= 4, m <= 255, 16)");
        const float* p[dpq::scan::kGroup];
        for (py::ssize_t q = 0; q < luts.shape(0); q++) p[q] = luts.data(q);
        const dpq::scan::SplitColumns4 split = dpq::scan::plan_split4(p, int(luts.shape(0)), int(luts.shape(1)));
        return std::vector<int>(split.src, split.src + split.n);
    }, "The extra columns (their sources) that 4-bit scans give a group of query tables.");
    m.def("quantize_lut", [split_of](FloatArray lut, float bias, const std::vector<int>& split) {
        DPQ_CHECK(lut.ndim() == 2 && (lut.shape(1) == 16 || lut.shape(1) == 256) && lut.shape(0) >= 1 &&
                          lut.shape(0) <= 255,
                  std::invalid_argument, "quantize_lut: lut must have shape (m, 16) or (m, 256), 1 <= m <= 255");
        const int m = int(lut.shape(0));
        DPQ_CHECK(split.empty() || lut.shape(1) == 16, std::invalid_argument, "quantize_lut: a split is for 4-bit tables");
        dpq::scan::QuantizedLut q;
        py::array out;
        if (lut.shape(1) == 16) {
            const dpq::scan::SplitColumns4 sp = split_of(split, m);
            std::vector<uint8_t> t(dpq::scan::lut4_bytes(m, sp));
            q = dpq::scan::quantize_lut4(lut.data(), m, bias, sp, t.data());
            py::array_t<uint8_t> a({size_t(m + sp.n), size_t(16)});
            std::copy(t.begin(), t.begin() + (m + sp.n) * 16, a.mutable_data());
            out = a;
        } else {
            std::vector<uint64_t> t(size_t(m) * 256, 0);
            const float* rows = lut.data();
            if (!dpq::scan::quantize_lut8(&rows, 1, m, &bias, &q, t.data())) std::fill(t.begin(), t.end(), 0);
            py::array_t<uint16_t> a({size_t(m), size_t(256)});
            std::transform(t.begin(), t.end(), a.mutable_data(), [](uint64_t v) { return uint16_t(v); });
            out = a;
        }
        py::dict p;
        p["ok"] = q.ok, p["base"] = q.base, p["inv_scale"] = q.inv_scale, p["err"] = q.err, p["rel"] = q.rel;
        p["magnitude"] = q.magnitude;
        return py::make_tuple(out, p);
    }, py::arg("lut"), py::arg("bias"), py::arg("split") = std::vector<int>());
    m.def("quantized_sums", [split_of](const std::string& kernel, ByteArray blocks, int m, py::array lut,
                                       const std::vector<int>& split) {
        const dpq::scan::KernelSet& ks = dpq::scan::kernels_named(kernel);
        const py::ssize_t columns = m + py::ssize_t(split.size());
        DPQ_CHECK(blocks.ndim() == 2 && lut.ndim() >= 2 && m >= 1 && m <= 255 && lut.shape(0) == columns,
                  std::invalid_argument,
                  "quantized_sums: blocks (nblocks, block_bytes) and lut (m + len(split), ...) expected");
        const size_t nb = size_t(blocks.shape(0)), bb = size_t(blocks.shape(1));
        if (lut.shape(1) == 16) {  // 4-bit: lut (m + len(split), 16) uint8
            auto t = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(lut);
            DPQ_CHECK(bb >= size_t(m) * 16 && bb % 16 == 0, std::invalid_argument,
                      "quantized_sums: blocks too short for m levels");
            const dpq::scan::SplitColumns4 sp = split_of(split, m);
            std::vector<uint8_t> padded(dpq::scan::lut4_bytes(m, sp), 0);
            std::copy(t.data(), t.data() + columns * 16, padded.begin());
            py::array_t<uint16_t> out(nb * 32);
            ks.sums4(blocks.data(), bb, nb, m, padded.data(), sp, out.mutable_data());
            return py::array(out);
        }
        DPQ_CHECK(split.empty(), std::invalid_argument, "quantized_sums: a split is for 4-bit tables");
        // 8-bit: lut (m, 256, 4) uint16, lane q = query q
        auto t = py::array_t<uint16_t, py::array::c_style | py::array::forcecast>::ensure(lut);
        DPQ_CHECK(lut.ndim() == 3 && lut.shape(1) == 256 && lut.shape(2) == 4, std::invalid_argument,
                  "quantized_sums: lut must be (m, 16) uint8 or (m, 256, 4) uint16");
        DPQ_CHECK(bb >= size_t(m) * 32, std::invalid_argument, "quantized_sums: blocks too short for m levels");
        std::vector<uint64_t> packed(size_t(m) * 256);
        std::memcpy(packed.data(), t.data(), packed.size() * 8);
        py::array_t<uint16_t> out({nb * 32, size_t(4)});
        ks.sums8(blocks.data(), bb, nb, m, packed.data(), reinterpret_cast<uint64_t*>(out.mutable_data()));
        return py::array(out);
    }, py::arg("kernel"), py::arg("blocks"), py::arg("m"), py::arg("lut"), py::arg("split") = std::vector<int>());

    m.def("exact_block4", [](const std::string& kernel, ByteArray block, int m, FloatArray lut, FloatArray init) {
        const dpq::scan::KernelSet& ks = dpq::scan::kernels_named(kernel);
        DPQ_CHECK(block.ndim() == 1 && m >= 1 && block.shape(0) >= py::ssize_t(m) * 16 && lut.ndim() == 2 &&
                          lut.shape(0) == m && lut.shape(1) == 16 && init.ndim() == 1 && init.shape(0) == 32,
                  std::invalid_argument, "exact_block4: block (>= m * 16 bytes), lut (m, 16) and init (32,) expected");
        py::array_t<float> out(32);
        ks.exact4(block.data(), m, lut.data(), init.data(), out.mutable_data());
        return out;
    });
    m.def("inner_products", [](const std::string& kernel, FloatArray X, FloatArray C) {
        const dpq::scan::KernelSet& ks = dpq::scan::kernels_named(kernel);
        DPQ_CHECK(X.ndim() == 2 && C.ndim() == 2 && C.shape(1) == X.shape(1), std::invalid_argument,
                  "inner_products: X (nx, d) and C (n, d) expected");
        const size_t n = size_t(C.shape(0));
        const int d = int(C.shape(1));
        std::vector<float> panels(dpq::table_panel_floats(n, d));
        dpq::pack_table_panels(C.data(), n, d, panels.data());
        py::array_t<float> out({X.shape(0), C.shape(0)});
        ks.dots(X.data(), size_t(X.shape(0)), panels.data(), n, d, out.mutable_data(), n);
        return out;
    });

    // Lookup-table kernels (scan/tables.h): which exist, forcing one, and the tables one computes.
    m.def("lut_kernels", &dpq::scan::lut_kernels, "Lookup-table kernels: simd (the default), scalar.");
    m.def("set_lut_kernel", &dpq::scan::force_lut_kernel, py::arg("name"),
          "Force a lookup-table kernel ('auto' restores the default); returns the previous setting.");
    m.def("active_lut_kernel", &dpq::scan::active_lut_kernel);
    m.def("lookup_tables", [](const std::string& kernel, py::handle p, FloatArray x, int levels, bool l2) {
        const IndexDPQ& index = dpq_of(p);
        const dpq::Codec& codec = index.codec();
        if (x.ndim() != 2 || x.shape(1) != codec.d() || levels < 1 || levels > codec.levels())
            throw std::invalid_argument("lookup_tables: x (nq, d) and 1 <= levels <= index levels expected");
        const size_t nq = size_t(x.shape(0));
        py::array_t<float> luts({nq, size_t(levels), size_t(codec.K())});
        py::array_t<float> biases(nq);
        dpq::scan::compute_luts_with(kernel, codec, l2, nq, x.data(), levels, luts.mutable_data(), biases.mutable_data());
        return py::make_tuple(luts, biases);
    });

    dpq::ivf::register_bindings(m);

    // C++ exceptions from our own calls reach Python as ValueError / IndexError.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const std::out_of_range& e) {
            PyErr_SetString(PyExc_IndexError, e.what());
        }
    });
}
