"""IndexIVFDPQ against Faiss's IVF indexes at the same total bytes and nprobe.

For each data set and byte budget B (codes + norms per vector; every IVF
index also keeps an 8-byte id per vector, counted apart), with one coarse
quantizer size nlist and several nprobe:

  IVFPQ               IVF{nlist},PQ{B}            (8-bit PQ)
  IVFPQFastScan       IVF{nlist},PQ{2B}x4fs       (4-bit PQ, fast scan)
  IVF-RQ fast scan    IVF{nlist},RQ{2B-2}x4fs_Nrq2x4 for L2 (2x4-bit norm), RQ{2B}x4fs for IP
  IndexIVFDPQ 4-bit   L2: 2(B-4) levels + a float32 norm; IP: 2B levels
                      (--nbits 8: B-4 levels + a float32 norm; IP: B levels)
                      (L2 with --norm-origins: both norm kinds, ||r_m||^2 and
                      ||c + r_m||^2, where training picks one; see
                      IndexIVFDPQ.relative_norms)
                      (L2 with --norms float32,8bit,4bit: one index per norm
                      storage, the levels the rest of B holds: 8bit 2B-2
                      levels + a 1-byte norm code, 4bit 2B-1 + half a byte;
                      --shortlist: their re-scored candidates, 0 the default)

With --flat-peer also faiss.IndexPQ(d, B, 8) (flat, every vector scanned; it
stores no ids, so the IVF indexes' 8 bytes of ids are a cost it does not pay).
Recall 10@10 against exact search, QPS (median of --runs, --threads OpenMP
threads; ratios matter, the machine is shared). With --mmap, the IVFDPQ
index is written, evicted from the page cache (posix_fadvise) and opened
with read_index(mmap=True): open time, cold and warm QPS, and the file
pages resident while searching against the bytes of the lists probed.

    python benchmarks/ivf.py --data synthetic --n 1000000 --mmap
    python benchmarks/ivf.py --data patches --norm-origins
    python benchmarks/ivf.py --data patches --metric l2 --norms float32,8bit,4bit
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

import pyfaiss_dpq
from pyfaiss_dpq import IndexIVFDPQ, SearchParametersIVFDPQ
from pyfaiss_dpq.bench.metrics import queries_per_second, recall_at

sys.path.insert(0, str(Path(__file__).resolve().parent))
from norms import image_patches  # noqa: E402  (the 132k image-patch set)
from scan import NORM_BITS, synthetic  # noqa: E402  (the scan benchmark's 1M synthetic set)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="synthetic", help="synthetic or patches")
    p.add_argument("--n", type=int, default=1_000_000, help="database vectors (synthetic)")
    p.add_argument("--d", type=int, default=96, help="dimension (synthetic)")
    p.add_argument("--metric", default="l2,ip", help="comma-separated: l2, ip")
    p.add_argument("--bytes", default="16", help="comma-separated budgets B (bytes per vector)")
    p.add_argument("--nlist", type=int, default=0, help="lists (0: 4 sqrt(n) rounded to a power of 2)")
    p.add_argument("--nprobe", default="8,16,32", help="comma-separated")
    p.add_argument("--ntrain", type=int, default=50_000)
    p.add_argument("--nq", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", default="", help="comma-separated method names to skip")
    p.add_argument("--mmap", action="store_true", help="also measure the memory-mapped IVFDPQ index")
    p.add_argument("--nbits", type=int, default=4, choices=(4, 8), help="IndexIVFDPQ's bits per level")
    p.add_argument("--flat-peer", action="store_true", help="also the flat faiss.IndexPQ(d, B, 8)")
    p.add_argument("--norm-origins", action="store_true",
                   help="L2: IndexIVFDPQ with either norm (||r_m||^2 relative to the centroid, or ||c + r_m||^2), "
                        "not only the one its training picks")
    p.add_argument("--norms", default="float32", help="L2: comma-separated IndexIVFDPQ norm storages")
    p.add_argument("--shortlist", default="0", help="comma-separated shortlists of quantized norms (0: default)")
    p.add_argument("--mmap-nq", type=int, default=50, help="queries of the mmap measurement (few: few lists touched)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write the rows here")
    p.add_argument("--coarse-training", action="store_true",
                   help="only compare the coarse level's flat and two-level k-means (time, mean squared "
                        "distance of the base to its nearest centroid) on --n synthetic vectors, --nlist lists")
    return p.parse_args()


def split(x, nq, ntrain, seed):
    rng = np.random.default_rng(seed)
    x = x[rng.permutation(len(x))]
    xq, xb = x[:nq], x[nq:]
    xt = xb[rng.choice(len(xb), min(ntrain, len(xb)), replace=False)]
    return np.ascontiguousarray(xt), np.ascontiguousarray(xb), np.ascontiguousarray(xq)


def recall(I, gt, k=10) -> float:
    return recall_at(I, gt, k, k)


def median_qps(search, nq, runs) -> float:
    return queries_per_second(search, nq, faiss.omp_get_max_threads(), runs)


def methods(d, nlist, B, metric, nbits=4, norm_origins=False, flat_peer=False, norms=("float32",)):
    l2 = metric == faiss.METRIC_L2
    rq = f"IVF{nlist},RQ{2 * B - 2}x4fs_Nrq2x4" if l2 else f"IVF{nlist},RQ{2 * B}x4fs"

    def levels_for(kind):
        return (B * 8 - (NORM_BITS[kind] if l2 else 0)) // nbits

    def dpq(relative_norms=None, kind="float32"):
        quantizer = faiss.IndexFlatL2(d) if l2 else faiss.IndexFlatIP(d)
        levels = levels_for(kind)
        index = IndexIVFDPQ(quantizer, d, nlist, levels, nbits, metric, norms=kind if l2 else None,
                            norm_prefixes=[levels] if l2 else None)
        if relative_norms is not None:
            index.relative_norms = relative_norms
        return index
    out = {
        "IVFPQ": lambda: faiss.index_factory(d, f"IVF{nlist},PQ{B}", metric),
        "IVFPQFastScan": lambda: faiss.index_factory(d, f"IVF{nlist},PQ{2 * B}x4fs", metric),
        "IVF-RQ fast scan": lambda: faiss.index_factory(d, rq, metric),
    }
    if flat_peer:
        out["IndexPQ (flat)"] = lambda: faiss.IndexPQ(d, B, 8, metric)
    name = f"IndexIVFDPQ {levels_for('float32')}x{nbits}"
    if l2 and norm_origins:
        out[f"{name}, norms ||r_m||^2"] = lambda: dpq(True)
        out[f"{name}, norms ||c + r_m||^2"] = lambda: dpq(False)
    elif l2:
        for kind in norms:
            out[f"IndexIVFDPQ {levels_for(kind)}x{nbits}, {kind} norm"] = lambda kind=kind: dpq(kind=kind)
    else:
        out[name] = dpq
    return out


def bytes_of(index) -> int:
    if isinstance(index, IndexIVFDPQ):
        return index.bytes_per_vector
    if isinstance(index, faiss.IndexPQ):
        return int(index.code_size)
    return int(faiss.extract_index_ivf(index).code_size)


def rss_file_bytes() -> int:
    """Resident file-backed pages of this process (RssFile), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    return -1


