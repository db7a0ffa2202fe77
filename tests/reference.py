"""Exact numpy references that every search path is compared with."""

from __future__ import annotations

import faiss
import numpy as np


def exact_search(base: np.ndarray, queries: np.ndarray, k: int, metric: int):
    """Brute-force k-NN in float64: (D, I) with Faiss's conventions (ties -> smaller id)."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == faiss.METRIC_L2:
        dist = ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        order = np.lexsort((np.broadcast_to(np.arange(len(b)), dist.shape), dist), axis=-1)
    else:
        dist = q @ b.T
        order = np.lexsort((np.broadcast_to(np.arange(len(b)), dist.shape), -dist), axis=-1)
    idx = order[:, :k]
    return np.take_along_axis(dist, idx, axis=1), idx


def assert_same_knn(D, I, Dref, Iref, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Distances agree within float tolerance; ids agree except among near-ties."""
    np.testing.assert_allclose(D, Dref, rtol=rtol, atol=atol)
    for q in range(len(I)):
        if np.array_equal(I[q], Iref[q]):
            continue
        # Differences are only allowed where the reference distances tie.
        for j in np.nonzero(I[q] != Iref[q])[0]:
            tied = np.isclose(Dref[q], Dref[q, j], rtol=rtol, atol=atol)
            assert I[q, j] in set(Iref[q][tied]) or np.isclose(Dref[q, j], Dref[q, -1], rtol=rtol, atol=atol), (
                f"query {q}: id {I[q, j]} at rank {j} differs from reference {Iref[q, j]}")
