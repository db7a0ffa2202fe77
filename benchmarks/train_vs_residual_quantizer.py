"""Unsupervised DPQ vs Faiss's residual quantizer on real MiniLM text embeddings.

Same levels, same bits, same bytes per vector (inner-product metric, so
IndexDPQ stores no norms). Recall@10 of held-out queries against exact
inner-product neighbours, for:

- faiss.IndexResidualQuantizer (beam 5 training and encoding, Faiss defaults)
- IndexDPQ.train (greedy progressive residual k-means, torch-free)
- DPQTrainer(mode="unsupervised"), trained with greedy codes (beam=1) and
  with beam-5 codes (the default), encoded by IndexDPQ with the same beam.

DPQ rows also give recall at every prefix m < L of the one model.

    python benchmarks/train_vs_residual_quantizer.py [--base 3000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
import torch

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq.data import load_text_embeddings
from pyfaiss_dpq.bench.metrics import recall_at
from pyfaiss_dpq.train import DPQTrainer

CONFIGS = [(8, 4), (4, 8)]  # (levels, nbits): 4 bytes per vector each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    x = load_text_embeddings()
    perm = np.random.default_rng(0).permutation(len(x))
    xq, xb = x[perm[:args.queries]], x[perm[args.queries:args.queries + args.base]]
    _, gt = faiss.knn(xq, xb, 10, metric=faiss.METRIC_INNER_PRODUCT)
    ip = faiss.METRIC_INNER_PRODUCT
    print(f"MiniLM embeddings (d={x.shape[1]}): {len(xb)} base, {len(xq)} held-out queries; recall@10\n")
    print("| levels x bits | method | recall@10 at L | recall at m = 1..L | train s |")
    print("|---|---|---|---|---|")
    for levels, nbits in CONFIGS:
        t0 = time.perf_counter()
        rq = faiss.IndexResidualQuantizer(x.shape[1], levels, nbits, ip)
        rq.train(xb)
        rq.add(xb)
        rq_s = time.perf_counter() - t0
        print(f"| {levels} x {nbits} | faiss IndexResidualQuantizer | {recall_at(rq.search(xq, 10)[1], gt, 10, 10):.4f} "
              f"| | {rq_s:.1f} |")
        t0 = time.perf_counter()
        kmeans = pyfaiss_dpq.IndexDPQ(x.shape[1], levels, nbits, ip)
        kmeans.train(xb)
        _report(levels, nbits, "IndexDPQ.train (greedy residual k-means)", kmeans, xb, xq, gt, time.perf_counter() - t0)
        for beam in (1, 5):
            t0 = time.perf_counter()
            model = DPQTrainer(levels=levels, nbits=nbits, mode="unsupervised", epochs=args.epochs, beam=beam,
                               verbose=False).fit(xb).model_
            seconds = time.perf_counter() - t0
            _report(levels, nbits, f"DPQTrainer unsupervised, beam {beam}", model.to_index("ip"), xb, xq, gt, seconds)


def _report(levels, nbits, name, index, xb, xq, gt, seconds) -> None:
    index.add(xb)
    rec = [recall_at(index.search(xq, 10, params=SearchParametersDPQ(levels=m))[1], gt, 10, 10)
           for m in range(1, levels + 1)]
    print(f"| {levels} x {nbits} | {name} | {rec[-1]:.4f} | {' / '.join(f'{r:.3f}' for r in rec)} | {seconds:.1f} |",
          flush=True)


if __name__ == "__main__":
    main()
