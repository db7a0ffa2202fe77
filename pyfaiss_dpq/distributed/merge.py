"""Merging per-shard top-k lists into the top-k of the whole database.

One tie rule, Faiss's: results are ordered by distance (L2 ascending, inner
product descending), equal distances by smaller id, and empty slots (id -1)
last. Every shard's list obeys it too, so the merge of the shards' lists is
exactly the list one index holding all vectors returns.
"""

from __future__ import annotations

from typing import Sequence

import faiss
import numpy as np

__all__ = ["merge_topk", "empty_result"]


def empty_result(nq: int, k: int, metric_type: int) -> tuple[np.ndarray, np.ndarray]:
    """What a search returns where no vector qualifies: id -1 and the worst float distance."""
    worst = np.finfo(np.float32).max if metric_type == faiss.METRIC_L2 else -np.finfo(np.float32).max
    return np.full((nq, k), worst, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def merge_topk(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int, metric_type: int,
               nq: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of the union of per-shard results.

    Parameters
    ----------
    parts : sequence of (D, I)
        Per-shard distances (nq, k_s) float32 and global ids (nq, k_s) int64.
    k : int
    metric_type : int
        ``faiss.METRIC_L2`` (smaller is better) or ``faiss.METRIC_INNER_PRODUCT``.
    nq : int

    Returns
    -------
    D : numpy.ndarray, (nq, k) float32
    I : numpy.ndarray, (nq, k) int64
    """
    D, I = empty_result(nq, k, metric_type)
    if not parts:
        return D, I
    Ds = np.concatenate([np.asarray(p[0], dtype=np.float32) for p in parts], axis=1)
    Is = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts], axis=1)
    key = Ds if metric_type == faiss.METRIC_L2 else -Ds
    # lexsort: last key first -> empty slots last, then distance, then id.
    order = np.lexsort((Is, key, Is < 0), axis=1)[:, :k]
    m = order.shape[1]
    D[:, :m] = np.take_along_axis(Ds, order, axis=1)
    I[:, :m] = np.take_along_axis(Is, order, axis=1)
    return D, I
