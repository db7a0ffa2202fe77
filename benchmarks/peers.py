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
            _core, e.g. the commit before this work), each in its own worker
            process on the same saved codes and queries; the builds take
            turns search by search (--searches each), so both see the same
            moments of a noisy machine, and the speed-up is the median of the
            per-pair ratios. Then thread scaling: 1 and 2 threads taking
            turns, for batches of 100 and 1000 queries.

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

# A worker process under a given PYTHONPATH: builds the index from the saved
# codebooks and codes, then times one search per line of stdin (a JSON
# {"m", "nq", "threads"}) and prints its QPS. Workers of two builds take
# turns search by search, so both see the same moments of a noisy machine.
WORKER = r"""
import json, sys, time
import faiss, numpy as np
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
z = np.load(sys.argv[1])
C, codes, xq = z["codebooks"], z["codes"], z["queries"]
index = IndexDPQ(C.shape[2], C.shape[0], 8, faiss.METRIC_INNER_PRODUCT)
index.codebooks = C
index.add_codes(codes)
print(json.dumps({"ids": index.search(xq[:5], 10)[1].tolist()}), flush=True)
for line in sys.stdin:
    cfg = json.loads(line)
    faiss.omp_set_num_threads(cfg["threads"])
    params = SearchParametersDPQ(levels=cfg["m"])
    q = xq[:cfg["nq"]]
    index.search(q, 10, params=params)  # warm: tables and caches of this configuration
    t0 = time.perf_counter()
    index.search(q, 10, params=params)
    print(json.dumps({"qps": len(q) / (time.perf_counter() - t0)}), flush=True)
"""


class Worker:
    """A build's search timer in its own process: the build whose source tree is `pythonpath`, or the installed one (None)."""

    def __init__(self, pythonpath: "Path | None", data: Path):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        # runs beside the data, not in the repository root, whose uncompiled pyfaiss_dpq/ would shadow the installed one
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(data)], env=env, cwd=data.parent,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ids = self._reply()["ids"]

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited with status {self.proc.wait()}")
        return json.loads(line)

    def qps(self, **cfg) -> float:
        self.proc.stdin.write(json.dumps(cfg) + "\n")
        self.proc.stdin.flush()
        return self._reply()["qps"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


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
    paths = {"this build": None}
    if args.today:
        paths["today (--today build)"] = args.today
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "codes.npz"
        desc = make_codes(args.extra_embeddings, args.levels, 8, args.queries, data)
        print(desc)
        tables = table_kernels(data, 2 * args.runs + 1)
        workers = {name: Worker(path, data) for name, path in paths.items()}
        try:
            ids = {name: w.ids for name, w in workers.items()}
            if len({json.dumps(v) for v in ids.values()}) > 1:
                print(f"note: the builds return different neighbours for the first queries: {ids}")
            cfg = {"m": args.levels, "threads": 1, "nq": args.queries}
            rows = {name: [] for name in workers}
            for r in range(args.searches):
                for name, w in workers.items():
                    rows[name].append(w.qps(**cfg))
                print(f"search {r + 1}: " + ", ".join(f"{name} {v[-1]:.0f}" for name, v in rows.items()) + " QPS")
            scaling = {}
            this = workers["this build"]
            for nq in (100, 1000):
                for r in range(args.searches):
                    one, two = (this.qps(m=args.levels, nq=nq, threads=t) for t in (1, 2))
                    scaling.setdefault(nq, []).append(two / one)
                print(f"{nq} queries, 2 threads / 1 thread: median {statistics.median(scaling[nq]):.2f} "
                      f"over {len(scaling[nq])} pairs")
        finally:
            for w in workers.values():
                w.close()
    qps = {name: statistics.median(v) for name, v in rows.items()}
    today = rows.get("today (--today build)")
    ratios = [a / b for a, b in zip(rows["this build"], today)] if today else []
    results = {"data": desc, "config": vars(args) | {"out": str(args.out), "today": str(args.today),
                                                      "extra_embeddings": [str(p) for p in args.extra_embeddings]},
               "load_average": list(os.getloadavg()), "tables_queries_per_s": tables,
               "qps_1_thread_searches": rows, "qps_1_thread": qps,
               "speedup_per_pair": ratios, "speedup": statistics.median(ratios) if ratios else None,
               "thread_scaling_pairs": {str(k): v for k, v in scaling.items()},
               "thread_scaling": {str(k): statistics.median(v) for k, v in scaling.items()}}
    lines = [f"Lookup tables, {args.levels} levels x 256 codewords, 1 thread (queries/s):", "",
             "| kernel | " + " | ".join(f"{nq} queries at once" for nq in tables["FMA kernel"]) + " |",
             "|---|" + "---|" * len(tables["FMA kernel"])]
    lines += [f"| {k} | " + " | ".join(f"{v:.0f}" for v in row.values()) + " |" for k, row in tables.items()]
    lines += ["", f"8-bit IndexDPQ, m = {args.levels}, {args.queries} queries, 1 thread, {args.searches} searches "
              f"per build, the builds taking turns; {desc}", "",
              "| build | QPS (median) |", "|---|---|"]
    lines += [f"| {name} | {v:.0f} |" for name, v in qps.items()]
    if ratios:
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        lines += ["", f"This build / today, search by search: median **{results['speedup']:.2f}x** "
                  f"(quartiles {q1:.2f}-{q3:.2f})"]
    lines += ["", "| queries per batch | 2 threads / 1 thread (median of pairs) |", "|---|---|"]
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
    luts.add_argument("--runs", type=int, default=3, help="timed calls per table kernel (median)")
    luts.add_argument("--searches", type=int, default=30,
                      help="timed searches per build, and pairs per thread count, taking turns")
    luts.add_argument("--out", type=Path, default=Path("results/luts"))
    args, rest = parser.parse_known_args(argv)
    if args.what == "luts":
        return run_luts(args)
    from pyfaiss_dpq.cli import main as cli_main

    return cli_main(["bench", "--curves", *rest])


if __name__ == "__main__":
    sys.exit(main())
