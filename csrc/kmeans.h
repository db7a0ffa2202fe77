// Faiss's k-means (faiss::kmeans_clustering), without its console output.
#pragma once

#include <cstddef>

namespace dpq {

// Faiss's k-means (25 iterations, initial centroids: K rows of x picked by
// Faiss's fixed seed, so by row position alone) on x (n x d, n >= K). What
// Faiss prints on the way (its iteration log above 2^30 flops per iteration,
// its few-points warning) is discarded: stdout and stderr are redirected
// while it runs, so other threads' output in that window is lost too.
// Writes K x d centroids; returns the quantization error.
float kmeans(size_t n, int d, const float* x, int K, float* centroids);

}  // namespace dpq
