"""Scan speed of IndexDPQ against Faiss at equal bytes per vector.

One run builds, on the same data, IndexDPQ (4-bit and 8-bit levels),
faiss.IndexPQFastScan (4-bit) and faiss.IndexPQ (8-bit) with the same code
bytes per vector, and prints:

* QPS of each, single-threaded and with all threads, and the ratios
  IndexDPQ / Faiss, with recall@10 of each (fraction of the exact 10 nearest
  neighbours returned in the top 10);
* QPS and recall of IndexDPQ at every prefix length m, and the bytes of codes
  it scans per second next to this machine's memory bandwidth (a numpy copy
  of a large array, measured in the same run);
* QPS with 2 threads against 1.

Equal bytes are compared with the inner product on unit vectors: with L2,
the default IndexDPQ also reads a 4-byte norm per vector (and stores one per
level); the L2 table is printed too, with its bytes per vector, and an
IndexDPQ with 4-bit norm codes (one more lookup column, shortlist re-scored). Timings are medians of
--runs runs, indexes interleaved within each run.

    python benchmarks/scan.py                      # 1M synthetic vectors, + MiniLM embeddings
    python benchmarks/scan.py --n 100000 --runs 3  # a quick look
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ

METRIC_NAMES = {faiss.METRIC_INNER_PRODUCT: "IP", faiss.METRIC_L2: "L2"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="database vectors (synthetic)")
    p.add_argument("--d", type=int, default=96, help="dimension (synthetic)")
    p.add_argument("--nq", type=int, default=1000, help="queries per batch")
    p.add_argument("--ntrain", type=int, default=40_000, help="training vectors")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--code-bytes", type=int, default=16, help="bytes of codes per vector, every index")
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--metrics", default="ip,l2", help="comma-separated: ip, l2")
    p.add_argument("--no-real", action="store_true", help="skip the MiniLM sentence embeddings")
    p.add_argument("--simd", default=None,
                   help="SIMD level of the scan: auto or one of pyfaiss_dpq.supported_simd_levels() "
                        "(default: as PYFAISS_DPQ_SIMD says, else auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


# ---------------------------------------------------------------- data

def synthetic(n: int, d: int, seed: int) -> np.ndarray:
    """Unit vectors from 1,000 Gaussian clusters with a decaying spectrum (variance
    0.95^(2i) along the i-th of d random directions), like embeddings. Shape (n, d), float32."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((d, d)).astype(np.float32) * (0.95 ** np.arange(d, dtype=np.float32))[:, None]
    centers = rng.standard_normal((1000, d)).astype(np.float32) @ basis
    out = np.empty((n, d), np.float32)
    for i in range(0, n, 200_000):
        m = min(n, i + 200_000) - i
        x = centers[rng.integers(0, 1000, m)] + 0.6 * (rng.standard_normal((m, d)).astype(np.float32) @ basis)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def memory_bandwidth(runs: int) -> float:
    """Bytes per second a numpy copy moves (read + write) through a 512 MiB array."""
    a = np.ones(1 << 27, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t0)
    return 2 * a.nbytes / float(np.median(times))


# ---------------------------------------------------------------- indexes

def add_greedy(index: IndexDPQ, x: np.ndarray) -> None:
    """index.add(x), with the greedy residual encoding done by Faiss's exact
    search level by level (the same assignment, faster on a large batch)."""
    books = index.codebooks
    codes = np.empty((len(x), index.levels), np.uint8)
    for i in range(0, len(x), 100_000):
        r = x[i:i + 100_000].copy()
        for level, book in enumerate(books):
            _, a = faiss.knn(r, book, 1)
            codes[i:i + len(r), level] = a[:, 0]
            r -= book[a[:, 0]]
    index.add_codes(codes)


