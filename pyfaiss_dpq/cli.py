"""Command line: ``pyfaiss-dpq {train,build,search,bench,demo}``.

Vector files are .npy, .fvecs/.bvecs/.ivecs or ann-benchmarks HDF5 (see
:func:`pyfaiss_dpq.data.load_vectors`; ``--key`` picks the HDF5 dataset).

    pyfaiss-dpq train base.fvecs -o model.pt --mode unsupervised --levels 8
    pyfaiss-dpq train queries.npy --keys keys.npy -o model.pt --mode paired --code-memory 1024
    pyfaiss-dpq build base.fvecs -o base.dpq --model model.pt
    pyfaiss-dpq build base.fvecs -o base.dpq --levels 8 --nbits 8      # torch-free
    pyfaiss-dpq search base.dpq queries.fvecs -k 10 --levels 4 --ids ids.npy
    pyfaiss-dpq build base.fvecs -o base.sharded --shards 8           # on Ray ([distributed] extra)
    pyfaiss-dpq search base.sharded queries.fvecs -k 10 --timeout 2 --allow-partial
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from . import persist as dpq_io
from .data import load_vectors
from .index import IndexDPQ, downcast

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError, TimeoutError)


# ---------------------------------------------------------------- helpers
def _vectors(path: str, key: str | None, shape: list[int] | None = None) -> np.ndarray:
    """Rows of a vector file as float32, reshaped to (n, *shape) when a shape is given."""
    x = np.ascontiguousarray(load_vectors(path, key=key), dtype=np.float32)
    if shape:
        if int(np.prod(shape)) != x.shape[1]:
            raise ValueError(f"{path}: rows have {x.shape[1]} values, which is not the shape {tuple(shape)}")
        x = x.reshape(len(x), *shape)
    return x


def _labels(path: str, n: int) -> np.ndarray:
    """Integer labels from .npy or a text file with one label per line."""
    y = np.load(path, allow_pickle=False) if path.endswith(".npy") else np.loadtxt(path, dtype=np.int64, ndmin=1)
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind not in "iu" or len(y) != n:
        raise ValueError(f"{path}: expected {n} integer labels, got {len(y)} of dtype {y.dtype}")
    return y.astype(np.int64)


def _load_model(path: str):
    from .train import DPQModel

    return DPQModel.load(path)


def _as_model_input(model, x: np.ndarray) -> np.ndarray:
    """x reshaped to the model's input shape (files hold flat rows)."""
    shape = tuple(model.config["input_shape"])
    return x if x.shape[1:] == shape else x.reshape(len(x), *shape)


def _model_side(model, x: np.ndarray, queries: bool = False) -> np.ndarray:
    """What an index exported from `model` takes: raw flat rows (native export) or features (of queries)."""
    from .train.export import is_native

    x = _as_model_input(model, x)
    if is_native(model):
        return x.reshape(len(x), -1)
    return model.encode_query(x) if queries else model.encode(x)


def _inner_dpq(index) -> IndexDPQ:
    """The IndexDPQ inside an index read from disk (possibly under an IndexPreTransform)."""
    import faiss

    node = downcast(index)
    while not isinstance(node, IndexDPQ):
        if not hasattr(node, "index"):
            raise ValueError(f"no IndexDPQ inside {type(node).__name__}")
        node = downcast(faiss.downcast_index(node.index))
    return node


def _mode_names():
    """The registered training modes (``pyfaiss_dpq.train.MODES``); None without torch (no check here:
    the train command then says how to get the extra)."""
    try:
        from .train import MODES
    except ImportError:
        return None
    return tuple(MODES)


# ---------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from .train import MODES, DPQTrainer

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    x = _vectors(args.data, args.key, args.image_shape)
    y = _labels(args.labels, len(x)) if args.labels else None
    objective = MODES[args.mode]
    if objective.needs_labels and y is None:
        raise ValueError(f"--mode {args.mode} needs --labels FILE")
    if objective.needs_keys != bool(args.keys):
        takers = ", ".join(name for name, o in MODES.items() if o.needs_keys)
        raise ValueError(f"--mode {args.mode} needs --keys FILE (row i the match of query i), and only it takes --keys"
                         if objective.needs_keys else f"--keys is for --mode {takers}, not {args.mode}")
    if args.keys:
        y = _vectors(args.keys, args.key, args.image_shape)
    trainer = DPQTrainer(levels=args.levels, nbits=args.nbits, mode=args.mode, encoder=args.encoder, dim=args.dim,
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beam=args.beam,
                         end_to_end=not args.reference, patience=args.patience, code_memory=args.code_memory,
                         diversity=args.diversity, debias=args.debias, query_encoder=args.query_encoder,
                         device=args.device, seed=args.seed, checkpoint=args.output, verbose=not args.quiet)
    model = trainer.fit(x, y).model_
    model.save(args.output)
    err = model.reconstruction_error(x)
    print(f"saved {args.mode} model ({args.levels} levels x {args.nbits} bits, dim {model.dim}) to {args.output}")
    print("reconstruction error by prefix length: " + " ".join(f"{e:.4g}" for e in err))
    return 0


