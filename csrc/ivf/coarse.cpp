#include "coarse.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <typeinfo>

#include "../codec.h"
#include "../scan/dispatch.h"
#include "../topk.h"

namespace dpq::ivf {

namespace {

// Scores of this many queries are held at once (per thread), and at most
// this many floats of them.
constexpr size_t kChunkQueries = 64;
constexpr size_t kChunkFloats = size_t(1) << 20;

bool is_plain_flat(const faiss::Index& q) {
    // By the dynamic type's name: Faiss's classes are not declared here
    // (faiss_abi.h), and a subclass (e.g. IndexFlat1D, a user's own) may
    // search differently.
    const char* name = typeid(q).name();
    for (const char* flat : {"N5faiss9IndexFlatE", "N5faiss11IndexFlatL2E", "N5faiss11IndexFlatIPE"})
        if (std::strcmp(name, flat) == 0) return true;
    return false;
}

}  // namespace

CentroidSearch::CentroidSearch(const float* centroids, size_t nlist, int d, faiss::MetricType metric)
        : nlist_(nlist), d_(d), l2_(metric == faiss::METRIC_L2), panels_(table_panel_floats(nlist, d)) {
    pack_table_panels(centroids, nlist, d, panels_.data());
    if (!l2_) return;
    norms_.resize(nlist);
    for (size_t j = 0; j < nlist; j++) {
        const float* c = centroids + j * d;
        float n = 0;
        for (int t = 0; t < d; t++) n += c[t] * c[t];
        norms_[j] = n;
    }
}

bool CentroidSearch::stands_in_for(const faiss::Index& quantizer, const float* centroids, size_t nlist, int d) {
    if (!is_plain_flat(quantizer) || quantizer.d != d || size_t(quantizer.ntotal) != nlist) return false;
    if (quantizer.metric_type != faiss::METRIC_L2 && quantizer.metric_type != faiss::METRIC_INNER_PRODUCT)
        return false;
    std::vector<float> held(nlist * size_t(d));
    quantizer.reconstruct_n(0, faiss::idx_t(nlist), held.data());
    return std::memcmp(held.data(), centroids, held.size() * sizeof(float)) == 0;
}

void CentroidSearch::search(size_t nq, const float* x, size_t nprobe, int64_t* lists) const {
    const scan::DotsFn dots = scan::fastest_kernels().dots;
    const size_t chunk = std::clamp<size_t>(kChunkFloats / nlist_, 1, kChunkQueries);
    const size_t nchunks = (nq + chunk - 1) / chunk;
#pragma omp parallel if (nchunks > 1)
    {
        std::vector<float> scores(chunk * nlist_), dis(nprobe);
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < nchunks; c++) {
            const size_t q0 = c * chunk, n = std::min(chunk, nq - q0);
            dots(x + q0 * d_, n, panels_.data(), nlist_, d_, scores.data(), nlist_);
            for (size_t q = 0; q < n; q++) {
                const float* dot = scores.data() + q * nlist_;
                TopK best(nprobe);
                for (size_t j = 0; j < nlist_; j++) {
                    const float s = l2_ ? norms_[j] - 2.f * dot[j] : -dot[j];
                    if (s <= best.threshold()) best.push(s, int64_t(j));
                }
                best.extract(dis.data(), lists + (q0 + q) * nprobe, 0.f, 1.f);
            }
        }
    }
}

}  // namespace dpq::ivf
