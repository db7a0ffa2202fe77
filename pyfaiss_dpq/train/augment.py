"""Random views for contrastive training: shifts and noise for images, noise and dropout for vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_images(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1,
                   noise: float = 0.05) -> torch.Tensor:
    """Random translation by up to `max_shift` pixels (a crop of the zero-padded image) plus Gaussian noise.

    x: (n, H, W) or (n, C, H, W).
    """
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(1)
    n, _, H, W = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(n)])
    out = out + noise * torch.randn(out.shape, generator=generator).to(out.device)
    return out.squeeze(1) if squeeze else out


def augment_vectors(x: torch.Tensor, generator: torch.Generator, noise: float = 0.1,
                    dropout: float = 0.1) -> torch.Tensor:
    """Gaussian noise (scaled by each coordinate's batch std) and random coordinate dropout. x: (n, d)."""
    scale = x.std(0, keepdim=True) if x.shape[0] > 1 else x.abs()
    eps = torch.randn(x.shape, generator=generator).to(x.device)
    keep = (torch.rand(x.shape, generator=generator) >= dropout).to(x.device)
    return (x + noise * scale * eps) * keep / (1 - dropout)
