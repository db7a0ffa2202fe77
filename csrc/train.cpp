#include "train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>

#include "beam.h"
#include "blas.h"
#include "kmeans.h"

namespace dpq {

namespace {

float sqnorm(const float* a, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += a[j] * a[j];
    return s;
}

void fail(const std::string& what) { throw std::invalid_argument("TrainParameters." + what); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One-line progress bar on stderr, redrawn in place.
void progress(const char* stage, int done, int total, double elapsed) {
    const int width = 30, filled = total ? done * width / total : width;
    std::fprintf(stderr, "\rtrain_codebooks: %s [%.*s%.*s] %d/%d %.1f s", stage, filled,
                 "##############################", width - filled, "..............................", done, total,
                 elapsed);
    std::fflush(stderr);
}

}  // namespace

// ---------------------------------------------------------------- parameters

void TrainParams::validate(int levels) const {
    if (rounds < 0 || rounds > 1000) fail("rounds must be in [0, 1000], got " + std::to_string(rounds));
    if (beam_size < 1 || beam_size > 256) fail("beam_size must be in [1, 256], got " + std::to_string(beam_size));
    if (kmeans_max_points_per_centroid < 1)
        fail("kmeans_max_points_per_centroid must be >= 1, got " + std::to_string(kmeans_max_points_per_centroid));
    if (tail_kmeans_max_points < 0)
        fail("tail_kmeans_max_points must be >= 0 (0: no further limit), got " +
             std::to_string(tail_kmeans_max_points));
    if (!(ridge > 0) || !std::isfinite(ridge)) fail("ridge must be a positive finite number, got " + std::to_string(ridge));
    double sum = 0;
    for (float w : prefix_weights) {
        if (!(w >= 0) || !std::isfinite(w))
            fail("prefix_weights must be finite and >= 0, got " + std::to_string(w));
        sum += w;
    }
    if (!prefix_weights.empty() && !(sum > 0)) fail("prefix_weights must not all be 0");
    if (levels > 0 && !prefix_weights.empty() && int(prefix_weights.size()) != levels)
        fail("prefix_weights must have one weight per level (" + std::to_string(levels) + "), got " +
             std::to_string(prefix_weights.size()));
}

std::vector<float> default_prefix_weights(int levels) {
    // Weight 1 on the prefixes of power-of-two length and on the full code,
    // 0 elsewhere. On held-out MiniLM (one 32 x 8-bit model) this was level
    // with uniform weights from 2 to 16 levels (within 0.7 recall points) and
    // far ahead at 24 and 32 (+2.2 and +5.1, although 24 carries no weight):
    // the levels between two weighted prefixes are coded jointly for the
    // longer one. benchmarks/prefix_weights.py; the table is in the README.
    std::vector<float> w(levels, 0.f);
    for (int m = 1; m <= levels; m *= 2) w[m - 1] = 1.f;
    w[levels - 1] = 1.f;
    return w;
}

std::vector<float> resolve_prefix_weights(const TrainParams& params, int levels) {
    params.validate(levels);
    std::vector<float> w = params.prefix_weights.empty() ? default_prefix_weights(levels) : params.prefix_weights;
    const double sum = std::accumulate(w.begin(), w.end(), 0.0);
    for (float& v : w) v = float(v / sum);
    return w;
}

// ---------------------------------------------------------------- k-means of a level

namespace {

// K-means of the next level on the beam's residuals, at most max_points of
// them (and at least K), by Faiss's progressive-dimension k-means
// as Faiss's RQ trains its levels: plain k-means gave the same training error
// but measured 1-1.5 recall points lower on held-out MiniLM at 4 and 8 bytes,
// for RQ and for this trainer alike. The sample holds `vectors` (the same at
// every level, in the same order) with beam_size rows each (entry b, or the
// last live entry; k-means on the best entry alone measured 2.5 recall
// points lower at 4 and 8 bytes), so that every level's k-means starts from
// the residuals of the same vectors; with plain k-means a fresh pick per
// level cost 3-5 recall points. Level 0 has one live entry, so its sample
// repeats each vector beam_size times: one row per vector (as Faiss's RQ)
// saved 7% of the time and moved held-out recall by -0.5 to +0.4 points (two
// folds x three seeds), so the repeat stays.
void kmeans_level(const BeamSearch& beam, int d, int K, size_t max_points, const std::vector<size_t>& vectors,
                  float* centroids) {
    const size_t E = size_t(beam.beam_size());
    const size_t nv = std::min(vectors.size(), std::max((size_t(K) + E - 1) / E, max_points / E));
    const size_t m = nv * E;
    std::vector<float> pts(m * d);
    for (size_t p = 0; p < m; p++) {
        const int b = int(std::min(p % E, size_t(beam.entries() - 1)));
        std::memcpy(&pts[p * d], beam.residual(vectors[p / E], b), sizeof(float) * d);
    }
    kmeans(m, d, pts.data(), K, /*progressive_dim=*/true, centroids);
}

}  // namespace

// ---------------------------------------------------------------- least squares

void solve_codebooks(size_t n, int d, const float* x, int levels, int K, const uint8_t* codes,
                     const float* weights, float ridge, const float* C_prev, float* C) {
    const int L = levels, LK = L * K;
    // W[l] = sum_{m >= l} w_m: the weight of every prefix that contains level l.
    std::vector<double> W(L + 1, 0.0);
    for (int l = L - 1; l >= 0; l--) W[l] = W[l + 1] + weights[l];
    // Normal matrix N[(l,k),(l',k')] = W(max(l,l')) #{i : b_il = k, b_il' = k'}
    // and right-hand side R[(l,k)] = W(l) sum_{i : b_il = k} x_i, stored
    // column-major (LK x d) for LAPACK. Each thread owns whole row blocks.
    std::vector<double> N(size_t(LK) * LK, 0.0), R(size_t(LK) * d, 0.0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int l = 0; l < L; l++) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t* b = codes + i * L;
            const size_t row = size_t(l) * K + b[l];
            double* Nr = &N[row * LK];
            for (int l2 = 0; l2 < L; l2++) Nr[size_t(l2) * K + b[l2]] += W[std::max(l, l2)];
            const float* xi = x + i * d;
            for (int j = 0; j < d; j++) R[size_t(j) * LK + row] += W[l] * xi[j];
        }
    }
    double trace = 0;
    for (int r = 0; r < LK; r++) trace += N[size_t(r) * LK + r];
    const double lam = ridge * trace / LK;
    for (int r = 0; r < LK; r++) {
        N[size_t(r) * LK + r] += lam;
        for (int j = 0; j < d; j++) R[size_t(j) * LK + r] += lam * C_prev[size_t(r) * d + j];
    }
    int info = 0;
    dposv_("L", &LK, &d, N.data(), &LK, R.data(), &LK, &info);
    if (info != 0)  // cannot happen with lam > 0 unless the input was not finite
        throw std::runtime_error("solve_codebooks: the normal matrix is not positive definite (info " +
                                 std::to_string(info) + ")");
    for (int r = 0; r < LK; r++)
        for (int j = 0; j < d; j++) C[size_t(r) * d + j] = float(R[size_t(j) * LK + r]);
}

