"""The contrastive mode with MeCoQ's parts: code memory, debiased contrast, codeword diversity.

MeCoQ (Wang et al., "Contrastive Quantization with Code Memory for Unsupervised
Image Retrieval", AAAI 2022) extends SPQ's cross-quantized contrast with

- a memory of past codes, decoded with the current codebooks, as extra
  negatives (:class:`.code_memory.CodeMemory`);
- the debiased contrastive loss (a prior tau_plus that a "negative" is a
  positive, :func:`.retrieval_losses.debiased_nt_xent`);
- a codeword-diversity regulariser (:func:`.retrieval_losses.codeword_diversity`).

With every part off this is exactly SPQ's cross-quantized contrastive loss.
"""

from __future__ import annotations

from typing import Optional

import torch

from .augment import augment_images, augment_vectors
from .code_memory import CodeMemory, soft_codes
from .losses import hard_error, prefix_weighted, quantization_loss
from .retrieval_losses import codeword_diversity, debiased_nt_xent


def contrastive_memory_loss(s, model, xb: torch.Tensor, generator: torch.Generator, phase: str,
                            memory: Optional[CodeMemory]):
    """(loss, per-level hard reconstruction error or None) of one batch; pushes the batch's codes to `memory`.

    ``s`` is the trainer's resolved settings (:class:`~.trainer.Settings`).
    The memory's negatives are decoded before this batch is pushed, so a
    sample is never its own negative; they join every prefix level's contrast
    (decoded to that level) once the codebooks exist (the joint phase).
    """
    augment = augment_images if xb.dim() > 2 else augment_vectors
    f1, f2 = model.features(augment(xb, generator)), model.features(augment(xb, generator))
    t, tau_plus = s.contrastive_temperature, s.debias
    if phase == "encoder":
        return debiased_nt_xent(f1, f2, t, tau_plus=tau_plus), None
    quantizer = model.quantizer
    q1, q2 = quantizer(f1.detach()), quantizer(f2.detach())
    loss = s.tau * (quantization_loss(f1.detach(), q1.soft, q1.hard, s.mu, s.nu)
                    + quantization_loss(f2.detach(), q2.soft, q2.hard, s.mu, s.nu)) / 2
    negatives = memory.decode(quantizer.codebooks) if memory is not None and len(memory) else None
    if s.end_to_end:
        # SPQ's cross-quantized contrast at every prefix: one view's feature
        # against the other view's soft reconstruction, both directions.
        s1, s2 = quantizer(f1).soft, quantizer(f2).soft
        neg = [None] * quantizer.levels if negatives is None else negatives
        loss = loss + prefix_weighted(s.prefix_weights, [
            (debiased_nt_xent(f1, b, t, neg[m], tau_plus) + debiased_nt_xent(f2, a, t, neg[m], tau_plus)) / 2
            for m, (a, b) in enumerate(zip(s1, s2))])
    else:
        loss = loss + debiased_nt_xent(f1, f2, t, None if negatives is None else negatives[-1], tau_plus)
    if s.diversity:
        loss = loss + s.diversity * codeword_diversity(quantizer.codebooks)
    if memory is not None:
        with torch.no_grad():
            memory.push(soft_codes(quantizer, f1.detach()))
            memory.push(soft_codes(quantizer, f2.detach()))
    return loss, (hard_error(f1, q1) + hard_error(f2, q2)) / 2


@torch.no_grad()
def contrastive_validation_loss(s, model, x: torch.Tensor) -> float:
    """Held-out score: the prefix-weighted NT-Xent between each sample's feature and its hard
    reconstruction (the index's view: a feature query against quantized database vectors), the
    batch's other samples the negatives. Deterministic (no augmentation), and it measures what the
    contrastive objective trains for; the reconstruction error does not (contrastive training moves
    the features, and scoring by it kept the start of the joint phase, discarding that phase)."""
    feats = model.features(x)
    hard = model.quantizer(feats, beam=s.beam).hard
    t = s.contrastive_temperature
    return float(prefix_weighted(s.prefix_weights, [debiased_nt_xent(feats, z, t) for z in hard]))
