"""``pyfaiss-dpq demo``: one DPQ model serves every code length, on real digit images.

Data: scikit-learn's handwritten digits (1797 real 8x8 images, 10 classes),
split into a database (90%) and held-out queries (10%, stratified).

1. Torch-free: ``IndexDPQ.train`` (progressive residual k-means) on the raw
   64-d pixels, searched at every prefix length, beside ``faiss.IndexPQ``
   trained at each length: recall@10 against exact L2 neighbours, and QPS.
2. With the ``[train]`` extra: supervised DPQ (small CNN on the images)
   trained once and exported to IndexDPQ, against ``faiss.IndexPQ`` trained
   separately at each length, on the raw pixels and on the DPQ encoder's
   features: label-retrieval mAP over the whole database, training time, and
   a plot of mAP against bits.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from .bench.metrics import mean_average_precision, queries_per_second, recall_at
from .data import load_digits_images
from .index import IndexDPQ, SearchParametersDPQ

THREADS = faiss.omp_get_max_threads()  # searches time with Faiss's default thread count
TRAIN_HINT = "pip install torch==2.13.0 && pip install 'pyfaiss-dpq[train]'"


# ---------------------------------------------------------------- measures
def pq_index(x_train: np.ndarray, m: int, metric=faiss.METRIC_L2):
    """faiss.IndexPQ with m 8-bit sub-quantizers; inputs zero-padded to a multiple of m."""
    pad = (-x_train.shape[1]) % m
    index = faiss.IndexPQ(x_train.shape[1] + pad, m, 8, metric)
    index.pq.cp.min_points_per_centroid = 1  # 1617 points for 256 centroids is fine here: no warning
    index.train(np.pad(x_train, ((0, 0), (0, pad))))
    return index, (lambda x: np.ascontiguousarray(np.pad(x, ((0, 0), (0, pad)))))


def split_digits(seed: int = 0):
    """(images_base, images_queries, labels_base, labels_queries): stratified 90/10 split."""
    from sklearn.model_selection import train_test_split

    images, labels = load_digits_images()
    return train_test_split(images, labels, test_size=0.1, stratify=labels, random_state=seed)


# ---------------------------------------------------------------- part 1
def torch_free_part(xb: np.ndarray, xq: np.ndarray, levels: int) -> None:
    _, gt = faiss.knn(xq, xb, 10)
    many = np.tile(xq, (10, 1))  # enough queries for a stable QPS
    index = IndexDPQ(xb.shape[1], levels, 8)
    index.train(xb)
    index.add(xb)
    print(f"\n(1) torch-free: IndexDPQ.train on raw {xb.shape[1]}-d pixels ({len(xb)} base, {len(xq)} held-out "
          "queries)\n    recall@10 against exact L2 neighbours; QPS = median of 5 runs, "
          f"{faiss.omp_get_max_threads()} threads")
    print(f"    {'bytes':>5} | {'DPQ prefix':>10} {'QPS':>9} | {'IndexPQ':>8} {'QPS':>9}")
    for m in range(1, levels + 1):
        params = SearchParametersDPQ(levels=m)
        r_dpq = recall_at(index.search(xq, 10, params=params)[1], gt, 10, 10)
        q_dpq = queries_per_second(lambda: index.search(many, 10, params=params), len(many), THREADS, 5)
        pq, pad = pq_index(xb, m)
        pq.add(pad(xb))
        r_pq = recall_at(pq.search(pad(xq), 10)[1], gt, 10, 10)
        q_pq = queries_per_second(lambda: pq.search(pad(many), 10), len(many), THREADS, 5)
        print(f"    {m:>5} | {r_dpq:>10.3f} {q_dpq:>9.0f} | {r_pq:>8.3f} {q_pq:>9.0f}")
    print("    One IndexDPQ serves all rows (prefix m); IndexPQ is trained once per row. With L2 the "
          f"IndexDPQ also stores exact prefix norms ({index.bytes_per_vector} B/vector at {levels} levels).")


# ---------------------------------------------------------------- part 2
def trained_part(ib, iq, yb, yq, levels: int, epochs: int | None, seed: int, quiet: bool, out: str) -> None:
    import torch

    from .train import DPQTrainer

    torch.set_num_threads(1)  # the model is tiny: more threads only add OpenMP overhead
    print(f"\n(2) supervised DPQ: small CNN on the 8x8 images, {levels} levels x 8 bits, trained once")
    t0 = time.perf_counter()
    model = DPQTrainer(levels=levels, nbits=8, mode="supervised", epochs=epochs, seed=seed,
                       verbose=not quiet).fit(ib, yb).model_
    dpq_seconds = time.perf_counter() - t0
    index = model.to_index()
    fb, fq = model.encode(ib), model.encode(iq)
    index.add(fb)
    n = len(ib)
    xb, xq = ib.reshape(n, -1), iq.reshape(len(iq), -1)
    rows, pq_seconds = [], 0.0
    for m in range(1, levels + 1):
        dpq_map = mean_average_precision(index.search(fq, n, params=SearchParametersDPQ(levels=m))[1], yb, yq, n)
        t0 = time.perf_counter()
        pq, pad = pq_index(xb, m)
        pq_seconds += time.perf_counter() - t0
        pq.add(pad(xb))
        raw_map = mean_average_precision(pq.search(pad(xq), n)[1], yb, yq, n)
        pqf, padf = pq_index(fb, m, faiss.METRIC_INNER_PRODUCT)
        pqf.add(padf(fb))
        feat_map = mean_average_precision(pqf.search(padf(fq), n)[1], yb, yq, n)
        rows.append((8 * m, dpq_map, raw_map, feat_map))
    print("    label-retrieval mAP over the whole database (held-out queries); every row is m bytes per vector")
    print(f"    {'bits':>4} | {'DPQ (1 model)':>13} | {'PQ raw pixels':>13} | {'PQ DPQ feats':>12}")
    for bits, a, b, c in rows:
        print(f"    {bits:>4} | {a:>13.3f} | {b:>13.3f} | {c:>12.3f}")
    print("    DPQ: CNN features, ranked by <query feature, reconstruction> at prefix m. PQ raw pixels: IndexPQ(M=m)"
          "\n    on the 64-d pixels (L2). PQ DPQ feats: IndexPQ(M=m) on the DPQ encoder's features (inner product).")
    print(f"    training wall time: DPQ {dpq_seconds:.1f} s once for all {levels} lengths; "
          f"IndexPQ on pixels {pq_seconds:.2f} s summed over {levels} trainings")
    _plot(rows, out)
    print(f"\nplot: {out}")


def _plot(rows, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(bits, [r[1] for r in rows], "o-", label="DPQ, one model (CNN features)")
    ax.plot(bits, [r[2] for r in rows], "s--", label="IndexPQ per length (raw pixels)")
    ax.plot(bits, [r[3] for r in rows], "^:", label="IndexPQ per length (DPQ features)")
    ax.set_xlabel("bits per vector")
    ax.set_ylabel("mAP (label retrieval)")
    ax.set_title("sklearn digits, held-out queries")
    ax.set_xticks(bits)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- entry points
def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pyfaiss-dpq demo``."""
    parser.add_argument("--out", default="dpq_demo.png", help="where to save the mAP-vs-bits plot (PNG)")
    parser.add_argument("--levels", type=int, default=4, help="DPQ levels L = largest code length in bytes")
    parser.add_argument("--epochs", type=int, default=None, help="DPQ training epochs (default: the trainer's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_demo(args: argparse.Namespace) -> int:
    """Run both parts; part 2 only when torch is installed. Returns an exit code."""
    if not 1 <= args.levels <= 16:
        raise ValueError(f"--levels must be in [1, 16], got {args.levels}")
    ib, iq, yb, yq = split_digits(args.seed)
    print(f"sklearn digits: {len(ib)} database images, {len(iq)} held-out queries (stratified), 10 classes")
    torch_free_part(ib.reshape(len(ib), -1), iq.reshape(len(iq), -1), args.levels)
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"\n(2) skipped: training DPQ needs PyTorch. Install the extra: {TRAIN_HINT}")
        return 0
    trained_part(ib, iq, yb, yq, args.levels, args.epochs, args.seed, args.quiet, args.out)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pyfaiss-dpq demo", description=__doc__.splitlines()[0])
    add_demo_arguments(parser)
    return run_demo(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
