#include "search.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "../scratch.h"
#include "../topk.h"
#include "dispatch.h"
#include "kernels.h"
#include "rescore.h"
#include "reference.h"
#include "shortlist.h"
#include "tables.h"

namespace dpq::scan {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// Codes scanned per chunk: every group of a batch re-reads the chunk,
// which stays in the core's L2 cache meanwhile.
constexpr size_t kChunkBytes = 64 << 10;
// Quantized tables of one batch, also meant to stay in L2.
constexpr size_t kBatchTableBytes = 128 << 10;
constexpr size_t kMaxBatch = 64;
// Float tables are computed for up to this many queries per thread at once
// (and at most kBlockTableBytes of them per thread): each pass streams every
// codebook once, so more queries per pass amortise it. 8-bit m = 32 at
// 384-d: 64 queries per pass computed tables 1.7x as fast as the 8 of one batch.
constexpr size_t kMaxTableBlock = 64;
constexpr size_t kBlockTableBytes = 4 << 20;

// How a search at prefix spec.levels treats the prefix norm (L2).
struct NormPlan {
    ScanNorms scan;       // what the scan adds to each vector's distance
    bool column = false;  // norm codes as wide as the level codes: one more kernel column
    bool floats = false;  // kernels test float norms (the float32 column, or codes decoded per chunk)
    bool exact = true;    // the scan's distance is the returned one (else: exact re-score)
};

NormPlan norm_plan(const SearchSpec& spec, bool for_range) {
    NormPlan p;
    if (!spec.l2) return p;
    const NormSpec& ns = spec.store->norm_spec();
    const int slot = ns.slot(spec.levels);
    p.exact = slot >= 0 && ns.kind == NormKind::kFloat32;
    // A range search without exact norms scans without any: ||r||^2 >= 0, so
    // the norm-free distance is a lower bound that never misses a hit.
    if (slot < 0 || (for_range && !p.exact)) return p;
    p.scan = {spec.store, spec.norms, slot};
    const int nbits = spec.codec->nbits();
    p.column = (ns.kind == NormKind::kBits4 && nbits == 4) || (ns.kind == NormKind::kBits8 && nbits == 8);
    p.floats = !p.column;
    return p;
}

// A search: its spec and norm plan.
struct Job : SearchSpec {
    Job(const SearchSpec& s, bool for_range)
            : SearchSpec(s), np(norm_plan(s, for_range)), own_norms(s.l2 && !np.exact && !for_range) {}
    NormPlan np;
    // The scan's tables carry the norms' own terms ||c_l||^2 (search.h).
    // Not for range searches: their norm-free scan must stay a lower bound.
    bool own_norms;
    int columns() const { return levels + np.column; }  // of the quantized tables
    bool rescore() const { return rerank_levels > levels || !np.exact || cosine; }
    int final_levels() const { return std::max(levels, rerank_levels); }
};

// Tables of one query.
struct QueryTables {
    const float* lut = nullptr;       // lut_levels x K, in its Batch: the exact re-score's
    const float* scan_lut = nullptr;  // levels x K: the scan's (lut, or lut + ||c||^2)
    float bias = 0;
    QuantizedLut qlut;
};

// Up to kGroup queries that a kernel scans together.
struct Group {
    size_t q0 = 0;  // first query of the batch
    std::vector<QueryTables> queries;
    std::unique_ptr<uint8_t[]> lut4;
    std::unique_ptr<uint64_t[]> lut8;
    GroupTables tables;
    bool quantized = false;  // scanned by the fast kernel, else by the reference
    Exact4Fn exact4 = nullptr;  // re-scores the kernel's candidates (reference.h)
    // 4-bit: what lut4 is quantized from (the scan tables, with the norm
    // codes' where the kernel looks them up), kept to split them later.
    std::vector<float> with_norms;
    const float* sources[kGroup] = {};
    int columns = 0;
    size_t lut4_stride = 0;
    bool split_applied = false;  // lut4 quantized with its split
};

// Float tables of queries [q0, q0 + nq), computed in one pass.
struct TableBlock {
    size_t q0 = 0, nq = 0;
    std::unique_ptr<float[]> luts;       // float tables of every query
    std::vector<float> biases;
    std::unique_ptr<float[]> scan_luts;  // with the norms' own terms (Job::own_norms)
};

// The queries one thread scans at a time, in groups; their float tables are
// in a TableBlock.
struct Batch {
    std::vector<Group> groups;
};

int lut_levels(const SearchSpec& s) { return std::max(s.levels, s.rerank_levels); }

// Every lane of a 64-bit 8-bit-table entry is a query of the group.
static_assert(kGroup == kLanes8, "8-bit tables hold one lane per query of a group");

Group make_group(const Job& spec, const KernelSet& ks, const float* luts, const float* scan_luts, size_t scan_size,
                 const float* biases, size_t q0, int nq) {
    const int m = spec.levels, cols = spec.columns(), K = spec.codec->K();
    const size_t lut_size = size_t(lut_levels(spec)) * K;
    const bool four = spec.codec->nbits() == 4;
    Group g;
    g.q0 = q0;
    g.queries.resize(nq);
    g.tables.nq = nq;
    g.quantized = (four ? ks.scan4 : ks.scan8) != nullptr;
    g.exact4 = ks.exact4;
    // With a norm column, the tables to quantize are the m levels' and the
    // norm centroids of prefix m.
    if (g.quantized && spec.np.column) g.with_norms.resize(size_t(nq) * cols * K);
    const float** src = g.sources;
    for (int q = 0; q < nq; q++) {
        QueryTables& t = g.queries[q];
        t.lut = luts + q * lut_size;
        t.scan_lut = scan_luts ? scan_luts + q * scan_size : t.lut;
        t.bias = biases[q];
        src[q] = t.scan_lut;
        if (g.quantized && spec.np.column) {
            float* w = g.with_norms.data() + size_t(q) * cols * K;
            std::copy(t.scan_lut, t.scan_lut + size_t(m) * K, w);
            const float* nt = spec.norms->table(spec.np.scan.slot);
            std::copy(nt, nt + K, w + size_t(m) * K);
            src[q] = w;
        }
    }
    if (!g.quantized) return g;
    // Tables out of float range (a query's quantization not ok): the reference scans this group.
    QuantizedLut ql[kGroup];
    if (four) {
        g.columns = cols;
        g.lut4_stride = max_lut4_bytes(cols);
        g.lut4 = uninitialized<uint8_t>(nq * g.lut4_stride);
        g.split_applied = split_from_start();
        g.tables.split = quantize_luts4(src, nq, cols, biases, g.lut4.get(), g.lut4_stride, ql, g.split_applied);
        for (int q = 0; q < nq; q++) {
            g.tables.lut4[q] = g.lut4.get() + q * g.lut4_stride;
            g.quantized = g.quantized && ql[q].ok;
        }
    } else {
        g.lut8 = uninitialized<uint64_t>(size_t(cols) * 256);
        g.quantized = quantize_lut8(src, nq, cols, biases, ql, g.lut8.get());
        g.tables.lut8 = g.lut8.get();
    }
    for (int q = 0; q < nq; q++) {
        g.queries[q].qlut = ql[q];
        g.tables.inv_scale[q] = ql[q].inv_scale;
    }
    return g;
}

// Re-quantizes a 4-bit group's tables with their split (tables.h:
// AdmissionRate); its collector must then refresh its thresholds.
void split_tables(Group& g) {
    const int nq = int(g.queries.size());
    QuantizedLut ql[kGroup];
    float biases[kGroup];
    for (int q = 0; q < nq; q++) biases[q] = g.queries[q].bias;
    g.tables.split = quantize_luts4(g.sources, nq, g.columns, biases, g.lut4.get(), g.lut4_stride, ql, true);
    for (int q = 0; q < nq; q++) {
        g.queries[q].qlut = ql[q];
        g.tables.inv_scale[q] = ql[q].inv_scale;
    }
    g.split_applied = true;
}

// Queries [q0, q0 + nq) of x: their float tables in one pass over the
// codebooks, shared by nt threads.
TableBlock make_tables(const Job& spec, const float* x, size_t q0, size_t nq, int nt) {
    const size_t lut_size = size_t(lut_levels(spec)) * spec.codec->K();
    TableBlock tb;
    tb.q0 = q0, tb.nq = nq;
    tb.luts = uninitialized<float>(nq * lut_size);
    tb.biases.resize(nq);
    compute_luts(*spec.codec, spec.l2, nq, x + q0 * spec.codec->d(), lut_levels(spec), tb.luts.get(),
                 tb.biases.data(), nt);
    if (spec.own_norms) {
        const size_t scan_size = size_t(spec.levels) * spec.codec->K();
        tb.scan_luts = uninitialized<float>(nq * scan_size);
        for (size_t q = 0; q < nq; q++)
            for (size_t j = 0; j < scan_size; j++)
                tb.scan_luts[q * scan_size + j] = tb.luts[q * lut_size + j] + spec.codeword_norms[j];
    }
    return tb;
}

// Queries [q0, q0 + nq) of a TableBlock: their quantized tables, group by group.
Batch make_batch(const Job& spec, const KernelSet& ks, const TableBlock& tb, size_t q0, size_t nq) {
    const size_t lut_size = size_t(lut_levels(spec)) * spec.codec->K();
    const size_t scan_size = size_t(spec.levels) * spec.codec->K();
    const size_t r0 = q0 - tb.q0;  // row of query q0 in the block
    const float* scan_luts = spec.own_norms ? tb.scan_luts.get() : nullptr;
    Batch batch;
    for (size_t q = 0; q < nq; q += kGroup) {
        const size_t r = r0 + q;
        batch.groups.push_back(make_group(spec, ks, tb.luts.get() + r * lut_size,
                                          scan_luts ? scan_luts + r * scan_size : nullptr, scan_size,
                                          tb.biases.data() + r, q0 + q, int(std::min<size_t>(kGroup, nq - q))));
    }
    return batch;
}

// A thread's share of nq queries: a few pieces each (taken dynamically), so
// that the threads finish together; all of them with one thread.
size_t thread_share(size_t nq, int nt) { return nt == 1 ? nq : (nq + 4 * size_t(nt) - 1) / (4 * size_t(nt)); }

// Queries in a Batch: enough to share each database chunk widely, few
// enough for their tables to stay in cache and for the threads to share the
// nq queries evenly (a few batches each, taken dynamically).
size_t batch_size(const Job& spec, size_t nq, int nt) {
    const size_t m = size_t(spec.columns());
    const size_t per_query = spec.codec->nbits() == 4 ? size_t(padded_levels4(int(m))) * 16 : m * 256 * 8 / kGroup;
    const size_t cap = std::clamp<size_t>(kBatchTableBytes / per_query, kGroup, kMaxBatch);
    return std::max<size_t>(1, std::min(cap, thread_share(nq, nt)));
}

// Queries per TableBlock: whole batches of `batch` queries, as many as
// kMaxTableBlock and kBlockTableBytes allow per thread (every thread
// computes the tables of the whole block for its share of the codebooks).
// One pass over many queries: tables of 8 queries at once run at about 0.6x
// the speed of 64 at once (benchmarks/peers.py luts).
size_t table_block_size(const Job& spec, int nt, size_t batch) {
    const size_t per_query = size_t(lut_levels(spec)) * spec.codec->K() * sizeof(float);
    const size_t want = size_t(nt) * std::min(kMaxTableBlock, kBlockTableBytes / per_query);
    return std::max<size_t>(1, want / batch) * batch;
}

// Receives candidates from a kernel (or every vector from the reference
// scan), re-scores them exactly and keeps the group's thresholds current.
// Derived supplies offer(q, d, id) (returns whether bound_of(q) may have
// moved) and bound_of(q) (exact distances above it can never be kept).
template <class Derived>
class Collector : public BlockSink {
   public:
    Collector(const Job& spec, const Group& g)
            : spec_(spec), group_(g), layout_(spec.store->layout()), n_(spec.store->size()) {}

