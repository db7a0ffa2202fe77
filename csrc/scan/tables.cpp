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

// K = 256: the minima and maxima run in kStatLanes independent lanes,
// which vectorize (one running minimum is a chain of dependent scalar
// instructions, and was most of quantize_lut8's time). K = 16: the scan
// kernels' stats4.
constexpr int kStatLanes = 8;

// Levels of a code (codec.h), and one more column: the norm codes' table.
constexpr int kMaxSources = 256;

// Per level: lo[l] = min_k, span[l] = max_k - lo[l] (span may be null);
// range is the largest span.
LevelStats level_stats(const float* lut, int m, int K, float bias, float* lo, float* span) {
    float hi[kMaxSources];
    if (K == 16) {
        active_kernels().stats4(lut, m, lo, hi);
    } else {
        for (int l = 0; l < m; l++) {
            const float* t = lut + size_t(l) * K;
            float mn[kStatLanes], mx[kStatLanes];
            for (int j = 0; j < kStatLanes; j++) mn[j] = mx[j] = t[j];
            for (int k = kStatLanes; k < K; k += kStatLanes)
                for (int j = 0; j < kStatLanes; j++) {
                    mn[j] = std::min(mn[j], t[k + j]);
                    mx[j] = std::max(mx[j], t[k + j]);
                }
            lo[l] = *std::min_element(mn, mn + kStatLanes);
            hi[l] = *std::max_element(mx, mx + kStatLanes);
        }
    }
    LevelStats s;
    s.magnitude = std::fabs(bias);
    for (int l = 0; l < m; l++) {
        if (span) span[l] = hi[l] - lo[l];
        s.lo_sum += lo[l];
        s.range = std::max(s.range, hi[l] - lo[l]);
        s.magnitude += std::max(std::fabs(lo[l]), std::fabs(hi[l]));
    }
    s.finite = std::isfinite(s.magnitude) && std::isfinite(s.range) && std::isfinite(bias);
    return s;
}

// One query's quantization (tables.h) of m sources, the widest spanning
// `range` over `qmax` steps (a split source spans more, over as many more
// steps); not ok when its tables are not finite.
QuantizedLut lut_scale(const LevelStats& s, int m, float bias, float range, int qmax) {
    QuantizedLut r;
    r.ok = s.finite;
    if (!r.ok) return r;
    r.base = bias + s.lo_sum;
    r.magnitude = s.magnitude;
    r.rel = 4.f * float(m + 8) * std::ldexp(1.f, -24);
    r.scale = range > 0 ? float(qmax) / range : 0.f;
    r.inv_scale = range > 0 ? range / float(qmax) : 0.f;
    r.err = range > 0 ? float(m) * (0.5f + float(qmax) * std::ldexp(1.f, -20)) * r.inv_scale : 0.f;
    return r;
}

// An entry's quantized value: x - lo >= 0, so adding 0.5 and truncating rounds to nearest.
inline int32_t quantized(float x, float lo, float scale, float qmax) {
    const float y = (x - lo) * scale + 0.5f;
    return int32_t(y < qmax ? y : qmax);
}

