"""Retrieval quality and resource measurements: the benchmark's and the demo's one definition.

Needs only numpy and faiss (no bench extra), so the demo can use it too.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Callable, Optional

import faiss
import numpy as np


def recall_at(ids: np.ndarray, gt: np.ndarray, r: int, k: int) -> float:
    """Recall r@k: mean over queries of |top-k results ∩ top-r true neighbours| / r.

    ids : (n_q, >= k) result ids; gt : (n_q, >= r) true neighbours, best first.
    ``recall_at(ids, gt, 1, 100)`` is the usual 1-recall@100.
    """
    if ids.shape[1] < k or gt.shape[1] < r:
        raise ValueError(f"recall {r}@{k} needs {k} results and {r} true neighbours, "
                         f"got {ids.shape[1]} and {gt.shape[1]}")
    top, true = ids[:, :k], gt[:, :r]
    hits = (top[:, :, None] == true[:, None, :]).any(axis=1).sum(axis=1)
    return float(hits.mean() / r)


def mean_average_precision(ids: np.ndarray, labels_base: np.ndarray, labels_queries: np.ndarray,
                           k: int = 100) -> float:
    """mAP@k for class retrieval: a result is relevant when it has the query's label.

    AP of one query = sum over relevant ranks i <= k of precision@i, divided by
    the number of relevant results among the top k (0 when there are none),
    as in the deep-hashing literature. ids: (n_q, >= k), -1 for missing.
    """
    top = ids[:, :k]
    valid = top >= 0
    rel = valid & (labels_base[np.where(valid, top, 0)] == labels_queries[:, None])
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, top.shape[1] + 1)
    n_rel = rel.sum(axis=1)
    ap = np.where(n_rel > 0, (precision * rel).sum(axis=1) / np.maximum(n_rel, 1), 0.0)
    return float(ap.mean())


def timed(fn: Callable[[], object]) -> "tuple[float, object]":
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def queries_per_second(search: Callable[[], object], n_queries: int, threads: int, runs: int) -> float:
    """Median QPS of `runs` timed calls of `search` with Faiss using `threads` OpenMP threads."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        search()  # warm-up: first-touch of tables and caches
        times = [timed(search)[0] for _ in range(runs)]
    finally:
        faiss.omp_set_num_threads(before)
    return n_queries / statistics.median(times)


def _rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux) or psutil where installed."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        raise RuntimeError("measuring build memory needs /proc or psutil: pip install 'pyfaiss-dpq[bench]'") from None
    return psutil.Process().memory_info().rss


class PeakRSS:
    """Context manager sampling this process's resident set size in a thread.

    ``delta_mb`` is the peak RSS during the block minus the RSS at its start:
    the extra memory a build needed (approximate: the allocator may reuse
    memory freed earlier, and samples are 2 ms apart).
    """

    def __init__(self, interval: float = 0.002):
        self._interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.start_rss = self.peak_rss = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, _rss_bytes())
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakRSS":
        self.start_rss = self.peak_rss = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, _rss_bytes())

    @property
    def delta_mb(self) -> float:
        return (self.peak_rss - self.start_rss) / 2**20
