"""The paired mode: MoPQ's matching-oriented training from (query, key) pairs.

MoPQ (Xiao et al., "Matching-oriented Product Quantization for Ad-hoc
Retrieval", EMNLP 2021) trains the codebooks for what the index is used
for: a query must score its own key's *quantized* vector above every other
key's. Its loss is the Multinoulli contrastive loss between the query's
feature (queries are not quantized: the index's search is asymmetric) and
the quantized keys. Negatives are the batch's other keys plus a pool of
earlier keys' codes (MoPQ gathers them across devices; here a
:class:`.code_memory.CodeMemory` of hard codes decoded with the current
codebooks plays that part on one device).

The model has one tower (queries and keys share the encoder) or two (a
separate query encoder, ``query_encoder=``); ``model.encode(keys)`` feeds
the index and ``model.encode_query(queries)`` the search.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from .code_memory import CodeMemory, one_hot_codes
from .encoders import ENCODERS, build_encoder
from .losses import hard_error, prefix_weighted, quantization_loss
from .retrieval_losses import codeword_diversity, multinoulli_contrastive

QUERY_ENCODERS = tuple(e for e in ENCODERS if e != "identity")


def build_query_encoder(name: str, input_shape: tuple, dim: int, hidden: int) -> nn.Module:
    """The query tower. A square linear tower starts as the identity: at first it is the shared tower."""
    if name not in QUERY_ENCODERS:
        raise ValueError(f"query_encoder must be None (one tower) or one of {QUERY_ENCODERS}, got {name!r}")
    encoder = build_encoder(name, input_shape, dim, hidden)
    if name == "linear" and int(np.prod(input_shape)) == dim:
        with torch.no_grad():
            encoder.fc.weight.copy_(torch.eye(dim))
            encoder.fc.bias.zero_()
    return encoder


def check_keys(queries: np.ndarray, keys) -> np.ndarray:
    """keys as a float32 copy with the queries' shape, one key per query; ValueError otherwise."""
    if keys is None:
        raise ValueError("mode='paired' needs keys: fit(queries, keys) with keys[i] the match of queries[i]")
    keys = np.asarray(keys)
    if keys.dtype.kind not in "fiu":
        raise TypeError(f"keys must be real numbers, got dtype {keys.dtype}")
    if keys.shape != queries.shape:
        raise ValueError(f"keys must have the queries' shape {queries.shape} (pair i is queries[i], keys[i]), "
                         f"got {keys.shape}")
    keys = np.array(keys, dtype=np.float32, order="C")
    if not np.isfinite(keys).all():
        raise ValueError("keys contain NaN or infinity")
    return keys


def paired_loss(s, model, qb: torch.Tensor, kb: torch.Tensor, phase: str, memory: Optional[CodeMemory]):
    """(loss, per-level hard reconstruction error of the keys or None) of one batch of pairs.

    ``s`` is the trainer's resolved settings (:class:`~.trainer.Settings`).
    encoder phase: the dense contrastive loss <query feature, key feature>.
    joint phase: that, plus the Multinoulli contrastive loss against the
    quantized keys at every prefix level (value: the hard reconstruction the
    index scores; gradient: also through the soft assignment, MoPQ's
    straight-through estimator) weighted by ``prefix_weights``, plus the
    quantization loss on the keys (``tau``; 0 turns it off) and optional
    codeword diversity. The batch's hard key codes are then pushed to `memory`.
    """
    t = s.contrastive_temperature
    fq, fk = model.query_features(qb), model.features(kb)
    loss = multinoulli_contrastive(fq, fk, t)
    if phase == "encoder":
        return loss, None
    quantizer = model.quantizer
    q = quantizer(fk.detach(), beam=s.beam)
    if s.tau:
        loss = loss + s.tau * quantization_loss(fk.detach(), q.soft, q.hard, s.mu, s.nu)
    graded = quantizer(fk, beam=s.beam)
    keys = graded.hard + (graded.soft - graded.soft.detach())
    negatives = memory.decode(quantizer.codebooks) if memory is not None and len(memory) else None
    loss = loss + prefix_weighted(s.prefix_weights, [
        multinoulli_contrastive(fq, keys[m], t, None if negatives is None else negatives[m])
        for m in range(quantizer.levels)])
    if s.diversity:
        loss = loss + s.diversity * codeword_diversity(quantizer.codebooks)
    if memory is not None:
        memory.push(one_hot_codes(q.codes, quantizer.codebooks.shape[1]))
    return loss, hard_error(fk, q)


@torch.no_grad()
def paired_validation_loss(s, model, queries: torch.Tensor, keys: torch.Tensor) -> float:
    """Held-out score: the prefix-weighted Multinoulli loss of the queries against their keys' hard
    reconstructions (what the index ranks), each query among the batch's keys."""
    fq, fk = model.query_features(queries), model.features(keys)
    hard = model.quantizer(fk, beam=s.beam).hard
    return float(prefix_weighted(s.prefix_weights, [multinoulli_contrastive(fq, z, s.contrastive_temperature)
                                                    for z in hard]))
