"""What a byte code of IndexIVFDPQ's L2 norm would buy, before building it.

IndexIVFDPQ keeps a float32 ||r_m||^2 per vector for L2 (4 of 16 bytes).
This simulates the same index with a 1-byte code of that norm instead (a
256-value 1-D k-means code, as the flat index's 8-bit norms) and the 3 bytes
spent on 6 more 4-bit levels: each query's probed vectors ranked with the
code's value in place of the norm, the best --shortlist re-scored exactly
(as the flat index does with norm codes), in numpy float64. Rows: 4(B - 4)
levels + float32 norm; 2(B - 1) levels + 8-bit code; the same levels with
their exact norm (the ceiling).

    python benchmarks/ivf_norms_diagnose.py --data patches --bytes 16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import faiss
import numpy as np

from pyfaiss_dpq import IndexIVFDPQ

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ivf import split  # noqa: E402
from norms import image_patches  # noqa: E402
from scan import synthetic  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches", help="patches, or synthetic (--n of benchmarks/scan.py's vectors)")
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--bytes", type=int, default=16, help="bytes per vector: codes and norm")
    p.add_argument("--nlist", type=int, default=256)
    p.add_argument("--nprobe", type=int, default=8)
    p.add_argument("--shortlist", type=int, default=30)
    p.add_argument("--nq", type=int, default=300)
    p.add_argument("--ntrain", type=int, default=20_000)
    return p.parse_args()


def stored(index):
    """(ids, list numbers, r_m) of every stored vector, r_m in float64."""
    ids, lists, codes = index.list_contents()
    books = index.codebooks.astype(np.float64)
    return ids, lists, books[np.arange(index.levels), codes].sum(1)


def norm_code_values(norms: np.ndarray) -> np.ndarray:
    """Each norm replaced by its 256-value 1-D k-means code's centroid."""
    km = faiss.Kmeans(1, 256, niter=25, seed=1)
    x = norms[:, None].astype(np.float32)
    km.train(x)
    _, a = km.index.search(x, 1)
    return km.centroids[a[:, 0], 0].astype(np.float64)


def recall(index, xq, gt, ranked_norms, r, ids, lists, nprobe, shortlist) -> float:
    """Recall 10@10: probed vectors ranked with ranked_norms, the shortlist re-scored exactly."""
    centroids = index.centroids.astype(np.float64)
    _, probes = index.quantizer.search(xq, nprobe)
    hits = 0
    for i in range(len(xq)):
        sel = np.isin(lists, probes[i])
        v = xq[i].astype(np.float64) - centroids[lists[sel]]  # q - c
        ranked = (v * v).sum(1) - 2 * (v * r[sel]).sum(1) + ranked_norms[sel]
        exact = ((v - r[sel]) ** 2).sum(1)
        top = np.argsort(ranked)[:shortlist]
        best = top[np.argsort(exact[top])[:10]]
        hits += len(set(ids[sel][best]) & set(gt[i]))
    return hits / (10 * len(xq))


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    x = image_patches() if args.data == "patches" else synthetic(args.n + args.nq, 96, 0)
    xt, xb, xq = split(x, args.nq, args.ntrain, 0)
    _, gt = faiss.knn(xq, xb, 10)
    d = x.shape[1]
    print(f"{args.data}: {xb.shape}, {args.bytes} B, nlist {args.nlist}, nprobe {args.nprobe}, "
          f"shortlist {args.shortlist}")
    print("| levels x 4 bits | norm | recall 10@10 | mean error of the norm |\n|---:|---|---:|---:|")
    for levels, code in ((2 * (args.bytes - 4), False), (2 * (args.bytes - 1), True), (2 * (args.bytes - 1), False)):
        index = IndexIVFDPQ(faiss.IndexFlatL2(d), d, args.nlist, levels, 4, faiss.METRIC_L2, norm_prefixes=[levels])
        index.train(xt)
        index.add(xb)
        ids, lists, r = stored(index)
        norms = (r * r).sum(1)
        ranked = norm_code_values(norms) if code else norms
        kind = "8-bit code (1 B)" if code else "exact" + (" (float32, 4 B)" if levels == 2 * (args.bytes - 4) else
                                                             ", not stored (the ceiling)")
        rec = recall(index, xq, gt, ranked, r, ids, lists, args.nprobe, args.shortlist)
        print(f"| {levels} | {kind} | {rec:.3f} | {np.abs(ranked - norms).mean():.4g} |", flush=True)


if __name__ == "__main__":
    main()
