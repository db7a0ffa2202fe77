"""Prefix norms at equal total bytes: IndexDPQ against Faiss's quantizers.

One DPQ training per code width (--nbits; 4-bit levels by default) and one
encoding pass (beam --beam, 5 as RQ's) serve every budget: each configuration below takes the first
levels of the same codes. At each total budget B bytes per vector (codes +
norms, what each index stores) it compares, for 4-bit levels:

* DPQ, no norm: 2B levels, the scan ranks without the norm's cross terms;
* DPQ, 4-bit norm: 2B - 1 levels + a 4-bit code of prefix 2B - 1's norm (one
  more lookup column of the 4-bit scan);
* DPQ, 8-bit norm: 2B - 2 levels + an 8-bit norm code;

(8-bit levels: B levels without norm, B - 1 levels + an 8-bit norm code),
each with its best ``shortlist`` re-scored exactly, for every value of
--shortlists; against faiss IndexPQ (M = B x 8 bits), IndexPQFastScan
(M = 2B x 4 bits), OPQ + IndexPQ, IndexResidualQuantizer (B - 1 x 8 bits,
beam 5, 1-byte norm) and IndexResidualQuantizerFastScan (2B - 2 x 4 bits, its
2 x 4-bit norm). A norm-code configuration is an index of its own made from
the trained codebooks and the stored codes (``add_codes``), whose norm
quantizer (a 1-D k-means of 16 or 256 values) trains on that first add.

Data: real L2 vectors made on this machine (8x8 grayscale patches of
scikit-learn's two sample photos, ~133k) and the shipped MiniLM sentence
embeddings, L2-normalized and searched as cosine (METRIC_L2 on unit vectors;
DPQ with inner product on the same codes, and DPQ's cosine index
(``cosine=True``: the unit reconstruction r_m / ||r_m||, no norm stored, the
scan's best ``shortlist`` re-scored), B x 8 / nbits levels).
Recall 10@10 against exact search on the raw vectors; QPS single-threaded,
median of --runs, one batch of --nq queries. The goal check per budget: the
best DPQ recall against IndexPQ / RQ / RQ fast-scan, and the fastest DPQ row
whose recall is at least IndexPQFastScan's against that index's QPS.

    python benchmarks/norms.py                  # both data sets, budgets 8, 16, 32
    python benchmarks/norms.py --data patches --budgets 8,16 --nbits 4,8
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq.bench.baselines import plan_opq, plan_pq, plan_pq_fastscan, stored_bytes_per_vector
from pyfaiss_dpq.bench.metrics import queries_per_second, recall_at
from pyfaiss_dpq.data import load_text_embeddings


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches,minilm", help="comma-separated: patches, minilm")
    p.add_argument("--budgets", default="8,16,32", help="total bytes per vector")
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=20_000, help="training vectors (subsampled from the base)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--nbits", default="4", help="comma-separated code widths of DPQ trainings: 4, 8")
    p.add_argument("--beam", type=int, default=5, help="DPQ's encoding beam (index.beam_size; RQ's is 5)")
    p.add_argument("--shortlists", default="10,30,100", help="shortlists every DPQ configuration is measured at")
    p.add_argument("--skip", default="", help="semicolon-separated baselines to skip (e.g. \"OPQ+PQ;IndexPQ\")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--compare-rescore", action="store_true",
                   help="only time the exact re-score's two ways (cross-product table, decoding) on MiniLM")
    return p.parse_args()


def compare_rescore(args) -> None:
    """QPS of a no-norm 4-bit index (16 levels, shortlist 100) with each way of re-scoring, alternated."""
    from pyfaiss_dpq._native import core

    xt, xb, xq = split(minilm_unit(), 300, 5000, args.seed)
    index = IndexDPQ(xb.shape[1], 16, 4, faiss.METRIC_L2, norms="none")
    index.train(xt)
    index.add(xb)
    params = SearchParametersDPQ(shortlist=100)
    for how in ("decode", "table") * 2:
        core.set_exact_norms(how)
        print(f"{how}: QPS {qps(lambda: index.search(xq, 10, params=params), len(xq), args.runs):.0f}", flush=True)
    core.set_exact_norms("table")


# ---------------------------------------------------------------- data

def image_patches() -> np.ndarray:
    """8x8 grayscale patches (stride 2) of scikit-learn's two sample photos, (n, 64) float32."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        g = img.astype(np.float32).mean(axis=2)
        w = np.lib.stride_tricks.sliding_window_view(g, (8, 8))[::2, ::2]
        out.append(w.reshape(-1, 64))
    return np.ascontiguousarray(np.concatenate(out))


