#include "coarse.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <typeinfo>

#include "../blas.h"
#include "../kmeans.h"
#include "../topk.h"
#include "buckets.h"

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

// Lloyd iterations over the whole sample after the two levels: a split of
// each first-level cluster alone ends far from a k-means of the sample
// (100k synthetic 96-d vectors, 1,024 lists: mean squared distance 0.347
// two-level, 0.281 flat; Faiss's contrib two_level_clustering gives the
// same 0.347). 2 / 4 / 8 iterations gave 0.302 / 0.287 / 0.281, the whole
// training 2.6 / 3.0 / 3.7 s against 17.4 s flat (2-core AVX-512 VM).
constexpr int kRefineIterations = 8;

// Lloyd iterations on x from the given centroids (empty clusters keep theirs).
void refine(size_t n, int d, const float* x, size_t k, int iterations, float* centroids) {
    std::vector<int64_t> assign(n);
    std::vector<double> sums(k * d);
    std::vector<size_t> counts(k);
    for (int it = 0; it < iterations; it++) {
        CentroidSearch(centroids, k, d, faiss::METRIC_L2).search(n, x, 1, assign.data());
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0);
        for (size_t i = 0; i < n; i++) {
            const size_t c = size_t(assign[i]);
            counts[c]++;
            for (int t = 0; t < d; t++) sums[c * d + t] += x[i * d + t];
        }
        for (size_t c = 0; c < k; c++)
            if (counts[c])
                for (int t = 0; t < d; t++) centroids[c * d + t] = float(sums[c * d + t] / double(counts[c]));
    }
}

}  // namespace

void train_coarse(size_t n, int d, const float* x, size_t nlist, bool two_level, uint64_t seed, float* centroids) {
    constexpr int kPointsPerCentroid = 256;  // Faiss's default sample
    const size_t nc1 = size_t(std::lround(std::sqrt(double(nlist))));
    if (!two_level || nc1 < 2) {
        kmeans_sampled(n, d, x, int(nlist), kPointsPerCentroid, seed, centroids);
        return;
    }
    // The sample the flat k-means would take.
    const std::vector<float> sample = sample_rows(n, d, x, nlist * kPointsPerCentroid, seed);
    const size_t m = sample.size() / d;
    // First level, and each sample row's cluster.
    std::vector<float> c1(nc1 * d);
    kmeans(m, d, sample.data(), int(nc1), false, c1.data());
    std::vector<int64_t> assign(m);
    CentroidSearch(c1.data(), nc1, d, faiss::METRIC_L2).search(m, sample.data(), 1, assign.data());
    const Buckets by_cluster = bucket_rows(m, assign.data(), nc1);
    // nlist split by cluster size: floors, then the largest remainders,
    // never more centroids than rows in a cluster.
    std::vector<size_t> share(nc1);
    std::vector<std::pair<double, size_t>> rest;
    size_t given = 0;
    for (size_t c = 0; c < nc1; c++) {
        const double want = double(nlist) * double(by_cluster.size(c)) / double(m);
        share[c] = size_t(want);
        given += share[c];
        rest.emplace_back(want - double(share[c]), c);
    }
    std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t r = 0; given < nlist; r = (r + 1) % nc1) {
        const size_t c = rest[r].second;
        if (share[c] < by_cluster.size(c)) share[c]++, given++;
    }
    // Second level, cluster by cluster.
    float* out = centroids;
    std::vector<float> pts;
    for (size_t c = 0; c < nc1; c++) {
        if (!share[c]) continue;
        const size_t rows = by_cluster.size(c);
        pts.resize(rows * d);
        for (size_t i = 0; i < rows; i++)
            std::memcpy(&pts[i * d], &sample[by_cluster.order[by_cluster.start[c] + i] * d], sizeof(float) * d);
        kmeans(rows, d, pts.data(), int(share[c]), false, out);
        out += share[c] * d;
    }
    refine(m, d, sample.data(), nlist, kRefineIterations, centroids);
}

CentroidSearch::CentroidSearch(const float* centroids, size_t nlist, int d, faiss::MetricType metric)
        : nlist_(nlist), d_(d), l2_(metric == faiss::METRIC_L2), rows_(centroids, centroids + nlist * size_t(d)) {
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
    if (nlist > size_t(std::numeric_limits<int>::max())) return false;  // BLAS dimensions are ints
    if (quantizer.metric_type != faiss::METRIC_L2 && quantizer.metric_type != faiss::METRIC_INNER_PRODUCT)
        return false;
    std::vector<float> held(nlist * size_t(d));
    quantizer.reconstruct_n(0, faiss::idx_t(nlist), held.data());
    return std::memcmp(held.data(), centroids, held.size() * sizeof(float)) == 0;
}

void CentroidSearch::search(size_t nq, const float* x, size_t nprobe, int64_t* lists) const {
    // No bigger than the search: a one-query search allocates one row of scores.
    const size_t chunk = std::min(std::clamp<size_t>(kChunkFloats / nlist_, 1, kChunkQueries), std::max<size_t>(nq, 1));
    const size_t nchunks = (nq + chunk - 1) / chunk;
#pragma omp parallel if (nchunks > 1)
    {
        std::vector<float> scores(chunk * nlist_), dis(nprobe);
        SmallestOfDense smallest;
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < nchunks; c++) {
            const size_t q0 = c * chunk, n = std::min(chunk, nq - q0);
            blas::dots_rowmajor(int(n), int(nlist_), d_, x + q0 * d_, rows_.data(), scores.data(), int(nlist_));
            for (size_t q = 0; q < n; q++) {
                float* score = scores.data() + q * nlist_;
                // Scores first (a loop the compiler vectorizes), then the
                // selection: SmallestOfDense where nprobe is small against
                // nlist, else one pass against a threshold held in a register.
                if (l2_) {
                    for (size_t j = 0; j < nlist_; j++) score[j] = norms_[j] - 2.f * score[j];
                } else {
                    for (size_t j = 0; j < nlist_; j++) score[j] = -score[j];
                }
                if (SmallestOfDense::suits(nlist_, nprobe)) {
                    smallest.select(score, nlist_, nprobe, dis.data(), lists + (q0 + q) * nprobe);
                    continue;
                }
                TopK best(nprobe);
                float T = best.threshold();
                for (size_t j = 0; j < nlist_; j++) {
                    if (score[j] <= T) {
                        best.push(score[j], int64_t(j));
                        T = best.threshold();
                    }
                }
                best.extract(dis.data(), lists + (q0 + q) * nprobe, 0.f, 1.f);
            }
        }
    }
}

}  // namespace dpq::ivf
