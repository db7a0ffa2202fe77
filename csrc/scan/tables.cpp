#include "tables.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "dispatch.h"

namespace dpq::scan {

namespace {

struct LevelStats {
    float lo_sum = 0, range = 0, magnitude = 0;
    bool finite = true;
};

// K is 16 or 256: the minima and maxima run in kStatLanes independent
// lanes, which vectorize (one running minimum is a chain of dependent
// scalar instructions, and was most of quantize_lut8's time).
constexpr int kStatLanes = 8;

constexpr int kMaxLevels = 255;  // codec.h

LevelStats level_stats(const float* lut, int m, int K, float bias, float* lo) {
    LevelStats s;
    s.magnitude = std::fabs(bias);
    for (int l = 0; l < m; l++) {
        const float* t = lut + size_t(l) * K;
        float mn[kStatLanes], mx[kStatLanes];
        for (int j = 0; j < kStatLanes; j++) mn[j] = mx[j] = t[j];
        for (int k = kStatLanes; k < K; k += kStatLanes)
            for (int j = 0; j < kStatLanes; j++) {
                mn[j] = std::min(mn[j], t[k + j]);
                mx[j] = std::max(mx[j], t[k + j]);
            }
        const float lo_l = *std::min_element(mn, mn + kStatLanes), hi = *std::max_element(mx, mx + kStatLanes);
        lo[l] = lo_l;
        s.lo_sum += lo_l;
        s.range = std::max(s.range, hi - lo_l);
        s.magnitude += std::max(std::fabs(lo_l), std::fabs(hi));
    }
    s.finite = std::isfinite(s.magnitude) && std::isfinite(s.range) && std::isfinite(bias);
    return s;
}

// One query's quantization: per-level minima (lo, m of them) and the scale
// to [0, qmax] (tables.h); not ok when its tables are not finite.
QuantizedLut lut_scale(const float* lut, int m, int K, float bias, int qmax, float* lo) {
    const LevelStats s = level_stats(lut, m, K, bias, lo);
    QuantizedLut r;
    r.ok = s.finite;
    if (!r.ok) return r;
    r.base = bias + s.lo_sum;
    r.magnitude = s.magnitude;
    r.rel = 4.f * float(m + 8) * std::ldexp(1.f, -24);
    r.scale = s.range > 0 ? float(qmax) / s.range : 0.f;
    r.inv_scale = s.range > 0 ? s.range / float(qmax) : 0.f;
    r.err = s.range > 0 ? float(m) * (0.5f + float(qmax) * std::ldexp(1.f, -20)) * r.inv_scale : 0.f;
    return r;
}

// An entry's quantized value: x - lo >= 0, so adding 0.5 and truncating rounds to nearest.
inline int32_t quantized(float x, float lo, float scale, float qmax) {
    return int32_t(std::min(qmax, (x - lo) * scale + 0.5f));
}

}  // namespace

namespace {

enum class LutKernel { kAuto, kSimd, kScalar };
constexpr const char* kLutKernelNames[] = {"auto", "simd", "scalar"};  // by LutKernel value
std::atomic<LutKernel> forced_lut{LutKernel::kAuto};

LutKernel lut_kernel_named(const std::string& name) {
    for (int i = 0; i < 3; i++)
        if (name == kLutKernelNames[i]) return LutKernel(i);
    throw std::invalid_argument("lookup-table kernel '" + name + "' is unknown (auto, simd or scalar)");
}

void compute_luts_kernel(LutKernel kernel, const Codec& codec, bool l2, size_t nq, const float* x, int levels,
                         float* luts, float* biases, int threads) {
    const int d = codec.d();
    const size_t n = size_t(levels) * codec.K();  // the first `levels` codebooks are contiguous
    const DotsFn dots = (kernel == LutKernel::kScalar ? kScalar : fastest_kernels()).dots;
    // The factor goes on the queries, not the nq x n products: a power of
    // two, it scales every product and partial sum exactly.
    const float scale = l2 ? -2.f : -1.f;
    std::vector<float> scaled(x, x + nq * size_t(d));
    for (float& v : scaled) v *= scale;
    // Whole panels per thread: every output is computed as with one thread.
    const size_t panels = (n + kTablePanel - 1) / kTablePanel;
    const int parts = int(std::min<size_t>(size_t(std::max(threads, 1)), panels));
#pragma omp parallel for schedule(static) num_threads(parts) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        const size_t j0 = panels * p / parts * kTablePanel;
        const size_t j1 = std::min(n, panels * (p + 1) / parts * kTablePanel);
        dots(scaled.data(), nq, codec.table_panels() + j0 * d, j1 - j0, d, luts + j0, n);
    }
    for (size_t q = 0; q < nq; q++) {
        float s = 0.f;
        if (l2)
            for (int t = 0; t < d; t++) s += x[q * d + t] * x[q * d + t];
        biases[q] = s;
    }
}

}  // namespace

