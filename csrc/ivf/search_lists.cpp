#include "search_lists.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "../scan/tables.h"
#include "../scan/dispatch.h"
#include "../scan/kernels.h"
#include "../scan/reference.h"
#include "../scratch.h"
#include "../topk.h"
#include "lanes.h"
#include "unit_norm.h"

namespace dpq::ivf {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// Lists of at least this many 32-vector blocks are scanned 4 queries at a
// time with 8-bit codes; shorter ones a query at a time (scan_list).
constexpr size_t kInterleaveBlocks = 8;
using scan::kGroup;

// Where a kept candidate is stored; the heaps rank by (distance, id), as
// the flat index and a merge of shards do.
struct Place {
    uint32_t list, offset;
};
using PlacedTopK = BasicTopK<Place>;

// The probed lists, each verified once, before any parallel work (a
// verification failure throws here, not inside an OpenMP region).
std::vector<ListRef> touch_lists(const ListStore& store, size_t n, const int64_t* probes) {
    std::vector<char> used(store.nlist(), 0);
    for (size_t i = 0; i < n; i++)
        if (probes[i] >= 0) used[size_t(probes[i])] = 1;
    std::vector<size_t> todo;
    for (size_t l = 0; l < used.size(); l++)
        if (used[l]) todo.push_back(l);
    std::vector<ListRef> refs(store.nlist());
    std::string error;
#pragma omp parallel for schedule(dynamic, 1) if (todo.size() > 16)
    for (size_t t = 0; t < todo.size(); t++) {
        try {
            refs[todo[t]] = store.list(todo[t]);
        } catch (const std::exception& e) {
#pragma omp critical(dpq_ivf_touch)
            if (error.empty()) error = e.what();
        }
    }
    if (!error.empty()) throw std::runtime_error(error);
    return refs;
}

// Receives a kernel's candidates in one list for a group of lanes,
// computes their exact distances, and passes them to `Offer`:
//   offer(lane, distance, offset) returns whether the lane's bound moved;
//   bound(lane) is the exact distance above which nothing is kept.
template <class Owner>
class ListSink final : public scan::BlockSink {
   public:
    // norms: what the scan adds per vector (scan_norms), or null; rate:
    // counts the slots admitted (a fast kernel's sink), or null.
    ListSink(Owner& owner, const ListSearch& s, const ListRef& L, const float* norms, const Lane* lanes, int nq,
             scan::Exact4Fn exact4, scan::AdmissionRate* rate)
            : owner_(owner), L_(L), lay_{s.codec->levels(), s.codec->nbits()}, m_(s.levels), norms_(norms),
              lanes_(lanes), exact4_(exact4), rate_(rate) {
        for (int q = 0; q < nq; q++) refresh(q);
    }

    scan::Thresholds thresholds;

    void accept(int q, size_t b, uint32_t slots) override {
        const Lane& ln = lanes_[q];
        const size_t i0 = b * kBlockSize;
        const uint32_t stored = slots & scan::stored_slots(b, L_.n);
        if (rate_) rate_->admitted += size_t(__builtin_popcount(stored));
        bool moved = false;
        scan::exact_distances(
                lay_, L_.codes + b * lay_.block_bytes(), stored, m_, ln.lut, exact4_,
                [&](size_t s) { return ln.bias + (norms_ ? norms_[i0 + s] : 0.f); },
                [&](size_t s, float d) { moved |= owner_.offer(ln.q, d, i0 + s); });
        if (moved) refresh(q);
    }

    // The reference: every slot of every block is a candidate.
    void scan_all(int q) {
        for (size_t b = 0; b < CodeLayout::nblocks(L_.n); b++) accept(q, b, 0xFFFFFFFFu);
    }

   private:
    void refresh(int q) {
        const float T = owner_.bound(lanes_[q].q);
        lanes_[q].ql.thresholds_for(T, thresholds.qthr[q], thresholds.fthr[q]);
    }