    Thresholds thresholds;

    void accept(int q, size_t b, uint32_t slots) final {
        const QueryTables& t = group_.queries[q];
        const size_t i0 = b * kBlockSize;
        const uint32_t stored = slots & stored_slots(b, n_);
        admission.admitted += size_t(__builtin_popcount(stored));
        const float* norms = chunk_.norms ? chunk_.block_norms(b) : nullptr;
        bool moved = false;
        exact_distances(
                layout_, spec_.store->block(b), stored, spec_.levels, t.scan_lut, group_.exact4,
                [&](size_t s) { return t.bias + (norms ? norms[s] : spec_.np.scan.at(i0 + s)); },
                [&](size_t s, float d) { moved |= self().offer(q, d, int64_t(i0 + s)); });
        if (moved) refresh(q);
    }

    // The blocks the kernel scans next: their float norms (the scan's, at(i)
    // of each vector) where it tests floats.
    void set_chunk(const Blocks& bl) { chunk_ = bl; }

    // Slots the kernel scanned and admitted (scan_blocks counts the first).
    AdmissionRate admission;

    // Thresholds for the group's tables as they are now (after split_tables).
    void refresh_all() {
        for (size_t q = 0; q < group_.queries.size(); q++) refresh(int(q));
    }

    // The float reference scan of blocks [c0, c1) for every query of the group.
    void scan_reference(size_t c0, size_t c1, std::vector<float>& buf) {
        buf.resize((c1 - c0) * kBlockSize);
        const size_t i0 = c0 * kBlockSize, i1 = std::min(n_, c1 * kBlockSize);
        for (size_t q = 0; q < group_.queries.size(); q++) {
            const QueryTables& t = group_.queries[q];
            reference_scan(*spec_.store, spec_.levels, t.scan_lut, t.bias, spec_.np.scan, c0, c1, buf.data());
            float bound = self().bound_of(int(q));
            for (size_t i = i0; i < i1; i++)
                if (buf[i - i0] <= bound && self().offer(int(q), buf[i - i0], int64_t(i)))
                    bound = self().bound_of(int(q));
        }
    }

