"""Peers and lookup tables on real 384-d sentence embeddings.

Two measurements, each one command:

``curves``  QPS-recall curves of IndexDPQ against ScaNN, Faiss fast-scan and
            HNSW at equal bytes per vector (pyfaiss_dpq/bench/peers.py; the
            same as ``pyfaiss-dpq bench --curves``).

``luts``    Lookup tables of 32 levels x 256 codewords at 384-d: our FMA table
            kernel against BLAS sgemm (numpy's matmul, OpenBLAS) for 8, 64
            and 256 queries at once, one thread. Then 8-bit search at m = 32
            with this build against another build of the package (``--today
            DIR``: a source tree whose pyfaiss_dpq/ holds its own compiled
            _core, e.g. the commit before this work), each in its own process
            on the same saved codes and queries, rounds alternating between
            builds; QPS is the median over rounds of each round's median of
            --runs searches. Then thread scaling: QPS at 2 threads over 1
            thread for batches of 100 and 1000 queries.

    python benchmarks/peers.py curves --out results/curves [--extra-embeddings X.npz ...]
    python benchmarks/peers.py luts --today /tmp/today --out results/luts

Timing is noisy on a shared machine: read the ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Runs in a fresh process under a given PYTHONPATH: builds the index from the
# saved codebooks and codes and prints the median QPS of each configuration.
TIMER = r"""
import json, statistics, sys, time
import faiss, numpy as np
import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
z = np.load(sys.argv[1])
cfg = json.loads(sys.argv[2])
C, codes, xq = z["codebooks"], z["codes"], z["queries"]
index = IndexDPQ(C.shape[2], C.shape[0], cfg["nbits"], faiss.METRIC_INNER_PRODUCT)
index.codebooks = C
index.add_codes(codes)
if cfg.get("lut_kernel"):
    from pyfaiss_dpq._native import core
    core.set_lut_kernel(cfg["lut_kernel"])
faiss.omp_set_num_threads(cfg["threads"])
params = SearchParametersDPQ(levels=cfg["m"])
q = xq[:cfg["nq"]]
ids = index.search(q, 10, params=params)[1]
times = []
for _ in range(cfg["runs"]):
    t0 = time.perf_counter(); index.search(q, 10, params=params); times.append(time.perf_counter() - t0)
print(json.dumps({"qps": len(q) / statistics.median(times), "ids": ids[:5].tolist()}))
"""


def timed_build(pythonpath: "Path | None", data: Path, cfg: dict) -> dict:
    """Time a search in a fresh process: the build whose source tree is `pythonpath`, or the installed one (None)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    # run beside the data, not in the repository root, whose uncompiled pyfaiss_dpq/ would shadow the installed one
    out = subprocess.run([sys.executable, "-c", TIMER, str(data), json.dumps(cfg)], env=env, check=True,
                         capture_output=True, text=True, cwd=data.parent).stdout
    return json.loads(out.strip().splitlines()[-1])


def make_codes(extra: "list[Path]", levels: int, nbits: int, n_queries: int, path: Path) -> str:
    import faiss

    from pyfaiss_dpq import IndexDPQ
    from pyfaiss_dpq.bench.peers import load_minilm

    base, queries, desc = load_minilm(extra, n_queries)
    index = IndexDPQ(base.shape[1], levels, nbits, faiss.METRIC_INNER_PRODUCT)
    index.train(base[:4000])  # the codebooks only need to be realistic for timing
    index.add(base)
    np.savez(path, codebooks=index.codebooks, codes=index.get_codes(), queries=queries)
    return desc


def table_kernels(codes: Path, runs: int) -> dict:
    """Queries per second of tables: FMA kernel (lookup_tables) and sgemm (numpy matmul), one thread."""
    import faiss
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency: the bench extra

    from pyfaiss_dpq import IndexDPQ
    from pyfaiss_dpq._native import core

    z = np.load(codes)
    C, xq = z["codebooks"], z["queries"]
    index = IndexDPQ(C.shape[2], C.shape[0], 8, faiss.METRIC_INNER_PRODUCT)
    index.codebooks = C
    flat = np.ascontiguousarray(C.reshape(-1, C.shape[2]))
    faiss.omp_set_num_threads(1)
    out = {}
    with threadpool_limits(limits=1):  # numpy's BLAS on one thread, as our kernel
        for nq in (8, 64, 256):
            q = np.ascontiguousarray(xq[:nq])
            for name, fn in (("FMA kernel", lambda: core.lookup_tables("simd", index, q, C.shape[0], False)),
                             ("sgemm (numpy)", lambda: -(q @ flat.T))):
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                out.setdefault(name, {})[str(nq)] = nq / statistics.median(times)
                print(f"tables of {nq:3d} queries at once, {name:<14}: {out[name][str(nq)]:7.0f} queries/s")
    return out