void compute_luts(const Codec& codec, bool l2, size_t nq, const float* x, int levels, float* luts, float* biases,
                  int threads) {
    compute_luts_kernel(forced_lut.load(), codec, l2, nq, x, levels, luts, biases, threads);
}

void compute_luts_with(const std::string& kernel, const Codec& codec, bool l2, size_t nq, const float* x, int levels,
                       float* luts, float* biases) {
    compute_luts_kernel(lut_kernel_named(kernel), codec, l2, nq, x, levels, luts, biases, 1);
}

float compute_lut(const Codec& codec, bool l2, const float* q, int levels, float* lut) {
    float bias;
    compute_luts(codec, l2, 1, q, levels, lut, &bias);
    return bias;
}

std::vector<std::string> lut_kernels() { return {"simd", "scalar"}; }

std::string force_lut_kernel(const std::string& name) {
    return kLutKernelNames[int(forced_lut.exchange(lut_kernel_named(name)))];
}

std::string active_lut_kernel() {
    const LutKernel k = forced_lut.load();
    return kLutKernelNames[int(k == LutKernel::kAuto ? LutKernel::kSimd : k)];
}

float QuantizedLut::admit(float T) const { return T + err + rel * (magnitude + std::fabs(T)); }

int32_t QuantizedLut::admit_sum(float T) const {
    const float room = admit(T) - base;
    if (!(room >= 0)) return -1;
    if (scale == 0 || std::isinf(room)) return 65535;
    // In double: exact enough next to the slack already in admit().
    return int32_t(std::min(std::floor(double(room) * double(scale)), 65535.0));
}

QuantizedLut quantize_lut4(const float* lut, int m, float bias, uint8_t* out) {
    std::fill(out, out + size_t(padded_levels4(m)) * 16, uint8_t(0));
    float lo[kMaxLevels];  // on the stack: the inverted file quantizes a table per (query, list) pair
    const QuantizedLut r = lut_scale(lut, m, 16, bias, 255, lo);
    if (!r.ok) return r;
    for (int l = 0; l < m; l++)
        for (int k = 0; k < 16; k++) out[l * 16 + k] = uint8_t(quantized(lut[l * 16 + k], lo[l], r.scale, 255.f));
    return r;
}

namespace {

// One level's 256 entries of NQ lanes; lanes NQ..3 are zero.
template <int NQ>
void write_lanes8(const float* const* row, const float* low, const float* scale, float qmax, uint64_t* dst) {
#pragma omp simd
    for (int k = 0; k < 256; k++) {
        uint64_t w = 0;
        for (int q = 0; q < NQ; q++) w |= uint64_t(quantized(row[q][k], low[q], scale[q], qmax)) << (16 * q);
        dst[k] = w;
    }
}

}  // namespace

bool quantize_lut8(const float* const* luts, int nq, int m, const float* biases, QuantizedLut* out, uint64_t* table) {
    const int qmax = 32767 / m;
    float lo[kLanes8 * kMaxLevels];
    bool ok = true;
    for (int q = 0; q < nq; q++) {
        out[q] = lut_scale(luts[q], m, 256, biases[q], qmax, lo + size_t(q) * m);
        ok = ok && out[q].ok;
    }
    if (!ok) return false;
    // Every lane at once, a level at a time, so that the loop over codewords
    // vectorizes (one entry per query and codeword, as a scalar loop wrote them,
    // made this pass 11% of an 8-bit search). Lanes q >= nq read a zero table.
    static const float zeros[256] = {};
    for (int l = 0; l < m; l++) {
        const float* row[kLanes8];
        float low[kLanes8], scale[kLanes8];
        for (int q = 0; q < kLanes8; q++) {
            const bool used = q < nq;
            row[q] = used ? luts[q] + size_t(l) * 256 : zeros;
            low[q] = used ? lo[size_t(q) * m + l] : 0.f;
            scale[q] = used ? out[q].scale : 0.f;
        }
        uint64_t* dst = table + size_t(l) * 256;
        if (nq == 1)  // the inverted file's per-query tables
            write_lanes8<1>(row, low, scale, float(qmax), dst);
        else
            write_lanes8<kLanes8>(row, low, scale, float(qmax), dst);
    }
    return true;
}

}  // namespace dpq::scan