def _empty_index(args, x: np.ndarray):
    """(trained empty index, the vectors it takes, where its codebooks came from) for `build`."""
    if args.model:
        model = _load_model(args.model)
        index = model.to_index(metric=args.metric, beam_size=args.beam)
        return index, _model_side(model, np.ascontiguousarray(x, dtype=np.float32)), f"codebooks of {args.model}"
    import faiss

    metric = {"l2": faiss.METRIC_L2, "ip": faiss.METRIC_INNER_PRODUCT, "cosine": faiss.METRIC_INNER_PRODUCT}[
        args.metric or "l2"]
    index = IndexDPQ(x.shape[1], args.levels, args.nbits, metric, cosine=args.metric == "cosine")
    index.beam_size = args.beam or 1
    index.train(load_vectors(args.train, key=args.train_key) if args.train else x)
    return index, x, "IndexDPQ.train (progressive residual k-means, no torch)"


def cmd_build(args) -> int:
    x = load_vectors(args.data, key=args.key)
    index, vectors, source = _empty_index(args, x)
    inner = _inner_dpq(index)
    if args.shards:
        return _build_sharded(args, index, vectors, source, inner)
    index.add(vectors)
    dpq_io.write_index(index, args.output)
    print(f"wrote {args.output}: {index.ntotal} vectors, {inner.levels} levels x {inner.nbits} bits "
          f"({inner.bytes_per_vector} B/vector), {source}")
    return 0


def _build_sharded(args, template, vectors: np.ndarray, source: str, inner: IndexDPQ) -> int:
    from . import distributed as dd
    from .distributed.sources import SUFFIXES

    # Workers read a file in slices; features computed here (a model) or HDF5 travel as one array.
    from_file = not args.model and args.data.lower().endswith(SUFFIXES)
    report = dd.build(template, args.data if from_file else vectors, args.output, num_shards=args.shards,
                      address=args.address)
    print(f"wrote {args.output}: {report.ntotal} vectors in {report.num_shards} shards, {inner.levels} levels x "
          f"{inner.nbits} bits ({inner.bytes_per_vector} B/vector), {source}")
    return 0


def cmd_search(args) -> int:
    if os.path.isdir(args.index):
        return _search_sharded(args)
    index = dpq_io.read_index(args.index)
    q = _queries(args, index.d)
    if args.levels is not None:
        _inner_dpq(index).search_levels = args.levels
    D, I = index.search(q, args.k)
    return _save_results(args, D, I, len(q))


def _queries(args, d: int) -> np.ndarray:
    q = np.ascontiguousarray(load_vectors(args.queries, key=args.key), dtype=np.float32)
    if args.model:
        q = _model_side(_load_model(args.model), q, queries=True)
    if q.shape[1] != d:
        hint = "" if args.model else " (an index built from a model with a learned encoder needs --model)"
        raise ValueError(f"queries have dimension {q.shape[1]} but the index takes {d}{hint}")
    return q


def _save_results(args, D: np.ndarray, I: np.ndarray, nq: int, note: str = "") -> int:
    np.save(args.ids, I.astype(np.int64))
    np.save(args.distances, D.astype(np.float32))
    print(f"searched {nq} queries, k={args.k}: ids -> {args.ids}, distances -> {args.distances}{note}")
    return 0


def _search_sharded(args) -> int:
    from . import distributed as dd
    from .index import SearchParametersDPQ

    with dd.ShardedIndex.open(args.index, address=args.address) as ix:
        q = _queries(args, ix.d)
        params = None if args.levels is None else SearchParametersDPQ(levels=args.levels)
        res = ix.search(q, args.k, params=params, timeout=args.timeout, allow_partial=args.allow_partial)
    note = f" (shards {list(res.missing_shards)} missing)" if res.missing_shards else ""
    return _save_results(args, res.D, res.I, len(q), note)


def cmd_bench(args) -> int:
    from .bench import run_bench

    return run_bench(args)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