// ---------------------------------------------------------------- trainer

std::vector<float> train_codebooks(size_t n, int d, const float* x, int levels, int nbits,
                                   const TrainParams& params) {
    const int L = levels, K = 1 << nbits, B = params.beam_size;
    if (n < size_t(K))
        throw std::invalid_argument("train_codebooks: need at least " + std::to_string(K) +
                                    " training vectors (K codewords per level), got " + std::to_string(n));
    const std::vector<float> w = resolve_prefix_weights(params, L);
    const auto t0 = std::chrono::steady_clock::now();
    const bool verbose = params.verbose;

    // 1. Progressive initialisation on the residuals of the beam.
    std::vector<float> C(size_t(L) * K * d), cnorm(size_t(L) * K);
    std::vector<uint8_t> codes(n * L);
    std::vector<float> obj(n);
    {
        BeamSearch beam(n, d, L, B, x, w.data());
        std::vector<size_t> vectors(n);  // seeded order, one for all levels
        std::iota(vectors.begin(), vectors.end(), 0);
        std::mt19937_64 rng(uint64_t(params.seed));
        for (size_t i = n - 1; i > 0; i--) std::swap(vectors[i], vectors[rng() % (i + 1)]);
        for (int l = 0; l < L; l++) {
            if (verbose) progress("init levels", l, L, seconds_since(t0));
            float* Cl = C.data() + size_t(l) * K * d;
            size_t max_points = size_t(K) * size_t(params.kmeans_max_points_per_centroid);
            if (l >= L / 2 && params.tail_kmeans_max_points > 0)
                max_points = std::min(max_points, size_t(params.tail_kmeans_max_points));
            kmeans_level(beam, d, K, max_points, vectors, Cl);
            for (int k = 0; k < K; k++) cnorm[size_t(l) * K + k] = sqnorm(Cl + size_t(k) * d, d);
            beam.step(Cl, &cnorm[size_t(l) * K], K);
        }
        beam.best(codes.data(), obj.data());
        if (verbose) progress("init levels", L, L, seconds_since(t0)), std::fprintf(stderr, "\n");
    }

    // 2. Rounds: re-encode (from the second round on), then solve.
    auto total = [&](const std::vector<float>& o) { return std::accumulate(o.begin(), o.end(), 0.0) / n; };
    std::vector<float> C_new(C.size()), obj_new(n);
    std::vector<uint8_t> codes_new(n * L);
    for (int r = 0; r < params.rounds; r++) {
        const double before_encode = total(obj);
        if (r > 0) {
            beam_encode(n, d, L, K, C.data(), x, B, w.data(), codes_new.data(), obj_new.data());
            // Keep a vector's previous code where the beam found no better one.
            for (size_t i = 0; i < n; i++)
                if (obj_new[i] < obj[i]) {
                    obj[i] = obj_new[i];
                    std::memcpy(&codes[i * L], &codes_new[i * L], L);
                }
        }
        const double before = total(obj);
        solve_codebooks(n, d, x, L, K, codes.data(), w.data(), params.ridge, C.data(), C_new.data());
        prefix_objective(n, d, L, K, C_new.data(), x, codes.data(), w.data(), obj_new.data());
        const double after = total(obj_new);
        // The exact minimiser cannot be worse; rounding in the solve could be.
        if (after <= before) C.swap(C_new), obj.swap(obj_new);
        if (verbose)
            std::fprintf(stderr, "train_codebooks: round %d/%d objective %.6g -> %.6g (encode) -> %.6g (solve) %.1f s\n",
                         r + 1, params.rounds, before_encode, before, std::min(before, after), seconds_since(t0));
    }
    return C;
}

}  // namespace dpq
