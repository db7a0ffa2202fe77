"""4-bit scans with and without split table columns, in one run.

A 4-bit scan's tables share one quantization step, set by the widest level;
where a level spans far more than the others, the scan can split its table
over extra columns (csrc/scan/tables.h, plan_split4), and by default does
so once it re-scores many of the candidates it scans (AdmissionRate). This
searches each index with the three modes of the `set_split_columns` seam
(auto, the default; always; never), alternated run by run, QPS the median
of --runs, one thread, and checks the results are identical.

  patches    the 132k 8x8 image patches of benchmarks/norms.py (L2): a flat
             IndexDPQ(64, 32, 4) with float32 norms at prefixes 8 / 16 / 32,
             and IndexIVFDPQ 24 x 4 bits + float32 norm, 256 lists
  synthetic  benchmarks/scan.py's unit vectors (d 96): IndexIVFDPQ over --n of
             them in 1024 lists (L2 24 x 4 + float32 norm; inner product
             32 x 4), and a flat IndexDPQ(96, 32, 4) (inner product) over
             the first 200,000 at prefixes 16 / 32

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
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors of the IVF indexes")
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--nprobe", default="8,32", help="comma-separated, for the IVF indexes")
    return p.parse_args()


MODES = ("auto", "always", "never")


def ivf(d: int, nlist: int, levels: int, metric: int) -> IndexIVFDPQ:
    l2 = metric == faiss.METRIC_L2
    quantizer = faiss.IndexFlatL2(d) if l2 else faiss.IndexFlatIP(d)
    return IndexIVFDPQ(quantizer, d, nlist, levels, 4, metric, norm_prefixes=[levels] if l2 else None)


def searches(name: str, x: np.ndarray, args) -> list[tuple[str, object, object]]:
    """(label, index, search parameters) of one data set, indexes built."""
    xt, xb, _ = split(x, args.nq, args.ntrain, 0)
    d = x.shape[1]
    out = []
    if name == "patches":
        flat, flat_base, flat_levels, prefixes = IndexDPQ(d, 32, 4, faiss.METRIC_L2), xb, "32x4 L2", (8, 16, 32)
        configs = [("IVF 24x4 L2, 256 lists", ivf(d, 256, 24, faiss.METRIC_L2))]
    else:
        flat, flat_base, flat_levels, prefixes = IndexDPQ(d, 32, 4, faiss.METRIC_INNER_PRODUCT), xb[:200_000], \
            "32x4 IP, 200k", (16, 32)
        configs = [("IVF 24x4 L2, 1024 lists", ivf(d, 1024, 24, faiss.METRIC_L2)),
                   ("IVF 32x4 IP, 1024 lists", ivf(d, 1024, 32, faiss.METRIC_INNER_PRODUCT))]
    flat.train(xt)
    flat.add(flat_base)
    out += [(f"flat IndexDPQ {flat_levels}, prefix {m}", flat, SearchParametersDPQ(levels=m)) for m in prefixes]
    for label, index in configs:
        index.train(xt)
        index.add(xb)
        out += [(f"{label}, nprobe {p}", index, SearchParametersIVFDPQ(nprobe=int(p))) for p in args.nprobe.split(",")]
    return out


def measure(xq: np.ndarray, index, params, runs: int) -> dict[str, float]:
    """Median QPS in each split mode, the runs alternated; the results must agree."""
    times = {mode: [] for mode in MODES}
    results = {}
    for _ in range(runs):
        for mode in MODES:
            previous = core.set_split_columns(mode)
            try:
                t0 = time.perf_counter()
                results[mode] = index.search(xq, 10, params=params)
                times[mode].append(time.perf_counter() - t0)
            finally:
                core.set_split_columns(previous)
    for mode in MODES[1:]:
        for a, b in zip(results[mode], results["auto"]):
            np.testing.assert_array_equal(a, b)
    return {mode: len(xq) / float(np.median(t)) for mode, t in times.items()}


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    print("| data | index | QPS auto (default) | always | never | auto / never | always / never |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    for name in args.data.split(","):
        x = image_patches() if name == "patches" else synthetic(args.n + args.nq, 96, 0)
        xq = split(x, args.nq, args.ntrain, 0)[2]
        for label, index, params in searches(name, x, args):
            q = measure(xq, index, params, args.runs)
            print(f"| {name} | {label} | {q['auto']:,.0f} | {q['always']:,.0f} | {q['never']:,.0f} | "
                  f"{q['auto'] / q['never']:.2f}x | {q['always'] / q['never']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
