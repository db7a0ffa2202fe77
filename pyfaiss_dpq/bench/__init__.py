"""Benchmark suite: DPQ trained once against Faiss quantizers at equal bytes per vector.

``pyfaiss-dpq bench --dataset digits --out DIR`` or ``python -m pyfaiss_dpq.bench``
writes DIR/results.md, DIR/results.json and DIR/*.png. ``--curves`` measures
QPS-recall curves against ScaNN and Faiss fast-scan instead (bench/peers.py).

The runner is imported on first use: ``pyfaiss_dpq.bench.metrics`` (used by
the demo) needs none of the bench extra's packages.
"""

import importlib.util

# What the runner imports beyond numpy and faiss: the bench extra.
BENCH_EXTRA_MODULES = ("tqdm", "matplotlib", "sklearn")


def _require_bench_extra() -> None:
    missing = [m for m in BENCH_EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"the benchmark needs {', '.join(missing)}: pip install 'pyfaiss-dpq[bench]'")


def add_bench_arguments(parser) -> None:
    """Add the benchmark's options to an argparse parser (needs no bench extra: --help works)."""
    from .runner import add_bench_arguments as add

    add(parser)


def run_bench(args) -> int:
    """Run the benchmark for parsed arguments; returns the exit status."""
    _require_bench_extra()
    from .runner import run_bench as run

    return run(args)


__all__ = ["BENCH_EXTRA_MODULES", "add_bench_arguments", "run_bench"]
