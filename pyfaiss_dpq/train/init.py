"""Where every deep model's codebooks start: the torch-free trainer behind ``IndexDPQ.train``."""

from __future__ import annotations

import numpy as np

from ..index import IndexDPQ


def torch_free_codebooks(features: np.ndarray, levels: int, nbits: int) -> np.ndarray:
    """Codebooks (levels, 2**nbits, d) float32 that ``IndexDPQ.train`` learns on `features` (n, d), n >= 2**nbits.

    The one place the deep trainer calls the torch-free trainer: a better
    ``IndexDPQ.train`` improves every deep model's starting point (today's
    progressive k-means is deterministic: Faiss's fixed default seed).
    """
    index = IndexDPQ(features.shape[1], levels, nbits)
    index.train(features)
    return index.codebooks
