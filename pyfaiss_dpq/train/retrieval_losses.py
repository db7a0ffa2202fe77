"""Loss terms of the MeCoQ and MoPQ modes: debiased contrast, Multinoulli contrast, codeword diversity."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def debiased_nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5,
                     negatives: torch.Tensor | None = None, tau_plus: float = 0.0) -> torch.Tensor:
    """NT-Xent over the pairs (a[i], b[i]) with extra negatives and Chuang et al.'s debiasing.

    Each of the 2n rows of [a; b] is an anchor: its positive is its partner,
    its negatives the 2n - 2 other rows and every row of `negatives` (M, d)
    (MeCoQ's code memory). Cosine similarities / temperature.

    tau_plus = 0 is the plain (biased) loss, equal to :func:`.losses.nt_xent`
    when there are no extra negatives. tau_plus > 0 is the class prior of
    "negatives" that are in fact positives (Debiased Contrastive Learning,
    NeurIPS 2020, used by MeCoQ): the negative term becomes
    Ng = max((sum_neg e^s - tau_plus N e^{s_pos}) / (1 - tau_plus), N e^{-1/temperature})
    for N negatives, and the loss -log(e^{s_pos} / (e^{s_pos} + Ng)).
    """
    if not 0 <= tau_plus < 1:
        raise ValueError(f"debias (tau_plus) must be in [0, 1), got {tau_plus}")
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = a.shape[0]
    logits = z @ z.T
    logits.fill_diagonal_(float("-inf"))
    if negatives is not None and len(negatives):
        logits = torch.cat([logits, z @ F.normalize(negatives, dim=1).T], 1)
    logits = logits / temperature
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(a.device)
    if tau_plus == 0:
        return F.cross_entropy(logits, target)
    rows = torch.arange(2 * n, device=a.device)
    is_negative = torch.ones_like(logits, dtype=torch.bool)
    is_negative[rows, rows] = False
    is_negative[rows, target] = False
    N = logits.shape[1] - 2
    pos = logits[rows, target]
    shift = logits.max(1).values.detach()  # exp of shifted logits cannot overflow
    neg_sum = (torch.exp(logits - shift[:, None]) * is_negative).sum(1)
    e_pos = torch.exp(pos - shift)
    floor = N * torch.exp(-1.0 / temperature - shift)  # the smallest the true sum can be (unit vectors)
    neg = torch.maximum((neg_sum - tau_plus * N * e_pos) / (1 - tau_plus), floor)
    return (torch.log(e_pos + neg) - (pos - shift)).mean()


def multinoulli_contrastive(queries: torch.Tensor, keys: torch.Tensor, temperature: float = 0.05,
                            negatives: torch.Tensor | None = None) -> torch.Tensor:
    """MoPQ's Multinoulli contrastive loss: query i must pick key i among all keys and negatives.

    Cross entropy of softmax(<q_i, k_j> / temperature) over the n keys of the
    batch and the (M, d) `negatives`; raw inner products, the score an
    inner-product IndexDPQ ranks by. In MoPQ the keys are quantized
    (reconstructions) and the queries are not.
    """
    candidates = keys if negatives is None or not len(negatives) else torch.cat([keys, negatives])
    logits = queries @ candidates.T / temperature
    return F.cross_entropy(logits, torch.arange(len(queries), device=queries.device))


def codeword_diversity(codebooks: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between distinct codewords of the same level, averaged over levels.

    MeCoQ's codeword regulariser: minimizing it spreads each codebook's
    codewords apart in direction (the minimum, -1/(K-1), is reached when
    their unit vectors sum to zero) and keeps codebooks from collapsing onto
    a few directions. codebooks: (L, K, d).
    """
    c = F.normalize(codebooks, dim=-1)
    K = c.shape[1]
    gram_sum = c.sum(1).pow(2).sum(-1)  # sum_{k,j} cos(c_k, c_j) = ||sum_k c_k||^2
    return ((gram_sum - K) / (K * (K - 1))).mean()

