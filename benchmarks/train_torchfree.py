"""One torch-free DPQ model against Faiss quantizers trained per length, on real MiniLM embeddings.

DPQ is trained once with L = max(lengths) levels of 8 bits
(pyfaiss_dpq.train_codebooks) and searched at every prefix m; PQ, OPQ, RQ
(beam 5) and LSQ are each trained for every length. Vectors are unit-norm,
so the L2 neighbours are the inner-product ones; DPQ is scored with an L2
IndexDPQ, which ranks by the exact distance to each prefix reconstruction;
``--cosine`` also ranks the same codes with a cosine IndexDPQ (the unit
reconstruction r_m / ||r_m||), and the other methods' decoded vectors by
their cosine (exact, in numpy/Faiss: no Faiss index ranks that way).
Prints recall 10@10 and train seconds (same data, same threads) per row, as
soon as each is measured.

The shipped set's database is its training set, which rewards memorising
training vectors (a k-means that keeps starting from the same vectors
reconstructs about 256 of them almost exactly); ``--held-out`` trains every
method on the first half of the training vectors and searches the other half
(exact ground truth recomputed).

``--data PATH`` runs on a second real set: the MiniLM embeddings of the
docstring summaries that make_labeled_text.py collects from the installed
packages (20,524 with the bench extras installed; distinct texts from the
shipped set's standard-library sentences).

    python benchmarks/train_torchfree.py [--lengths 4,8,16,32] [--methods dpq,pq,opq,rq,lsq] [--threads 2] [--held-out [--fold 1]] [--seeds 1234,1,2]
    python benchmarks/train_torchfree.py --data ~/.cache/pyfaiss_dpq/labeled_text.npz --held-out --methods dpq,rq
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ, TrainParameters
from pyfaiss_dpq.codebooks import beam_encode
from pyfaiss_dpq.data import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_labeled_text  # noqa: E402


def recall_10_at_10(I: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(I, gt)]))


def faiss_index(method: str, d: int, m: int, rq_plain_kmeans: bool = False) -> faiss.Index:
    if method == "pq":
        return faiss.IndexPQ(d, m, 8)
    if method == "opq":
        return faiss.index_factory(d, f"OPQ{m},PQ{m}")
    if method == "rq":
        index = faiss.IndexResidualQuantizer(d, m, 8)
        index.rq.max_beam_size = 5
        if rq_plain_kmeans:  # Faiss's default is progressive-dimension k-means per level
            index.rq.train_type = faiss.ResidualQuantizer.Train_default
        return index
    if method == "lsq":
        return faiss.IndexLocalSearchQuantizer(d, m, 8)
    raise ValueError(method)


def load(data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, base, queries, ground truth) of --data; train = base.

    "minilm": the shipped set. A path: the embeddings of a labeled set written
    by make_labeled_text.py (its labels unused), in a fixed random order so
    that halves mix its classes, the first 1,000 as queries.
    """
    if data == "minilm":
        ds = load_dataset("minilm")
        return ds.train, ds.base, ds.queries, ds.gt
    x = make_labeled_text.load(Path(data))["embeddings"].astype(np.float32)
    x = x[np.random.default_rng(0).permutation(len(x))]
    xq, xb = x[:1000], x[1000:]
    return xb, xb, xq, faiss.knn(xq, xb, 10)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="4,8,16,32", help="code bytes (= levels of 8 bits)")
    parser.add_argument("--methods", default="dpq,pq,opq,rq,lsq")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=TrainParameters().rounds)
    parser.add_argument("--seeds", default=str(TrainParameters().seed),
                        help="DPQ trainer seeds, comma-separated: one model per seed (default: the trainer's)")
    parser.add_argument("--kmeans-max-points", type=int, default=TrainParameters().kmeans_max_points_per_centroid,
                        help="DPQ: each level's k-means sees at most K times this many residuals")
    parser.add_argument("--tail-kmeans-max-points", type=int, default=TrainParameters().tail_kmeans_max_points,
                        help="DPQ: the second half of the levels' k-means sees at most this many residuals")
    parser.add_argument("--weights", default="", help="DPQ prefix weights, comma-separated (default: the trainer's)")
    parser.add_argument("--encode-weights", choices=("train", "full"), default="train",
                        help="DPQ database beam: the training prefix weights, or full-length error only")
    parser.add_argument("--data", default="minilm",
                        help="'minilm' (shipped) or a set written by make_labeled_text.py (built there when missing)")
    parser.add_argument("--held-out", action="store_true",
                        help="train on the first half of the vectors, search the second half")
    parser.add_argument("--fold", type=int, choices=(0, 1), default=0,
                        help="with --held-out: 1 swaps the halves (train on the second, search the first)")
    parser.add_argument("--rq-plain-kmeans", action="store_true",
                        help="RQ levels by plain k-means (train_type 0) instead of Faiss's progressive-dimension one")
    parser.add_argument("--cosine", action="store_true",
                        help="also rank by cosine: DPQ's codes as a cosine index (cosine=True, default "
                             "shortlist), the others' decoded vectors exactly")
    parser.add_argument("--lsq-max-bytes", type=int, default=8, help="skip LSQ above this length (its training is slow)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    lengths = [int(v) for v in args.lengths.split(",")]
    xt, xb, xq, gt = load(os.path.expanduser(args.data))
    if args.held_out:
        half = len(xt) // 2
        xt, xb = (xt[:half], xt[half:]) if args.fold == 0 else (xt[half:], xt[:half])
        gt = faiss.knn(xq, xb, 10)[1]
    d = xb.shape[1]
    split = f"held-out base, fold {args.fold}" if args.held_out else "base = train"
    print(f"{'MiniLM' if args.data == 'minilm' else args.data} (d={d}): {len(xt)} train, {len(xb)} base ({split}), {len(xq)} queries; {args.threads} threads; "
          f"recall 10@10; faiss {faiss.__version__}\n", flush=True)
    print("| method | bytes | recall 10@10 | train s |\n|---|---|---|---|", flush=True)
    for method in args.methods.split(","):
        if method == "dpq":
            L = max(lengths)
            weights = [float(v) for v in args.weights.split(",")] if args.weights else []
            for seed in [int(v) for v in args.seeds.split(",")]:
                params = TrainParameters(rounds=args.rounds, prefix_weights=weights, seed=seed,
                                         kmeans_max_points_per_centroid=args.kmeans_max_points,
                                         tail_kmeans_max_points=args.tail_kmeans_max_points)
                t0 = time.perf_counter()
                C = pyfaiss_dpq.train_codebooks(xt, L, 8, params)
                train_s = time.perf_counter() - t0
                index = pyfaiss_dpq.IndexDPQ(d, L, 8, faiss.METRIC_L2)
                index.codebooks = C
                enc_w = (weights or None) if args.encode_weights == "train" else [0.0] * (L - 1) + [1.0]
                codes, _ = beam_encode(xb, C, params.beam_size, enc_w)
                index.add_codes(codes)
                ranked = [("", index)]
                if args.cosine:
                    cos = pyfaiss_dpq.IndexDPQ(d, L, 8, faiss.METRIC_INNER_PRODUCT, cosine=True)
                    cos.codebooks = C
                    cos.add_codes(codes)
                    ranked.append((", cosine index", cos))
                for m in lengths:
                    for how, ix in ranked:
                        _, I = ix.search(xq, 10, params=SearchParametersDPQ(levels=m))
                        label = (f"DPQ torch-free, one model L={L} (rounds={args.rounds}, seed {seed}, "
                                 f"k-means <= {args.kmeans_max_points} points per centroid, "
                                 f"<= {args.tail_kmeans_max_points or 'as many'} points in the second half){how}")
                        print(f"| {label} | {m} | {recall_10_at_10(I, gt):.3f} | {train_s:.1f} (all lengths) |",
                              flush=True)
            continue
        for m in lengths:
            if method == "lsq" and m > args.lsq_max_bytes:
                print(f"| LSQ | {m} | skipped (> --lsq-max-bytes) | |", flush=True)
                continue
            index = faiss_index(method, d, m, args.rq_plain_kmeans)
            t0 = time.perf_counter()
            index.train(xt)
            train_s = time.perf_counter() - t0
            index.add(xb)
            _, I = index.search(xq, 10)
            name = "RQ (plain k-means)" if method == "rq" and args.rq_plain_kmeans else method.upper()
            print(f"| {name} | {m} | {recall_10_at_10(I, gt):.3f} | {train_s:.1f} |", flush=True)
            if args.cosine:  # its decoded vectors ranked by cosine, as DPQ's cosine index ranks its own
                R = index.reconstruct_n(0, index.ntotal)
                faiss.normalize_L2(R)
                _, I = faiss.knn(xq, R, 10, metric=faiss.METRIC_INNER_PRODUCT)
                print(f"| {name}, cosine of its decoded vectors | {m} | {recall_10_at_10(I, gt):.3f} | "
                      f"{train_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
