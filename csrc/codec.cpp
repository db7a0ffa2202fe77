#include "codec.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

namespace dpq {

namespace {
float dot(const float* a, const float* b, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s += a[j] * b[j];
    return s;
}
}  // namespace

void pack_table_panels(const float* M, size_t n, int d, float* panels) {
    std::fill(panels, panels + table_panel_floats(n, d), 0.f);
    for (size_t j = 0; j < n; j++) {
        float* dst = panels + (j / kTablePanel) * kTablePanel * d + j % kTablePanel;
        for (int t = 0; t < d; t++) dst[size_t(t) * kTablePanel] = M[j * d + t];
    }
}

Codec::Codec(int d, int levels, int nbits)
        : d_(d), levels_(levels), nbits_(nbits),
          C_(size_t(levels) * (1 << nbits) * d, 0.f),
          cnorm_(size_t(levels) * (1 << nbits), 0.f),
          panels_(table_panel_floats(size_t(levels) * (1 << nbits), d), 0.f) {}

void Codec::set_codebooks(const float* C) {
    std::copy(C, C + C_.size(), C_.begin());
    pack_table_panels(C_.data(), size_t(levels_) * K(), d_, panels_.data());
    for (int l = 0; l < levels_; l++)
        for (int k = 0; k < K(); k++) {
            const float* c = codeword(l, k);
            cnorm_[l * K() + k] = dot(c, c, d_);
        }
}

void Codec::encode_greedy(const float* x, uint8_t* code, float* r) const {
    std::memcpy(r, x, sizeof(float) * d_);
    for (int l = 0; l < levels_; l++) {
        // argmin ||r - c||^2 = argmin ||c||^2 - 2 <r, c>
        int best = 0;
        float best_d = std::numeric_limits<float>::infinity();
        for (int k = 0; k < K(); k++) {
            const float dis = cnorm_[l * K() + k] - 2 * dot(r, codeword(l, k), d_);
            if (dis < best_d) best_d = dis, best = k;
        }
        code[l] = uint8_t(best);
        const float* c = codeword(l, best);
        for (int j = 0; j < d_; j++) r[j] -= c[j];
    }
}

void Codec::encode_beam(const float* x, uint8_t* code, int B) const {
    const int L = levels_, Kc = K();
    // Each beam entry: its codes so far, its residual and ||residual||^2.
    std::vector<uint8_t> codes(size_t(B) * L), next_codes(size_t(B) * L);
    std::vector<float> res(size_t(B) * d_), next_res(size_t(B) * d_);
    std::vector<float> err(B), next_err(B);
    std::memcpy(res.data(), x, sizeof(float) * d_);
    err[0] = dot(x, x, d_);
    int nbeam = 1;
    std::vector<float> cand(size_t(B) * Kc);
    std::vector<int> order(size_t(B) * Kc);
    for (int l = 0; l < L; l++) {
        for (int b = 0; b < nbeam; b++)
            for (int k = 0; k < Kc; k++)
                cand[b * Kc + k] = err[b] + cnorm_[l * Kc + k] -
                                   2 * dot(res.data() + size_t(b) * d_, codeword(l, k), d_);
        const int ncand = nbeam * Kc, keep = std::min(B, ncand);
        std::iota(order.begin(), order.begin() + ncand, 0);
        std::partial_sort(order.begin(), order.begin() + keep, order.begin() + ncand,
                          [&](int a, int b) { return cand[a] < cand[b] || (cand[a] == cand[b] && a < b); });
        for (int t = 0; t < keep; t++) {
            const int b = order[t] / Kc, k = order[t] % Kc;
            std::memcpy(&next_codes[size_t(t) * L], &codes[size_t(b) * L], L);
            next_codes[size_t(t) * L + l] = uint8_t(k);
            const float* r = res.data() + size_t(b) * d_;
            const float* c = codeword(l, k);
            float* nr = next_res.data() + size_t(t) * d_;
            for (int j = 0; j < d_; j++) nr[j] = r[j] - c[j];
            next_err[t] = dot(nr, nr, d_);
        }
        nbeam = keep;
        codes.swap(next_codes);
        res.swap(next_res);
        err.swap(next_err);
    }
    const int best = int(std::min_element(err.begin(), err.begin() + nbeam) - err.begin());
    // A beam can drop the greedy path; keep whichever code is better so that
    // beam search never loses to greedy encoding.
    std::vector<uint8_t> greedy(L);
    std::vector<float> r(d_);
    encode_greedy(x, greedy.data(), r.data());
    const bool greedy_wins = dot(r.data(), r.data(), d_) < err[best];
    std::memcpy(code, greedy_wins ? greedy.data() : &codes[size_t(best) * L], L);
}

void Codec::encode(size_t n, const float* x, uint8_t* codes, int beam_size) const {
    // Waking a thread team costs more than encoding a handful of small vectors.
    const double flops = double(n) * levels_ * K() * d_ * std::max(beam_size, 1);
#pragma omp parallel if (flops > 4e6)
    {
        std::vector<float> r(d_);
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < int64_t(n); i++) {
            if (beam_size <= 1)
                encode_greedy(x + i * d_, codes + i * levels_, r.data());
            else
                encode_beam(x + i * d_, codes + i * levels_, beam_size);
        }
    }
}

