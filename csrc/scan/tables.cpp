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

LevelStats level_stats(const float* lut, int m, int K, float bias, float* lo) {
    LevelStats s;
    s.magnitude = std::fabs(bias);
    for (int l = 0; l < m; l++) {
        const float* t = lut + size_t(l) * K;
        float mn = t[0], mx = t[0];
#pragma omp simd reduction(min : mn) reduction(max : mx)
        for (int k = 0; k < K; k++) {
            mn = std::min(mn, t[k]);
            mx = std::max(mx, t[k]);
        }
        lo[l] = mn;
        s.lo_sum += mn;
        s.range = std::max(s.range, mx - mn);
        s.magnitude += std::max(std::fabs(mn), std::fabs(mx));
    }
    s.finite = std::isfinite(s.magnitude) && std::isfinite(s.range) && std::isfinite(bias);
    return s;
}

// Quantizes m tables of K entries to [0, qmax]; put(l, k, q) stores one.
template <class Put>
QuantizedLut quantize(const float* lut, int m, int K, float bias, int qmax, Put put) {
    std::vector<float> lo(m);
    const LevelStats s = level_stats(lut, m, K, bias, lo.data());
    QuantizedLut r;
    r.ok = s.finite;
    if (!r.ok) return r;
    r.base = bias + s.lo_sum;
    r.magnitude = s.magnitude;
    r.rel = 4.f * float(m + 8) * std::ldexp(1.f, -24);
    r.scale = s.range > 0 ? float(qmax) / s.range : 0.f;
    r.inv_scale = s.range > 0 ? s.range / float(qmax) : 0.f;
    r.err = s.range > 0 ? float(m) * (0.5f + float(qmax) * std::ldexp(1.f, -20)) * r.inv_scale : 0.f;
    for (int l = 0; l < m; l++)
        for (int k = 0; k < K; k++) {
            const float x = (lut[size_t(l) * K + k] - lo[l]) * r.scale;
            put(l, k, uint32_t(std::min(float(qmax), x + 0.5f)));  // x >= 0: rounds to nearest
        }
    return r;
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
                         float* luts, float* biases) {
    const int d = codec.d();
    const size_t n = size_t(levels) * codec.K();  // the first `levels` codebooks are contiguous
    const DotsFn dots = (kernel == LutKernel::kScalar ? kScalar : fastest_kernels()).dots;
    dots(x, nq, codec.table_panels(), n, d, luts, n);
    const float scale = l2 ? -2.f : -1.f;
    for (size_t i = 0; i < nq * n; i++) luts[i] *= scale;
    for (size_t q = 0; q < nq; q++) {
        float s = 0.f;
        if (l2)
            for (int t = 0; t < d; t++) s += x[q * d + t] * x[q * d + t];
        biases[q] = s;
    }
}

}  // namespace

void compute_luts(const Codec& codec, bool l2, size_t nq, const float* x, int levels, float* luts, float* biases) {
    compute_luts_kernel(forced_lut.load(), codec, l2, nq, x, levels, luts, biases);
}

void compute_luts_with(const std::string& kernel, const Codec& codec, bool l2, size_t nq, const float* x, int levels,
                       float* luts, float* biases) {
    compute_luts_kernel(lut_kernel_named(kernel), codec, l2, nq, x, levels, luts, biases);
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
    return quantize(lut, m, 16, bias, 255, [&](int l, int k, uint32_t v) { out[l * 16 + k] = uint8_t(v); });
}

QuantizedLut quantize_lut8(const float* lut, int m, float bias, int lane, uint64_t* out) {
    // Lane q of a little-endian 64-bit entry is the 16-bit word at byte 2q.
    unsigned char* bytes = reinterpret_cast<unsigned char*>(out) + 2 * lane;
    return quantize(lut, m, 256, bias, 32767 / m, [&](int l, int k, uint32_t v) {
        const uint16_t w = uint16_t(v);
        std::memcpy(bytes + 8 * (size_t(l) * 256 + k), &w, 2);
    });
}

}  // namespace dpq::scan