def measure_mmap(index, xq, gt, nprobes, runs) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = os.path.join(tmp, "ivf.dpq")
        pyfaiss_dpq.write_index(index, path)
        size = os.path.getsize(path)
        sizes = index.list_sizes()
        per_vector = os.path.getsize(path) / max(1, index.ntotal)
        for nprobe in nprobes:
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # cold: out of the page cache
            os.close(fd)
            rss0 = rss_file_bytes()
            t0 = time.perf_counter()
            mapped = pyfaiss_dpq.read_index(path, mmap=True)
            open_s = time.perf_counter() - t0
            rss_open = rss_file_bytes()
            params = SearchParametersIVFDPQ(nprobe=nprobe)
            t0 = time.perf_counter()
            _, I = mapped.search(xq, 10, params=params)
            cold = len(xq) / (time.perf_counter() - t0)
            rss_search = rss_file_bytes()
            warm = median_qps(lambda: mapped.search(xq, 10, params=params), len(xq), runs)
            _, probes = mapped.quantizer.search(xq, nprobe)
            touched = np.unique(probes[probes >= 0])
            row = {"nprobe": nprobe, "file_MB": size / 1e6, "open_ms": 1e3 * open_s,
                   "rss_after_open_MB": (rss_open - rss0) / 1e6, "rss_after_search_MB": (rss_search - rss0) / 1e6,
                   "lists_touched": len(touched), "touched_lists_MB": sizes[touched].sum() * per_vector / 1e6,
                   "cold_qps": cold, "warm_qps": warm, "recall": recall(I, gt)}
            print("    mmap " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in row.items()), flush=True)
            rows.append(row)
            del mapped
    return rows


