#include "kmeans.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace dpq {

namespace {

std::mutex registry_mutex;
std::shared_ptr<const ClusteringFn> registered;

}  // namespace

void set_clustering(ClusteringFn fn) {
    auto held = std::make_shared<const ClusteringFn>(std::move(fn));
    std::lock_guard<std::mutex> lock(registry_mutex);
    registered = std::move(held);
}

void kmeans(size_t n, int d, const float* x, int K, bool progressive_dim, float* centroids) {
    if (n < size_t(K)) throw std::invalid_argument("kmeans: need at least K = " + std::to_string(K) + " points");
    std::shared_ptr<const ClusteringFn> fn;
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        fn = registered;
    }
    if (!fn || !*fn) throw std::runtime_error("kmeans: no k-means registered (import pyfaiss_dpq first)");
    (*fn)(n, d, x, K, progressive_dim, centroids);
}

std::vector<float> sample_rows(size_t n, int d, const float* x, size_t max_rows, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const size_t m = std::min(n, max_rows);
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    for (size_t i = 0; i < m; i++) std::swap(idx[i], idx[i + rng() % (n - i)]);
    std::vector<float> pts(m * d);
    for (size_t i = 0; i < m; i++) std::memcpy(&pts[i * d], x + idx[i] * d, sizeof(float) * d);
    return pts;
}

void kmeans_sampled(size_t n, int d, const float* x, int K, int max_points_per_centroid, uint64_t seed,
                    float* centroids) {
    if (n < size_t(K)) throw std::invalid_argument("kmeans: need at least K = " + std::to_string(K) + " points");
    const std::vector<float> pts = sample_rows(n, d, x, size_t(K) * size_t(max_points_per_centroid), seed);
    kmeans(pts.size() / d, d, pts.data(), K, /*progressive_dim=*/false, centroids);
}

}  // namespace dpq