   protected:
    Derived& self() { return static_cast<Derived&>(*this); }
    bool selected(int64_t id) const { return !spec_.filter || spec_.filter->keep(id); }

    // Lets the kernel admit whatever may beat bound_of(q), given the
    // quantization error (tables.h).
    void refresh(int q) {
        const float T = self().bound_of(q);
        group_.queries[q].qlut.thresholds_for(T, thresholds.qthr[q], thresholds.fthr[q]);
    }

    const Job& spec_;
    const Group& group_;
    const CodeLayout& layout_;
    size_t n_;
    Blocks chunk_;
};

class KnnCollector final : public Collector<KnnCollector> {
   public:
    KnnCollector(const Job& spec, const Group& g, size_t k) : Collector(spec, g) {
        heaps.assign(g.queries.size(), TopK(k));
        refresh_all();
    }
    void merge(const KnnCollector& other) {
        for (size_t q = 0; q < heaps.size(); q++) heaps[q].merge(other.heaps[q]);
    }
    bool offer(int q, float d, int64_t id) {
        return d <= heaps[q].threshold() && selected(id) && heaps[q].push(d, id);
    }
    float bound_of(int q) const { return heaps[q].threshold(); }

    std::vector<TopK> heaps;
};

// The scan's best `n` when they are re-scored (Job::rescore).
class ShortlistCollector final : public Collector<ShortlistCollector> {
   public:
    ShortlistCollector(const Job& spec, const Group& g, size_t n) : Collector(spec, g) {
        lists.assign(g.queries.size(), Shortlist(n));
        refresh_all();
    }
    void merge(const ShortlistCollector& other) {
        for (size_t q = 0; q < lists.size(); q++) lists[q].merge(other.lists[q]);
    }
    bool offer(int q, float d, int64_t id) { return d <= lists[q].threshold() && selected(id) && lists[q].push(d, id); }
    float bound_of(int q) const { return lists[q].threshold(); }

