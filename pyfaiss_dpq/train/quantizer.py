"""Progressive (residual) quantization blocks with soft and hard assignments."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SOFT_ASSIGNMENTS = ("cosine", "l2")


@dataclass
class Quantized:
    """Output of :class:`ProgressiveQuantizer` for a batch of n features.

    codes : (n, L) int64, greedy nearest-codeword indices per level.
    soft, hard : (L, n, d) cumulative reconstructions Q_l = q_1 + ... + q_l.
    """

    codes: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


class ProgressiveQuantizer(nn.Module):
    """L blocks of K full-dimension codewords; block l quantizes the residual after l-1 blocks.

    Hard codes pick the nearest codeword (squared L2) of each residual, the
    same greedy rule IndexDPQ uses when it encodes, and the next residual is
    formed from the hard codeword. The soft codeword is a softmax-weighted
    mix of all codewords: over cosine similarity / temperature (DPQ) or over
    -temperature * squared distance (SPQ's lambda).
    """

    def __init__(self, levels: int, K: int, dim: int, soft: str = "cosine", temperature: float = 0.1):
        super().__init__()
        if soft not in SOFT_ASSIGNMENTS:
            raise ValueError(f"soft assignment must be one of {SOFT_ASSIGNMENTS}, got {soft!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.soft_assignment = soft
        self.temperature = float(temperature)
        # codebooks = unit_codebooks * scale: a fixed per-level scale (the RMS of
        # the level's codewords when they were set) makes an optimizer's step
        # relative to each level's size; deep levels' codewords are orders of magnitude smaller.
        self.unit_codebooks = nn.Parameter(torch.randn(levels, K, dim) * 0.01)
        self.register_buffer("scale", torch.ones(levels, 1, 1))

    @property
    def codebooks(self) -> torch.Tensor:
        """Codebooks (levels, K, dim), differentiable in ``unit_codebooks``."""
        return self.unit_codebooks * self.scale

    @torch.no_grad()
    def set_codebooks(self, codebooks: torch.Tensor) -> None:
        """Set the codebooks (levels, K, dim); each level's scale becomes its codewords' RMS."""
        scale = codebooks.pow(2).mean((1, 2), keepdim=True).sqrt().clamp_min(1e-12)
        self.scale.copy_(scale)
        self.unit_codebooks.copy_(codebooks / scale)

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    def forward(self, x: torch.Tensor, beam: int = 1) -> Quantized:
        """Quantize features x (n, d); codes greedy (beam=1) or by beam search over the levels."""
        chosen = self.beam_codes(x.detach(), beam) if beam > 1 else None
        residual = x
        soft_sum = hard_sum = torch.zeros_like(x)
        codes, softs, hards = [], [], []
        for level, C in enumerate(self.codebooks):
            dist = _sq_distances(residual, C)
            code = dist.argmin(1) if chosen is None else chosen[:, level]
            hard = C[code]
            soft_sum = soft_sum + self._soft_weights(residual, C, dist) @ C
            hard_sum = hard_sum + hard
            residual = residual - hard
            codes.append(code)
            softs.append(soft_sum)
            hards.append(hard_sum)
        return Quantized(torch.stack(codes, 1), torch.stack(softs), torch.stack(hards))

    @torch.no_grad()
    def beam_codes(self, x: torch.Tensor, beam: int) -> torch.Tensor:
        """Codes (n, L) minimizing the full reconstruction error by beam search of width `beam`."""
        n, K = x.shape[0], self.codebooks.shape[1]
        residual = x[:, None, :]  # (n, b, d): residual of each partial code in the beam
        codes = torch.zeros((n, 1, 0), dtype=torch.long, device=x.device)
        for C in self.codebooks:
            # ||residual - c||^2 is the error of the extended code: keep the `beam` best.
            err = _sq_distances(residual.reshape(-1, residual.shape[-1]), C).reshape(n, -1)
            best = err.topk(min(beam, err.shape[1]), dim=1, largest=False).indices
            parent, code = best // K, best % K
            codes = torch.cat([codes.gather(1, parent[..., None].expand(-1, -1, codes.shape[2])),
                               code[..., None]], 2)
            residual = residual.gather(1, parent[..., None].expand(-1, -1, residual.shape[2])) - C[code]
        return codes[:, 0]

    def _soft_weights(self, residual: torch.Tensor, C: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        if self.soft_assignment == "cosine":
            sim = F.normalize(residual, dim=1) @ F.normalize(C, dim=1).T
            return torch.softmax(sim / self.temperature, dim=1)
        return torch.softmax(-self.temperature * dist, dim=1)


def _sq_distances(x: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Squared L2 distances (n, K) between rows of x (n, d) and codewords C (K, d)."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ C.T + C.pow(2).sum(1)).clamp_min(0)
