#include "beam.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "blas.h"

namespace dpq {

namespace {

constexpr size_t kBatch = 64;  // vectors per matrix product: B * 64 rows against K codewords

float sqnorm(const float* a, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += a[j] * a[j];
    return s;
}

// The `keep` smallest (score, index) pairs of scores[0..n), best first; ties
// go to the lower index, so the choice never depends on the thread count.
int top_k(const float* scores, int n, int keep, int* best) {
    int count = 0;
    for (int c = 0; c < n; c++) {
        const float s = scores[c];
        if (count == keep && !(s < scores[best[count - 1]])) continue;
        int pos = count < keep ? count++ : keep - 1;
        while (pos > 0 && s < scores[best[pos - 1]]) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = c;
    }
    return count;
}

}  // namespace

BeamSearch::BeamSearch(size_t n, int d, int levels, int beam_size, const float* x, const float* weights)
        : n_(n), d_(d), L_(levels), B_(beam_size), w_(weights, weights + levels), W_(levels + 1, 0.f),
          res_(n * beam_size * d, 0.f), codes_(n * beam_size * levels, 0), err_(n * beam_size, 0.f),
          acc_(n * beam_size, 0.f) {
    for (int l = levels - 1; l >= 0; l--) W_[l] = W_[l + 1] + w_[l];
    for (size_t i = 0; i < n; i++) {
        std::memcpy(&res_[i * B_ * d_], x + i * d_, sizeof(float) * d_);
        err_[i * B_] = sqnorm(x + i * d_, d_);
    }
}

void BeamSearch::step_batch(size_t i0, size_t i1, const float* C, const float* cnorm, int K, float* dots,
                            float* new_res, uint8_t* new_codes, float* new_err, float* new_acc) const {
    const int B = B_, l = level_, nb = int(i1 - i0);
    // All B rows of each vector take part in the product, live or not: rows
    // of dead entries are zeros and are never selected.
    blas::dots_rowmajor(nb * B, K, d_, &res_[i0 * B * d_], C, dots, K);
    // With no weight left, the remaining levels cannot change the objective;
    // a tiny weight still makes them pick the nearest codeword.
    const float Wl = W_[l] > 0 ? W_[l] : 1e-6f * std::max(W_[0], 1e-30f);
    const int keep = std::min(B, entries_ * K);
    std::vector<float> cand(size_t(entries_) * K);
    std::vector<int> best(keep);
    for (int v = 0; v < nb; v++) {
        const size_t i = i0 + v;
        for (int b = 0; b < entries_; b++) {
            const float* dv = dots + (size_t(v) * B + b) * K;
            const float a = acc_[i * B + b], e = err_[i * B + b];
            for (int k = 0; k < K; k++) cand[size_t(b) * K + k] = a + Wl * (e - 2 * dv[k] + cnorm[k]);
        }
        top_k(cand.data(), entries_ * K, keep, best.data());
        for (int t = 0; t < keep; t++) {
            const int b = best[t] / K, k = best[t] % K;
            const size_t src = i * B + b, dst = size_t(v) * B + t;
            std::memcpy(new_codes + dst * L_, &codes_[src * L_], L_);
            new_codes[dst * L_ + l] = uint8_t(k);
            const float* r = &res_[src * d_];
            const float* c = C + size_t(k) * d_;
            float* nr = new_res + dst * d_;
            for (int j = 0; j < d_; j++) nr[j] = r[j] - c[j];
            new_err[dst] = sqnorm(nr, d_);
            new_acc[dst] = acc_[src] + w_[l] * new_err[dst];
        }
    }
}

void BeamSearch::step(const float* C, const float* cnorm, int K) {
    const int B = B_;
    const size_t nbatch = (n_ + kBatch - 1) / kBatch;
    const int keep = std::min(B, entries_ * K);
#pragma omp parallel
    {
        std::vector<float> dots(kBatch * B * K), nres(kBatch * B * d_), nerr(kBatch * B), nacc(kBatch * B);
        std::vector<uint8_t> ncodes(kBatch * B * L_);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < int64_t(nbatch); t++) {
            const size_t i0 = size_t(t) * kBatch, i1 = std::min(n_, i0 + kBatch);
            step_batch(i0, i1, C, cnorm, K, dots.data(), nres.data(), ncodes.data(), nerr.data(), nacc.data());
            // Each batch owns rows [i0, i1): writing back races with nothing.
            for (size_t v = 0; v < i1 - i0; v++)
                for (int e = 0; e < keep; e++) {
                    const size_t src = v * B + e, dst = (i0 + v) * B + e;
                    std::memcpy(&res_[dst * d_], &nres[src * d_], sizeof(float) * d_);
                    std::memcpy(&codes_[dst * L_], &ncodes[src * L_], L_);
                    err_[dst] = nerr[src];
                    acc_[dst] = nacc[src];
                }
        }
    }
    entries_ = keep;
    level_++;
}