def run_luts(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    builds = {"this build": (None, None)}
    if args.today:
        builds["today (--today build)"] = (args.today, None)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "codes.npz"
        desc = make_codes(args.extra_embeddings, args.levels, 8, args.queries, data)
        print(desc)
        tables = table_kernels(data, 2 * args.runs + 1)
        rows = {}
        cfg = {"nbits": 8, "m": args.levels, "threads": 1, "nq": args.queries, "runs": args.runs}
        for r in range(args.rounds):
            for name, (path, kernel) in builds.items():
                res = timed_build(path, data, dict(cfg, lut_kernel=kernel))
                rows.setdefault(name, []).append(res["qps"])
                print(f"round {r + 1}: {name:<26} {res['qps']:8.0f} QPS")
        scaling = {}
        for nq in (100, 1000):
            for r in range(args.rounds):
                one, two = (timed_build(None, data, dict(cfg, nq=nq, threads=t))["qps"]
                            for t in (1, 2))
                scaling.setdefault(nq, []).append(two / one)
                print(f"round {r + 1}: {nq} queries, 2 threads / 1 thread = {two / one:.2f} ({one:.0f}, {two:.0f} QPS)")
    qps = {name: statistics.median(v) for name, v in rows.items()}
    results = {"data": desc, "config": vars(args) | {"out": str(args.out), "today": str(args.today),
                                                      "extra_embeddings": [str(p) for p in args.extra_embeddings]},
               "load_average": list(os.getloadavg()), "tables_queries_per_s": tables,
               "qps_1_thread_rounds": rows, "qps_1_thread": qps,
               "thread_scaling_rounds": {str(k): v for k, v in scaling.items()},
               "thread_scaling": {str(k): statistics.median(v) for k, v in scaling.items()}}
    lines = [f"Lookup tables, {args.levels} levels x 256 codewords, 1 thread (queries/s):", "",
             "| kernel | " + " | ".join(f"{nq} queries at once" for nq in tables["FMA kernel"]) + " |",
             "|---|" + "---|" * len(tables["FMA kernel"])]
    lines += [f"| {k} | " + " | ".join(f"{v:.0f}" for v in row.values()) + " |" for k, row in tables.items()]
    lines += ["", f"8-bit IndexDPQ, m = {args.levels}, {args.queries} queries, 1 thread; {desc}", "",
             "| build | QPS (median of rounds) | vs today |", "|---|---|---|"]
    ref = qps.get("today (--today build)")
    for name, v in qps.items():
        lines.append(f"| {name} | {v:.0f} | {v / ref:.2f}x |" if ref else f"| {name} | {v:.0f} | - |")
    lines += ["", "| queries per batch | 2 threads / 1 thread (median of rounds) |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in results["thread_scaling"].items()]
    (args.out / "luts.json").write_text(json.dumps(results, indent=1))
    (args.out / "luts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    curves = sub.add_parser("curves", help="QPS-recall curves against the peers (pyfaiss-dpq bench --curves)")
    luts = sub.add_parser("luts", help="lookup-table speed-up and thread scaling at 8 bits, m = 32")
    luts.add_argument("--today", type=Path, help="another build's source tree (pyfaiss_dpq/ with its _core)")
    luts.add_argument("--extra-embeddings", type=Path, nargs="*", default=[])
    luts.add_argument("--levels", type=int, default=32)
    luts.add_argument("--queries", type=int, default=1000)
    luts.add_argument("--runs", type=int, default=3)
    luts.add_argument("--rounds", type=int, default=3)
    luts.add_argument("--out", type=Path, default=Path("results/luts"))
    args, rest = parser.parse_known_args(argv)
    if args.what == "luts":
        return run_luts(args)
    from pyfaiss_dpq.cli import main as cli_main

    return cli_main(["bench", "--curves", *rest])


if __name__ == "__main__":
    sys.exit(main())