def build(xt: np.ndarray, xb: np.ndarray, code_bytes: int, metric: int) -> dict:
    d = xt.shape[1]
    dpq4 = IndexDPQ(d, 2 * code_bytes, 4, metric)
    dpq8 = IndexDPQ(d, code_bytes, 8, metric)
    fastscan = faiss.IndexPQFastScan(d, 2 * code_bytes, 4, metric)
    pq = faiss.IndexPQ(d, code_bytes, 8, metric)
    out = {"DPQ 4-bit": dpq4, "PQFastScan 4-bit": fastscan, "DPQ 8-bit": dpq8, "PQ 8-bit": pq}
    dpqs = [dpq4, dpq8]
    if metric == faiss.METRIC_L2:  # prefix norms as 4-bit codes: one more lookup column of the scan
        out["DPQ 4-bit, 4-bit norms"] = IndexDPQ(d, 2 * code_bytes, 4, metric, norms="4bit")
        dpqs.append(out["DPQ 4-bit, 4-bit norms"])
    for index in dpqs:
        index.train(xt)
        add_greedy(index, xb)
    for index in (fastscan, pq):
        index.train(xt)
        index.add(xb)
    return out


NORM_BITS = {"none": 0, "float32": 32, "8bit": 8, "4bit": 4}  # IndexDPQ.norms -> bits a stored norm takes


def bytes_read(index, m: int | None = None) -> int:
    """Bytes of codes (and the prefix-m norm, if kept) one query's scan reads per vector."""
    if isinstance(index, IndexDPQ):
        m = m or index.levels
        norm_bits = NORM_BITS[index.norms] if m in index.norm_prefixes else 0
        return (m * index.nbits + norm_bits + 7) // 8
    return index.code_size


# ---------------------------------------------------------------- measuring

def search_time(index, xq: np.ndarray, k: int, m: int | None = None) -> tuple[float, np.ndarray]:
    params = SearchParametersDPQ(levels=m) if m else None
    t0 = time.perf_counter()
    _, ids = index.search(xq, k, params=params) if params else index.search(xq, k)
    return time.perf_counter() - t0, ids


def recall(ids: np.ndarray, gt: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(ids, gt)]))


def qps(indexes: dict, xq, k, runs, threads, prefixes=None) -> dict:
    """Median QPS (and the ids of the last run) of each (name, m), interleaved."""
    faiss.omp_set_num_threads(threads)
    jobs = [(name, m) for name in indexes for m in (prefixes or {}).get(name, [None])]
    times = {job: [] for job in jobs}
    ids = {}
    for job in jobs:  # warm-up
        search_time(indexes[job[0]], xq[:20], k, job[1])
    for _ in range(runs):
        for job in jobs:
            t, ids[job] = search_time(indexes[job[0]], xq, k, job[1])
            times[job].append(t)
    return {job: (len(xq) / float(np.median(times[job])), ids[job]) for job in jobs}


# ---------------------------------------------------------------- one data set

