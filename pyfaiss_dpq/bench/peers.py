"""QPS-recall curves: IndexDPQ against ScaNN and Faiss at equal bytes per vector.

``pyfaiss-dpq bench --curves`` (or ``benchmarks/peers.py``). For every byte
budget B (code bytes per vector) each method is built once at exactly B bytes
and its speed knobs are swept; every point is measured for recall 10@10
against exact inner-product neighbours and for QPS (median of ``--qps-runs``
timed searches of all queries, in rounds that time every configuration of a
budget in turn) at 1 thread and at all threads, in one run.

Methods at B code bytes:

* IndexDPQ, 8-bit (B levels) and 4-bit (2B levels), one k-means model per
  nbits trained once at the largest budget; a budget's index keeps the first
  levels of it. Knobs: the scanned prefix m and the re-rank shortlist. The
  same codes also as a cosine index (``cosine=True``: the unit
  reconstruction; knobs m and the shortlist it re-scores).
* IndexIVFDPQ, 8-bit and 4-bit, sqrt(n) lists (as many as ScaNN's tree has
  leaves), one model per nbits likewise. Knobs: nprobe and m; also as a cosine
  index (nprobe, shortlist 3k).
* ScaNN asymmetric hashing (4-bit, d / 2B dimensions per block), brute force
  and with its partitioning tree (knob: leaves searched); ScaNN is optional
  (PyPI ``scann``) and skipped with a line saying why when it cannot import.
* Faiss IndexPQFastScan (2B x 4 bits) and IndexResidualQuantizerFastScan
  (2B x 4 bits, no norm for inner product): exhaustive, no knob.
* IndexRaBitQFastScan: 1 bit per dimension plus its scalars, listed at the
  budget it fits best with its true size (knob: query bits qb).

"+ floats" groups store the float vectors beside the codes (B + 4d bytes):
ScaNN with its exact re-ordering, and IndexRefineFlat around IndexDPQ and
IndexPQFastScan (knob: k_factor); IndexHNSWFlat (efSearch) sits there too.

A method's QPS at a recall target is its fastest point that reaches the
target (no interpolation); the table gives the ratio of ours (IndexDPQ and
IndexIVFDPQ) to the best of ScaNN, PQ fast-scan and RQ fast-scan, the peers
the goal of issue 11 names.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.resources as resources
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import faiss
import numpy as np

from ..data import TEXT_EMBEDDINGS
from ..index import IndexDPQ, SearchParametersDPQ
from ..ivf import IndexIVFDPQ, SearchParametersIVFDPQ
from .metrics import queries_per_second, recall_at

BUDGETS = (8, 16, 32, 48)
TARGETS = (0.3, 0.4, 0.5, 0.7, 0.9)
K = 10
GOAL_PEERS = ("ScaNN AH", "ScaNN AH+tree", "PQFastScan", "RQFastScan")
DPQ_METHODS = ("IndexDPQ 8-bit", "IndexDPQ 4-bit", "IndexDPQ 8-bit cosine", "IndexDPQ 4-bit cosine",
               "IndexIVFDPQ 8-bit", "IndexIVFDPQ 4-bit", "IndexIVFDPQ 8-bit cosine", "IndexIVFDPQ 4-bit cosine")
OUR_PREFIXES = ("IndexDPQ", "IndexIVFDPQ")  # ours in the plots, re-ranked variants included


@dataclass
class Curve:
    """One method at one budget: its configuration and its measured points."""

    method: str
    group: str  # "B bytes" (codes only) or "B bytes + floats"
    config: str
    bytes_per_vector: float
    points: list = field(default_factory=list)  # {"knobs", "recall", "qps": {threads: qps}}

    def qps_at(self, target: float, threads: int) -> Optional[float]:
        ok = [p["qps"][str(threads)] for p in self.points if p["recall"] >= target]
        return max(ok) if ok else None

    @property
    def max_recall(self) -> float:
        return max((p["recall"] for p in self.points), default=0.0)


# ---------------------------------------------------------------- data
def load_minilm(extra: "list[Path]", n_queries: int, seed: int = 0) -> "tuple[np.ndarray, np.ndarray, str]":
    """The shipped MiniLM embeddings plus `extra` files of make_text_embeddings.py, distinct sentences only.

    Returns (base, queries, description); queries are a seeded random hold-out.
    """
    parts, hashes, names = [], [], []
    for path in [resources.files("pyfaiss_dpq") / "datasets" / TEXT_EMBEDDINGS, *extra]:
        with np.load(path) as z:
            parts.append(z["embeddings"].astype(np.float32))
            hashes.append(z["sentence_hash"])
            names.append(f"{Path(str(path)).name} ({len(parts[-1])})")
    x, h = np.concatenate(parts), np.concatenate(hashes)
    _, first = np.unique(h, return_index=True)
    x = x[np.sort(first)]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if n_queries >= len(x) // 2:
        raise ValueError(f"{n_queries} queries leave too small a base out of {len(x)} vectors")
    order = np.random.default_rng(seed).permutation(len(x))
    queries, base = x[order[:n_queries]], x[order[n_queries:]]
    desc = (f"all-MiniLM-L6-v2 sentence embeddings, d={x.shape[1]}, unit norm, inner product: "
            f"{' + '.join(names)}, {len(x)} distinct; {len(base)} base, {n_queries} held-out queries")
    return np.ascontiguousarray(base), np.ascontiguousarray(queries), desc


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    return flat.search(queries, k)[1]


# ---------------------------------------------------------------- measuring
class Meter:
    """Recall and QPS of search callables, at each thread count.

    Recall is measured when a point is added; QPS later, by `time_points`, in
    `runs` rounds that each time every pending point once (after one untimed
    search), so that all methods of a budget meet the same moments of a noisy
    machine: a point's QPS is the median over rounds.
    """

    def __init__(self, queries: np.ndarray, gt: np.ndarray, threads: "list[int]", runs: int, log: Callable):
        self.queries, self.gt, self.threads, self.runs, self.log = queries, gt, threads, runs, log
        self.pending: list = []  # (curve, point, search)

    def point(self, curve: Curve, knobs: dict, search: Callable[[np.ndarray, int], np.ndarray]) -> None:
        """search(queries, threads) -> ids (nq, >= K)."""
        faiss.omp_set_num_threads(self.threads[-1])
        recall = recall_at(search(self.queries, self.threads[-1]), self.gt, K, K)
        curve.points.append({"knobs": knobs, "recall": recall, "qps": {}})
        self.pending.append((curve, curve.points[-1], search))
        self.log(f"  {curve.method:<22} {_knob_text(knobs):<28} recall {recall:.3f}")

    def time_points(self) -> None:
        """QPS of every pending point, rounds taking turns over all of them."""
        samples = [{t: [] for t in self.threads} for _ in self.pending]
        for _ in range(self.runs):
            for (_, _, search), qps in zip(self.pending, samples):
                for t in self.threads:
                    qps[t].append(queries_per_second(lambda t=t: search(self.queries, t), len(self.queries), t, 1))
        for (curve, point, _), qps in zip(self.pending, samples):
            point["qps"] = {str(t): float(np.median(v)) for t, v in qps.items()}
            self.log(f"  {curve.method:<22} {_knob_text(point['knobs']):<28} recall {point['recall']:.3f}  "
                     + "  ".join(f"{t}T {q:9.0f} QPS" for t, q in point["qps"].items()))
        self.pending = []


def _knob_text(knobs: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in knobs.items()) or "-"


def faiss_search(index: faiss.Index, params=None) -> Callable:
    def search(q: np.ndarray, threads: int) -> np.ndarray:
        faiss.omp_set_num_threads(threads)
        return index.search(q, K, params=params)[1]
    return search


# ---------------------------------------------------------------- methods
def dpq_models(train: np.ndarray, base: np.ndarray, budgets, log) -> dict:
    """nbits -> (codebooks, codes) of one model trained at the largest budget."""
    d, out = train.shape[1], {}
    for nbits, per_byte in ((8, 1), (4, 2)):
        levels = max(budgets) * per_byte
        log(f"training IndexDPQ {nbits}-bit, {levels} levels (progressive residual k-means)")
        index = IndexDPQ(d, levels, nbits, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.add(base)
        out[nbits] = (index.codebooks, index.get_codes())
    return out


def dpq_index(model, levels: int, nbits: int, cosine: bool = False) -> IndexDPQ:
    codebooks, codes = model
    index = IndexDPQ(codebooks.shape[2], levels, nbits, faiss.METRIC_INNER_PRODUCT, cosine=cosine)
    index.codebooks = codebooks[:levels]
    index.add_codes(np.ascontiguousarray(codes[:, :levels]))
    return index


def searched_prefixes(levels: int) -> "list[int]":
    """Half, three quarters and all of the levels, longest first: the index keeps every level, the search reads m."""
    return sorted({max(1, levels // 2), max(1, 3 * levels // 4), levels}, reverse=True)


def dpq_knobs(levels: int) -> "list[dict]":
    """Prefixes m alone (searched_prefixes) and shorter prefixes (a quarter, half) re-ranked to all levels."""
    knobs = [{"m": m} for m in searched_prefixes(levels)]
    for m in sorted({max(1, levels // 4), max(1, levels // 2)} - {levels}):
        knobs += [{"m": m, "rerank_k": r} for r in (16, 64, 256)]
    return knobs


def measure_dpq(meter: Meter, model, budget: int, nbits: int) -> Curve:
    levels = budget * (8 // nbits)
    index = dpq_index(model, levels, nbits)
    curve = Curve(f"IndexDPQ {nbits}-bit", f"{budget} B", f"{levels} levels x {nbits} bits, k-means trained",
                  index.bytes_per_vector)
    for kn in dpq_knobs(levels):
        params = SearchParametersDPQ(levels=kn["m"], rerank_levels=levels if "rerank_k" in kn else 0,
                                     rerank_k=kn.get("rerank_k", 0))
        meter.point(curve, kn, faiss_search(index, params))
    return curve


def measure_dpq_cosine(meter: Meter, model, budget: int, nbits: int) -> Curve:
    """The same codes as a cosine index: prefixes m, each with shortlists of 3k and 10k re-scored."""
    levels = budget * (8 // nbits)
    index = dpq_index(model, levels, nbits, cosine=True)
    curve = Curve(f"IndexDPQ {nbits}-bit cosine", f"{budget} B",
                  f"{levels} levels x {nbits} bits, cosine=True (unit reconstructions)", index.bytes_per_vector)
    for m in searched_prefixes(levels):
        for shortlist in (3 * K, 10 * K):
            meter.point(curve, {"m": m, "shortlist": shortlist},
                        faiss_search(index, SearchParametersDPQ(levels=m, shortlist=shortlist)))
    return curve


def ivf_models(train: np.ndarray, base: np.ndarray, budgets, log) -> dict:
    """nbits -> (centroids, codebooks) of one IndexIVFDPQ trained at the largest budget, with
    as many lists as ScaNN's tree has leaves (sqrt of the base size)."""
    d, nlist, out = train.shape[1], int(round(np.sqrt(len(base)))), {}
    for nbits, per_byte in ((8, 1), (4, 2)):
        levels = max(budgets) * per_byte
        log(f"training IndexIVFDPQ {nbits}-bit, {nlist} lists, {levels} levels on the residuals")
        index = IndexIVFDPQ(faiss.IndexFlatIP(d), d, nlist, levels, nbits, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        out[nbits] = (index.centroids, index.codebooks)
    return out


def measure_ivf(meter: Meter, model, budget: int, nbits: int, train: np.ndarray, base: np.ndarray,
                cosine: bool = False) -> Curve:
    """The trained model's first levels over the same lists (its coarse quantizer used as is); cosine:
    the same as a cosine index, each point re-scoring a shortlist of 3k."""
    centroids, codebooks = model
    d, nlist, levels = base.shape[1], len(centroids), budget * (8 // nbits)
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(centroids)
    index = IndexIVFDPQ(quantizer, d, nlist, levels, nbits, faiss.METRIC_INNER_PRODUCT, cosine=cosine)
    index.codebooks = codebooks[:levels]
    index.train(train)  # keeps the quantizer's centroids and these codebooks
    index.add(base)
    curve = Curve(f"IndexIVFDPQ {nbits}-bit" + (" cosine" if cosine else ""), f"{budget} B",
                  f"IVF {nlist} lists x {levels} levels x {nbits} bits (ids apart, as for ScaNN's tree)"
                  + (", cosine=True" if cosine else ""), index.bytes_per_vector)
    probes = sorted({max(1, nlist // f) for f in (40, 20, 10, 5, 2)})
    if cosine:
        knobs = [{"nprobe": p, "m": levels, "shortlist": 3 * K} for p in probes]
    else:
        knobs = [{"nprobe": p, "m": levels} for p in probes] + [{"nprobe": p, "m": levels // 2} for p in probes[1::2]]
    for kn in knobs:
        params = SearchParametersIVFDPQ(nprobe=kn["nprobe"], levels=kn["m"], shortlist=kn.get("shortlist", 0))
        meter.point(curve, kn, faiss_search(index, params))
    return curve


def measure_dpq_refine(meter: Meter, model, budget: int, nbits: int, base: np.ndarray) -> Curve:
    levels = budget * (8 // nbits)
    index = _refine_flat(dpq_index(model, levels, nbits), base)
    curve = Curve(f"IndexDPQ {nbits}-bit+RefineFlat", f"{budget} B + floats",
                  f"IndexRefineFlat(IndexDPQ {levels} x {nbits} bits)", budget + 4 * base.shape[1])
    for kf in (1, 2, 4, 8):
        meter.point(curve, {"k_factor": kf}, faiss_search(index, faiss.IndexRefineSearchParameters(k_factor=kf)))
    return curve


def _refine_flat(index: faiss.Index, base: np.ndarray) -> faiss.IndexRefineFlat:
    """IndexRefineFlat over a filled index: the float vectors of `base` beside its codes."""
    refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(base))
    refine.referenced_objects = [index]  # the SWIG object does not own its base index
    return refine


def measure_faiss_fastscan(meter: Meter, train, base, budget: int) -> "list[Curve]":
    d, M = base.shape[1], 2 * budget
    curves = []
    pq = faiss.IndexPQFastScan(d, M, 4, faiss.METRIC_INNER_PRODUCT)
    rq = faiss.IndexResidualQuantizerFastScan(d, M, 4, faiss.METRIC_INNER_PRODUCT,
                                              faiss.AdditiveQuantizer.ST_LUT_nonorm)
    for name, index, config in (("PQFastScan", pq, f"IndexPQFastScan M={M} x 4 bits, bbs=32"),
                                ("RQFastScan", rq, f"IndexResidualQuantizerFastScan M={M} x 4 bits, no norm (IP), "
                                                   "default beam")):
        index.train(train)
        index.add(base)
        curve = Curve(name, f"{budget} B", config, index.code_size)
        meter.point(curve, {}, faiss_search(index))
        curves.append(curve)
    refine = _refine_flat(pq, base)
    curve = Curve("PQFastScan+RefineFlat", f"{budget} B + floats", f"IndexRefineFlat(IndexPQFastScan M={M} x 4)",
                  budget + 4 * d)
    for kf in (1, 2, 4, 8):
        meter.point(curve, {"k_factor": kf}, faiss_search(refine, faiss.IndexRefineSearchParameters(k_factor=kf)))
    return curves + [curve]


def measure_rabitq(meter: Meter, train, base, budgets) -> Curve:
    d = base.shape[1]
    index = faiss.IndexRaBitQFastScan(d, faiss.METRIC_INNER_PRODUCT)
    index.train(train)
    index.add(base)
    budget = min(budgets, key=lambda b: abs(b - index.code_size))
    curve = Curve("RaBitQFastScan", f"{budget} B", f"IndexRaBitQFastScan 1 bit/dim, {index.code_size} B per vector "
                  f"(over the {budget} B budget)" if index.code_size > budget else "IndexRaBitQFastScan 1 bit/dim",
                  index.code_size)
    for qb in (2, 4, 8):
        meter.point(curve, {"qb": qb}, lambda q, t, qb=qb: _with_qb(index, qb, q, t))
    return curve


def _with_qb(index, qb: int, q: np.ndarray, threads: int) -> np.ndarray:
    index.qb = qb  # query bits are an index field, not a search parameter
    faiss.omp_set_num_threads(threads)
    return index.search(q, K)[1]


def measure_hnsw(meter: Meter, base) -> Curve:
    index = faiss.IndexHNSWFlat(base.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.add(base)
    links = 2 * 32 * 4  # level-0 neighbour ids (upper levels add ~1/M of it)
    curve = Curve("HNSWFlat", "floats", "IndexHNSWFlat M=32, efConstruction=40", 4 * base.shape[1] + links)
    for ef in (16, 32, 64, 128, 256):
        meter.point(curve, {"efSearch": ef}, faiss_search(index, faiss.SearchParametersHNSW(efSearch=ef)))
    return curve


def scann_status() -> Optional[str]:
    """None when ScaNN imports, else why it is skipped."""
    try:
        import scann  # noqa: F401
    except Exception as exc:  # ImportError, or a binary wheel that cannot load here
        return f"ScaNN skipped: cannot import scann ({type(exc).__name__}: {exc}); pip install 'pyfaiss-dpq[scann]'"
    return None


def measure_scann(meter: Meter, base, budget: int) -> "list[Curve]":
    from scann.scann_ops.py import scann_ops_pybind

    d, n = base.shape[1], len(base)
    if d % (2 * budget):
        return []
    dims = d // (2 * budget)
    leaves = int(round(np.sqrt(n)))
    curves = []
    for tree in (False, True):
        for reorder in (False, True):
            b = scann_ops_pybind.builder(base, K, "dot_product")
            if tree:
                b = b.tree(num_leaves=leaves, num_leaves_to_search=leaves // 10, training_sample_size=n)
            b = b.score_ah(dims, anisotropic_quantization_threshold=0.2)
            if reorder:
                b = b.reorder(200)
            searcher = b.build()
            name = "ScaNN AH" + ("+tree" if tree else "") + ("+reorder" if reorder else "")
            config = (f"score_ah({dims} dims/block, 4-bit, anisotropic 0.2)" + (f", tree {leaves} leaves" if tree else "")
                      + (", exact reorder (float vectors)" if reorder else ""))
            curve = Curve(name, f"{budget} B" + (" + floats" if reorder else ""), config,
                          budget + (4 * d if reorder else 0))
            knob_sets = [{}]
            if tree:
                knob_sets = [{"leaves": lv} for lv in sorted({max(1, leaves // f) for f in (40, 20, 10, 5, 2, 1)})]
            if reorder:
                knob_sets = [{**kn, "pre_reorder": r} for kn in knob_sets for r in (20, 50, 200)]
                if tree:  # keep the sweep short: the widest shortlists only at the larger leaf counts
                    knob_sets = [kn for kn in knob_sets if kn["pre_reorder"] == 50 or kn["leaves"] >= leaves // 5]
            for kn in knob_sets:
                meter.point(curve, kn, _scann_search(searcher, kn))
            curves.append(curve)
    return curves


def _scann_search(searcher, knobs: dict) -> Callable:
    kw = {"final_num_neighbors": K}
    if "leaves" in knobs:
        kw["leaves_to_search"] = knobs["leaves"]
    kw["pre_reorder_num_neighbors"] = knobs.get("pre_reorder", K)

    def search(q: np.ndarray, threads: int) -> np.ndarray:
        if threads == 1:
            return np.asarray(searcher.search_batched(q, **kw)[0], dtype=np.int64)
        searcher.set_num_threads(threads)
        return np.asarray(searcher.search_batched_parallel(q, **kw)[0], dtype=np.int64)
    return search


# ---------------------------------------------------------------- tables and plots
def goal_rows(curves: "list[Curve]", budgets, threads: "list[int]") -> "list[dict]":
    """Per budget, target and thread count: best IndexDPQ QPS, best goal peer QPS and their ratio."""
    rows = []
    for b in budgets:
        group = [c for c in curves if c.group == f"{b} B"]
        dpq = [c for c in group if c.method in DPQ_METHODS]
        peers = [c for c in group if c.method in GOAL_PEERS]
        for t in threads:
            for target in TARGETS:
                best = lambda cs: max(((c.qps_at(target, t), c.method) for c in cs if c.qps_at(target, t)),
                                      default=(None, None))
                (dq, dm), (pq, pm) = best(dpq), best(peers)
                rows.append({"budget": b, "threads": t, "target": target, "dpq_qps": dq, "dpq_method": dm,
                             "peer_qps": pq, "peer_method": pm,
                             "ratio": dq / pq if dq and pq else None})
        rows.append({"budget": b, "max_recall_dpq": max((c.max_recall for c in dpq), default=0.0),
                     "max_recall_peers": max((c.max_recall for c in peers), default=0.0)})
    return rows


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(results: dict) -> str:
    threads = results["config"]["threads"]
    out = [f"# QPS-recall curves at equal bytes per vector ({results['date']})", "",
           f"Command: `{results['command']}`", "",
           f"Machine: {results['machine']}", "", f"Data: {results['data']}", "",
           f"Recall 10@10 against exact inner-product neighbours; QPS = median of {results['config']['qps_runs']} "
           f"timed searches of all {results['config']['n_queries']} queries (one batch), in rounds that time "
           "every configuration of a budget in turn.", ""]
    if not results.get("complete", True):
        out += ["**Incomplete run**: the budgets measured so far.", ""]
    out += [f"- {n}" for n in results["notes"]] + [""]
    out += ["## IndexDPQ against the best of ScaNN, PQ fast-scan and RQ fast-scan (codes only)", "",
            "QPS of each side's fastest point reaching the recall target (- : not reached); ratio = DPQ / peer.", "",
            "| bytes | threads | target | IndexDPQ QPS (method) | best peer QPS (method) | ratio |",
            "|---|---|---|---|---|---|"]
    for r in results["goal"]:
        if "target" in r:
            out.append(f"| {r['budget']} | {r['threads']} | {r['target']} | {_fmt(r['dpq_qps'], '.0f')} "
                       f"({r['dpq_method'] or '-'}) | {_fmt(r['peer_qps'], '.0f')} ({r['peer_method'] or '-'}) | "
                       f"{_fmt(r['ratio'], '.2f')} |")
    out += ["", "| bytes | highest recall IndexDPQ | highest recall of those peers |", "|---|---|---|"]
    out += [f"| {r['budget']} | {r['max_recall_dpq']:.3f} | {r['max_recall_peers']:.3f} |"
            for r in results["goal"] if "max_recall_dpq" in r]
    for group in dict.fromkeys(c["group"] for c in results["curves"]):
        out += ["", f"## {group}", "",
                "| method | configuration | bytes/vector | knobs | recall | "
                + " | ".join(f"QPS {t}T" for t in threads) + " |", "|---|---|---|---|---|" + "---|" * len(threads)]
        for c in (c for c in results["curves"] if c["group"] == group):
            for p in sorted(c["points"], key=lambda p: p["recall"]):
                out.append(f"| {c['method']} | {c['config']} | {c['bytes_per_vector']:.0f} | {_knob_text(p['knobs'])} "
                           f"| {p['recall']:.3f} | " + " | ".join(f"{p['qps'][str(t)]:.0f}" for t in threads) + " |")
        out.append(f"\n![{group}]({_plot_name(group)})")
    return "\n".join(out) + "\n"


def _plot_name(group: str) -> str:
    return "curves_" + group.replace(" + ", "_plus_").replace(" ", "") + ".png"


def pareto_front(points: "list[tuple[float, float]]") -> "list[tuple[float, float]]":
    """The (recall, QPS) points that no other point matches or beats on both, by recall."""
    front, best = [], -np.inf
    for r, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if q > best:
            front.append((r, q))
            best = q
    return front[::-1]


def write_plots(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = results["config"]["threads"]
    # One colour per method, the same in every plot (the default cycle has 10: too few).
    methods = list(dict.fromkeys(c["method"] for c in results["curves"]))
    palette = plt.get_cmap("tab20")
    for group in dict.fromkeys(c["group"] for c in results["curves"]):
        curves = [c for c in results["curves"] if c["group"] == group or (c["group"] == "floats" and "floats" in group)]
        fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 4.8), squeeze=False)
        for ax, t in zip(axes[0], threads):
            for c in curves:
                pts = [(p["recall"], p["qps"][str(t)]) for p in c["points"]]
                dpq = c["method"].startswith(OUR_PREFIXES)
                front = pareto_front(pts)
                line, = ax.plot([p[0] for p in front], [p[1] for p in front], "-o" if dpq else "--s", ms=4,
                                label=c["method"], color=palette(methods.index(c["method"]) % palette.N))
                # every configuration measured, faint; the line joins those no other one beats
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o" if dpq else "s", ms=3, alpha=0.35,
                        color=line.get_color())
            ax.set_yscale("log")
            ax.set_xlabel("recall 10@10")
            ax.set_ylabel("QPS")
            ax.set_title(f"{group}, {t} thread{'s' if t > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / _plot_name(group), dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------- driver
def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--curves", action="store_true",
                        help="QPS-recall curves against ScaNN and Faiss fast-scan on MiniLM embeddings "
                             "(bench/peers.py) instead of the fixed-length comparison")
    parser.add_argument("--extra-embeddings", type=Path, nargs="*", default=[],
                        help="--curves: more .npz files of benchmarks/make_text_embeddings.py to add to the base")
    parser.add_argument("--budgets", type=lambda s: [int(v) for v in s.split(",")], default=list(BUDGETS),
                        help="--curves: code bytes per vector (default 8,16,32,48)")
    parser.add_argument("--queries", type=int, default=1000, help="--curves: held-out queries (default 1000)")
    parser.add_argument("--train-size", type=int, default=20000,
                        help="--curves: base vectors every method trains on (default 20000)")


def run_curves(args: argparse.Namespace, command: str, machine: str) -> int:
    out = args.out or Path("results/curves")
    out.mkdir(parents=True, exist_ok=True)
    threads = sorted({1, args.threads or faiss.omp_get_max_threads()})
    log = print
    base, queries, desc = load_minilm(args.extra_embeddings, args.queries)
    train = base[np.random.default_rng(1).permutation(len(base))[:min(len(base), args.train_size)]]
    gt = exact_neighbours(base, queries, K)
    meter = Meter(queries, gt, threads, args.qps_runs, log)
    notes = []
    log(desc)
    before = faiss.omp_get_max_threads()
    curves: "list[Curve]" = []
    config = {"threads": threads, "qps_runs": args.qps_runs, "n_queries": len(queries), "n_train": len(train),
              "budgets": args.budgets, "k": K, "lut_kernel": _lut_kernel()}

    def write(final: bool) -> None:  # after every budget, so that a long run leaves what it measured
        results = {"date": datetime.date.today().isoformat(), "command": command, "machine": machine, "data": desc,
                   "config": config, "complete": final, "notes": notes, "curves": [asdict(c) for c in curves],
                   "goal": goal_rows(curves, args.budgets, threads)}
        (out / "curves.json").write_text(json.dumps(results, indent=1))
        if not args.no_plots:
            write_plots(results, out)
        (out / "curves.md").write_text(markdown(results))

    try:
        models = dpq_models(train, base, args.budgets, log)
        ivf = ivf_models(train, base, args.budgets, log)
        why = scann_status()
        if why:
            notes.append(why)
            log(why)
        for b in args.budgets:
            log(f"budget {b} B")
            for nbits in (8, 4):
                curves.append(measure_dpq(meter, models[nbits], b, nbits))
                curves.append(measure_dpq_cosine(meter, models[nbits], b, nbits))
                curves.append(measure_ivf(meter, ivf[nbits], b, nbits, train, base))
                curves.append(measure_ivf(meter, ivf[nbits], b, nbits, train, base, cosine=True))
            curves += measure_faiss_fastscan(meter, train, base, b)
            if not why:
                curves += measure_scann(meter, base, b)
            curves.append(measure_dpq_refine(meter, models[4], b, 4, base))
            log(f"timing the {len(meter.pending)} configurations of {b} B, {args.qps_runs} rounds taking turns")
            meter.time_points()
            write(False)
        curves.append(measure_rabitq(meter, train, base, args.budgets))
        curves.append(measure_hnsw(meter, base))
        meter.time_points()
    finally:
        faiss.omp_set_num_threads(before)
    write(True)
    log(f"wrote {out / 'curves.md'}, {out / 'curves.json'}" + ("" if args.no_plots else " and plots"))
    return 0


def _lut_kernel() -> str:
    from .._native import core

    return core.active_lut_kernel()


__all__ = ["Curve", "add_curve_arguments", "run_curves", "load_minilm", "goal_rows", "markdown", "BUDGETS"]