    std::vector<Shortlist> lists;
};

class RangeCollector final : public Collector<RangeCollector> {
   public:
    RangeCollector(const Job& spec, const Group& g, float bound)
            : Collector(spec, g), bound_(bound), rescorer_(spec, spec.levels) {
        // Without exact norms the scan's distance is a lower bound (norm_plan):
        // admit a float rounding more and decide on the exact distance. The
        // scan's <q, r_m> bounds nothing of a cosine: every vector is re-scored.
        admit_ = spec.cosine ? kInf : spec.np.exact ? bound : bound + 1e-5f * std::fabs(bound) + 1e-30f;
        hits.resize(g.queries.size());
        refresh_all();
    }
    void merge(const RangeCollector& other) {
        for (size_t q = 0; q < hits.size(); q++) hits[q].insert(hits[q].end(), other.hits[q].begin(), other.hits[q].end());
    }
    bool offer(int q, float d, int64_t id) {
        if ((!spec_.np.exact || spec_.cosine) && d <= admit_)
            d = rescorer_(size_t(id), group_.queries[q].lut, group_.queries[q].bias);
        if (d < bound_ && selected(id)) hits[q].emplace_back(id, d);
        return false;
    }
    float bound_of(int) const { return admit_; }

    std::vector<RangeHits> hits;

