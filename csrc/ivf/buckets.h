// Rows grouped by a small integer key, by a stable counting sort: how add
// groups vectors by list, and the two-level k-means its sample by cluster.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dpq::ivf {

struct Buckets {
    std::vector<size_t> start;  // nkeys + 1: key k's rows are order[start[k] .. start[k + 1])
    std::vector<size_t> order;  // row numbers, ascending within a key
    size_t size(size_t k) const { return start[k + 1] - start[k]; }
};

// keys: n values in [0, nkeys).
inline Buckets bucket_rows(size_t n, const int64_t* keys, size_t nkeys) {
    Buckets b{std::vector<size_t>(nkeys + 1, 0), std::vector<size_t>(n)};
    for (size_t i = 0; i < n; i++) b.start[size_t(keys[i]) + 1]++;
    for (size_t k = 0; k < nkeys; k++) b.start[k + 1] += b.start[k];
    std::vector<size_t> fill(b.start.begin(), b.start.end() - 1);
    for (size_t i = 0; i < n; i++) b.order[fill[size_t(keys[i])]++] = i;
    return b;
}

}  // namespace dpq::ivf