def minilm_unit() -> np.ndarray:
    x = np.ascontiguousarray(load_text_embeddings(), dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def split(x: np.ndarray, nq: int, ntrain: int, seed: int):
    rng = np.random.default_rng(seed)
    x = x[rng.permutation(len(x))]
    xq, xb = x[:nq], x[nq:]
    xt = xb[rng.choice(len(xb), min(ntrain, len(xb)), replace=False)]
    return np.ascontiguousarray(xt), np.ascontiguousarray(xb), np.ascontiguousarray(xq)


# ---------------------------------------------------------------- measuring

def recall10(I: np.ndarray, gt: np.ndarray) -> float:
    return recall_at(I, gt, 10, 10)


def qps(search, nq: int, runs: int) -> float:
    return queries_per_second(search, nq, faiss.omp_get_max_threads(), runs)


def measure(name, index, xq, gt, runs, params=None, bytes_=None):
    run = lambda: index.search(xq, 10, params=params)  # noqa: E731
    _, I = run()
    row = {"method": name, "bytes": bytes_ if bytes_ is not None else stored_bytes_per_vector(index),
           "recall": recall10(I, gt), "qps": qps(run, len(xq), runs)}
    print(f"    {name}: {row['bytes']} B, recall {row['recall']:.3f}, QPS {row['qps']:.0f}", flush=True)
    return row


# ---------------------------------------------------------------- indexes

def train_dpq(xt, xb, budgets, nbits, beam):
    """One training and encoding pass, no norms stored: the configurations take its codes."""
    levels = max(budgets) * 8 // nbits
    index = IndexDPQ(xb.shape[1], levels, nbits, faiss.METRIC_L2, norms="none")
    index.beam_size = beam
    t0 = time.perf_counter()
    index.train(xt)
    t1 = time.perf_counter()
    index.add(xb)
    t2 = time.perf_counter()
    print(f"  DPQ: {levels} levels x {nbits} bits trained in {t1 - t0:.0f} s, encoded (beam {beam}) in "
          f"{t2 - t1:.0f} s", flush=True)
    return index


def dpq_configs(nbits, budget):
    """(label, levels, norms) of each DPQ configuration that fills `budget` bytes."""
    per_byte = 8 // nbits
    out = [(f"DPQ {nbits}-bit, no norm", per_byte * budget, "none")]
    if nbits == 4:
        out.append(("DPQ 4-bit, 4-bit norm", 2 * budget - 1, "4bit"))
    out.append((f"DPQ {nbits}-bit, 8-bit norm", per_byte * (budget - 1), "8bit"))
    return out


def with_norms(src, levels, norms):
    """The first `levels` levels of src's codes, keeping the norm of that prefix as `norms`."""
    if norms == "none":
        return src.truncated(levels, norm_prefixes=[])
    index = IndexDPQ(src.d, levels, src.nbits, faiss.METRIC_L2, norms=norms, norm_prefixes=[levels])
    index.codebooks = src.codebooks[:levels]
    index.add_codes(np.ascontiguousarray(src.get_codes()[:, :levels]))
    return index


def inner_product(src, levels, cosine):
    """The first `levels` levels of src's codes as an inner-product index (cosine: a cosine one)."""
    index = IndexDPQ(src.d, levels, src.nbits, faiss.METRIC_INNER_PRODUCT, cosine=cosine)
    index.codebooks = src.codebooks[:levels]
    index.add_codes(np.ascontiguousarray(src.get_codes()[:, :levels]))
    return index


def rq(d, budget):
    index = faiss.IndexResidualQuantizer(d, budget - 1, 8, faiss.METRIC_L2, faiss.AdditiveQuantizer.ST_norm_qint8)
    index.rq.max_beam_size = 5
    index.rq.use_beam_LUT = 1  # Faiss's own faster beam encoder (same codes up to rounding)
    return index


def rq_fastscan(d, budget):
    index = faiss.IndexResidualQuantizerFastScan(d, 2 * budget - 2, 4, faiss.METRIC_L2,
                                                 faiss.AdditiveQuantizer.ST_norm_rq2x4)
    index.rq.max_beam_size = 5
    index.rq.use_beam_LUT = 1
    return index


BASELINES = {
    "IndexPQ": lambda d, b: plan_pq(d, faiss.METRIC_L2, b).build(),
    "IndexPQFastScan": lambda d, b: plan_pq_fastscan(d, faiss.METRIC_L2, b).build(),
    "OPQ+PQ": lambda d, b: plan_opq(d, faiss.METRIC_L2, b).build(),
    "RQ (beam 5, 1 B norm)": rq,
    "RQ fast-scan (2x4-bit norm)": rq_fastscan,
}


# ---------------------------------------------------------------- one data set

def run_dataset(name, x, args, budgets, skip, shortlists, out):
    """Rows of every budget, appended to out[...]["rows"] as they are measured."""
    xt, xb, xq = split(x, args.nq, args.ntrain, args.seed)
    print(f"\n## {name}: base {xb.shape}, {len(xq)} queries, {len(xt)} training vectors", flush=True)
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, 10)
    rows = out["rows"]
    models = {nbits: train_dpq(xt, xb, budgets, nbits, args.beam) for nbits in args.nbits}
    for b in budgets:
        for nbits, src in models.items():
            for label, levels, norms in dpq_configs(nbits, b):
                idx = with_norms(src, levels, norms)
                assert idx.bytes_per_vector == b, (label, idx.bytes_per_vector)
                for s in shortlists:
                    rows.append({"budget": b, "levels": levels, "shortlist": s,
                                 **measure(f"{label} ({levels} levels), shortlist {s}", idx, xq, gt, args.runs,
                                           params=SearchParametersDPQ(shortlist=s), bytes_=b)})
            if name.startswith("MiniLM"):  # the same codes ranked by inner product, and by cosine
                levels = b * 8 // nbits
                ip, cos = (inner_product(src, levels, cosine) for cosine in (False, True))
                rows.append({"budget": b, **measure(f"DPQ {nbits}-bit, inner product ({levels} levels)", ip, xq, gt,
                                                    args.runs, bytes_=ip.bytes_per_vector)})
                for s in shortlists:
                    rows.append({"budget": b, "levels": levels, "shortlist": s,
                                 **measure(f"DPQ {nbits}-bit, cosine ({levels} levels), shortlist {s}", cos, xq, gt,
                                           args.runs, params=SearchParametersDPQ(shortlist=s),
                                           bytes_=cos.bytes_per_vector)})
        for method, make in BASELINES.items():
            if method in skip:
                continue
            index = make(xb.shape[1], b)
            t0 = time.perf_counter()
            index.train(xt)
            index.add(xb)
            print(f"  {method} at {b} B built in {time.perf_counter() - t0:.0f} s", flush=True)
            rows.append({"budget": b, **measure(method, index, xq, gt, args.runs)})
        report(name, rows, [b])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)