    Owner& owner_;
    const ListRef& L_;
    CodeLayout lay_;
    int m_;
    const float* norms_;
    const Lane* lanes_;
    scan::Exact4Fn exact4_;
    scan::AdmissionRate* rate_;
};

// The admissions of a batch's fast scans, and whether its 4-bit tables
// are split: once either count is high (scan/tables.h AdmissionRate), for
// the rest of the batch.
struct Admissions {
    scan::AdmissionRate first, later;  // first probe round, the others
    bool split = scan::split_from_start();
    scan::AdmissionRate& of(int round) { return round == 0 ? first : later; }
    void update(int round) {
        split = split || scan::split_now(of(round), round == 0 ? scan::kSplitWhenAdmittingFirst
                                                               : scan::kSplitWhenAdmitting);
    }
};

// Scans list `list` for `lanes` (all probing it, in probe round `round`),
// kGroup lanes at a time (8-bit codes of short lists: one): the quantized
// ones of a group through the fast kernel (counted in `adm`), the rest
// through the reference.
template <class Owner>
void scan_list(Owner& owner, const ListSearch& s, const scan::KernelSet& ks, const BatchTables& t, const ListRef& L,
               size_t list, std::vector<Lane>& lanes, std::vector<uint64_t>& group_lut8, ListScratch& scratch,
               Admissions& adm, int round) {
    if (L.n == 0) return;
    const bool four = s.codec->nbits() == 4;
    const scan::ScanFn fn = four ? ks.scan4 : ks.scan8;
    const CodeLayout lay{s.codec->levels(), s.codec->nbits()};
    scan::Blocks bl;
    bl.codes = L.codes;
    bl.block_bytes = lay.block_bytes();
    bl.b0 = 0;
    bl.b1 = CodeLayout::nblocks(L.n);
    bl.m = s.levels;
    const float* norms = scan_norms(s, L, scratch);
    if (s.norm_code_column()) {
        bl.ncodes = L.norm_column(s.norm_slot);
        bl.ncode_bytes = L.column.block_bytes();
    } else {
        bl.norms = norms;
    }
    const float* clut = s.relative_norms ? centroid_table(s, t, list, scratch) : nullptr;
    // 8-bit: a group's 64-bit table entries interleave its lanes' tables
    // (m x 256 entries, every time), so short lists are scanned a lane at a
    // time on the lane's own table (its other lanes are zero).
    const size_t group = four || bl.b1 >= kInterleaveBlocks ? kGroup : 1;
    for (size_t g0 = 0; g0 < lanes.size(); g0 += group) {
        Lane* g = lanes.data() + g0;
        const size_t n = std::min(group, lanes.size() - g0);
        adm.update(round);
        const scan::SplitColumns4 split = clut ? pair_lanes(s, t, clut, fn != nullptr, adm.split, scratch, g, n) : t.split;
        Lane* const fast_end = std::stable_partition(g, g + n, [&](const Lane& ln) { return fn && ln.quantized; });
        for (Lane* slow = fast_end; slow < g + n; slow++) {
            ListSink<Owner> sink(owner, s, L, norms, slow, 1, nullptr, nullptr);
            sink.scan_all(0);
        }
        const int nq = int(fast_end - g);
        if (!nq) continue;
        scan::GroupTables gt;
        gt.nq = nq;
        gt.split = split;
        for (int q = 0; q < nq; q++) {
            gt.inv_scale[q] = g[q].ql.inv_scale;
            gt.lut4[q] = g[q].lut4;
        }
        if (!four && nq == 1) {
            gt.lut8 = g[0].lut8;
        } else if (!four) {
            for (size_t e = 0; e < t.lut8_size; e++) {
                uint64_t w = 0;
                for (int q = 0; q < nq; q++) w |= g[q].lut8[e] << (16 * q);
                group_lut8[e] = w;
            }
            gt.lut8 = group_lut8.data();
        }
        bl.norm_factor = g[0].ql.norm_factor();
        ListSink<Owner> sink(owner, s, L, norms, g, nq, ks.exact4, &adm.of(round));
        fn(bl, gt, sink.thresholds, sink);
        adm.of(round).scanned += size_t(nq) * L.n;
    }
}

// Runs a search: batches of queries over OpenMP threads; inside a batch
// the (query, list) pairs regrouped by list, in rounds of probe rank. make(nq) builds the batch's
// owner (its result state), finish(q0, owner) writes it out.
template <class Make, class Finish>
void run(const ListSearch& s, size_t nq, const float* x, const int64_t* probes, size_t nprobe,
         const std::vector<ListRef>& refs, Make make, Finish finish) {
    if (nq == 0) return;
    const scan::KernelSet& ks = scan::active_kernels();
    const bool quantize = (s.codec->nbits() == 4 ? ks.scan4 : ks.scan8) != nullptr;
    const int d = s.codec->d();
    const int nt = omp_get_max_threads();
    // Large batches share each list among more queries (a kernel call
    // serves up to kGroup): 4-bit tables are m x 16 B per query (plus the
    // float ones, m x 64 B), 8-bit ones m x 2 KiB, so their batches are smaller.
    const size_t cap = s.codec->nbits() == 4 ? 2048 : 256;
    const size_t size = std::max<size_t>(1, std::min(cap, (nq + size_t(nt) - 1) / size_t(nt)));
    const size_t nbatch = (nq + size - 1) / size;
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1 && nbatch > 1)
    for (size_t bi = 0; bi < nbatch; bi++) {
        const size_t q0 = bi * size, nb = std::min(size, nq - q0);
        BatchTables t = make_tables(s, quantize, nb, x + q0 * d);
        Admissions adm;
        auto owner = make(nb, t);
        // Pairs in rounds of probe rank (0; 1-2; 3-6; 7-14; ...), each round's
        // by list: every query meets its nearest list first and its threshold
        // tightens early (MiniLM-like synthetic, nprobe 8, 1,000 queries: a
        // third fewer candidates re-scored than with the batch's pairs by list
        // alone), while the rounds, doubling, keep a list's queries together
        // enough to fill kernel groups.
        struct Pair {
            int64_t list;
            size_t q;
            int round;
        };
        std::vector<Pair> pairs;
        pairs.reserve(nb * nprobe);
        for (size_t q = 0; q < nb; q++)
            for (size_t p = 0; p < nprobe; p++) {
                const int64_t l = probes[(q0 + q) * nprobe + p];
                if (l >= 0) pairs.push_back({l, q, 63 - __builtin_clzll(uint64_t(p) + 1)});
            }
        std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
            return a.round != b.round ? a.round < b.round : a.list < b.list;
        });
        std::vector<Lane> lanes;
        std::vector<uint64_t> group_lut8(t.lut8_size);
        ListScratch scratch(t);
        for (size_t i = 0; i < pairs.size();) {
            const int64_t l = pairs[i].list;
            const int round = pairs[i].round;
            adm.update(round);
            if (adm.split && !t.split_applied && !t.lut4.empty()) split_tables(s, t);
            lanes.clear();
            for (; i < pairs.size() && pairs[i].list == l && pairs[i].round == round; i++) {
                const size_t q = pairs[i].q;
                lanes.push_back(make_lane(s, t, q, bias_of(s, x + (q0 + q) * d, t.qnorms[q], size_t(l))));
            }
            owner.set_list(size_t(l), refs[size_t(l)]);
            scan_list(owner, s, ks, t, refs[size_t(l)], size_t(l), lanes, group_lut8, scratch, adm, round);
        }
        finish(q0, owner, t, scratch);
    }
}

