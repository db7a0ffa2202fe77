#include "norm_quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kmeans.h"

namespace dpq {

std::string norm_kind_name(NormKind kind) {
    switch (kind) {
        case NormKind::kNone: return "none";
        case NormKind::kFloat32: return "float32";
        case NormKind::kBits8: return "8bit";
        case NormKind::kBits4: return "4bit";
    }
    return "unknown(" + std::to_string(int(kind)) + ")";
}

NormKind norm_kind_from_name(const std::string& name, const std::string& who) {
    for (NormKind k : {NormKind::kNone, NormKind::kFloat32, NormKind::kBits8, NormKind::kBits4})
        if (norm_kind_name(k) == name) return k;
    throw std::invalid_argument(who + ": norms must be 'none', 'float32', '8bit' or '4bit', got '" + name + "'");
}

int norm_bits(NormKind kind) {
    switch (kind) {
        case NormKind::kFloat32: return 32;
        case NormKind::kBits8: return 8;
        case NormKind::kBits4: return 4;
        default: return 0;
    }
}

NormSpec NormSpec::all(NormKind kind, int levels) {
    NormSpec s;
    s.kind = kind;
    if (kind != NormKind::kNone)
        for (int m = 1; m <= levels; m++) s.prefixes.push_back(m);
    return s;
}

void NormSpec::check(int levels) const {
    if (kind != NormKind::kNone && kind != NormKind::kFloat32 && kind != NormKind::kBits8 &&
        kind != NormKind::kBits4)
        throw std::invalid_argument("IndexDPQ: unknown norm storage " + std::to_string(int(kind)));
    if (kind == NormKind::kNone) {
        if (!prefixes.empty()) throw std::invalid_argument("IndexDPQ: norms='none' stores no prefixes");
        return;
    }
    if (prefixes.empty()) throw std::invalid_argument("IndexDPQ: norm_prefixes is empty (use norms='none')");
    for (size_t j = 0; j < prefixes.size(); j++) {
        if (prefixes[j] < 1 || prefixes[j] > levels)
            throw std::invalid_argument("IndexDPQ: norm_prefixes must be in [1, " + std::to_string(levels) +
                                        "], got " + std::to_string(prefixes[j]));
        if (j && prefixes[j] == prefixes[j - 1])
            throw std::invalid_argument("IndexDPQ: norm prefix " + std::to_string(prefixes[j]) + " given twice");
        if (j && prefixes[j] < prefixes[j - 1])
            throw std::invalid_argument("IndexDPQ: norm prefixes must be ascending");
    }
}

int NormSpec::slot(int m) const {
    const auto it = std::lower_bound(prefixes.begin(), prefixes.end(), m);
    return it != prefixes.end() && *it == m ? int(it - prefixes.begin()) : -1;
}

NormSpec NormSpec::truncated(int m) const {
    NormSpec s;
    s.kind = kind;
    for (int p : prefixes)
        if (p <= m) s.prefixes.push_back(p);
    if (s.prefixes.empty()) s.kind = NormKind::kNone;
    return s;
}

void NormQuantizer::train(size_t n, int levels, const float* norms) {
    if (!spec_.quantized()) return;
    if (n == 0) throw std::invalid_argument("IndexDPQ: no vectors to train the norm quantizers on");
    const int K = spec_.K();
    std::vector<float> out;
    std::vector<float> v(n), c(K);
    for (int m : spec_.prefixes) {
        for (size_t i = 0; i < n; i++) v[i] = norms[i * levels + (m - 1)];
        std::sort(v.begin(), v.end());
        std::vector<float> uniq(v.begin(), std::unique(v.begin(), v.end()));
        if (uniq.size() <= size_t(K)) {
            c.assign(uniq.begin(), uniq.end());
        } else {
            c.resize(K);
            kmeans_sampled(n, 1, v.data(), K, 256, 1234, c.data());
        }
        std::sort(c.begin(), c.end());
        c.resize(K, c.back());  // fewer values than K: repeat the largest
        out.insert(out.end(), c.begin(), c.end());
    }
    centroids_ = std::move(out);
}

void NormQuantizer::set_centroids(const std::vector<float>& c) {
    const int K = spec_.K();
    if (!spec_.quantized() || c.size() != spec_.prefixes.size() * size_t(K))
        throw std::invalid_argument("norm centroids must have shape (" +
                                    std::to_string(spec_.prefixes.size()) + ", " + std::to_string(K) + ")");
    for (size_t i = 0; i < c.size(); i++) {
        if (!std::isfinite(c[i])) throw std::invalid_argument("norm centroids contain NaN or infinity");
        if (i % K && c[i] < c[i - 1]) throw std::invalid_argument("norm centroids must be ascending");
    }
    centroids_ = c;
}

uint8_t NormQuantizer::encode(int j, float v) const {
    const int K = spec_.K();
    const float* t = table(j);
    const int hi = int(std::lower_bound(t, t + K, v) - t);  // first centroid >= v
    if (hi == 0) return 0;
    if (hi == K) return uint8_t(K - 1);
    return uint8_t(v - t[hi - 1] <= t[hi] - v ? hi - 1 : hi);
}

void NormQuantizer::decode(int j, const NormColumn& column, const uint8_t* col, size_t i0, size_t n,
                           float* out) const {
    const float* t = table(j);
    if (column.bits == 8) {
        for (size_t i = 0; i < n; i++) out[i] = t[col[i0 + i]];
    } else {
        for (size_t i = 0; i < n; i++) out[i] = t[column.get(col, i0 + i)];
    }
}

float NormQuantizer::below(int j, int c) const {
    if (c == 0) return std::numeric_limits<float>::infinity();
    const float* t = table(j);
    return 0.5f * (t[c] - t[c - 1]);
}

}  // namespace dpq
