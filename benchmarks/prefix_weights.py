"""Which prefix weights the torch-free trainer should default to, measured on held-out MiniLM.

One initialisation (``TrainParameters(rounds=0)``: the progressive levels,
beam 5) of an L x 8-bit model on the first half of the shipped MiniLM set,
then, for each weighting, one round of the trainer (the weighted beam
encoding of the training half and the joint least-squares update) and the
other half encoded with the same weighted beam. Prints recall 10@10 at every
prefix in ``--prefixes`` (exact ground truth on the held-out half), so a
weighting that sacrifices a prefix shows up at that prefix.

Weightings: ``uniform`` (1 on every prefix), ``pow2`` (1 on the prefixes of
power-of-two length and the full one: the default), ``budgets`` (1 on
``--prefixes`` that are powers of two only), ``init`` (no round, encoded
with the default weights).

    python benchmarks/prefix_weights.py [--levels 32] [--prefixes 2,4,8,12,16,24,32] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ, TrainParameters
from pyfaiss_dpq.bench.metrics import recall_at
from pyfaiss_dpq.codebooks import beam_encode, default_prefix_weights, solve_codebooks
from pyfaiss_dpq.data import load_dataset


def weightings(levels: int, prefixes: list[int]) -> dict[str, np.ndarray]:
    ones_at = lambda ms: np.array([1.0 if m in ms else 0.0 for m in range(1, levels + 1)])  # noqa: E731
    return {
        "init": default_prefix_weights(levels).astype(float),
        "uniform": np.ones(levels),
        "pow2": default_prefix_weights(levels).astype(float),
        "budgets": ones_at({m for m in prefixes if m & (m - 1) == 0} | {levels}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=32)
    parser.add_argument("--prefixes", default="2,4,8,12,16,24,32")
    parser.add_argument("--weightings", default="init,uniform,pow2,budgets")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    prefixes = [int(v) for v in args.prefixes.split(",")]
    ds = load_dataset("minilm")
    half = len(ds.train) // 2
    xt, xb, xq = ds.train[:half], ds.train[half:], ds.queries
    gt = faiss.knn(xq, xb, 10)[1]
    L, d = args.levels, xb.shape[1]
    t0 = time.perf_counter()
    C0 = pyfaiss_dpq.train_codebooks(xt, L, 8, TrainParameters(rounds=0))
    print(f"MiniLM held out: {len(xt)} train, {len(xb)} base, {len(xq)} queries; L = {L} x 8 bits; "
          f"initialisation {time.perf_counter() - t0:.0f} s; {args.threads} threads; faiss {faiss.__version__}\n")
    print("| weighting | " + " | ".join(f"{m} B" for m in prefixes) + " |")
    print("|---|" + "---:|" * len(prefixes), flush=True)
    table = weightings(L, prefixes)
    for name in args.weightings.split(","):
        w = [float(v) for v in table[name]]
        C = C0
        if name != "init":
            codes, _ = beam_encode(xt, C0, 5, w)
            C = solve_codebooks(xt, C0, codes, w)
        index = pyfaiss_dpq.IndexDPQ(d, L, 8, faiss.METRIC_L2)
        index.codebooks = C
        index.add_codes(beam_encode(xb, C, 5, w)[0])
        recalls = [recall_at(index.search(xq, 10, params=SearchParametersDPQ(levels=m))[1], gt, 10, 10)
                   for m in prefixes]
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in recalls) + " |", flush=True)


if __name__ == "__main__":
    main()
