"""Encoders that map raw inputs to the feature space the quantizer codes.

``identity`` (flattens), ``linear``, ``mlp`` for feature vectors (n, d) and
``cnn`` (or PHPQ's ``pyramid``, :mod:`.pyramid`) for images (n, H, W) or
(n, C, H, W). Identity and linear encoders
export to native Faiss transforms (see :mod:`.export`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .pyramid import PyramidCNN

ENCODERS = ("identity", "linear", "mlp", "cnn", "pyramid")


class Identity(nn.Module):
    """Flattens its input; the feature dimension is the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Linear(nn.Module):
    """One affine map y = x A^T + b on the flattened input."""

    def __init__(self, d_in: int, dim: int):
        super().__init__()
        self.fc = nn.Linear(d_in, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class MLP(nn.Module):
    """Two hidden ReLU layers with dropout."""

    def __init__(self, d_in: int, dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class SmallCNN(nn.Module):
    """Three 3x3 convolutions (two with stride 2), a 2x2 pool and an MLP head.

    Sized for small images such as 8x8 digits or 32x32 thumbnails.
    """

    def __init__(self, channels: int, dim: int, hidden: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(256, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.head(self.features(x))


def build_encoder(name: str, input_shape: tuple, dim: int, hidden: int) -> nn.Module:
    """Encoder `name` for inputs of shape (n, *input_shape) with output width `dim`."""
    d_in = math.prod(input_shape)
    if name == "identity":
        return Identity()
    if name == "linear":
        return Linear(d_in, dim)
    if name == "mlp":
        return MLP(d_in, dim, hidden)
    if name in ("cnn", "pyramid"):
        if len(input_shape) not in (2, 3):
            raise ValueError(f"the {name} encoder needs images (n, H, W) or (n, C, H, W), got inputs of shape (n, {input_shape})")
        channels = 1 if len(input_shape) == 2 else input_shape[0]
        if name == "pyramid":
            return PyramidCNN(channels, dim, hidden)
        return SmallCNN(channels, dim, hidden)
    raise ValueError(f"unknown encoder {name!r}; expected one of {ENCODERS} or a torch.nn.Module")
