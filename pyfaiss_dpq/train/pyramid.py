"""PHPQ's pyramid hybrid pooling: features from several CNN stages, max- and average-pooled at several scales.

PHPQ (pyramid hybrid pooling quantization, for fine-grained retrieval) keeps
the detail that a single global pool of the last stage throws away: every
stage of the CNN is pooled, with max pooling (the strongest local response)
and average pooling (the overall pattern), on grids of several sizes, and
the concatenation feeds the head that makes the quantized feature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGE_CHANNELS = (16, 32, 64)  # the three convolution stages of encoders.SmallCNN


class PyramidCNN(nn.Module):
    """SmallCNN's three stages, each pooled (max and average) on 1x1 and 2x2 grids, then an MLP head.

    Parameters
    ----------
    channels : int
        Input channels.
    dim : int
        Output feature dimension.
    hidden : int
        Width of the head's hidden layer.
    scales : tuple of int
        Grid sizes g of the adaptive pools (g x g cells each).
    """

    def __init__(self, channels: int, dim: int, hidden: int, scales: tuple = (1, 2)):
        super().__init__()
        c1, c2, c3 = STAGE_CHANNELS
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(channels, c1, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.ReLU()),
        ])
        self.scales = tuple(scales)
        pooled = 2 * sum(STAGE_CHANNELS) * sum(g * g for g in self.scales)
        self.head = nn.Sequential(nn.Linear(pooled, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        pooled = []
        for stage in self.stages:
            x = stage(x)
            for g in self.scales:
                pooled.append(F.adaptive_max_pool2d(x, g).flatten(1))
                pooled.append(F.adaptive_avg_pool2d(x, g).flatten(1))
        return self.head(torch.cat(pooled, 1))
