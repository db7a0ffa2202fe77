"""Does end-to-end training help DPQ? Reference-style vs end-to-end on sklearn digits.

reference  (end_to_end=False): as the DPQ authors' code, codebooks learn only from
           the quantization loss and the encoder only from the label (or
           contrastive) loss.
end-to-end (end_to_end=True, the default): the label losses also act on every
           progressive hard reconstruction through a straight-through
           estimator (codewords get the exact gradient, the encoder the
           identity), and contrastive mode adds SPQ's cross-quantized loss.

Prints label-retrieval mAP (held-out stratified 10% queries, whole database
ranked) at every prefix length: the median over seeds, and the per-seed spread.

    python benchmarks/train_end_to_end.py [--seeds 0 1 2] [--epochs 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq.bench.metrics import mean_average_precision
from pyfaiss_dpq.demo import split_digits
from pyfaiss_dpq.train import DPQTrainer

SETTINGS = [  # (mode, levels, nbits)
    ("supervised", 4, 8),
    ("supervised", 4, 4),
    ("contrastive", 4, 8),
]


def map_by_length(model, ib, iq, yb, yq) -> list[float]:
    index = model.to_index()
    index.add(model.encode(ib))
    fq = model.encode(iq)
    return [mean_average_precision(index.search(fq, len(ib), params=SearchParametersDPQ(levels=m))[1], yb, yq, len(ib))
            for m in range(1, model.levels + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ib, iq, yb, yq = split_digits(0)
    print(f"sklearn digits, {len(ib)} database / {len(iq)} held-out queries, CNN encoder, "
          f"{args.epochs} epochs, seeds {args.seeds}\n")
    print("| mode | levels x bits | training | mAP at m = 1..L (median over seeds) | min..max at m = L | seconds |")
    print("|---|---|---|---|---|---|")
    for mode, levels, nbits in SETTINGS:
        for end_to_end in (False, True):
            maps, seconds = [], []
            for seed in args.seeds:
                t0 = time.perf_counter()
                trainer = DPQTrainer(levels=levels, nbits=nbits, mode=mode, epochs=args.epochs, seed=seed,
                                     end_to_end=end_to_end, verbose=False)
                model = trainer.fit(ib, yb if mode == "supervised" else None).model_
                seconds.append(time.perf_counter() - t0)
                maps.append(map_by_length(model, ib, iq, yb, yq))
            maps = np.array(maps)
            med = " / ".join(f"{v:.3f}" for v in np.median(maps, 0))
            name = "end-to-end" if end_to_end else "reference"
            print(f"| {mode} | {levels} x {nbits} | {name} | {med} | {maps[:, -1].min():.3f}..{maps[:, -1].max():.3f} "
                  f"| {statistics.median(seconds):.1f} |", flush=True)


if __name__ == "__main__":
    main()