// Columns per source of a split (1 + its extra columns).
void split_widths(int sources, const SplitColumns4& split, int* width) {
    std::fill(width, width + sources, 1);
    for (int j = 0; j < split.n; j++) width[split.src[j]]++;
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

namespace {

// The extra columns for sources of these spans (plan_split4).
SplitColumns4 plan_spans(const float* span, int sources) {
    float mean = 0;
    for (int l = 0; l < sources; l++) mean += span[l];
    mean /= float(sources);
    const float target = kSplitTo * mean;  // a column's span at most
    // Sums of every column stay below 2^16: at most 256 columns of 255.
    const int budget = std::min({kMaxSplitColumns, std::max(1, sources / 4), 256 - sources});
    int width[kMaxSources], extra = 0;
    for (int l = 0; l < sources; l++) {
        // The fewest columns that bring the source's span per column to the target.
        width[l] = span[l] > target ? int(std::min(std::ceil(span[l] / target), float(kMaxSplitColumns + 1))) : 1;
        extra += width[l] - 1;
    }
    if (extra > budget) {  // too many: the budget's columns, each to the widest source per column
        std::fill(width, width + sources, 1);
        for (extra = 0; extra < budget; extra++) {
            int w = 0;
            for (int l = 1; l < sources; l++)
                if (span[l] * float(width[w]) > span[w] * float(width[l])) w = l;
            width[w]++;
        }
    }
    // Extra columns in source order: a kernel reads codes in that order.
    SplitColumns4 split;
    for (int l = 0; l < sources; l++)
        for (int i = 1; i < width[l]; i++) split.src[split.n++] = uint8_t(l);
    return split;
}

// quantize_lut4 given the table's level_stats (lo, span).
QuantizedLut quantize_stats4(const float* lut, int sources, float bias, const LevelStats& st, const float* lo,
                             const float* span, const SplitColumns4& split, uint8_t* out) {
    const size_t used = size_t(sources + split.n) * 16;
    std::fill(out + used, out + lut4_bytes(sources, split), uint8_t(0));  // pad columns
    int width[kMaxSources];
    split_widths(sources, split, width);
    float range = 0;  // the span of one column's 255 steps
    int widest = 1;
    for (int l = 0; l < sources; l++) {
        range = std::max(range, span[l] / float(width[l]));
        widest = std::max(widest, width[l]);
    }
    const QuantizedLut r = lut_scale(st, sources, bias, range * float(widest), 255 * widest);
    if (!r.ok) return r;
    // A source's value v over its w columns: column i (0: its own, then its
    // extra columns in order) holds what v has above 255 i, at most 255.
    active_kernels().quantize4(lut, sources, lo, r.scale, width, out);
    return r;
}

}  // namespace

std::atomic<SplitMode>& split_mode() {
    static std::atomic<SplitMode> mode{SplitMode::kAuto};
    return mode;
}

SplitColumns4 plan_split4(const float* const* luts, int nq, int sources) {
    float span[kMaxSources] = {}, lo[kMaxSources], one[kMaxSources];
    for (int q = 0; q < nq; q++) {
        level_stats(luts[q], sources, 16, 0.f, lo, one);
        for (int l = 0; l < sources; l++) span[l] = std::max(span[l], one[l]);
    }
    return plan_spans(span, sources);
}

QuantizedLut quantize_lut4(const float* lut, int sources, float bias, const SplitColumns4& split, uint8_t* out) {
    float lo[kMaxSources], span[kMaxSources];
    const LevelStats st = level_stats(lut, sources, 16, bias, lo, span);
    return quantize_stats4(lut, sources, bias, st, lo, span, split, out);
}

SplitColumns4 quantize_luts4(const float* const* luts, int nq, int sources, const float* biases, uint8_t* out,
                             size_t stride, QuantizedLut* ql, bool split_them) {
    // A kernel group's stats on the stack (the inverted file quantizes a
    // group per list scanned), a batch's on the heap.
    const size_t n = size_t(nq) * sources;
    float group_stats[2 * kGroup * kMaxSources];
    LevelStats group_st[kGroup];
    std::vector<float> batch_stats(nq > kGroup ? 2 * n : 0);
    std::vector<LevelStats> batch_st(nq > kGroup ? nq : 0);
    float* lo = nq > kGroup ? batch_stats.data() : group_stats;
    float* span = lo + n;
    LevelStats* st = nq > kGroup ? batch_st.data() : group_st;
    float widest[kMaxSources] = {};
    for (int q = 0; q < nq; q++) {
        float* sp = span + size_t(q) * sources;
        st[q] = level_stats(luts[q], sources, 16, biases[q], lo + size_t(q) * sources, sp);
        for (int l = 0; l < sources; l++) widest[l] = std::max(widest[l], sp[l]);
    }
    const SplitColumns4 split = split_them ? plan_spans(widest, sources) : SplitColumns4();
    for (int q = 0; q < nq; q++)
        ql[q] = quantize_stats4(luts[q], sources, biases[q], st[q], lo + size_t(q) * sources,
                                span + size_t(q) * sources, split, out + q * stride);
    return split;
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
    float lo[kLanes8 * kMaxSources];
    bool ok = true;
    for (int q = 0; q < nq; q++) {
        const LevelStats st = level_stats(luts[q], m, 256, biases[q], lo + size_t(q) * m, nullptr);
        out[q] = lut_scale(st, m, biases[q], st.range, qmax);
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