void Codec::decode(size_t n, const uint8_t* codes, int m, float* x) const {
#pragma omp parallel for if (n > 1000)
    for (int64_t i = 0; i < int64_t(n); i++) {
        float* xi = x + i * d_;
        std::fill(xi, xi + d_, 0.f);
        for (int l = 0; l < m; l++) {
            const float* c = codeword(l, codes[i * levels_ + l]);
            for (int j = 0; j < d_; j++) xi[j] += c[j];
        }
    }
}

void Codec::prefix_norms(size_t n, const uint8_t* codes, float* norms) const {
#pragma omp parallel if (n > 1000)
    {
        std::vector<float> r(d_);
#pragma omp for
        for (int64_t i = 0; i < int64_t(n); i++) {
            std::fill(r.begin(), r.end(), 0.f);
            for (int l = 0; l < levels_; l++) {
                const float* c = codeword(l, codes[i * levels_ + l]);
                for (int j = 0; j < d_; j++) r[j] += c[j];
                norms[i * levels_ + l] = dot(r.data(), r.data(), d_);
            }
        }
    }
}

void Codec::pack(size_t n, const uint8_t* codes, uint8_t* packed) const {
    if (n == 0) return;  // packed may be null then; memset(nullptr, ...) is undefined
    const size_t cs = packed_size();
    std::memset(packed, 0, n * cs);
    for (size_t i = 0; i < n; i++)
        for (int l = 0; l < levels_; l++) {
            const size_t bit = size_t(l) * nbits_;
            packed[i * cs + bit / 8] |= uint8_t(codes[i * levels_ + l] << (bit % 8));
        }
}

bool Codec::unpack(size_t n, const uint8_t* packed, uint8_t* codes) const {
    const size_t cs = packed_size();
    const int mask = K() - 1;
    bool clean = true;
    for (size_t i = 0; i < n; i++) {
        for (int l = 0; l < levels_; l++) {
            const size_t bit = size_t(l) * nbits_;
            codes[i * levels_ + l] = uint8_t((packed[i * cs + bit / 8] >> (bit % 8)) & mask);
        }
        // An odd number of 4-bit levels leaves a spare high nibble.
        if ((levels_ * nbits_) % 8 && (packed[i * cs + cs - 1] >> ((levels_ * nbits_) % 8)))
            clean = false;
    }
    return clean;
}

float prefix_norm(const Codec& codec, const float* norms, const float* cross, const uint8_t* code, int M, float* r) {
    if (cross) return prefix_norm_from_products(norms, cross, code, M);
    const int d = codec.d();
    const float* c0 = codec.codeword(0, code[0]);
    for (int j = 0; j < d; j++) r[j] = c0[j];
    for (int l = 1; l < M; l++) {
        const float* c = codec.codeword(l, code[l]);
        for (int j = 0; j < d; j++) r[j] += c[j];
    }
    return dot(r, r, d);  // as prefix_norms sums it
}

CodewordProducts::CodewordProducts(const Codec& codec) {
    const int L = codec.levels(), K = codec.K(), d = codec.d();
    norms.assign(size_t(L) * K, 0.f);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < K; k++) {
            const float* c = codec.codeword(l, k);
            float s = 0;
            for (int j = 0; j < d; j++) s += c[j] * c[j];
            norms[size_t(l) * K + k] = s;
        }
    if (K != 16) return;
    cross.resize(size_t(L) * (L - 1) / 2 * 256);
    for (int l2 = 1; l2 < L; l2++)
        for (int l = 0; l < l2; l++)
            for (int k = 0; k < 16; k++)
                for (int k2 = 0; k2 < 16; k2++) {
                    const float *a = codec.codeword(l, k), *b = codec.codeword(l2, k2);
                    float s = 0;
                    for (int j = 0; j < d; j++) s += a[j] * b[j];
                    cross[(size_t(l2) * (l2 - 1) / 2 + l) * 256 + k * 16 + k2] = s;
                }
}

}  // namespace dpq