def is_dpq_ranked(r):
    """A DPQ row that ranks as the data asks (L2 with the prefix norm, or cosine), not by plain inner product."""
    return r["method"].startswith("DPQ") and "inner product" not in r["method"]


def report(name, rows, budgets):
    """The table of the budgets' rows and the goal checks."""
    print(f"\n### {name}: recall 10@10 and QPS (1 thread) at equal total bytes per vector\n")
    print("| bytes | method | recall 10@10 | QPS |")
    print("|---|---|---|---|")
    for r in rows:
        if r["budget"] in budgets:
            print(f"| {r['budget']} | {r['method']} | {r['recall']:.3f} | {r['qps']:.0f} |")
    print("\nGoal checks:")
    for b in budgets:
        at = {r["method"]: r for r in rows if r["budget"] == b}
        dpq = [r for r in at.values() if is_dpq_ranked(r)]
        if not dpq:
            continue
        best = max(dpq, key=lambda r: (r["recall"], r["qps"]))
        checks = []
        for peer in ("IndexPQ", "RQ (beam 5, 1 B norm)", "RQ fast-scan (2x4-bit norm)"):
            if peer in at:
                ok = best["recall"] >= at[peer]["recall"]
                checks.append(f"recall >= {peer} ({at[peer]['recall']:.3f}): {'met' if ok else 'NOT met'}")
        line = f"- {b} B, best recall: {best['method']} {best['recall']:.3f}: " + "; ".join(checks)
        if "IndexPQFastScan" in at:
            fs = at["IndexPQFastScan"]
            level = [r for r in dpq if r["recall"] >= fs["recall"]]
            if level:
                fast = max(level, key=lambda r: r["qps"])
                ok = fast["qps"] >= fs["qps"]
                line += (f"; fastest at recall >= PQFastScan's {fs['recall']:.3f}: {fast['method']} "
                         f"{fast['recall']:.3f} at {fast['qps']:.0f} QPS vs {fs['qps']:.0f} "
                         f"({fast['qps'] / fs['qps']:.2f}x): {'met' if ok else 'NOT met'}")
            else:
                line += f"; no DPQ row reaches PQFastScan's recall {fs['recall']:.3f}: QPS goal NOT met"
        print(line, flush=True)


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    if args.compare_rescore:
        return compare_rescore(args)
    args.nbits = [int(v) for v in args.nbits.split(",")]
    budgets = sorted(int(b) for b in args.budgets.split(","))
    shortlists = [int(v) for v in args.shortlists.split(",")]
    skip = set(filter(None, args.skip.split(";")))
    sources = {"patches": ("image patches (L2)", image_patches), "minilm": ("MiniLM (cosine)", minilm_unit)}
    out = {}
    for key in args.data.split(","):
        name, load = sources[key]
        out[key] = {"rows": []}
        run_dataset(name, load(), args, budgets, skip, shortlists, out[key])
        report(name, out[key]["rows"], budgets)


if __name__ == "__main__":
    main()
