"""Prefix norms at equal total bytes: IndexDPQ against Faiss's quantizers.

One DPQ training and one encoding pass (4-bit levels, 4-bit norms kept for
the prefixes the budgets need) serve every budget through
``index.truncated(m, norm_prefixes=...)``. At each total budget B bytes per
vector (codes + norms, what each index stores) it compares:

* DPQ, 4-bit norm: 2B - 1 levels + a 4-bit code of ||r_m||^2 (the scan adds
  it as one more lookup column), top ``shortlist`` re-scored exactly;
* DPQ, no norm: 2B levels, the scan ranks without the norm, top
  ``shortlist`` re-scored exactly;
* faiss IndexPQ (M = B x 8 bits), IndexPQFastScan (M = 2B x 4 bits),
  OPQ + IndexPQ, IndexResidualQuantizer (B - 1 x 8 bits, beam 5, 1-byte
  norm) and IndexResidualQuantizerFastScan (2B - 2 x 4 bits, its 2 x 4-bit
  norm).

Data: real L2 vectors made on this machine (8x8 grayscale patches of
scikit-learn's two sample photos, ~133k) and the shipped MiniLM sentence
embeddings, L2-normalized and searched as cosine (METRIC_L2 on unit vectors;
DPQ with inner product on the same codes is shown too: the old advice).
Recall 10@10 against exact search on the raw vectors; QPS single-threaded,
median of --runs, one batch of --nq queries. Also prints the shortlist's
recall/QPS trade-off.

    python benchmarks/norms.py                  # both data sets, budgets 8, 16, 32
    python benchmarks/norms.py --data patches --budgets 8,16
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq.bench.baselines import plan_opq, plan_pq, plan_pq_fastscan, stored_bytes_per_vector
from pyfaiss_dpq.data import load_text_embeddings


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches,minilm", help="comma-separated: patches, minilm")
    p.add_argument("--budgets", default="8,16,32", help="total bytes per vector")
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=20_000, help="training vectors (subsampled from the base)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--shortlists", default="10,25,50,100,200,400", help="shortlist sweep (middle budget)")
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

def recall_at(I: np.ndarray, gt: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)]))


def qps(search, nq: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        search()
        times.append(time.perf_counter() - t0)
    return nq / float(np.median(times))


def measure(name, index, xq, gt, runs, params=None, bytes_=None):
    run = lambda: index.search(xq, 10, params=params)  # noqa: E731
    _, I = run()
    row = {"method": name, "bytes": bytes_ if bytes_ is not None else stored_bytes_per_vector(index),
           "recall": recall_at(I, gt), "qps": qps(run, len(xq), runs)}
    print(f"    {name}: {row['bytes']} B, recall {row['recall']:.3f}, QPS {row['qps']:.0f}", flush=True)
    return row


# ---------------------------------------------------------------- indexes

def train_dpq(xt, xb, budgets, metric_note):
    top = max(budgets)
    index = IndexDPQ(xb.shape[1], 2 * top, 4, faiss.METRIC_L2, norms="4bit",
                     norm_prefixes=sorted({2 * b - 1 for b in budgets}))
    t0 = time.perf_counter()
    index.train(xt)
    t1 = time.perf_counter()
    index.add(xb)
    t2 = time.perf_counter()
    print(f"  DPQ ({metric_note}): {2 * top} levels x 4 bits trained in {t1 - t0:.0f} s, "
          f"encoded in {t2 - t1:.0f} s", flush=True)
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

def run_dataset(name, x, args, budgets, skip):
    xt, xb, xq = split(x, args.nq, args.ntrain, args.seed)
    print(f"\n## {name}: base {xb.shape}, {len(xq)} queries, {len(xt)} training vectors", flush=True)
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, 10)
    rows = []
    dpq = train_dpq(xt, xb, budgets, "L2")
    ip = None
    if name.startswith("MiniLM"):  # the same codes ranked by inner product: the old advice for cosine
        ip = IndexDPQ(xb.shape[1], dpq.levels, 4, faiss.METRIC_INNER_PRODUCT)
        ip.codebooks = dpq.codebooks
        ip.add_codes(dpq.get_codes())
    for b in budgets:
        with_norm = dpq.truncated(2 * b - 1, norm_prefixes=[2 * b - 1])
        no_norm = dpq.truncated(2 * b, norm_prefixes=[])
        for label, idx in (("DPQ 4-bit, 4-bit norm", with_norm), ("DPQ 4-bit, no norm", no_norm)):
            assert idx.bytes_per_vector == b, (label, idx.bytes_per_vector)
            rows.append({"budget": b, **measure(label, idx, xq, gt, args.runs, bytes_=idx.bytes_per_vector)})
        if ip is not None:
            t = ip.truncated(2 * b)
            rows.append({"budget": b, **measure("DPQ 4-bit, inner product", t, xq, gt, args.runs,
                                                bytes_=t.bytes_per_vector)})
        for method, make in BASELINES.items():
            if method in skip:
                continue
            index = make(xb.shape[1], b)
            t0 = time.perf_counter()
            index.train(xt)
            index.add(xb)
            print(f"  {method} at {b} B built in {time.perf_counter() - t0:.0f} s", flush=True)
            rows.append({"budget": b, **measure(method, index, xq, gt, args.runs)})
    # The shortlist's recall/QPS trade-off at the middle budget.
    b = budgets[len(budgets) // 2]
    sweep = []
    for label, idx in (("DPQ 4-bit, 4-bit norm", dpq.truncated(2 * b - 1, norm_prefixes=[2 * b - 1])),
                       ("DPQ 4-bit, no norm", dpq.truncated(2 * b, norm_prefixes=[]))):
        for s in [int(v) for v in args.shortlists.split(",")]:
            r = measure(label, idx, xq, gt, args.runs, params=SearchParametersDPQ(shortlist=s),
                        bytes_=idx.bytes_per_vector)
            sweep.append({"budget": b, "shortlist": s, **r})
    return rows, sweep


def report(name, rows, sweep, budgets):
    print(f"\n### {name}: recall 10@10 and QPS (1 thread) at equal total bytes per vector\n")
    print("| bytes | method | recall 10@10 | QPS |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget']} | {r['method']} | {r['recall']:.3f} | {r['qps']:.0f} |")
    print("\nGoal checks (best DPQ row per budget):")
    for b in budgets:
        at = {r["method"]: r for r in rows if r["budget"] == b}
        dpq = max((r for m, r in at.items() if m.startswith("DPQ") and "inner" not in m), key=lambda r: r["recall"])
        checks = []
        for peer in ("IndexPQ", "RQ (beam 5, 1 B norm)", "RQ fast-scan (2x4-bit norm)"):
            if peer in at:
                ok = dpq["recall"] >= at[peer]["recall"]
                checks.append(f"recall >= {peer} ({at[peer]['recall']:.3f}): {'met' if ok else 'NOT met'}")
        if "IndexPQFastScan" in at:
            fs = at["IndexPQFastScan"]
            ok = dpq["qps"] >= fs["qps"] and dpq["recall"] >= fs["recall"]
            checks.append(f"QPS {dpq['qps']:.0f} >= PQFastScan {fs['qps']:.0f} at recall "
                          f"{dpq['recall']:.3f} vs {fs['recall']:.3f}: {'met' if ok else 'NOT met'}")
        print(f"- {b} B, {dpq['method']} ({dpq['recall']:.3f}): " + "; ".join(checks))
    print(f"\n### {name}: shortlist (re-scored exactly) at {sweep[0]['budget']} B\n")
    print("| method | shortlist | recall 10@10 | QPS |")
    print("|---|---|---|---|")
    for r in sweep:
        print(f"| {r['method']} | {r['shortlist']} | {r['recall']:.3f} | {r['qps']:.0f} |")


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    if args.compare_rescore:
        return compare_rescore(args)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    skip = set(filter(None, args.skip.split(";")))
    sources = {"patches": ("image patches (L2)", image_patches), "minilm": ("MiniLM (cosine)", minilm_unit)}
    out = {}
    for key in args.data.split(","):
        name, load = sources[key]
        rows, sweep = run_dataset(name, load(), args, budgets, skip)
        report(name, rows, sweep, budgets)
        out[key] = {"rows": rows, "shortlist": sweep}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