# ---------------------------------------------------------------- parser
def build_parser(with_bench_options: bool = False) -> argparse.ArgumentParser:
    """The argparse parser; the bench options are added only when `with_bench_options` (a lazy import)."""
    from .demo import add_demo_arguments

    parser = argparse.ArgumentParser(prog="pyfaiss-dpq", description="Deep progressive quantization as a Faiss index.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a DPQ model (needs the [train] extra) and save a checkpoint")
    p.add_argument("data", help="training vectors (.npy, .fvecs, .bvecs, .ivecs, .hdf5)")
    p.add_argument("-o", "--output", required=True, help="model checkpoint to write (saved after every epoch)")
    p.add_argument("--key", help="HDF5 dataset (default: train)")
    p.add_argument("--labels", help="class labels, .npy or text, one per row (supervised mode)")
    p.add_argument("--image-shape", type=int, nargs="+", metavar="N", help="rows are images: H W or C H W")
    p.add_argument("--mode", choices=_mode_names(), default="unsupervised")
    p.add_argument("--keys", help="paired mode: the keys, row i the match of row i of the data (the queries)")
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--nbits", type=int, choices=(4, 8), default=8)
    p.add_argument("--encoder", choices=("auto", "identity", "linear", "mlp", "cnn", "pyramid"), default="auto")
    p.add_argument("--dim", type=int, help="feature dimension of learned encoders (default 64)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beam", type=int, help="beam width of the codes (default: 5 unsupervised, else 1)")
    p.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement")
    p.add_argument("--code-memory", type=int, default=0,
                   help="contrastive/paired: past codes kept as extra negatives (MeCoQ / MoPQ)")
    p.add_argument("--diversity", type=float, default=0.0, help="contrastive/paired: codeword-diversity weight")
    p.add_argument("--debias", type=float, default=0.0, help="contrastive: positive prior of the debiased loss")
    p.add_argument("--query-encoder", choices=("linear", "mlp", "cnn", "pyramid"),
                   help="paired: a separate query tower (default: queries share the encoder)")
    p.add_argument("--reference", action="store_true",
                   help="codebooks learn from the quantization loss only, as the DPQ reference code")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("build", help="encode vectors into an index file, from a model or with IndexDPQ.train")
    p.add_argument("data", help="database vectors")
    p.add_argument("-o", "--output", required=True, help="index file to write (pyfaiss_dpq.write_index)")
    p.add_argument("--key", help="HDF5 dataset of the database (default: train)")
    p.add_argument("--model", help="checkpoint from `pyfaiss-dpq train`; without it, train IndexDPQ here")
    p.add_argument("--levels", type=int, default=8, help="levels for IndexDPQ.train")
    p.add_argument("--nbits", type=int, choices=(4, 8), default=8, help="bits per level for IndexDPQ.train")
    p.add_argument("--metric", choices=("l2", "ip", "cosine"),
                   help="default: the model's, else l2; cosine: IndexDPQ(..., cosine=True), inputs compared by direction")
    p.add_argument("--train", help="training vectors for IndexDPQ.train (default: the database)")
    p.add_argument("--train-key", help="HDF5 dataset of --train")
    p.add_argument("--beam", type=int, help="beam width used to encode (default: the model's, else 1)")
    p.add_argument("--shards", type=int,
                   help="build on Ray into a directory of this many shard files ([distributed] extra)")
    p.add_argument("--address", help="Ray cluster to join ('auto': the running one; default: local Ray)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("search", help="search an index file; write ids and distances as .npy")
    p.add_argument("index", help="index file, or sharded directory, from `pyfaiss-dpq build`")
    p.add_argument("queries", help="query vectors")
    p.add_argument("--key", help="HDF5 dataset of the queries (default: train; ann-benchmarks queries are 'test')")
    p.add_argument("--model", help="the checkpoint the index was built from (encodes the queries)")
    p.add_argument("-k", type=int, default=10, help="neighbours per query")
    p.add_argument("--levels", type=int, help="search with the first m levels only")
    p.add_argument("--ids", default="ids.npy", help="output ids (nq, k) int64")
    p.add_argument("--distances", default="distances.npy", help="output distances (nq, k) float32")
    p.add_argument("--address", help="sharded index: Ray cluster to join ('auto'; default: local Ray)")
    p.add_argument("--timeout", type=float, help="sharded index: seconds to wait for the shards (default: all)")
    p.add_argument("--allow-partial", action="store_true",
                   help="sharded index: past --timeout, answer from the shards that replied")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("bench", help="benchmark DPQ against Faiss quantizers (see `pyfaiss-dpq bench --help`)")
    if with_bench_options:
        from .bench import add_bench_arguments

        add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the digits demo: one model, every code length")
    add_demo_arguments(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pyfaiss-dpq`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(with_bench_options=bool(argv) and argv[0] == "bench")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _USER_ERRORS as exc:
        print(f"pyfaiss-dpq {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