void BeamSearch::best(uint8_t* codes, float* objective) const {
    for (size_t i = 0; i < n_; i++) {
        // Entries are sorted by their ranking score, which at the last level
        // is the objective itself; elsewhere pick by what has been fixed.
        int b_best = 0;
        for (int b = 1; b < entries_; b++)
            if (acc_[i * B_ + b] + W_[level_] * err_[i * B_ + b] <
                acc_[i * B_ + b_best] + W_[level_] * err_[i * B_ + b_best])
                b_best = b;
        std::memcpy(codes + i * level_, &codes_[(i * B_ + b_best) * L_], level_);
        if (objective) objective[i] = acc_[i * B_ + b_best];
    }
}

void beam_encode(size_t n, int d, int levels, int K, const float* C, const float* x, int beam_size,
                 const float* weights, uint8_t* codes, float* objective) {
    std::vector<float> cnorm(size_t(levels) * K);
    for (size_t t = 0; t < cnorm.size(); t++) cnorm[t] = sqnorm(C + t * d, d);
    // Chunks bound the memory of the beam (beam_size residuals per vector).
    const size_t chunk = 16384;
    std::vector<float> obj(std::min(n, chunk)), obj_greedy(std::min(n, chunk));
    std::vector<uint8_t> greedy(std::min(n, chunk) * levels);
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t m = std::min(chunk, n - i0);
        BeamSearch beam(m, d, levels, beam_size, x + i0 * d, weights);
        for (int l = 0; l < levels; l++) beam.step(C + size_t(l) * K * d, &cnorm[size_t(l) * K], K);
        beam.best(codes + i0 * levels, obj.data());
        if (beam_size > 1) {
            // A beam can drop the greedy path: keep whichever code is better.
            BeamSearch g(m, d, levels, 1, x + i0 * d, weights);
            for (int l = 0; l < levels; l++) g.step(C + size_t(l) * K * d, &cnorm[size_t(l) * K], K);
            g.best(greedy.data(), obj_greedy.data());
            for (size_t i = 0; i < m; i++)
                if (obj_greedy[i] < obj[i]) {
                    obj[i] = obj_greedy[i];
                    std::memcpy(codes + (i0 + i) * levels, &greedy[i * levels], levels);
                }
        }
        if (objective) std::copy(obj.begin(), obj.begin() + m, objective + i0);
    }
}

void prefix_objective(size_t n, int d, int levels, int K, const float* C, const float* x,
                      const uint8_t* codes, const float* weights, float* objective) {
#pragma omp parallel if (n > 256)
    {
        std::vector<float> r(d);
#pragma omp for
        for (int64_t i = 0; i < int64_t(n); i++) {
            std::memcpy(r.data(), x + i * d, sizeof(float) * d);
            float acc = 0;
            for (int l = 0; l < levels; l++) {
                const float* c = C + (size_t(l) * K + codes[i * levels + l]) * d;
                for (int j = 0; j < d; j++) r[j] -= c[j];
                acc += weights[l] * sqnorm(r.data(), d);
            }
            objective[i] = acc;
        }
    }
}

}  // namespace dpq
