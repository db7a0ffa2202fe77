#include "lanes.h"

#include <algorithm>
#include <cmath>

#include "../scratch.h"

namespace dpq::ivf {

using scan::quantize_lut8;

namespace {

// The batch's 4-bit tables, bias 0, one split for all (any of its queries
// may share a kernel group).
void quantize4(const ListSearch& s, BatchTables& t, bool split) {
    const size_t nq = t.qluts.size();
    std::vector<const float*> luts(nq);
    for (size_t q = 0; q < nq; q++) luts[q] = t.lut(q);
    const std::vector<float> zero(nq, 0.f);
    t.split = scan::quantize_luts4(luts.data(), int(nq), s.levels, zero.data(), t.lut4.data(), t.lut4_size,
                                   t.qluts.data(), split);
}

}  // namespace

BatchTables make_tables(const ListSearch& s, bool quantize, size_t nq, const float* x) {
    BatchTables t;
    t.lut_levels = std::max(s.levels, s.rerank_levels);
    t.K = s.codec->K();
    t.luts.resize(nq * size_t(t.lut_levels) * t.K);
    t.qnorms.resize(nq);
    scan::compute_luts(*s.codec, s.l2, nq, x, t.lut_levels, t.luts.data(), t.qnorms.data());
    t.qluts.resize(nq);
    if (!quantize) return t;
    const int m = s.columns();
    t.lut4_size = t.K == 16 ? scan::max_lut4_bytes(m) : 0;
    t.lut8_size = t.K == 16 ? 0 : size_t(m) * 256;
    if (s.relative_norms) return t;  // quantized per (query, list) pair (ListScratch)
    if (t.K == 16) {
        t.lut4.resize(nq * t.lut4_size);
        t.split_applied = scan::split_from_start();
        quantize4(s, t, t.split_applied);
    } else {
        t.lut8 = uninitialized<uint64_t>(nq * t.lut8_size);
        const float zero = 0.f;
        for (size_t q = 0; q < nq; q++) {
            const float* lut = t.lut(q);
            quantize_lut8(&lut, 1, m, &zero, &t.qluts[q], t.lut8.get() + q * t.lut8_size);
        }
    }
    return t;
}

void split_tables(const ListSearch& s, BatchTables& t) {
    quantize4(s, t, true);
    t.split_applied = true;
}

float bias_of(const ListSearch& s, const float* q, float qnorm, size_t list) {
    const int d = s.codec->d();
    const float* c = s.centroids + list * d;
    float acc = 0;
    if (s.relative_norms) {
        for (int j = 0; j < d; j++) acc += (q[j] - c[j]) * (q[j] - c[j]);
        return acc;
    }
    for (int j = 0; j < d; j++) acc += q[j] * c[j];
    return s.l2 ? qnorm - 2.f * acc : -acc;
}

ListScratch::ListScratch(const BatchTables& t)
        : table(size_t(t.lut_levels + 1) * t.K),  // room for a norm code column
          centroid(table), flut(scan::kGroup * table),
          lut4(scan::kGroup * t.lut4_size), lut8(uninitialized<uint64_t>(scan::kGroup * t.lut8_size)) {}

const float* centroid_table(const ListSearch& s, const BatchTables& t, size_t list, ListScratch& sc) {
    if (const float* kept = kept_centroid_table(s, list)) return kept;
    scan::compute_lut(*s.codec, true, s.centroids + list * size_t(s.codec->d()), t.lut_levels, sc.centroid.data());
    return sc.centroid.data();
}

float* pair_table(const BatchTables& t, size_t q, const float* clut, int levels, const float* own, ListScratch& sc,
                  size_t j) {
    float* out = sc.flut.data() + j * sc.table;
    const float* lut = t.lut(q);
    const size_t n = size_t(levels) * t.K;
    if (own) {
        for (size_t e = 0; e < n; e++) out[e] = lut[e] - clut[e] + own[e];
    } else {
        for (size_t e = 0; e < n; e++) out[e] = lut[e] - clut[e];
    }
    return out;
}

const float* scan_norms(const ListSearch& s, const ListRef& L, ListScratch& sc) {
    if (!s.l2 || s.norm_slot < 0) return nullptr;
    if (!s.norm_codes) return L.norm_floats(s.norm_slot);
    sc.norm_values.assign(CodeLayout::nblocks(L.n) * kBlockSize, 0.f);
    s.norm_codes->decode(s.norm_slot, L.column, L.norm_column(s.norm_slot), 0, L.n, sc.norm_values.data());
    return sc.norm_values.data();
}

Lane make_lane(const ListSearch& s, const BatchTables& t, size_t q, float bias) {
    Lane ln;
    ln.q = q;
    ln.bias = bias;
    if (s.relative_norms) return ln;
    ln.lut = t.lut(q);
    ln.ql = t.qluts[q];
    ln.quantized = ln.ql.ok && std::isfinite(bias);
    ln.ql.base += bias;  // what quantizing with this bias would give
    ln.ql.magnitude += std::fabs(bias);
    if (!t.lut4.empty()) ln.lut4 = t.lut4.data() + q * t.lut4_size;
    if (t.lut8) ln.lut8 = t.lut8.get() + q * t.lut8_size;
    return ln;
}

scan::SplitColumns4 pair_lanes(const ListSearch& s, const BatchTables& t, const float* clut, bool quantize,
                               bool split_them, ListScratch& sc, Lane* lanes, size_t n) {
    const float* luts[scan::kGroup];
    float biases[scan::kGroup];
    scan::QuantizedLut ql[scan::kGroup];
    const int m = s.levels, cols = s.columns();
    const float* own = s.scans_norm_codes() ? s.codeword_norms : nullptr;
    for (size_t j = 0; j < n; j++) {
        float* lut = pair_table(t, lanes[j].q, clut, m, own, sc, j);
        if (cols > m) {  // the norm codes' values: column m
            const float* values = s.norm_codes->table(s.norm_slot);
            std::copy(values, values + t.K, lut + size_t(m) * t.K);
        }
        luts[j] = lanes[j].lut = lut;
        biases[j] = lanes[j].bias;
    }
    scan::SplitColumns4 split;
    if (!quantize) return split;
    if (t.K == 16)
        split = scan::quantize_luts4(luts, int(n), cols, biases, sc.lut4.data(), t.lut4_size, ql, split_them);
    for (size_t j = 0; j < n; j++) {
        Lane& ln = lanes[j];
        if (t.K == 16) {
            ln.ql = ql[j];
            ln.lut4 = sc.lut4.data() + j * t.lut4_size;
        } else {
            uint64_t* out = sc.lut8.get() + j * t.lut8_size;
            quantize_lut8(&ln.lut, 1, cols, &ln.bias, &ln.ql, out);
            ln.lut8 = out;
        }
        ln.quantized = ln.ql.ok && std::isfinite(ln.bias);
    }
    return split;
}

}  // namespace dpq::ivf
