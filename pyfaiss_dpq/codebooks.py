"""Torch-free training of progressive (residual) codebooks, and its building blocks.

The trainer (C++, multi-threaded, deterministic for a seed and any thread
count) trains level l by Faiss's progressive-dimension k-means on the
residuals that a beam search over levels < l leaves (as Faiss's RQ does),
then runs rounds of beam encoding and a joint least-squares update of every
codebook under prefix weights w_m, minimising

    sum_i sum_m w_m ||x_i - sum_{l<=m} C_l[b_il]||^2

so that every prefix of the code is a good code on its own.
``IndexDPQ.train`` uses it with ``index.train_params``.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

from ._native import core
from ._validate import as_count, as_vectors

__all__ = ["TrainParameters", "train_codebooks", "beam_encode", "prefix_objective", "solve_codebooks",
           "default_prefix_weights", "MIN_POINTS_PER_CENTROID"]

TrainParameters = core.TrainParameters
TrainParameters.__doc__ = """Knobs of the torch-free trainer (in the style of ``faiss.ClusteringParameters``).

All arguments are keyword-only; every field is also a validated attribute
(a bad value raises ``ValueError`` naming it).

Parameters
----------
rounds : int
    Rounds of (beam encoding, joint least-squares update) after the
    progressive initialisation (0: initialisation only; default 1, more
    measured no better on held-out data).
beam_size : int
    Beam width of the encoder used in training (1: greedy).
prefix_weights : sequence of float
    Weights w_1..w_L of the squared error of each prefix (normalised to sum
    1). Empty: :func:`default_prefix_weights` (1 on the prefixes of
    power-of-two length and on the full code, 0 elsewhere).
seed : int
    Seed of the order of the vectors in every level's k-means sample (Faiss's
    progressive-dimension k-means, Faiss's fixed seed). The order is the same
    at every level, so each level's k-means starts from the residuals of the
    same vectors.
kmeans_max_points_per_centroid : int
    Each level's k-means sees at most K times this many residuals.
tail_kmeans_max_points : int
    The second half of the levels (l >= L / 2), which only the longer half of
    the prefixes use, sees at most this many residuals (default 8192: 32 per
    codeword for 8-bit levels; 4-bit levels see at most 16 * 256 = 4096
    anyway); 0: no further limit.
ridge : float
    Pull of the least-squares update toward the previous codebooks, relative
    to the mean diagonal of the normal matrix (> 0; keeps unused codewords).
verbose : bool
    Progress bar and the objective of every round on stderr.
"""

MIN_POINTS_PER_CENTROID = 39
"""Below this many training vectors per codeword (Faiss's threshold) k-means is unreliable."""


def default_prefix_weights(levels: int) -> np.ndarray:
    """The trainer's default prefix weights for `levels` levels (before normalisation)."""
    return np.asarray(core.default_prefix_weights(as_count(levels, "levels", 1, 255)), dtype=np.float32)


def _check_levels_nbits(levels: int, nbits: int) -> tuple[int, int]:
    levels = as_count(levels, "levels", 1, 255)
    nbits = as_count(nbits, "nbits", 4, 8)
    if nbits not in (4, 8):
        raise ValueError(f"nbits must be 4 or 8, got {nbits}")
    return levels, nbits


def warn_if_few(n: int, nbits: int) -> None:
    """One clear warning when there are few training vectors per codeword."""
    K = 1 << nbits
    if n < MIN_POINTS_PER_CENTROID * K:
        warnings.warn(f"training on {n} vectors for K={K} codewords per level: fewer than "
                      f"{MIN_POINTS_PER_CENTROID * K} ({MIN_POINTS_PER_CENTROID} per codeword), so the codebooks "
                      "may fit the training set poorly", stacklevel=3)


def train_codebooks(x, levels: int, nbits: int = 8, params: Optional[TrainParameters] = None) -> np.ndarray:
    """Train progressive codebooks without an index (and without torch).

    Parameters
    ----------
    x : array of shape (n, d)
        Training vectors, n >= K = 2**nbits.
    levels : int
        Number of codebooks L.
    nbits : int
        4 or 8 bits per level.
    params : TrainParameters, optional
        Trainer knobs (default ``TrainParameters()``).

    Returns
    -------
    numpy.ndarray, shape (levels, K, d), float32
        Ready for ``IndexDPQ.codebooks``.
    """
    levels, nbits = _check_levels_nbits(levels, nbits)
    params = TrainParameters() if params is None else params
    if not isinstance(params, TrainParameters):
        raise TypeError(f"params must be a TrainParameters, got {type(params).__name__}")
    x = as_vectors(x, np.shape(x)[-1] if np.ndim(x) == 2 else -1)
    K = 1 << nbits
    if x.shape[0] < K:
        raise ValueError(f"train_codebooks needs at least {K} vectors (K codewords per level), got {x.shape[0]}")
    warn_if_few(x.shape[0], nbits)
    return core.train_codebooks(x, levels, nbits, params)


def _codebooks(C) -> np.ndarray:
    C = np.ascontiguousarray(C, dtype=np.float32)
    if C.ndim != 3 or C.shape[1] not in (16, 256):
        raise ValueError(f"codebooks must have shape (levels, K, d) with K 16 or 256, got {C.shape}")
    if not np.isfinite(C).all():
        raise ValueError("codebooks contain NaN or infinity")
    return C


def _weights(weights, levels: int):
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (levels,):
        raise ValueError(f"prefix_weights must have one weight per level ({levels}), got shape {w.shape}")
    return [float(v) for v in w]


def beam_encode(x, codebooks, beam_size: int = 5, prefix_weights: Optional[Sequence[float]] = None):
    """Codes of x by beam search ranking partial codes by the prefix-weighted objective.

    Never worse, in that objective, than greedy encoding. ``prefix_weights``
    None: the trainer's default; ``[0, ..., 0, 1]``: full-length error only.

    Returns
    -------
    codes : numpy.ndarray, shape (n, levels), uint8
    objective : numpy.ndarray, shape (n,), float32
        Each code's weighted objective (weights normalised to sum 1).
    """
    C = _codebooks(codebooks)
    x = as_vectors(x, C.shape[2])
    return core.beam_encode(x, C, as_count(beam_size, "beam_size", 1, 256), _weights(prefix_weights, C.shape[0]))


def prefix_objective(x, codebooks, codes, prefix_weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Per-vector sum_m w_m ||x - sum_{l<=m} C_l[b_l]||^2 (weights normalised to sum 1), shape (n,)."""
    C = _codebooks(codebooks)
    x = as_vectors(x, C.shape[2])
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    return core.prefix_objective(x, C, codes, _weights(prefix_weights, C.shape[0]))


def solve_codebooks(x, codebooks, codes, prefix_weights: Optional[Sequence[float]] = None,
                    ridge: float = 1e-3) -> np.ndarray:
    """The joint least-squares update: codebooks minimising the weighted objective for fixed codes.

    Adds ``ridge * mean(diag(N)) * ||C - codebooks||^2``, which keeps unused
    codewords where they were. Returns new codebooks, shape (levels, K, d).
    """
    C = _codebooks(codebooks)
    x = as_vectors(x, C.shape[2])
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    return core.solve_codebooks(x, C, codes, _weights(prefix_weights, C.shape[0]), float(ridge))
