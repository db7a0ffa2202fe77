"""4-bit scans with and without split table columns, in one run.

A 4-bit scan's tables share one quantization step, set by the widest level;
where a level spans far more than the others, the scan splits its table over
extra columns (csrc/scan/tables.h, plan_split4). This measures what that
buys and costs: each index is searched with splits on and off (the
`set_split_columns` seam), alternated run by run, QPS the median of --runs,
one thread. Results are identical both ways (checked); only speed differs.

  patches  the 132k 8x8 image patches of benchmarks/norms.py (L2): a flat
           IndexDPQ(64, 32, 4) with float32 norms at prefixes 8 / 16 / 32,
           and IndexIVFDPQ 24 x 4 bits + float32 norm, 256 lists
  synthetic  200k of benchmarks/scan.py's unit vectors (d 96), IndexIVFDPQ in
           256 lists: L2 24 x 4 + float32 norm, inner product 32 x 4

    python benchmarks/splits.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from pyfaiss_dpq import IndexDPQ, IndexIVFDPQ, SearchParametersDPQ, SearchParametersIVFDPQ
from pyfaiss_dpq._native import core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ivf import split  # noqa: E402
from norms import image_patches  # noqa: E402
from scan import synthetic  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches,synthetic", help="comma-separated: patches, synthetic")
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--nprobe", default="8,32", help="comma-separated, for the IVF indexes")
    return p.parse_args()


def ivf(d: int, levels: int, metric: int) -> IndexIVFDPQ:
    l2 = metric == faiss.METRIC_L2
    quantizer = faiss.IndexFlatL2(d) if l2 else faiss.IndexFlatIP(d)
    return IndexIVFDPQ(quantizer, d, 256, levels, 4, metric, norm_prefixes=[levels] if l2 else None)


def searches(name: str, x: np.ndarray, args) -> list[tuple[str, object, object]]:
    """(label, index, search parameters) of one data set, indexes built."""
    xt, xb, _ = split(x, args.nq, args.ntrain, 0)
    d = x.shape[1]
    out = []
    built = []
    if name == "patches":
        flat = IndexDPQ(d, 32, 4, faiss.METRIC_L2)
        built.append(flat)
        out += [(f"flat IndexDPQ 32x4 L2, prefix {m}", flat, SearchParametersDPQ(levels=m)) for m in (8, 16, 32)]
        configs = [("IVF 24x4 L2", ivf(d, 24, faiss.METRIC_L2))]
    else:
        configs = [("IVF 24x4 L2", ivf(d, 24, faiss.METRIC_L2)), ("IVF 32x4 IP", ivf(d, 32, faiss.METRIC_INNER_PRODUCT))]
    for label, index in configs:
        built.append(index)
        out += [(f"{label}, nprobe {p}", index, SearchParametersIVFDPQ(nprobe=int(p))) for p in args.nprobe.split(",")]
    for index in built:
        index.train(xt)
        index.add(xb)
    return out


def measure(xq: np.ndarray, index, params, runs: int) -> tuple[float, float]:
    """Median QPS with splits on and off, the runs alternated; the results must agree."""
    times = {True: [], False: []}
    results = {}
    for _ in range(runs):
        for on in (True, False):
            previous = core.set_split_columns(on)
            try:
                t0 = time.perf_counter()
                results[on] = index.search(xq, 10, params=params)
                times[on].append(time.perf_counter() - t0)
            finally:
                core.set_split_columns(previous)
    for a, b in zip(results[True], results[False]):
        np.testing.assert_array_equal(a, b)
    return len(xq) / float(np.median(times[True])), len(xq) / float(np.median(times[False]))


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    print("| data | index | QPS, splits | QPS, no splits | ratio |\n|---|---|---:|---:|---:|")
    for name in args.data.split(","):
        x = image_patches() if name == "patches" else synthetic(200_000 + args.nq, 96, 0)
        xq = split(x, args.nq, args.ntrain, 0)[2]
        for label, index, params in searches(name, x, args):
            on, off = measure(xq, index, params, args.runs)
            print(f"| {name} | {label} | {on:,.0f} | {off:,.0f} | {on / off:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