def run(name, x, args, metric):
    xt, xb, xq = split(x, args.nq, args.ntrain, args.seed)
    n, d = xb.shape
    nlist = args.nlist or int(2 ** round(np.log2(4 * np.sqrt(n))))
    mname = "L2" if metric == faiss.METRIC_L2 else "IP"
    print(f"\n## {name} ({mname}): base {xb.shape}, {len(xq)} queries, {len(xt)} training, nlist {nlist}",
          flush=True)
    if metric == faiss.METRIC_L2:
        _, gt = faiss.knn(xq, xb, 10)
    else:
        flat = faiss.IndexFlatIP(d)
        flat.add(xb)
        _, gt = flat.search(xq, 10)
    nprobes = [int(v) for v in args.nprobe.split(",")]
    rows, mmap_rows = [], []
    for B in [int(v) for v in args.bytes.split(",")]:
        built = {}
        for label, make in methods(d, nlist, B, metric, args.nbits, args.norm_origins, args.flat_peer,
                                   args.norms.split(",")).items():
            if label.split(" ")[0] in args.skip.split(",") or label in args.skip.split(","):
                continue
            index = make()
            t0 = time.perf_counter()
            index.train(xt)
            t1 = time.perf_counter()
            index.add(xb)
            t2 = time.perf_counter()
            origin = f", relative norms {index.relative_norms}" if isinstance(index, IndexIVFDPQ) else ""
            print(f"  {label}: {bytes_of(index)} B, trained in {t1 - t0:.0f} s, added in {t2 - t1:.0f} s{origin}",
                  flush=True)
            built[label] = (index, None)
            if isinstance(index, IndexIVFDPQ) and index.norms in ("8bit", "4bit"):
                shortlists = [int(v) for v in args.shortlist.split(",")]
                built.pop(label)
                for sl in shortlists:
                    built[f"{label}, shortlist {sl or 'default'}"] = (index, SearchParametersIVFDPQ(shortlist=sl))
            if isinstance(index, IndexIVFDPQ) and metric == faiss.METRIC_INNER_PRODUCT:
                # The same index searched at a prefix (3/4 of the levels): fewer bytes read.
                m = 3 * index.levels // 4
                built[f"{label}, prefix {m}"] = (index, SearchParametersIVFDPQ(levels=m))
        for nprobe in nprobes:
            searches = {}
            for label, (index, params) in built.items():
                if isinstance(index, IndexIVFDPQ):
                    index.nprobe = nprobe
                elif not isinstance(index, faiss.IndexPQ):  # the flat peer has no lists
                    faiss.extract_index_ivf(index).nprobe = nprobe
                searches[label] = (lambda index=index, params=params: index.search(xq, 10, params=params))
            # Timings interleaved run by run, so that a busy moment of the
            # (shared) machine hits every method alike; medians.
            times = {label: [] for label in searches}
            found = {label: search()[1] for label, search in searches.items()}
            for _ in range(args.runs):
                for label, search in searches.items():
                    t0 = time.perf_counter()
                    search()
                    times[label].append(time.perf_counter() - t0)
            for label in searches:
                index = built[label][0]
                row = {"data": name, "metric": mname, "n": n, "nlist": nlist, "budget": B, "method": label,
                       "bytes": bytes_of(index), "nprobe": nprobe, "recall": recall(found[label], gt),
                       "qps": len(xq) / float(np.median(times[label]))}
                print(f"    {label}, nprobe {nprobe}: recall {row['recall']:.3f}, QPS {row['qps']:.0f}", flush=True)
                rows.append(row)
        if args.mmap:
            for label, (index, params) in built.items():
                if isinstance(index, IndexIVFDPQ) and params is None:
                    for r in measure_mmap(index, xq[:args.mmap_nq], gt[:args.mmap_nq], nprobes, args.runs):
                        mmap_rows.append({"data": name, "metric": mname, "budget": B, **r})
        del built
    return rows, mmap_rows