// k-NN state of a batch: a heap of candidate places per query.
class KnnOwner {
   public:
    KnnOwner(const ListSearch& s, size_t nq, size_t k) : s_(s), heaps_(nq, PlacedTopK(k)) {}
    void set_list(size_t l, const ListRef& L) {
        list_ = l;
        L_ = &L;
    }
    bool offer(size_t q, float d, size_t i) {
        if (!(d <= heaps_[q].threshold())) return false;
        const int64_t id = L_->ids[i];
        if (s_.filter && !s_.filter->keep(id)) return false;
        return heaps_[q].push({d, id, Place{uint32_t(list_), uint32_t(i)}});
    }
    float bound(size_t q) const { return heaps_[q].threshold(); }
    std::vector<PlacedTopK>& heaps() { return heaps_; }

   private:
    const ListSearch& s_;
    std::vector<PlacedTopK> heaps_;
    size_t list_ = 0;
    const ListRef* L_ = nullptr;
};

class RangeOwner {
   public:
    RangeOwner(const ListSearch& s, size_t nq, float bound) : s_(s), bound_(bound), hits_(nq), unit_(s) {}
    void set_list(size_t l, const ListRef& L) {
        list_ = l;
        L_ = &L;
    }
    bool offer(size_t q, float d, size_t i) {
        if (s_.cosine) d = unit_.cosine(d, *L_, list_, i, s_.levels, s_.norm_slot);
        if (s_.norm_codes) d += unit_.residual_norm(*L_, i, s_.levels);  // the scan's had none
        if (d < bound_ && (!s_.filter || s_.filter->keep(L_->ids[i]))) hits_[q].emplace_back(L_->ids[i], d);
        return false;
    }
    // The scan's inner product bounds nothing of a cosine: every vector is re-scored.
    float bound(size_t) const { return s_.cosine ? kInf : bound_; }
    std::vector<scan::RangeHits>& hits() { return hits_; }

