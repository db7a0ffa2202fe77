// The lookup tables a list search reads: a batch's per-query tables, and
// each (query, list) pair's (a Lane): the query's own, or, with L2 norms
// relative to the centroid, the query's less the list centroid's, quantized
// per pair (search_lists.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../scan/kernels.h"
#include "../scan/tables.h"
#include "search_lists.h"

namespace dpq::ivf {

// Float tables of a batch of queries, and their quantized forms (bias 0:
// each (query, list) pair adds its own, see Lane).
struct BatchTables {
    int lut_levels = 0, K = 0;
    std::vector<float> luts, qnorms;  // nq x lut_levels x K; ||q||^2 (L2) or 0
    std::vector<scan::QuantizedLut> qluts;
    std::vector<uint8_t> lut4;         // nq x lut4_size
    std::unique_ptr<uint64_t[]> lut8;  // nq x m x 256, lane 0
    size_t lut4_size = 0, lut8_size = 0;  // a query's (at most, with the split's columns)
    scan::SplitColumns4 split;            // of every query's lut4
    bool split_applied = false;           // lut4 quantized with its split (scan::AdmissionRate)

    const float* lut(size_t q) const { return luts.data() + q * size_t(lut_levels) * K; }
};

// quantize: also the quantized tables the fast kernels read.
BatchTables make_tables(const ListSearch& s, bool quantize, size_t nq, const float* x);
// Re-quantizes the batch's 4-bit tables (norms ||c + r_m||^2, or IP) with
// their split, once the search admits many candidates (scan::AdmissionRate).
void split_tables(const ListSearch& s, BatchTables& t);

// The per-pair term: ||q - c||^2 (L2, relative norms), ||q||^2 - 2 <q, c>
// (L2, norms ||c + r_m||^2) or -<q, c> (IP).
float bias_of(const ListSearch& s, const float* q, float qnorm, size_t list);

// A batch's room for the tables of (query, list) pairs (relative norms):
// a kernel group's at a time, and the list's centroid table where the
// index keeps none.
struct ListScratch {
    explicit ListScratch(const BatchTables& t);
    size_t table;  // floats in a pair's table
    std::vector<float> centroid, flut;
    std::vector<float> norm_values;  // a list's decoded norm codes
    std::vector<uint8_t> lut4;
    std::unique_ptr<uint64_t[]> lut8;
};

// The L2 table of list `list`'s centroid (-2 <c, c_lk>) where the index keeps them (else null).
inline const float* kept_centroid_table(const ListSearch& s, size_t list) {
    return s.centroid_tables ? s.centroid_tables + list * size_t(s.codec->levels()) * s.codec->K() : nullptr;
}

// The L2 table of list `list`'s centroid, the first lut_levels levels: kept, or computed into sc.
const float* centroid_table(const ListSearch& s, const BatchTables& t, size_t list, ListScratch& sc);

// Query q's float table for a list whose centroid table is clut, its first
// `levels` levels, plus own (levels x K) where not null, in slot j of sc.
float* pair_table(const BatchTables& t, size_t q, const float* clut, int levels, const float* own, ListScratch& sc,
                  size_t j);

// The norms a scan of list L adds (ListSearch::norm_slot): its float32 column,
// its codes' values (decoded into sc, whole blocks), or null (none).
const float* scan_norms(const ListSearch& s, const ListRef& L, ListScratch& sc);

// One query's share of a list scan: its tables for the list.
struct Lane {
    size_t q = 0;  // in the batch
    float bias = 0;
    const float* lut = nullptr;  // float table
    scan::QuantizedLut ql;       // the quantized table's, bias included
    const uint8_t* lut4 = nullptr;
    const uint64_t* lut8 = nullptr;
    bool quantized = false;
};

// A lane on the query's own tables (norms ||c + r_m||^2, or IP); relative
// norms' lanes get theirs from pair_lanes.
Lane make_lane(const ListSearch& s, const BatchTables& t, size_t q, float bias);

// Gives lanes[0..n) (relative norms; n <= kGroup, a kernel group) their
// pairs' tables in sc, quantized if `quantize` (4-bit: split if `split`);
// returns the split of their 4-bit tables.
scan::SplitColumns4 pair_lanes(const ListSearch& s, const BatchTables& t, const float* clut, bool quantize,
                               bool split, ListScratch& sc, Lane* lanes, size_t n);

}  // namespace dpq::ivf
