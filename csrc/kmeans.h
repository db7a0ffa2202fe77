// Faiss's k-means, reached through the function pyfaiss_dpq registers when it
// is imported (pyfaiss_dpq/_clustering.py, faiss's Python API).
//
// Why not call faiss::Clustering from C++: its parameter struct is not ABI
// stable (ClusteringParameters grew in 1.14 and again in 1.15.1), so using
// it here would mean declaring and checking one layout per release, and the
// only k-means entry point without a struct (faiss::kmeans_clustering) can
// neither be warm-started nor kept quiet. Faiss's Python API is the surface
// Faiss keeps stable, and it reaches the same C++ code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace dpq {

// Writes K x d centroids of x (n x d, n >= K; a read-only view for the call).
// progressive_dim: Faiss's ProgressiveDimClustering (PCA, then k-means warm
// started in growing dimensions, as Faiss's ResidualQuantizer trains each
// level); else Faiss's Clustering (25 iterations, random start). Both with
// Faiss's fixed seed, so the starting rows are picked by position alone.
using ClusteringFn = std::function<void(size_t n, int d, const float* x, int K, bool progressive_dim,
                                        float* centroids)>;

// Registers the k-means implementation (once, at import; thread-safe).
void set_clustering(ClusteringFn fn);

// Runs the registered k-means; std::runtime_error when none is registered.
void kmeans(size_t n, int d, const float* x, int K, bool progressive_dim, float* centroids);

// A seeded sample of min(n, max_rows) rows of x (n x d), as kmeans_sampled takes it.
std::vector<float> sample_rows(size_t n, int d, const float* x, size_t max_rows, uint64_t seed);

// Plain k-means on a seeded sample of at most K * max_points_per_centroid
// rows of x (deterministic for a seed): IndexIVFDPQ's coarse quantizer, as
// Faiss's IVF trains it, and the 1-D codebooks of quantized norms.
void kmeans_sampled(size_t n, int d, const float* x, int K, int max_points_per_centroid, uint64_t seed,
                    float* centroids);

}  // namespace dpq
