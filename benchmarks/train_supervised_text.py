"""Supervised DPQ on labeled real text embeddings: label mAP@100 at every prefix, one model.

Data: benchmarks/make_labeled_text.py (docstring summaries of installed
packages labeled by subpackage, all-MiniLM-L6-v2 embeddings), built into the
cache on first use; or --data stdlib-modules, the shipped MiniLM set labeled by
the top-level stdlib module of each sentence. A stratified split holds out --queries texts as queries;
the rest is the database and the training set. Reference: exact inner-product
search on the raw embeddings. DPQ: one DPQTrainer(mode="supervised") model,
searched with the first m levels (m bytes at 8 bits) of its codes.

    python benchmarks/train_supervised_text.py                  # defaults
    python benchmarks/train_supervised_text.py --data stdlib-modules --queries 1000
    python benchmarks/train_supervised_text.py --levels 32 --epochs 40 --set prefix_weights=...
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from sklearn.model_selection import train_test_split

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq.bench.metrics import mean_average_precision
from pyfaiss_dpq.train import DPQTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_labeled_text  # noqa: E402

K_MAP = 100


SHIPPED = "stdlib-modules"
MIN_SHIPPED_CLASS = 80


def load(data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, labels, class names) of --data.

    "stdlib-modules": the shipped MiniLM set (CPython docstring sentences),
    labeled by top-level module, modules with fewer than 80 sentences dropped.
    A path: a set written by make_labeled_text.py (built there when missing).
    """
    if data == SHIPPED:
        npz = np.load(Path(pyfaiss_dpq.__file__).parent / "datasets" / "minilm_text.npz")
        top = np.array([m.split(".")[0] for m in npz["modules"]])[npz["source"]]
        classes, labels, counts = np.unique(top, return_inverse=True, return_counts=True)
        keep = counts[labels] >= MIN_SHIPPED_CLASS
        classes, labels = np.unique(top[keep], return_inverse=True)
        return npz["embeddings"][keep].astype(np.float32), labels, classes
    npz = make_labeled_text.load(Path(data))
    return npz["embeddings"].astype(np.float32), npz["labels"], npz["classes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(make_labeled_text.DEFAULT_OUT),
                        help=f"a make_labeled_text.py .npz (default: the cache), or {SHIPPED!r}")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--levels", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--prefixes", default="1,2,4,8,16,32", help="levels to search with (bytes at 8 bits)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="any other DPQTrainer parameter, e.g. --set dim=128 (Python literal)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    x, y, classes = load(args.data)
    xb, xq, yb, yq = train_test_split(x, y, test_size=args.queries, stratify=y, random_state=0)
    xb, xq = np.ascontiguousarray(xb), np.ascontiguousarray(xq)
    print(f"{len(x)} texts, {len(classes)} classes; database/training {len(xb)}, held-out queries {len(xq)}")
    flat = faiss.IndexFlatIP(xb.shape[1])
    flat.add(xb)
    exact = mean_average_precision(flat.search(xq, K_MAP)[1], yb, yq, K_MAP)
    print(f"exact inner-product search on the raw embeddings: mAP@{K_MAP} {exact:.3f}")

    extra = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    trainer = DPQTrainer(levels=args.levels, nbits=8, mode="supervised", epochs=args.epochs, seed=0,
                         verbose=False, **extra)
    t0 = time.perf_counter()
    trainer.fit(xb, yb)
    seconds = time.perf_counter() - t0
    index = trainer.to_index()
    index.add(trainer.encode(xb))
    fq = trainer.encode_query(xq)
    print(f"DPQTrainer(mode='supervised', levels={args.levels}, {extra}) trained once in {seconds:.0f} s "
          f"(kept epoch {trainer.best_epoch_} of {sum(h.epoch >= 0 for h in trainer.history_)})")
    print(f"| bytes | DPQ mAP@{K_MAP} (one model) | exact search, raw | DPQ - exact |")
    print("|---:|---:|---:|---:|")
    for m in (int(v) for v in args.prefixes.split(",")):
        if m > args.levels:
            continue
        ids = index.search(fq, K_MAP, params=SearchParametersDPQ(levels=m))[1]
        got = mean_average_precision(ids, yb, yq, K_MAP)
        print(f"| {m} | {got:.3f} | {exact:.3f} | {got - exact:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
