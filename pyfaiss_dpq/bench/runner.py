"""The benchmark: DPQ trained once against Faiss quantizers at equal bytes per vector."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import faiss
import numpy as np

from .. import __version__
from ..data import Dataset, load_dataset
from ..index import IndexDPQ, SearchParametersDPQ, downcast
from . import report
from .baselines import METHODS, PLANNERS, Plan, stored_bytes_per_vector
from .peers import add_curve_arguments, run_curves
from .metrics import PeakRSS, mean_average_precision, queries_per_second, recall_at, timed


RQ_ENCODING_BEAM = 5
"""Beam width of Faiss's ResidualQuantizer encoder by default (max_beam_size); the torch-free DPQ row uses it too."""

UNSUPERVISED_EPOCHS = 5
"""Deep-trainer epochs the benchmark uses for unlabelled data unless --epochs says otherwise."""


# ---------------------------------------------------------------- arguments
def _int_list(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"lengths must be positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _method_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    return [m for m in METHODS if m in names]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to `parser` (used by ``pyfaiss-dpq bench`` and ``python -m pyfaiss_dpq.bench``)."""
    parser.add_argument("--dataset", default="digits",
                        help="'digits', 'minilm', or a .npy/.fvecs/.bvecs/ann-benchmarks .hdf5 file (default: digits)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory for results.md, results.json and plots (default: results/<dataset>)")
    parser.add_argument("--trainer", choices=("auto", "kmeans", "deep"), default="auto",
                        help="DPQ training: 'kmeans' (IndexDPQ.train, no torch), 'deep' (pyfaiss_dpq.train), "
                             "'auto' = deep when torch is installed (default)")
    parser.add_argument("--levels", type=_int_list, default=None,
                        help="DPQ prefix lengths m to compare, e.g. 1,2,4,8; DPQ is trained once with the "
                             "largest (default: 2,4,8,16 for d <= 64, else 4,8,16,32)")
    parser.add_argument("--nbits", type=int, choices=(4, 8), default=8, help="bits per DPQ level (default 8)")
    parser.add_argument("--methods", type=_method_list, default=list(METHODS),
                        help=f"comma-separated Faiss baselines (default: all of {','.join(METHODS)})")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="epochs of the deep trainer (default: the trainer's own for supervised training, "
                             f"{UNSUPERVISED_EPOCHS} for unsupervised, which keeps the minilm run to minutes)")
    parser.add_argument("--qps-runs", type=_positive_int, default=3, help="timed searches per QPS figure; the median is kept")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="threads of the all-threads QPS (default: Faiss's OpenMP maximum)")
    parser.add_argument("--lsq-budget", type=float, default=60.0,
                        help="seconds of LSQ training allowed over all lengths; a length whose LSQ training "
                             "is estimated to exceed it is skipped and noted (default 60)")
    parser.add_argument("--build-threads", type=_positive_int, default=1,
                        help="threads for training and encoding, the same for every method (default 1: "
                             "stable timings on a shared machine)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_curve_arguments(parser)


# ---------------------------------------------------------------- helpers
@contextlib.contextmanager
def native_stderr(sink: list):
    """Capture what C++ code prints on file descriptor 2 (Faiss warnings) into `sink`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.extend(line.strip() for line in tmp.read().decode(errors="replace").splitlines() if line.strip())


def _warnings(lines: list) -> list:
    """Distinct warning lines among captured output."""
    return sorted({line for line in lines if "WARNING" in line.upper()})


def machine_info(threads: int) -> dict:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads_all": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "pyfaiss_dpq": __version__,
        "torch": None,
        "load_average_at_start": list(os.getloadavg()),
    }
    if importlib.util.find_spec("torch") is not None:
        import torch

        info["torch"] = torch.__version__
    return info


def command_line() -> str:
    """How this run was started, as a user would type it."""
    prog = Path(sys.argv[0]).name
    if prog == "__main__.py":
        prog = "python -m pyfaiss_dpq.bench"
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def resolve_trainer(choice: str) -> str:
    """'kmeans' or 'deep'; 'auto' picks deep when torch and pyfaiss_dpq.train are importable."""
    deep_ok = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("pyfaiss_dpq.train") is not None
    if choice == "deep" and not deep_ok:
        raise RuntimeError("--trainer deep needs PyTorch and pyfaiss_dpq.train: pip install pyfaiss-dpq[train]")
    if choice == "auto":
        return "deep" if deep_ok else "kmeans"
    return choice


def default_levels(d: int) -> list[int]:
    top = 16 if d <= 64 else 32
    return [top // 8, top // 4, top // 2, top]


# ---------------------------------------------------------------- DPQ
@dataclass
class DPQBuild:
    """A DPQ index with all levels, and how to feed it."""

    index: faiss.Index                               # IndexDPQ, or a Faiss pipeline around it
    dpq: IndexDPQ
    features: Callable[[np.ndarray], np.ndarray]     # model encoder for non-Faiss encoders, else identity
    description: str
    supervised: bool
    train_s: float
    encode_s: float
    build_peak_mb: float
    warnings: list

    def searcher(self, queries: np.ndarray, k: int, m: int) -> Callable[[], tuple]:
        params = SearchParametersDPQ(levels=m)
        if isinstance(self.index, faiss.IndexPreTransform):
            outer = faiss.SearchParametersPreTransform()
            outer.index_params = params
            outer.referenced_objects = [params]
            params = outer
        return lambda: self.index.search(self.features(queries), k, params=params)


def build_dpq(ds: Dataset, levels: int, nbits: int, trainer: str, epochs: Optional[int]) -> DPQBuild:
    lines: list = []
    features = _identity
    with PeakRSS() as mem, native_stderr(lines):
        if trainer == "kmeans":
            index = dpq = IndexDPQ(ds.d, levels, nbits, ds.metric)
            train_s, _ = timed(lambda: index.train(ds.train))
            index.beam_size = RQ_ENCODING_BEAM  # the base encoded as the RQ baseline encodes its own
            description = f"IndexDPQ L={levels} x {nbits} bits, progressive residual k-means (IndexDPQ.train)"
        else:
            train_s, (index, features, description) = timed(lambda: _train_deep(ds, levels, nbits, epochs))
            dpq = downcast(index.index) if isinstance(index, faiss.IndexPreTransform) else index
        encode_s, _ = timed(lambda: index.add(features(ds.base)))
    description += f", encoded with beam {dpq.beam_size}"
    supervised = trainer == "deep" and ds.labels_train is not None
    return DPQBuild(index, dpq, features, description, supervised, train_s, encode_s, mem.delta_mb,
                    _warnings(lines))


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _train_deep(ds: Dataset, levels: int, nbits: int, epochs: Optional[int]):
    from ..train import DPQTrainer
    from ..train.export import is_native

    mode = "supervised" if ds.labels_train is not None else "unsupervised"
    if epochs is None and mode == "unsupervised":
        epochs = UNSUPERVISED_EPOCHS
    trainer = DPQTrainer(levels=levels, nbits=nbits, mode=mode, epochs=epochs, verbose=False, seed=0)
    model = trainer.fit(ds.train, ds.labels_train).model_
    # Supervised models rank by the inner product of unit features (their training
    # metric, no norms stored); unsupervised ones use the data set's metric.
    # By name: faiss.METRIC_INNER_PRODUCT is 0, which to_index would take for "unset".
    index = model.to_index(ds.metric_name.lower() if mode == "unsupervised" else None)
    dpq = downcast(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    native = is_native(model)
    space = "the input vectors" if native else f"{dpq.d}-d learned features (queries encoded at search time)"
    metric = "L2" if dpq.metric_type == faiss.METRIC_L2 else "IP"
    ran = sum(h.epoch >= 0 for h in trainer.history_)
    description = (f"DPQTrainer(mode={mode}, {ran} epochs, kept epoch {trainer.best_epoch_}) "
                   f"L={levels} x {nbits} bits, {metric} over {space}")
    return index, (_identity if native else model.encode), description


def dpq_bytes(dpq: IndexDPQ, m: int) -> "tuple[int, int]":
    """(code bytes, total bytes) per vector of an IndexDPQ holding the first m levels."""
    code = IndexDPQ(dpq.d, m, dpq.nbits, faiss.METRIC_INNER_PRODUCT).bytes_per_vector
    total = IndexDPQ(dpq.d, m, dpq.nbits, dpq.metric_type).bytes_per_vector
    return code, total


# ---------------------------------------------------------------- measuring
def quality(ids: np.ndarray, ds: Dataset) -> dict:
    out = {
        "recall_1_at_1": recall_at(ids, ds.gt, 1, 1),
        "recall_10_at_10": recall_at(ids, ds.gt, 10, 10) if ds.gt.shape[1] >= 10 else None,
        "recall_1_at_100": recall_at(ids, ds.gt, 1, ids.shape[1]),
        "map_at_100": None,
    }
    if ds.labels_base is not None and ds.labels_queries is not None:
        out["map_at_100"] = mean_average_precision(ids, ds.labels_base, ds.labels_queries, ids.shape[1])
    return out


def measure(search: Callable[[], tuple], ds: Dataset, threads: int, runs: int) -> dict:
    _, ids = search()
    row = quality(ids, ds)
    row["qps_1_thread"] = queries_per_second(search, len(ds.queries), 1, runs)
    row["qps_all_threads"] = queries_per_second(search, len(ds.queries), threads, runs)
    return row


def build_baseline(plan: Plan, ds: Dataset) -> "tuple[faiss.Index, dict]":
    lines: list = []
    index = plan.build()
    with PeakRSS() as mem, native_stderr(lines):
        train_s, _ = timed(lambda: index.train(ds.train))
        encode_s, _ = timed(lambda: index.add(ds.base))
    stored = stored_bytes_per_vector(index)
    if stored != plan.total_bytes:
        raise RuntimeError(f"{plan.description}: stores {stored} B per vector, planned {plan.total_bytes} B")
    return index, {"train_s": train_s, "encode_s": encode_s, "build_peak_mb": mem.delta_mb,
                   "warnings": _warnings(lines)}


# ---------------------------------------------------------------- the run
@contextlib.contextmanager
def build_threads(n: int):
    """Faiss (and torch, when loaded) use `n` threads inside the block."""
    before = faiss.omp_get_max_threads()
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch else None
    faiss.omp_set_num_threads(n)
    if torch:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
        if torch:
            torch.set_num_threads(torch_before)


class TrainBudget:
    """Training seconds a slow method may spend over all lengths.

    A length's cost is predicted from the previous one, scaled by the square
    of the byte ratio (LSQ's encoder is quadratic in its number of codebooks).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.spent = 0.0
        self.last: Optional[tuple] = None

    def refuse(self, total_bytes: int) -> Optional[str]:
        """Why a build of `total_bytes` would break the budget, or None."""
        if self.last is None:
            return None
        seconds, last_bytes = self.last
        estimate = seconds * (total_bytes / last_bytes) ** 2
        if self.spent + estimate <= self.seconds:
            return None
        return (f"training estimated at ~{estimate:.0f} s would exceed the {self.seconds:.0f} s LSQ budget "
                f"(--lsq-budget; {self.spent:.0f} s spent)")

    def charge(self, total_bytes: int, seconds: float) -> None:
        self.spent += seconds
        self.last = (seconds, total_bytes)


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark described by `args` (see :func:`add_bench_arguments`); returns 0."""
    if args.curves:
        info = machine_info(args.threads or faiss.omp_get_max_threads())
        machine = (f"{info['cpu']}, {info['cpu_count']} cores, load average {info['load_average_at_start'][0]:.1f} "
                   f"at start (shared machine), faiss {info['faiss']}, {info['platform']}")
        return run_curves(args, command_line(), machine)
    ds = load_dataset(args.dataset)
    trainer = resolve_trainer(args.trainer)
    levels = args.levels or default_levels(ds.d)
    threads = args.threads or faiss.omp_get_max_threads()
    out = Path(args.out) if args.out is not None else Path("results") / ds.name
    out.mkdir(parents=True, exist_ok=True)
    k = ds.gt.shape[1]

    results = {
        "command": command_line(),
        "machine": machine_info(threads),
        "dataset": {"name": ds.name, "d": ds.d, "metric": ds.metric_name, "n_train": len(ds.train),
                    "n_base": len(ds.base), "n_queries": len(ds.queries), "gt_k": k,
                    "labels": ds.labels_base is not None},
        "config": {"trainer": trainer, "levels": levels, "nbits": args.nbits, "methods": list(args.methods),
                   "qps_runs": args.qps_runs, "k": k, "lsq_budget_s": args.lsq_budget,
                   "build_threads": args.build_threads, "search_threads": [1, threads]},
        "rows": [],
        "notes": [],
        "faiss_warnings": {},
    }
    rows, notes, warned = results["rows"], results["notes"], results["faiss_warnings"]
    lsq_budget = TrainBudget(args.lsq_budget)
    steps = 2 + len(levels) * (1 + len(args.methods))
    from tqdm import tqdm  # the bench extra (checked by bench.run_bench)

    with tqdm(total=steps, desc=f"bench {ds.name}", unit="step") as bar:
        bar.set_postfix_str(f"training DPQ ({trainer})")
        with build_threads(args.build_threads):
            dpq = build_dpq(ds, max(levels), args.nbits, trainer, args.epochs)
        results["dpq"] = {"description": dpq.description, "supervised": dpq.supervised, "train_s": dpq.train_s, "encode_s": dpq.encode_s,
                          "build_peak_mb": dpq.build_peak_mb,
                          "bytes_per_vector_all_levels": dpq.dpq.bytes_per_vector}
        for w in dpq.warnings:
            warned.setdefault(w, []).append("DPQ")
        bar.update()

        bar.set_postfix_str("Flat")
        flat = faiss.IndexFlat(ds.d, ds.metric)
        encode_s, _ = timed(lambda: flat.add(ds.base))
        rows.append({"method": "Flat", "length": None, "description": f"IndexFlat ({ds.metric_name}), exact",
                     "code_bytes": 4 * ds.d, "extra_bytes": 0, "total_bytes": 4 * ds.d, "train_s": 0.0,
                     "encode_s": encode_s, "build_peak_mb": None, "status": "ok",
                     **measure(lambda: flat.search(ds.queries, k), ds, threads, args.qps_runs)})
        bar.update()

        for m in levels:
            code, total = dpq_bytes(dpq.dpq, m)
            bar.set_postfix_str(f"DPQ m={m}")
            rows.append({"method": "DPQ", "length": m, "description": f"{dpq.description}, prefix m={m}",
                         "code_bytes": code, "extra_bytes": total - code, "total_bytes": total,
                         "train_s": dpq.train_s, "encode_s": dpq.encode_s, "build_peak_mb": dpq.build_peak_mb,
                         "status": "ok", **measure(dpq.searcher(ds.queries, k, m), ds, threads, args.qps_runs)})
            bar.update()
            for method in args.methods:
                bar.set_postfix_str(f"{method} {total} B")
                rows.append(baseline_row(method, m, total, ds, args, lsq_budget, notes, warned, threads))
                bar.update()

    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["training_totals"] = report.training_totals(rows)
    report.write_all(results, out, plots=not args.no_plots)
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}" + ("" if args.no_plots else " and plots"))
    return 0


def baseline_row(method: str, m: int, total: int, ds: Dataset, args: argparse.Namespace,
                 lsq_budget: TrainBudget, notes: list, warned: dict, threads: int) -> dict:
    """Build, measure and describe one baseline at `total` bytes per vector (or say why not)."""
    row = {"method": method, "length": m, "total_bytes": total}
    plan = PLANNERS[method](ds.d, ds.metric, total)
    reason = plan if isinstance(plan, str) else (lsq_budget.refuse(total) if method == "LSQ" else None)
    if reason:
        notes.append(f"{method} at {total} B skipped: {reason}")
        return {**row, "status": "skipped", "note": reason}
    try:
        with build_threads(args.build_threads):
            index, build = build_baseline(plan, ds)
    except RuntimeError as exc:  # a Faiss training failure is a result, not a crash
        reason = f"Faiss failed to build {plan.description}: {str(exc).strip().splitlines()[-1]}"
        notes.append(f"{method} at {total} B failed: {reason}")
        return {**row, "status": "failed", "note": reason}
    if method == "LSQ":
        lsq_budget.charge(total, build["train_s"])
    for w in build.pop("warnings"):
        warned.setdefault(w, []).append(f"{method} {total} B")
    k = ds.gt.shape[1]
    return {**row, "description": plan.description, "code_bytes": plan.code_bytes,
            "extra_bytes": plan.extra_bytes, **build, "status": "ok",
            **measure(lambda: index.search(ds.queries, k), ds, threads, args.qps_runs)}