def run_dataset(name, xt, xb, xq, gt_by_metric, args, bandwidth, max_threads) -> dict:
    out = {}
    for metric_name in args.metrics.split(","):
        metric = faiss.METRIC_INNER_PRODUCT if metric_name.strip().lower() == "ip" else faiss.METRIC_L2
        mname = METRIC_NAMES[metric]
        gt = gt_by_metric[metric]
        t0 = time.perf_counter()
        indexes = build(xt, xb, args.code_bytes, metric)
        print(f"\n## {name}, {mname}: n={len(xb):,} d={xb.shape[1]} nq={len(xq)} k={args.k} "
              f"(built in {time.perf_counter() - t0:.0f} s)\n", flush=True)
        threads = sorted({1, min(2, max_threads), max_threads})
        res = {t: qps(indexes, xq, args.k, args.runs, t) for t in threads}
        print("| index | bytes/vector | recall@10 | " + " | ".join(f"QPS {t} thr." for t in threads) + " |")
        print("|---|---|---|" + "---|" * len(threads))
        rows = {}
        for iname, index in indexes.items():
            stored = index.bytes_per_vector if isinstance(index, IndexDPQ) else index.code_size
            rows[iname] = {"bytes_per_vector": stored, "recall": recall(res[1][(iname, None)][1], gt, args.k)}
            rows[iname].update({f"qps_{t}": res[t][(iname, None)][0] for t in threads})
            print(f"| {iname} | {stored} | {rows[iname]['recall']:.4f} | " +
                  " | ".join(f"{rows[iname][f'qps_{t}']:,.0f}" for t in threads) + " |")
        ratios = {}
        for t in sorted({1, max_threads}):
            ratios[f"4-bit DPQ / PQFastScan, {t} thr."] = rows["DPQ 4-bit"][f"qps_{t}"] / rows["PQFastScan 4-bit"][f"qps_{t}"]
            ratios[f"8-bit DPQ / PQ, {t} thr."] = rows["DPQ 8-bit"][f"qps_{t}"] / rows["PQ 8-bit"][f"qps_{t}"]
        if max_threads >= 2:
            for iname in ("DPQ 4-bit", "DPQ 8-bit"):
                ratios[f"{iname}: 2 threads / 1 thread"] = rows[iname]["qps_2"] / rows[iname]["qps_1"]
        print()
        for key, value in ratios.items():
            print(f"- {key}: **{value:.2f}**")

        # every prefix, single thread
        dpq = {k: v for k, v in indexes.items() if k.startswith("DPQ")}
        prefixes = {k: list(range(1, v.levels + 1)) for k, v in dpq.items()}
        sweep = qps(dpq, xq, args.k, args.runs, 1, prefixes)
        print(f"\nIndexDPQ at every prefix m (1 thread); memory bandwidth (numpy copy, read + write): "
              f"{bandwidth / 1e9:.1f} GB/s\n")
        print("| index | m | bytes/vector read | recall@10 | QPS | codes scanned GB/s |")
        print("|---|---|---|---|---|---|")
        prefix_rows = []
        for (iname, m), (q, ids) in sweep.items():
            scanned = q * len(xb) * bytes_read(dpq[iname], m)
            prefix_rows.append({"index": iname, "m": m, "qps": q, "recall": recall(ids, gt, args.k),
                                "scanned_bytes_per_s": scanned})
            print(f"| {iname} | {m} | {bytes_read(dpq[iname], m)} | {prefix_rows[-1]['recall']:.4f} | {q:,.0f} | "
                  f"{scanned / 1e9:.1f} |")
        for iname, index in dpq.items():
            L = index.levels
            half = sweep[(iname, L // 2)][0] / sweep[(iname, L)][0]
            ratios[f"{iname}: m = {L // 2} / m = {L}"] = half
            print(f"- {iname}: QPS at m = L/2 = {L // 2} over m = L = {L}: **{half:.2f}**")
        out[mname] = {"indexes": rows, "ratios": ratios, "prefixes": prefix_rows}
    return out


def main() -> None:
    args = parse_args()
    if args.simd:
        pyfaiss_dpq.set_simd_level(args.simd)
    max_threads = faiss.omp_get_max_threads()
    print(f"# IndexDPQ scan benchmark (pyfaiss-dpq {pyfaiss_dpq.__version__}, faiss {faiss.__version__}, "
          f"SIMD level {pyfaiss_dpq.simd_level()}, {max_threads} threads)")
    bandwidth = memory_bandwidth(args.runs)
    results = {"memory_bandwidth_bytes_per_s": bandwidth, "args": vars(args), "datasets": {}}

    x = synthetic(args.n + args.ntrain + args.nq, args.d, args.seed)
    xb, xt, xq = x[:args.n], x[args.n:args.n + args.ntrain], x[args.n + args.ntrain:]
    gt = {metric: faiss.knn(xq, xb, args.k, metric=metric)[1] for metric in METRIC_NAMES}
    results["datasets"]["synthetic"] = run_dataset("synthetic", xt, xb, xq, gt, args, bandwidth, max_threads)
    del x, xb, xt

    if not args.no_real:
        try:
            from pyfaiss_dpq.data import load_dataset
            ds = load_dataset("minilm")
        except (ImportError, FileNotFoundError) as exc:
            print(f"\n(MiniLM embeddings not available: {exc})")
        else:
            # Unit vectors: the L2 ranking equals the inner-product one.
            gt = {metric: ds.gt for metric in METRIC_NAMES}
            results["datasets"]["minilm"] = run_dataset("MiniLM sentence embeddings", ds.train, ds.base,
                                                        ds.queries, gt, args, bandwidth, max_threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