def report(rows, mmap_rows):
    print("\n| data | metric | B | nprobe | method | recall 10@10 | QPS | QPS / IVFPQFastScan |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for r in rows:
        peer = [p for p in rows if p["method"] == "IVFPQFastScan" and p["nprobe"] == r["nprobe"]
                and p["budget"] == r["budget"] and p["data"] == r["data"] and p["metric"] == r["metric"]]
        ratio = f"{r['qps'] / peer[0]['qps']:.2f}x" if peer else "-"
        print(f"| {r['data']} | {r['metric']} | {r['budget']} | {r['nprobe']} | {r['method']} | "
              f"{r['recall']:.3f} | {r['qps']:,.0f} | {ratio} |")
    if mmap_rows:
        print("\n| data | metric | nprobe | file MB | open ms | RSS after open MB | RSS after search MB "
              "| probed lists MB | cold QPS | warm QPS |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in mmap_rows:
            print(f"| {r['data']} | {r['metric']} | {r['nprobe']} | {r['file_MB']:.0f} | {r['open_ms']:.1f} | "
                  f"{r['rss_after_open_MB']:.1f} | {r['rss_after_search_MB']:.1f} | {r['touched_lists_MB']:.1f} | "
                  f"{r['cold_qps']:,.0f} | {r['warm_qps']:,.0f} |")


def coarse_training(args) -> None:
    """Flat against two-level coarse k-means (IndexIVFDPQ.two_level_min_nlist)."""
    x = synthetic(args.n, args.d, args.seed)
    nlist = args.nlist or int(2 ** round(np.log2(4 * np.sqrt(args.n))))
    print(f"coarse k-means of {x.shape} synthetic vectors into {nlist} lists, {args.threads} threads")
    print("| coarse k-means | train s | mean squared distance to the nearest centroid |\n|---|---:|---:|")
    for label, two_level_min_nlist in (("flat", 0), ("two-level", 1)):
        index = IndexIVFDPQ(faiss.IndexFlatL2(args.d), args.d, nlist, 1, 4)
        index.two_level_min_nlist = two_level_min_nlist
        index.codebooks = np.zeros((1, 16, args.d), np.float32)  # the coarse level alone is trained
        t0 = time.perf_counter()
        index.train(x)
        seconds = time.perf_counter() - t0
        print(f"| {label} | {seconds:.1f} | {faiss.knn(x, index.centroids, 1)[0].mean():.4f} |", flush=True)


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(args.threads)
    if args.coarse_training:
        coarse_training(args)
        return
    rows, mmap_rows = [], []
    for name in args.data.split(","):
        x = synthetic(args.n + args.nq, args.d, args.seed) if name == "synthetic" else image_patches()
        for m in args.metric.split(","):
            r, mr = run(name, x, args, faiss.METRIC_L2 if m == "l2" else faiss.METRIC_INNER_PRODUCT)
            rows += r
            mmap_rows += mr
    report(rows, mmap_rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "mmap": mmap_rows}, indent=1))


if __name__ == "__main__":
    main()
