"""The trainer's MeCoQ, PHPQ, MoPQ modes and the PQ-AG robustness audit, each against the mode it extends.

    python benchmarks/modes.py mecoq        # contrastive digits: memory / debias / diversity on and off, pyramid encoder
    python benchmarks/modes.py paired       # text pairs: paired vs unsupervised DPQ vs IndexPQ, query->key recall
    python benchmarks/modes.py robustness   # digits: white/black-box attacks on IndexDPQ and IndexPQ vs eps

mecoq: label-retrieval mAP of held-out digits (stratified 10% queries, whole
database ranked) at every prefix length, median over seeds.
paired: needs the pairs file of benchmarks/make_text_pairs.py (--pairs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np
import torch

from pyfaiss_dpq import SearchParametersDPQ, robustness
from pyfaiss_dpq.demo import label_map, split_digits
from pyfaiss_dpq.train import DPQTrainer

MECOQ_SETTINGS = [  # (name, trainer options)
    ("SPQ-style contrastive (base)", {}),
    ("+ code memory 512", {"code_memory": 512}),
    ("+ code memory 128", {"code_memory": 128}),
    ("+ debias tau+=0.1", {"debias": 0.1}),
    ("+ diversity 0.1", {"diversity": 0.1}),
    ("+ diversity 1.0", {"diversity": 1.0}),
    ("+ all three (MeCoQ)", {"code_memory": 512, "debias": 0.1, "diversity": 0.1}),
    ("pyramid encoder (PHPQ), base loss", {"encoder": "pyramid"}),
    ("pyramid encoder + all three", {"encoder": "pyramid", "code_memory": 512, "debias": 0.1, "diversity": 0.1}),
]


def digits_map_by_length(model, ib, iq, yb, yq) -> list[float]:
    index = model.to_index()
    index.add(model.encode(ib))
    fq = model.encode(iq)
    return [label_map(index.search(fq, len(ib), params=SearchParametersDPQ(levels=m))[1], yb, yq)
            for m in range(1, model.levels + 1)]


def study_mecoq(args) -> None:
    ib, iq, yb, yq = split_digits(0)
    print(f"sklearn digits, {len(ib)} database / {len(iq)} held-out queries, contrastive, {args.levels} x 8 bits, "
          f"{args.epochs} epochs, seeds {args.seeds}\n")
    print("| setting | mAP at m = 1..L (median) | min..max at m = L | seconds |")
    print("|---|---|---|---|")
    for name, options in MECOQ_SETTINGS:
        if args.only and not any(word in name for word in args.only):
            continue
        maps, seconds = [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            model = DPQTrainer(levels=args.levels, nbits=8, mode="contrastive", epochs=args.epochs, seed=seed,
                               verbose=False, **options).fit(ib).model_
            seconds.append(time.perf_counter() - t0)
            maps.append(digits_map_by_length(model, ib, iq, yb, yq))
        maps = np.array(maps)
        med = " / ".join(f"{v:.3f}" for v in np.median(maps, 0))
        print(f"| {name} | {med} | {maps[:, -1].min():.3f}..{maps[:, -1].max():.3f} "
              f"| {statistics.median(seconds):.0f} |", flush=True)


def recall_at(ids: np.ndarray, ks=(1, 10)) -> list[float]:
    hit = ids == np.arange(len(ids))[:, None]
    return [float(hit[:, :k].any(1).mean()) for k in ks]


def study_paired(args) -> None:
    data = np.load(args.pairs)
    q, k = data["queries"].astype(np.float32), data["keys"].astype(np.float32)
    n_test = args.test_pairs
    perm = np.random.default_rng(0).permutation(len(q))
    test, train = perm[:n_test], perm[n_test:]
    qt, kt = q[test], k[test]
    print(f"{len(q)} (first sentence, rest of docstring) pairs, all-MiniLM-L6-v2; trained on {len(train)}, "
          f"evaluated on {n_test} held-out pairs: each query searches the {n_test} held-out keys.\n"
          f"Inner product, {args.levels} x 8 bits ({args.levels} B/key), seed {args.seeds[0]}, {args.epochs} epochs.\n")
    print("| method | recall@1 | recall@10 | train seconds |")
    print("|---|---:|---:|---:|")
    exact = faiss.IndexFlatIP(q.shape[1])
    exact.add(kt)
    print(f"| exact float search (reference) | " + " | ".join(f"{r:.3f}" for r in recall_at(exact.search(qt, 10)[1]))
          + " | — |")
    t0 = time.perf_counter()
    pq = faiss.IndexPQ(q.shape[1], args.levels, 8, faiss.METRIC_INNER_PRODUCT)
    pq.train(k[train])
    pq.add(kt)
    print(f"| faiss.IndexPQ (M={args.levels}) | " + " | ".join(f"{r:.3f}" for r in recall_at(pq.search(qt, 10)[1]))
          + f" | {time.perf_counter() - t0:.0f} |", flush=True)
    runs = [
        ("unsupervised DPQ (reconstruction, beam 5)", "unsupervised", {}),
        ("paired (MoPQ), one tower", "paired", {}),
        ("paired, one tower + code memory 1024", "paired", {"code_memory": 1024}),
        ("paired, two towers (linear query encoder)", "paired", {"query_encoder": "linear"}),
    ]
    for name, mode, options in runs:
        t0 = time.perf_counter()
        trainer = DPQTrainer(levels=args.levels, nbits=8, mode=mode, epochs=args.epochs, seed=args.seeds[0],
                             verbose=False, **options)
        model = (trainer.fit(k[train]) if mode == "unsupervised" else trainer.fit(q[train], k[train])).model_
        seconds = time.perf_counter() - t0
        index = model.to_index(metric="ip")
        index.add(model.encode(kt) if model.query_encoder is not None else kt)
        query = model.encode_query(qt) if model.query_encoder is not None else qt
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in recall_at(index.search(query, 10)[1]))
              + f" | {seconds:.0f} |", flush=True)


def study_robustness(args) -> None:
    ib, iq, yb, yq = split_digits(0)
    q, yq = iq[:args.queries], yq[:args.queries]
    eps_values = args.eps
    options = dict(steps=args.steps, samples=args.samples, clip=(0.0, 1.0))
    print(f"sklearn digits (pixels in [0, 1]), {len(ib)} database / {len(q)} held-out queries, k=10; "
          f"{args.steps} attack steps, black box {args.samples} antithetic pairs per step.\n"
          "overlap: fraction of the clean top-10 still returned; precision: fraction of the top-10 with the "
          "query's label.\n")
    model = DPQTrainer(levels=args.levels, nbits=8, mode="contrastive", epochs=args.epochs, seed=args.seeds[0],
                       verbose=False).fit(ib).model_
    dpq = model.to_index()
    dpq.add(model.encode(ib))
    flat = ib.reshape(len(ib), -1)
    pq = faiss.IndexPQ(flat.shape[1], args.levels, 8)
    pq.pq.cp.min_points_per_centroid = 1
    pq.train(flat)
    pq.add(flat)
    tables = [
        (f"IndexDPQ ({args.levels} levels, contrastive CNN)", model, dpq, None),
        ("IndexDPQ, 1-level scan", model, dpq, SearchParametersDPQ(levels=1)),
        (f"IndexDPQ, 1-level scan re-ranked with {args.levels} levels (top 100)", model, dpq,
         SearchParametersDPQ(levels=1, rerank_levels=args.levels, rerank_k=100)),
        (f"IndexPQ (M={args.levels}, pixels)", pq, pq, None),
    ]
    for name, attacker, index, params in tables:
        rows = robustness.report(attacker, index, q if attacker is model else q.reshape(len(q), -1), eps_values,
                                 params=params, base_labels=yb, query_labels=yq, **options)
        print(robustness.format_report(rows, name), "\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=("mecoq", "paired", "robustness"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", help="mecoq: run the settings whose names contain one of these")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", default="results/text_pairs.npz", help="paired: output of make_text_pairs.py")
    parser.add_argument("--test-pairs", type=int, default=500, help="paired: held-out pairs")
    parser.add_argument("--queries", type=int, default=100, help="robustness: attacked queries")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2], help="robustness budgets")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    {"mecoq": study_mecoq, "paired": study_paired, "robustness": study_robustness}[args.study](args)


if __name__ == "__main__":
    main()
