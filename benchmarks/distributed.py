"""Sharded build and search on Ray: measured on this machine, projected to 10^9 vectors.

Measured (medians of --runs, with Ray started locally on this machine's CPUs):

* build throughput (vectors/s) of ``distributed.build`` with 1 and 2 workers
  (one Faiss thread each), their ratio, and the single-process ``add`` on one
  thread as the per-core reference. On a machine shared with other jobs the
  ratio is bounded by the CPU time the others leave, so each run also encodes
  the same slices with a plain process pool of 1 and 2 processes (no Ray): the
  speed-up this machine offered at that moment;
* search QPS of ``ShardedIndex`` with 1, 2 and 4 shards (one Faiss thread per
  shard actor), next to one in-process IndexDPQ on 1 thread;
* bytes per vector, the scan rate of one core (vectors scanned per second),
  and a numpy copy's memory bandwidth on one core.

Projected (arithmetic on the measured figures, printed with its formulas):
shards, machines, per-shard QPS bound by compute and by memory bandwidth,
and build core-hours for --target vectors.

Data: the shipped MiniLM sentence embeddings (10,000 x 384, unit norm, inner
product), tiled to --n rows (encoding cost does not depend on duplicates).

    python benchmarks/distributed.py                   # defaults below
    python benchmarks/distributed.py --n 20000 --runs 3 --json dist.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import faiss
import numpy as np
import ray

import pyfaiss_dpq
from pyfaiss_dpq import distributed as dd
from pyfaiss_dpq.data import load_text_embeddings


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60_000, help="database vectors (MiniLM tiled)")
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--nbits", type=int, default=4, choices=(4, 8))
    p.add_argument("--nq", type=int, default=1000, help="queries per search batch")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--slice-rows", type=int, default=5000, help="rows per build task")
    p.add_argument("--runs", type=int, default=5, help="timed repetitions (median)")
    p.add_argument("--target", type=float, default=1e9, help="vectors of the projection")
    p.add_argument("--shard-vectors", type=float, default=1e7, help="projection: vectors per shard")
    p.add_argument("--machine-cores", type=int, default=32, help="projection: cores (shard actors) per machine")
    p.add_argument("--machine-gib", type=float, default=128, help="projection: memory per machine, GiB")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def copy_bandwidth(runs: int) -> float:
    """Bytes per second a single-threaded numpy copy moves (read + write) through a 512 MiB array."""
    a = np.ones(1 << 27, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    return 2 * a.nbytes / median_time(lambda: np.copyto(b, a), runs)


def make_template(x: np.ndarray, levels: int, nbits: int):
    template = pyfaiss_dpq.IndexDPQ(x.shape[1], levels, nbits, faiss.METRIC_INNER_PRODUCT)
    template.train(x)
    return template


def encode_rows(template_bytes: bytes, path: str, start: int, stop: int) -> int:
    """The control's unit of work: what a slice task computes, in a plain process."""
    faiss.omp_set_num_threads(1)
    index = pyfaiss_dpq.deserialize(template_bytes)
    return index.sa_encode(np.load(path, mmap_mode="r")[start:stop]).nbytes


def pool_time(pool: ProcessPoolExecutor, template_bytes: bytes, src: Path, n: int, slice_rows: int) -> float:
    t0 = time.perf_counter()
    jobs = [pool.submit(encode_rows, template_bytes, str(src), a, min(a + slice_rows, n))
            for a in range(0, n, slice_rows)]
    for job in jobs:
        job.result()
    return time.perf_counter() - t0