   private:
    const ListSearch& s_;
    float bound_;
    size_t list_ = 0;
    const ListRef* L_ = nullptr;
    std::vector<scan::RangeHits> hits_;
    UnitNorm unit_;
};

}  // namespace

void knn(const ListSearch& s, size_t nq, const float* x, const int64_t* probes, size_t nprobe, size_t k,
         float* distances, int64_t* labels) {
    const std::vector<ListRef> refs = touch_lists(*s.lists, nq * nprobe, probes);
    const bool rerank = s.rerank_levels > s.levels;
    // Norm codes (or cosine): the scan's distances are not the returned ones.
    const bool approximate = s.cosine || s.norm_codes;
    const size_t first_k = rerank ? std::max(s.rerank_k, k) : approximate ? std::max(s.shortlist, k) : k;
    const float sign = s.l2 ? 1.f : -1.f;
    const float pad = sign * std::numeric_limits<float>::max();
    const CodeLayout lay{s.codec->levels(), s.codec->nbits()};
    const int d = s.codec->d();
    run(
            s, nq, x, probes, nprobe, refs, [&](size_t nb, const BatchTables&) { return KnnOwner(s, nb, first_k); },
            [&](size_t q0, KnnOwner& owner, const BatchTables& t, ListScratch& scratch) {
                UnitNorm unit(s);
                for (size_t q = 0; q < owner.heaps().size(); q++) {
                    float* D = distances + (q0 + q) * k;
                    int64_t* I = labels + (q0 + q) * k;
                    PlacedTopK& heap = owner.heaps()[q];
                    if (rerank || approximate) {  // the scan's best, re-scored exactly (with rerank_levels levels)
                        const int M = rerank ? s.rerank_levels : s.levels;
                        const int slot = rerank ? s.rerank_slot : s.norm_slot;
                        TopK best(k);
                        for (const PlacedTopK::Entry& e : heap.sorted()) {
                            const size_t l = e.where.list, i = e.where.offset;
                            const ListRef& L = refs[l];
                            float dist = e.dis;
                            if (s.norm_codes) {
                                dist = unit.distance(L, l, i, M, x + (q0 + q) * d);
                            } else if (rerank) {
                                const float bias = bias_of(s, x + (q0 + q) * d, t.qnorms[q], l);
                                const float norm = s.l2 ? L.norm_floats(slot)[i] : 0.f;
                                const float* lut = s.relative_norms
                                                           ? pair_table(t, q, centroid_table(s, t, l, scratch), M,
                                                                        nullptr, scratch, 0)
                                                           : t.lut(q);
                                dist = scan::exact_distance(lay, L.codes + lay.block_offset(i), i % kBlockSize, M, lut,
                                                            bias + norm);
                            }
                            best.push(s.cosine ? unit.cosine(dist, L, l, i, M, slot) : dist, e.id);
                        }
                        best.extract(D, I, pad, sign);
                    } else {
                        heap.extract(D, I, pad, sign);
                    }
                }
            });
}

std::vector<scan::RangeHits> range(const ListSearch& search, size_t nq, const float* x, const int64_t* probes,
                                   size_t nprobe, float radius) {
    ListSearch s = search;
    if (s.norm_codes) s.norm_slot = -1;  // norm codes: a norm-free scan, a lower bound (RangeOwner adds the norm)
    const std::vector<ListRef> refs = touch_lists(*s.lists, nq * nprobe, probes);
    const float bound = s.l2 ? radius : -radius;  // inside the index smaller is better
    std::vector<scan::RangeHits> out(nq);
    run(
            s, nq, x, probes, nprobe, refs, [&](size_t nb, const BatchTables&) { return RangeOwner(s, nb, bound); },
            [&](size_t q0, RangeOwner& owner, const BatchTables&, ListScratch&) {
                for (size_t q = 0; q < owner.hits().size(); q++) {
                    scan::RangeHits& h = out[q0 + q];
                    h = std::move(owner.hits()[q]);
                    if (!s.l2)
                        for (auto& e : h) e.second = -e.second;
                    std::sort(h.begin(), h.end());
                }
            });
    return out;
}

}  // namespace dpq::ivf
