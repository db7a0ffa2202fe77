"""Faiss's k-means for the C++ trainers (registered with the core at import).

The C++ side cannot call ``faiss::Clustering`` safely: its parameter struct
changes layout between Faiss releases. Faiss's Python API is stable and runs
the same C++ code, so the core calls back into it (see ``csrc/kmeans.h``).
"""

from __future__ import annotations

import faiss
import numpy as np


def faiss_kmeans(x: np.ndarray, k: int, progressive_dim: bool) -> np.ndarray:
    """Centroids (k, d) of `x` (n, d) by Faiss, quiet, with Faiss's fixed seed.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, d), float32, n >= k
        The points; the caller has already subsampled them.
    k : int
        Number of centroids.
    progressive_dim : bool
        Faiss's ``ProgressiveDimClustering`` (PCA, then k-means warm started
        in growing dimensions; how Faiss's ResidualQuantizer trains a level)
        instead of plain ``Clustering``.

    Returns
    -------
    numpy.ndarray, shape (k, d), float32
    """
    n, d = x.shape
    cp = faiss.ProgressiveDimClusteringParameters() if progressive_dim else faiss.ClusteringParameters()
    # The callers warn once about few points per centroid (codebooks.warn_if_few)
    # and sample the points themselves: no per-call warning, no second sample.
    cp.min_points_per_centroid = 1
    cp.max_points_per_centroid = max(1, -(-n // k))
    cp.verbose = False
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not progressive_dim:
        clus = faiss.Clustering(d, k, cp)
        clus.train(x, faiss.IndexFlatL2(d))
        return faiss.vector_to_array(clus.centroids).reshape(k, d)
    mean, rotation = _pca(x)
    cp.apply_pca = False
    rotated = np.ascontiguousarray((x - mean) @ rotation, dtype=np.float32)  # alive while Faiss reads it
    clus = faiss.ProgressiveDimClustering(d, k, cp)
    clus.train(n, faiss.swig_ptr(rotated), faiss.ProgressiveDimIndexFactory())
    centroids = faiss.vector_to_array(clus.centroids).reshape(k, d)
    return (centroids.astype(np.float64) @ rotation.T + mean).astype(np.float32)


def _pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and principal axes (columns, by decreasing variance, sign fixed) of `x`, in float64.

    Faiss's PCAMatrix (what ProgressiveDimClustering applies by default) gave
    axes that differ with the number of OpenMP threads, so the codebooks did
    too; this one depends on the data alone.
    """
    mean = x.mean(axis=0, dtype=np.float64)
    centred = x - mean
    variances, axes = np.linalg.eigh(centred.T @ centred)
    axes = axes[:, np.argsort(-variances, kind="stable")]
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return mean, axes