def measure_build(template, xb: np.ndarray, src: Path, work: Path, args) -> dict:
    """Vectors/s of distributed.build with 1 and 2 workers, runs interleaved; and add() on one thread."""
    def one(workers: int, tag: str) -> tuple[float, float]:
        out = work / f"build-{workers}-{tag}"
        t0 = time.perf_counter()
        rep = dd.build(template, str(src), out, num_shards=2, slice_rows=args.slice_rows, max_workers=workers,
                       progress=False)
        return time.perf_counter() - t0, rep.encode_cpu_s

    one(2, "warmup")  # starts the worker processes
    template_bytes = pyfaiss_dpq.serialize(template)
    spawn = multiprocessing.get_context("spawn")
    pools = {w: ProcessPoolExecutor(w, mp_context=spawn) for w in (1, 2)}
    for pool in pools.values():
        pool_time(pool, template_bytes, src, 4 * args.slice_rows, args.slice_rows)  # warm
    times, cpu, control = {1: [], 2: []}, [], {1: [], 2: []}
    for run in range(args.runs):
        for workers in (1, 2):
            wall, cpu_s = one(workers, str(run))
            times[workers].append(wall)
            cpu.append(cpu_s)
            control[workers].append(pool_time(pools[workers], template_bytes, src, len(xb), args.slice_rows))
    for pool in pools.values():
        pool.shutdown()
    faiss.omp_set_num_threads(1)

    def add_one_thread():
        index = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(template))
        index.add(xb)

    local = median_time(add_one_thread, max(1, args.runs // 2))
    faiss.omp_set_num_threads(2)
    per_workers = {w: len(xb) / float(np.median(t)) for w, t in times.items()}
    ratios = [t1 / t2 for t1, t2 in zip(times[1], times[2])]  # run by run: the load changes over time
    control_ratios = [t1 / t2 for t1, t2 in zip(control[1], control[2])]
    return {"vectors_per_s": per_workers, "times_s": times, "add_1_thread_vectors_per_s": len(xb) / local,
            "speedup_2_over_1": per_workers[2] / per_workers[1], "speedup_per_run": ratios,
            "control_times_s": control, "control_speedup_per_run": control_ratios,
            "control_speedup_2_over_1": float(np.median(control[1])) / float(np.median(control[2])),
            "vectors_per_cpu_s": len(xb) / float(np.median(cpu))}


def measure_search(template, src: Path, xq: np.ndarray, work: Path, args) -> dict:
    """QPS of ShardedIndex at 1, 2, 4 shards (1 thread each) and of one in-process index on 1 thread."""
    out = {}
    for shards in (1, 2, 4):
        folder = work / f"search-{shards}"
        dd.build(template, str(src), folder, num_shards=shards, slice_rows=args.slice_rows, progress=False)
        with dd.ShardedIndex.open(folder) as ix:
            ix.search(xq, args.k, timeout=None)  # warm
            t = median_time(lambda: ix.search(xq, args.k, timeout=None), args.runs)
        out[shards] = len(xq) / t
    index = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(template))
    index.add(np.load(src))
    faiss.omp_set_num_threads(1)
    index.search(xq, args.k)
    local = len(xq) / median_time(lambda: index.search(xq, args.k), args.runs)
    faiss.omp_set_num_threads(2)
    return {"sharded_qps": out, "local_1_thread_qps": local}


def project(measured: dict, args) -> dict:
    """Arithmetic on the measured figures: the cluster for --target vectors."""
    b = measured["bytes_per_vector"]
    n, n_s = args.target, args.shard_vectors
    shards = math.ceil(n / n_s)
    shard_gib = n_s * b / 2**30
    per_machine = min(args.machine_cores, max(1, int(args.machine_gib * 0.75 // max(shard_gib, 1e-9))))
    machines = math.ceil(shards / per_machine)
    scan_rate = measured["scan_vectors_per_s_per_core"]
    qps_compute = scan_rate / n_s
    qps_bandwidth = measured["copy_bandwidth_bytes_per_s"] / (n_s * b)  # codes streamed once per query
    encode_rate = measured["build"]["vectors_per_cpu_s"]
    return {"target": n, "shards": shards, "vectors_per_shard": n_s, "shard_gib": shard_gib,
            "shards_per_machine": per_machine, "machines": machines,
            "qps_per_shard_compute_bound": qps_compute, "qps_per_shard_bandwidth_bound": qps_bandwidth,
            "qps_cluster": min(qps_compute, qps_bandwidth),
            "build_core_hours": n / encode_rate / 3600, "total_gib": n * b / 2**30}


def report(m: dict, p: dict, args) -> None:
    build, search = m["build"], m["search"]
    print(f"\n## Measured (n={args.n:,}, d=384, {args.levels} levels x {args.nbits} bits, IP; "
          f"median of {args.runs} runs)\n")
    print("| build | vectors/s | per core |\n|---|---:|---:|")
    print(f"| add(), 1 thread, in process | {build['add_1_thread_vectors_per_s']:,.0f} | "
          f"{build['add_1_thread_vectors_per_s']:,.0f} |")
    for w in (1, 2):
        v = build["vectors_per_s"][w]
        print(f"| distributed.build, {w} worker{'s' if w > 1 else ''} | {v:,.0f} | {v / w:,.0f} |")
    print(f"\nbuild speed-up 1 -> 2 workers: {build['speedup_2_over_1']:.2f}x (ratio of medians); run by run: "
          + ", ".join(f"{r:.2f}" for r in build["speedup_per_run"]))
    print(f"the machine's own speed-up, same slices in a plain process pool of 1 and 2: "
          f"{build['control_speedup_2_over_1']:.2f}x; run by run: "
          + ", ".join(f"{r:.2f}" for r in build["control_speedup_per_run"]))
    print(f"slice tasks: {build['vectors_per_cpu_s']:,.0f} vectors per CPU second (read + encode)\n")
    print(f"| search (nq={args.nq}, k={args.k}) | QPS |\n|---|---:|")
    print(f"| one IndexDPQ in process, 1 thread | {search['local_1_thread_qps']:,.0f} |")
    for s, q in search["sharded_qps"].items():
        print(f"| ShardedIndex, {s} shard{'s' if s > 1 else ''} (1 thread each) | {q:,.0f} |")
    print(f"\nbytes per vector: {m['bytes_per_vector']} (codes; ids are shard offsets, 0 bytes)")
    print(f"scan rate, one core: {m['scan_vectors_per_s_per_core']:,.3g} vectors/s "
          f"({m['scan_vectors_per_s_per_core'] * m['bytes_per_vector'] / 1e9:.2f} GB/s of codes)")
    print(f"numpy copy bandwidth, one core: {m['copy_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s")
    print(f"\n## Projected to {p['target']:.0e} vectors (arithmetic on the figures above)\n")
    print("| quantity | value | how |\n|---|---:|---|")
    print(f"| index size | {p['total_gib']:,.1f} GiB | target x bytes/vector |")
    print(f"| shards | {p['shards']:,} | target / {p['vectors_per_shard']:.0e} vectors per shard "
          f"({p['shard_gib']:.2f} GiB each) |")
    print(f"| machines | {p['machines']:,} | {p['shards_per_machine']} shards per machine "
          f"({args.machine_cores} cores, 75% of {args.machine_gib:g} GiB) |")
    print(f"| QPS per shard, compute-bound | {p['qps_per_shard_compute_bound']:,.1f} | "
          "scan rate per core / vectors per shard |")
    print(f"| QPS per shard, memory-bandwidth-bound | {p['qps_per_shard_bandwidth_bound']:,.1f} | "
          "copy bandwidth per core / shard bytes (codes read once per query) |")
    print(f"| QPS of the cluster (flat scan) | {p['qps_cluster']:,.1f} | every query visits every shard: "
          "the smaller bound |")
    print(f"| build | {p['build_core_hours']:,.1f} core-hours | target / (vectors per CPU second of the slice tasks)"
          " / 3600 |")


def main() -> None:
    args = parse_args()
    ray.init(include_dashboard=False)
    emb = load_text_embeddings()
    reps = math.ceil(args.n / len(emb))
    xb = np.ascontiguousarray(np.tile(emb, (reps, 1))[:args.n])
    xq = np.ascontiguousarray(emb[np.random.default_rng(0).choice(len(emb), args.nq, replace=False)])
    template = make_template(emb, args.levels, args.nbits)
    with tempfile.TemporaryDirectory(prefix="dpq-dist-") as tmp:
        work = Path(tmp)
        src = work / "base.npy"
        np.save(src, xb)
        build = measure_build(template, xb, src, work, args)
        search = measure_search(template, src, xq, work, args)
    measured = {"build": build, "search": search, "bytes_per_vector": template.bytes_per_vector,
                "scan_vectors_per_s_per_core": search["local_1_thread_qps"] * args.n,
                "copy_bandwidth_bytes_per_s": copy_bandwidth(args.runs),
                "cpus": ray.cluster_resources().get("CPU")}
    projection = project(measured, args)
    report(measured, projection, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "measured": measured, "projected": projection},
                                              indent=1, default=str))
    ray.shutdown()


if __name__ == "__main__":
    main()
