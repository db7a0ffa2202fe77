"""MeCoQ's code memory: a queue of past codes, decoded with the current codebooks.

A feature queue (MoCo) holds vectors computed by an older encoder; they drift
away from the current feature space as training goes on. MeCoQ (Wang et al.,
AAAI 2022) stores the *codes* instead -- per-level codeword weights -- and
decodes them with the codebooks of the current step, so the negatives move
with the codebooks and only the assignments can be stale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .quantizer import ProgressiveQuantizer, _sq_distances


class CodeMemory:
    """Ring buffer of `size` codes of a progressive quantizer with L levels of K codewords.

    A code is an (L, K) matrix of codeword weights: soft assignments (MeCoQ)
    or one-hot rows (hard codes, see :func:`one_hot_codes`). Decoding gives
    the cumulative reconstructions sum_{l<=m} w_l C_l for m = 1..L with the
    codebooks passed at that moment.

    Parameters
    ----------
    size : int
        Number of codes kept; a push beyond it overwrites the oldest.
    levels, K : int
        Shape of a code.
    device : torch.device or str
    """

    def __init__(self, size: int, levels: int, K: int, device="cpu"):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"code memory size must be a positive integer, got {size!r}")
        self.size, self.levels, self.K = size, levels, K
        self.weights = torch.zeros(size, levels, K, device=device)
        self.count = 0  # codes pushed so far (the buffer holds min(count, size) of them)
        self._next = 0  # slot the next code goes to

    def __len__(self) -> int:
        return min(self.count, self.size)

    @torch.no_grad()
    def push(self, weights: torch.Tensor) -> None:
        """Append codes (n, L, K) (detached); the oldest are overwritten once the memory is full."""
        if weights.dim() != 3 or weights.shape[1:] != (self.levels, self.K):
            raise ValueError(f"codes must have shape (n, {self.levels}, {self.K}), got {tuple(weights.shape)}")
        self.count += len(weights)
        weights = weights.detach()[-self.size:].to(self.weights.device, self.weights.dtype)
        n = len(weights)
        slots = (self._next + torch.arange(n)) % self.size
        self.weights[slots.to(self.weights.device)] = weights
        self._next = (self._next + n) % self.size

    def decode(self, codebooks: torch.Tensor) -> torch.Tensor:
        """Cumulative reconstructions (L, len(self), d) of the stored codes with `codebooks` (L, K, d).

        Differentiable in the codebooks: the negatives follow the codebooks being trained.
        """
        w = self.weights[:len(self)].clone()  # a later push must not change what backward needs
        return torch.einsum("nlk,lkd->lnd", w, codebooks).cumsum(0)


def soft_codes(quantizer: ProgressiveQuantizer, x: torch.Tensor) -> torch.Tensor:
    """Soft assignments (n, L, K) of features x along the greedy residual path the quantizer codes.

    The same weights that form ``quantizer(x).soft``: decoding them with the
    codebooks they were computed with gives that soft reconstruction.
    """
    residual, weights = x, []
    for C in quantizer.codebooks:
        dist = _sq_distances(residual, C)
        weights.append(quantizer._soft_weights(residual, C, dist))
        residual = residual - C[dist.argmin(1)]
    return torch.stack(weights, 1)


def one_hot_codes(codes: torch.Tensor, K: int) -> torch.Tensor:
    """Hard codes (n, L) int64 as one-hot weights (n, L, K): decoding them gives the hard reconstructions."""
    return F.one_hot(codes, K).float()

