"""Benchmark suite: DPQ trained once against Faiss quantizers at equal bytes per vector.

``pyfaiss-dpq bench --dataset digits --out DIR`` or ``python -m pyfaiss_dpq.bench``
writes DIR/results.md, DIR/results.json and DIR/*.png.
"""

from .runner import add_bench_arguments, run_bench

__all__ = ["add_bench_arguments", "run_bench"]