   private:
    float bound_, admit_;
    Rescorer rescorer_;
};

// adapt: the groups are this scan's alone, and split their 4-bit tables
// once they admit many candidates (tables.h: AdmissionRate).
template <class C>
void scan_blocks(const Job& spec, const KernelSet& ks, std::vector<Group>& groups, std::vector<C>& cols, size_t b0,
                 size_t b1, bool adapt) {
    if (b0 >= b1) return;
    const CodeStore& store = *spec.store;
    const CodeLayout& lay = store.layout();
    const size_t chunk = std::max<size_t>(4, kChunkBytes / (size_t(spec.levels) * lay.level_bytes()));
    const ScanFn fn = lay.nbits == 4 ? ks.scan4 : ks.scan8;
    Blocks bl;
    bl.codes = store.block(0);
    bl.block_bytes = lay.block_bytes();
    bl.m = spec.levels;
    const NormPlan& np = spec.np;
    if (np.column) {
        bl.ncodes = store.norm_column(np.scan.slot);
        bl.ncode_bytes = store.column_format().block_bytes();
    }
    const bool decode = np.floats && store.norm_spec().quantized();
    if (np.floats && !decode) bl.norms = reinterpret_cast<const float*>(store.norm_column(np.scan.slot));
    std::vector<float> buf, norms;
    for (size_t c0 = b0; c0 < b1; c0 += chunk) {
        bl.b0 = c0;
        bl.b1 = std::min(b1, c0 + chunk);
        if (decode) {  // norm codes the kernel cannot look up: their centroids, once per chunk
            norms.resize((bl.b1 - c0) * kBlockSize);
            np.scan.values(c0 * kBlockSize, norms.size(), norms.data());
            bl.norms = norms.data();
            bl.norms_b0 = c0;
        }
        for (size_t g = 0; g < groups.size(); g++) {
            if (groups[g].quantized) {
                bl.norm_factor = groups[g].queries[0].qlut.norm_factor();
                cols[g].set_chunk(bl);
                fn(bl, groups[g].tables, cols[g].thresholds, cols[g]);
                if (adapt && lay.nbits == 4 && !groups[g].split_applied) {
                    cols[g].admission.scanned += (bl.b1 - bl.b0) * kBlockSize * groups[g].queries.size();
                    if (split_now(cols[g].admission)) {
                        split_tables(groups[g]);
                        cols[g].refresh_all();
                    }
                }
            } else {
                cols[g].scan_reference(bl.b0, bl.b1, buf);
            }
        }
    }
}

// Runs a search: make(group) builds a collector, finish(group, collector)
// writes its results.
template <class C, class Make, class Finish>
void run(const Job& spec, size_t nq, const float* x, Make make, Finish finish) {
    if (nq == 0) return;
    const KernelSet& ks = active_kernels();
    const size_t nb = CodeLayout::nblocks(spec.store->size());
    // Small searches run on the calling thread: waking a thread team costs
    // more than scanning a few thousand codes.
    const bool tiny = double(nq) * double(nb * kBlockSize) * spec.levels < 1e6;
    const int nt = tiny ? 1 : omp_get_max_threads();
    if (nq >= size_t(nt) || nt == 1) {
        const size_t size = batch_size(spec, nq, nt), block = table_block_size(spec, nt, size);
        for (size_t b0 = 0; b0 < nq; b0 += block) {
            const TableBlock tables = make_tables(spec, x, b0, std::min(block, nq - b0), nt);
            const size_t nbatch = (tables.nq + size - 1) / size;
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
            for (size_t i = 0; i < nbatch; i++) {
                const size_t q0 = b0 + i * size;
                Batch batch = make_batch(spec, ks, tables, q0, std::min(size, b0 + tables.nq - q0));
                std::vector<Group>& groups = batch.groups;
                std::vector<C> cols;
                cols.reserve(groups.size());
                for (const Group& g : groups) cols.push_back(make(g));
                scan_blocks(spec, ks, groups, cols, 0, nb, true);
                for (size_t g = 0; g < groups.size(); g++) finish(groups[g], cols[g]);
            }
        }
        return;
    }
    // Fewer queries than threads: every thread scans a slice of the
    // database for all of them; slices merge in order (ids ascending).
    const TableBlock tables = make_tables(spec, x, 0, nq, nt);
    // The threads share the groups: their tables stay as made.
    Batch batch = make_batch(spec, ks, tables, 0, nq);
    std::vector<Group>& groups = batch.groups;
    std::vector<C> cols;
    cols.reserve(groups.size());
    for (const Group& g : groups) cols.push_back(make(g));
#pragma omp parallel
    {
        const size_t t = size_t(omp_get_thread_num()), T = size_t(omp_get_num_threads());
        std::vector<C> local;
        local.reserve(groups.size());
        for (const Group& g : groups) local.push_back(make(g));
        scan_blocks(spec, ks, groups, local, nb * t / T, nb * (t + 1) / T, false);
#pragma omp for ordered schedule(static, 1)
        for (size_t i = 0; i < T; i++) {
#pragma omp ordered
            for (size_t g = 0; g < groups.size(); g++) cols[g].merge(local[g]);
        }
    }
    for (size_t g = 0; g < groups.size(); g++) finish(groups[g], cols[g]);
}

}  // namespace

