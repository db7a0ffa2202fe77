"""Deep unsupervised path against the torch-free trainer it starts from, on the shipped MiniLM set.

Same split as ``pyfaiss-dpq bench --dataset minilm`` (9,000 base = training
set, 1,000 queries, inner product). Torch-free: ``IndexDPQ.train`` on the
whole training set. Deep: ``DPQTrainer(mode="unsupervised")``, which starts
from ``IndexDPQ.train`` on 90% of it, optimises the same prefix-weighted
objective and counts the epochs that lower it on the held-out 10% (possibly
none); it then refits on the whole set: ``IndexDPQ.train``, then that many epochs.
Both are encoded with beam 5 and searched at every prefix; recall 10@10
against exact search. Train times are wall seconds at --threads.

    python benchmarks/train_deep.py                       # L = 32 x 8 bits, 4/8/16/32 B
    python benchmarks/train_deep.py --levels 8 --epochs 4
    python benchmarks/train_deep.py --levels 64 --nbits 4             # 4-bit levels, 4/8/16/32 B
"""

from __future__ import annotations

import argparse
import sys
import time

import faiss
import torch

from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq.bench.metrics import recall_at
from pyfaiss_dpq.data import load_dataset
from pyfaiss_dpq.train import DPQTrainer


def recalls(index, ds, prefixes) -> list:
    index.beam_size = 5
    index.add(ds.base)
    return [recall_at(index.search(ds.queries, 10, params=SearchParametersDPQ(levels=m))[1], ds.gt, 10, 10)
            for m in prefixes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, default=32)
    parser.add_argument("--nbits", type=int, choices=(4, 8), default=8)
    parser.add_argument("--epochs", type=int, default=None, help="deep epochs (default: the trainer's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    ds = load_dataset("minilm")
    per_byte = 8 // args.nbits  # levels per code byte
    prefixes = [b * per_byte for b in (4, 8, 16, 32) if b * per_byte <= args.levels]

    t0 = time.perf_counter()
    free = IndexDPQ(ds.d, args.levels, args.nbits, faiss.METRIC_INNER_PRODUCT)
    free.train(ds.train)
    free_s = time.perf_counter() - t0
    free_r = recalls(free, ds, prefixes)

    t0 = time.perf_counter()
    trainer = DPQTrainer(levels=args.levels, nbits=args.nbits, mode="unsupervised", epochs=args.epochs, seed=0,
                         verbose=False).fit(ds.train)
    deep_s = time.perf_counter() - t0
    deep_r = recalls(trainer.to_index("ip"), ds, prefixes)

    start = trainer.history_[0].validation
    print(f"held-out objective: start {start:.4f}, kept {trainer.history_[trainer.best_epoch_ + 1].validation:.4f} "
          f"(epoch {trainer.best_epoch_}{': none beat the start, so the fit returned IndexDPQ.train of all vectors' if trainer.best_epoch_ < 0 else ''}); per epoch "
          + " ".join(f"{h.validation:.4f}" for h in trainer.history_[1:]))
    print(f"| bytes | torch-free (IndexDPQ.train, {free_s:.0f} s) | deep (DPQTrainer unsupervised, {deep_s:.0f} s) |")
    print("|---:|---:|---:|")
    for m, a, b in zip(prefixes, free_r, deep_r):
        print(f"| {m // per_byte} | {a:.3f} | {b:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
