#include "kmeans.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "faiss_abi.h"

namespace dpq {

namespace {

// Points descriptors 1 and 2 at /dev/null for its lifetime (one at a time).
class Quiet {
   public:
    Quiet() : lock_(mutex()) {
        std::fflush(stdout), std::fflush(stderr);
        const int null = ::open("/dev/null", O_WRONLY);
        for (int fd : {1, 2}) {
            saved_[fd - 1] = null >= 0 ? ::dup(fd) : -1;
            if (saved_[fd - 1] >= 0) ::dup2(null, fd);
        }
        if (null >= 0) ::close(null);
    }
    ~Quiet() {
        std::fflush(stdout), std::fflush(stderr);
        for (int fd : {1, 2})
            if (saved_[fd - 1] >= 0) ::dup2(saved_[fd - 1], fd), ::close(saved_[fd - 1]);
    }
    Quiet(const Quiet&) = delete;
    Quiet& operator=(const Quiet&) = delete;

   private:
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    std::lock_guard<std::mutex> lock_;
    int saved_[2] = {-1, -1};
};

}  // namespace

float kmeans(size_t n, int d, const float* x, int K, float* centroids) {
    if (n < size_t(K)) throw std::invalid_argument("kmeans: need at least K = " + std::to_string(K) + " points");
    // Faiss prints when d n K > 2^30 (its log) or n < 39 K (its warning).
    const bool prints = size_t(d) * n * size_t(K) > (size_t(1) << 30) || n < size_t(39) * K;
    if (!prints) return faiss::kmeans_clustering(size_t(d), n, size_t(K), x, centroids);
    Quiet quiet;
    return faiss::kmeans_clustering(size_t(d), n, size_t(K), x, centroids);
}

}  // namespace dpq
