"""Cosine indexes on unit sentence embeddings: inner product against cosine, with and without stored norms.

IndexIVFDPQ: one IVF model (coarse k-means and levels trained once on
--ntrain of the shipped MiniLM vectors) filled three ways with the same
codes: plain inner product, cosine re-scoring the shortlist from norms
computed per candidate (``cosine=True``, no stored bytes: sums of codeword
and centroid products at 4 bits, decoding at 8), and
cosine reading a stored float32 norm (``norm_prefixes=[levels]``, 4 more
bytes a vector). IndexDPQ (flat): the same three with the levels of one flat
model (its cosine computes norms from a table of codeword products at 4 bits,
by decoding at 8). Recall 10@10 against exact inner-product neighbours of
held-out queries, and QPS at one thread: the median of --runs rounds, each
timing the three indexes of a row group in turn.

    python benchmarks/cosine_norms.py [--nlist 97] [--levels 16] [--nbits 4] [--nprobe 2,9,48]
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


def flat(C: np.ndarray, codes: np.ndarray, nbits: int, cosine: bool, stored: bool) -> pyfaiss_dpq.IndexDPQ:
    levels = C.shape[0]
    index = pyfaiss_dpq.IndexDPQ(C.shape[2], levels, nbits, faiss.METRIC_INNER_PRODUCT,
                                 norms="float32" if stored else "none", norm_prefixes=[levels] if stored else None,
                                 cosine=cosine)
    index.codebooks = C
    index.add_codes(codes)
    return index


def timed(indexes: dict, xq, gt, params, runs: int) -> "dict[str, tuple[float, float]]":
    """name -> (recall 10@10, QPS: median of `runs` rounds taking turns)."""
    recall = {name: recall_at(ix.search(xq, 10, params=params)[1], gt, 10, 10) for name, ix in indexes.items()}
    times = {name: [] for name in indexes}
    for _ in range(runs):
        for name, ix in indexes.items():
            t0 = time.perf_counter()
            ix.search(xq, 10, params=params)
            times[name].append(time.perf_counter() - t0)
    return {name: (recall[name], len(xq) / float(np.median(times[name]))) for name in indexes}


def print_rows(label: str, indexes: dict, results: dict) -> None:
    base = results["inner product"][1]
    for name, ix in indexes.items():
        recall, qps = results[name]
        print(f"| {label} | {name} | {ix.bytes_per_vector} | {recall:.3f} | {qps:.0f} | {qps / base:.2f}x |",
              flush=True)


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
        "cosine, norms computed": filled(model, xb, args.levels, args.nbits, True, None),
        "cosine, stored float32 norm": filled(model, xb, args.levels, args.nbits, True, [args.levels]),
    }
    print(f"MiniLM: {len(xb)} base, {len(xq)} queries; {args.levels} levels x {args.nbits} bits; IVF "
          f"{args.nlist} lists; shortlist {args.shortlist}; 1 thread; faiss {faiss.__version__}\n")
    print("| search | index | bytes/vector | recall 10@10 | QPS | vs inner product |\n|---|---|---|---|---|---|")
    for nprobe in (int(v) for v in args.nprobe.split(",")):
        params = SearchParametersIVFDPQ(nprobe=nprobe, shortlist=args.shortlist)
        print_rows(f"IVF, nprobe {nprobe}", indexes, timed(indexes, xq, gt, params, args.runs))
    C = pyfaiss_dpq.train_codebooks(xb[:args.ntrain], args.levels, args.nbits, pyfaiss_dpq.TrainParameters())
    codes = pyfaiss_dpq.codebooks.beam_encode(xb, C, 1)[0]
    flats = {"inner product": flat(C, codes, args.nbits, False, False),
             "cosine, norms computed": flat(C, codes, args.nbits, True, False),
             "cosine, stored float32 norm": flat(C, codes, args.nbits, True, True)}
    print_rows("flat", flats, timed(flats, xq, gt, pyfaiss_dpq.SearchParametersDPQ(shortlist=args.shortlist),
                                    args.runs))


if __name__ == "__main__":
    main()
