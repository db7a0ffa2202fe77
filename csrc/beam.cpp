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

namespace {

// Beam search of whole codes when all codebooks are known, without
// residuals: <r, c> = <x, c> - sum_{l'<l} <c_l'(b_l'), c>, from one matrix
// product of x with every codeword and a table of codeword cross products
// (levels^2 / 2 blocks of K x K). Same ranking as BeamSearch, far fewer flops.
class LutBeam {
   public:
    LutBeam(int d, int levels, int K, const float* C, const float* cnorm, const float* weights)
            : d_(d), L_(levels), K_(K), C_(C), cnorm_(cnorm), w_(weights, weights + levels), W_(levels + 1, 0.f),
              cross_(size_t(levels) * (levels - 1) / 2 * K * K) {
        for (int l = levels - 1; l >= 0; l--) W_[l] = W_[l + 1] + w_[l];
        // Block of level l: rows (l', k') for l' < l, columns k: <C_l'[k'], C_l[k]>.
        for (int l = 1; l < levels; l++)
            blas::dots_rowmajor(l * K, K, d, C, C + size_t(l) * K * d, &cross_[block(l)], K);
    }

    // Codes (n x levels) of vectors x (n x d) by beam width B and, when B > 1,
    // also greedily from the same products, keeping the better code.
    void encode(size_t n, const float* x, int B, uint8_t* codes) const {
        const size_t batch = 64, nbatch = (n + batch - 1) / batch;
        const int L = L_, LK = L * K_;
#pragma omp parallel
        {
            Scratch s(B, L, K_);
            std::vector<float> ip(batch * LK);
            std::vector<uint8_t> greedy(L);
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < int64_t(nbatch); t++) {
                const size_t i0 = size_t(t) * batch, nb = std::min(batch, n - i0);
                blas::dots_rowmajor(int(nb), LK, d_, x + i0 * d_, C_, ip.data(), LK);
                for (size_t v = 0; v < nb; v++) {
                    const float* ipv = ip.data() + v * LK;
                    const float e0 = sqnorm(x + (i0 + v) * d_, d_);
                    uint8_t* code = codes + (i0 + v) * L;
                    const float obj = search(ipv, e0, B, s, code);
                    if (B > 1 && search(ipv, e0, 1, s, greedy.data()) < obj) std::memcpy(code, greedy.data(), L);
                }
            }
        }
    }

    static size_t table_floats(int levels, int K) { return size_t(levels) * (levels - 1) / 2 * K * K; }

   private:
    struct Scratch {
        Scratch(int B, int L, int K)
                : tmp(size_t(B) * K), cand(size_t(B) * K), bc(size_t(B) * L), nbc(size_t(B) * L), err(B), acc(B),
                  nerr(B), nacc(B), best(B) {}
        std::vector<float> tmp, cand;
        std::vector<uint8_t> bc, nbc;
        std::vector<float> err, acc, nerr, nacc;
        std::vector<int> best;
    };

    // One vector: ip = its products with every codeword, e0 = ||x||^2.
    // Writes the best code and returns its (incrementally tracked) objective.
    float search(const float* ip, float e0, int B, Scratch& s, uint8_t* code) const {
        const int L = L_, K = K_;
        int entries = 1;
        s.err[0] = e0;
        s.acc[0] = 0;
        for (int l = 0; l < L; l++) {
            const float Wl = W_[l] > 0 ? W_[l] : 1e-6f * std::max(W_[0], 1e-30f);
            const float* cn = cnorm_ + size_t(l) * K;
            for (int b = 0; b < entries; b++) {
                float* tb = s.tmp.data() + size_t(b) * K;
                std::copy(ip + size_t(l) * K, ip + size_t(l + 1) * K, tb);
                for (int l2 = 0; l2 < l; l2++) {
                    const float* row = &cross_[block(l) + (size_t(l2) * K + s.bc[size_t(b) * L + l2]) * K];
                    for (int k = 0; k < K; k++) tb[k] -= row[k];
                }
                float* cb = s.cand.data() + size_t(b) * K;
                for (int k = 0; k < K; k++) cb[k] = s.acc[b] + Wl * (s.err[b] - 2 * tb[k] + cn[k]);
            }
            const int keep = std::min(B, entries * K);
            top_k(s.cand.data(), entries * K, keep, s.best.data());
            for (int e = 0; e < keep; e++) {
                const int b = s.best[e] / K, k = s.best[e] % K;
                std::memcpy(&s.nbc[size_t(e) * L], &s.bc[size_t(b) * L], l);
                s.nbc[size_t(e) * L + l] = uint8_t(k);
                s.nerr[e] = std::max(0.f, s.err[b] - 2 * s.tmp[size_t(b) * K + k] + cn[k]);
                s.nacc[e] = s.acc[b] + w_[l] * s.nerr[e];
            }
            entries = keep;
            s.bc.swap(s.nbc), s.err.swap(s.nerr), s.acc.swap(s.nacc);
        }
        // Entries are ranked by the objective itself at the last level.
        std::memcpy(code, s.bc.data(), L);
        return s.acc[0];
    }

    size_t block(int l) const { return size_t(l) * (l - 1) / 2 * K_ * K_; }

    int d_, L_, K_;
    const float *C_, *cnorm_;
    std::vector<float> w_, W_, cross_;
};

void encode_with_residuals(size_t n, int d, int levels, int K, const float* C, const float* cnorm, const float* x,
                           int beam_size, const float* weights, uint8_t* codes, float* objective) {
    // Chunks bound the memory of the beam (beam_size residuals per vector).
    const size_t chunk = 16384;
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t m = std::min(chunk, n - i0);
        BeamSearch beam(m, d, levels, beam_size, x + i0 * d, weights);
        for (int l = 0; l < levels; l++) beam.step(C + size_t(l) * K * d, cnorm + size_t(l) * K, K);
        beam.best(codes + i0 * levels, objective + i0);
    }
}

}  // namespace

void beam_encode(size_t n, int d, int levels, int K, const float* C, const float* x, int beam_size,
                 const float* weights, uint8_t* codes, float* objective, int method) {
    std::vector<float> cnorm(size_t(levels) * K);
    for (size_t t = 0; t < cnorm.size(); t++) cnorm[t] = sqnorm(C + t * d, d);
    // The cross-product table beats residuals unless it outgrows memory.
    if (method < 0) method = LutBeam::table_floats(levels, K) <= (size_t(1) << 27) ? 1 : 0;
    if (method == 1) {
        LutBeam(d, levels, K, C, cnorm.data(), weights).encode(n, x, beam_size, codes);
    } else {
        std::vector<float> obj(n);
        encode_with_residuals(n, d, levels, K, C, cnorm.data(), x, beam_size, weights, codes, obj.data());
        if (beam_size > 1) {
            // A beam can drop the greedy path: keep whichever code is better.
            std::vector<uint8_t> greedy(n * levels);
            std::vector<float> obj_greedy(n);
            encode_with_residuals(n, d, levels, K, C, cnorm.data(), x, 1, weights, greedy.data(), obj_greedy.data());
            for (size_t i = 0; i < n; i++)
                if (obj_greedy[i] < obj[i]) std::memcpy(codes + i * levels, &greedy[i * levels], levels);
        }
    }
    // Objectives recomputed exactly from the codes (the search tracks them incrementally).
    if (objective) prefix_objective(n, d, levels, K, C, x, codes, weights, objective);
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
