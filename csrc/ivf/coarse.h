// The coarse level: trained (flat or two-level k-means), and searched from
// the index's own copy of the centroids.
//
// When the quantizer is a plain flat index (IndexFlat, IndexFlatL2,
// IndexFlatIP) holding exactly those centroids, its search is an exhaustive
// product of the queries with the centroids, which this computes itself
// instead of calling the quantizer. The faiss-cpu wheel's search (per
// (query, centroid) pair below 20 queries, else BLAS, then its selection)
// was 11-19% of an IndexIVFDPQ search at nprobe 2-32 (256 lists, 96-d). The
// product is one sgemm of the bundled OpenBLAS (blas.h): on an AMD EPYC VM,
// 1,000 queries, it ran 1.1x (256 x 64-d centroids) to 1.6x (1,024 x 384-d)
// as fast as the lookup tables' kernel (scan/kernels.h DotsFn), which did it
// before.
// Lists are ranked as the flat index ranks them (L2: ||c||^2 - 2 <q, c>,
// the query's norm dropped; inner product: -<q, c>), ties to the lower list
// number; the scores agree with Faiss's to float rounding, so only lists
// tied to within it may be probed in another order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../faiss_abi.h"

namespace dpq::ivf {

// nlist centroids of x (n x d, n >= nlist) by Faiss's k-means on a seeded
// sample of at most 256 rows a centroid, as Faiss's IVF trains its
// quantizer. two_level: first sqrt(nlist) clusters, then each split into a
// share of the nlist proportional to its sample rows (largest remainders),
// as faiss.contrib.clustering.two_level_clustering does (k-means costs
// sample x nlist x d an iteration flat, about sample x 2 sqrt(nlist) x d so),
// then a few Lloyd iterations over the whole sample (coarse.cpp).
void train_coarse(size_t n, int d, const float* x, size_t nlist, bool two_level, uint64_t seed, float* centroids);

class CentroidSearch {
   public:
    // Empty: nothing to search (see usable()).
    CentroidSearch() = default;
    // nlist x d centroids, ranked by `metric` (L2 or inner product).
    CentroidSearch(const float* centroids, size_t nlist, int d, faiss::MetricType metric);

    // Whether `quantizer` is a flat index of a supported metric that holds
    // exactly `centroids` (nlist x d), so that this search may stand in for it.
    static bool stands_in_for(const faiss::Index& quantizer, const float* centroids, size_t nlist, int d);

    // nq x nprobe list numbers, nearest first (nprobe <= nlist).
    // Multi-threaded; call outside a parallel region.
    void search(size_t nq, const float* x, size_t nprobe, int64_t* lists) const;

   private:
    size_t nlist_ = 0;
    int d_ = 0;
    bool l2_ = true;
    std::vector<float> rows_;   // the centroids, nlist x d
    std::vector<float> norms_;  // ||c||^2 (L2)
};

}  // namespace dpq::ivf
