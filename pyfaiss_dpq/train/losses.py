"""Loss terms of DPQ (supervised), progressive reconstruction and SPQ (contrastive)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_embeddings(n_classes: int, dim: int, seed: int) -> torch.Tensor:
    """Fixed unit label embeddings (n_classes, dim): orthonormal when n_classes <= dim.

    DPQ uses word vectors of the class names; fixed orthogonal embeddings
    need no external data and give every pair of classes the same margin.
    """
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(max(n_classes, dim), dim, generator=g)
    if n_classes <= dim:
        E = torch.linalg.qr(E.T).Q.T
    return F.normalize(E[:n_classes], dim=1)


def label_margin_loss(features: torch.Tensor, labels: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Soft-margin label-embedding loss of DPQ.

    mean over samples and classes j of max(0, m_yj - (cos(x, e_y) - cos(x, e_j))),
    with margin m_yj = 1 - cos(e_y, e_j). features: (n, d); labels: (n,) int64;
    embeddings: (n_classes, d) unit rows.
    """
    cos = F.normalize(features, dim=1) @ embeddings.T
    margin = 1 - embeddings[labels] @ embeddings.T
    true = cos.gather(1, labels[:, None])
    return F.relu(margin - (true - cos)).mean()


def quantization_loss(x: torch.Tensor, soft: torch.Tensor, hard: torch.Tensor,
                      mu: float = 1.0, nu: float = 0.1) -> torch.Tensor:
    """sum_l ||x - Q^soft_l||^2 + mu sum_l ||x - Q^hard_l||^2 + nu ||Q^soft_L - Q^hard_L||^2.

    Squared norms are averaged over samples; soft/hard: (L, n, d) cumulative reconstructions.
    """
    soft_err = (x - soft).pow(2).sum(-1).mean(-1).sum()
    hard_err = (x - hard).pow(2).sum(-1).mean(-1).sum()
    joint = (soft[-1] - hard[-1]).pow(2).sum(-1).mean()
    return soft_err + mu * hard_err + nu * joint


def prefix_error(x: torch.Tensor, hard: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_m w_m mean_n ||x_n - Q_m(x_n)||^2: the prefix-weighted objective.

    x: (n, d); hard: (L, n, d) cumulative hard reconstructions; weights: (L,).
    """
    return (weights.to(x.dtype) * (x - hard).pow(2).sum(-1).mean(-1)).sum()


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalized-temperature cross entropy where a[i] and b[i] are the positive pair.

    Negatives of a[i] are all other rows of a and b (SimCLR's 2n-2 negatives).
    a, b: (n, d).
    """
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    n = a.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(a.device)
    return F.cross_entropy(sim, target)


def prefix_weighted(weights: torch.Tensor, terms: list) -> torch.Tensor:
    """sum_m w_m term_m / sum_m w_m: a per-prefix term weighted by ``prefix_weights``."""
    return sum(w * t for w, t in zip(weights, terms)) / weights.sum()


def hard_error(feats: torch.Tensor, q) -> torch.Tensor:
    """Per-level mean squared error (L,) of the hard reconstructions of `feats` (detached: for reporting)."""
    return (feats.detach() - q.hard.detach()).pow(2).sum(-1).mean(-1)