void knn(const SearchSpec& search, size_t nq, const float* x, size_t k, float* distances, int64_t* labels) {
    const Job spec(search, false);
    const float sign = spec.l2 ? 1.f : -1.f;
    const float pad = sign * std::numeric_limits<float>::max();
    if (!spec.rescore()) {
        run<KnnCollector>(
                spec, nq, x, [&](const Group& g) { return KnnCollector(spec, g, k); },
                [&](const Group& g, KnnCollector& c) {
                    for (size_t q = 0; q < g.queries.size(); q++)
                        c.heaps[q].extract(distances + (g.q0 + q) * k, labels + (g.q0 + q) * k, pad, sign);
                });
        return;
    }
    // The scan's best, re-scored exactly (with more levels when re-ranking).
    const bool rerank = spec.rerank_levels > spec.levels;
    const size_t n = std::max(rerank ? spec.rerank_k : spec.shortlist, k);
    // Ranked with norm codes at the prefix re-scored: candidates whose lower
    // bound cannot make the top k are skipped (rescore.h).
    const bool bounded = !rerank && spec.np.scan.slot >= 0 && spec.store->norm_spec().quantized();
    run<ShortlistCollector>(
            spec, nq, x, [&](const Group& g) { return ShortlistCollector(spec, g, n); },
            [&](const Group& g, ShortlistCollector& c) {
                Rescorer rescore(spec, spec.final_levels());
                std::optional<NormCodeBound> bound;
                if (bounded) bound.emplace(spec, spec.np.scan.slot);
                for (size_t q = 0; q < g.queries.size(); q++) {
                    const QueryTables& t = g.queries[q];
                    if (bound) bound->set_query(t.lut, t.scan_lut, t.bias);
                    TopK best(k);
                    for (const auto& [d0, id] : c.lists[q].sorted()) {
                        if (bound && bound->lower(size_t(id), d0) > best.threshold()) continue;
                        best.push(rescore(size_t(id), t.lut, t.bias), id);
                    }
                    best.extract(distances + (g.q0 + q) * k, labels + (g.q0 + q) * k, pad, sign);
                }
            });
}

std::vector<RangeHits> range(const SearchSpec& search, size_t nq, const float* x, float radius) {
    const Job spec(search, true);
    // Inside the index smaller is better: inner products are negated.
    const float bound = spec.l2 ? radius : -radius;
    std::vector<RangeHits> out(nq);
    run<RangeCollector>(
            spec, nq, x, [&](const Group& g) { return RangeCollector(spec, g, bound); },
            [&](const Group& g, RangeCollector& c) {
                for (size_t q = 0; q < g.queries.size(); q++) {
                    RangeHits& h = out[g.q0 + q];
                    h = std::move(c.hits[q]);
                    if (!spec.l2)
                        for (auto& e : h) e.second = -e.second;
                }
            });
    return out;
}

}  // namespace dpq::scan
