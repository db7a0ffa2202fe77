"""IndexIVFDPQ on unit sentence embeddings: inner product against the cosine index, with and without stored norms.

One IVF model (coarse k-means and levels trained once on --ntrain of the
shipped MiniLM vectors) is filled three ways with the same codes: plain inner
product, cosine re-scoring the shortlist by decoding each candidate
(``cosine=True``, no stored bytes), and cosine reading a stored float32
``||c + r_m||^2`` (``norm_prefixes=[levels]``, 4 more bytes a vector). Recall
10@10 against exact inner-product neighbours of held-out queries, and QPS at
one thread: the median of --runs rounds, each timing the three indexes in turn.

    python benchmarks/ivf_cosine.py [--nlist 97] [--levels 16] [--nbits 4] [--nprobe 2,9,48]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersIVFDPQ
from pyfaiss_dpq.bench.metrics import recall_at
from pyfaiss_dpq.data import load_text_embeddings


def filled(model, xb, levels: int, nbits: int, cosine: bool, norm_prefixes) -> pyfaiss_dpq.IndexIVFDPQ:
    d, nlist = xb.shape[1], len(model.centroids)
    index = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(d), d, nlist, levels, nbits, faiss.METRIC_INNER_PRODUCT,
                                    norm_prefixes=norm_prefixes, cosine=cosine)
    index.quantizer.add(model.centroids)
    index.codebooks = model.codebooks
    index.train(xb[:1])  # quantizer and codebooks given: nothing is learned
    index.add(xb)
    return index


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nlist", type=int, default=97)
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--nbits", type=int, default=4)
    p.add_argument("--nprobe", default="2,9,48")
    p.add_argument("--shortlist", type=int, default=30)
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=4000)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    faiss.omp_set_num_threads(1)
    x = np.ascontiguousarray(load_text_embeddings(), dtype=np.float32)
    faiss.normalize_L2(x)
    x = x[np.random.default_rng(0).permutation(len(x))]
    xq, xb = x[:args.nq], x[args.nq:]
    _, gt = faiss.knn(xq, xb, 10, metric=faiss.METRIC_INNER_PRODUCT)
    model = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(xb.shape[1]), xb.shape[1], args.nlist, args.levels, args.nbits,
                                    faiss.METRIC_INNER_PRODUCT, cosine=True)
    model.train(xb[:args.ntrain])
    indexes = {
        "inner product": filled(model, xb, args.levels, args.nbits, False, None),
        "cosine, norms decoded": filled(model, xb, args.levels, args.nbits, True, None),
        "cosine, stored float32 norm": filled(model, xb, args.levels, args.nbits, True, [args.levels]),
    }
    print(f"MiniLM: {len(xb)} base, {len(xq)} queries; IVF {args.nlist} lists x {args.levels} levels x "
          f"{args.nbits} bits; shortlist {args.shortlist}; 1 thread; faiss {faiss.__version__}\n")
    print("| nprobe | index | bytes/vector | recall 10@10 | QPS | vs inner product |\n|---|---|---|---|---|---|")
    for nprobe in (int(v) for v in args.nprobe.split(",")):
        params = SearchParametersIVFDPQ(nprobe=nprobe, shortlist=args.shortlist)
        times = {name: [] for name in indexes}
        recall = {name: recall_at(ix.search(xq, 10, params=params)[1], gt, 10, 10) for name, ix in indexes.items()}
        for _ in range(args.runs):
            for name, ix in indexes.items():
                t0 = time.perf_counter()
                ix.search(xq, 10, params=params)
                times[name].append(time.perf_counter() - t0)
        qps = {name: len(xq) / float(np.median(t)) for name, t in times.items()}
        for name, ix in indexes.items():
            print(f"| {nprobe} | {name} | {ix.bytes_per_vector} | {recall[name]:.3f} | {qps[name]:.0f} | "
                  f"{qps[name] / qps['inner product']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
