"""Training modes: each one is an objective (what a batch costs) and the defaults it implies.

A mode is an :class:`Objective` registered in :data:`MODES` under its name;
:class:`~.trainer.DPQTrainer` looks the mode up there and nowhere else. A new
mode subclasses :class:`Objective`, sets its defaults, implements ``loss`` (and
optionally ``validation_loss``) and calls :func:`register_mode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .augment import augment_images, augment_vectors
from .losses import label_margin_loss, nt_xent, prefix_error, quantization_loss


@dataclass(frozen=True)
class Defaults:
    """What a mode implies when the trainer's parameter is left at None / "auto"."""

    soft: str            # soft assignment of the quantizer ("cosine" or "l2")
    normalize: bool      # L2-normalize the encoder's output
    metric: str          # metric of the exported index ("ip" or "l2")
    epochs: int
    beam: int            # beam width of the hard codes (training and export)
    vector_encoder: str  # encoder for (n, d) inputs; images always get "cnn"
    warmup: float        # fraction of epochs that train the encoder alone
    codebook_lr: float   # Adam step relative to each level's codeword RMS


class Objective:
    """One training mode. Subclasses set ``name``, ``defaults`` and implement ``loss``.

    ``loss(s, model, xb, yb, generator, phase)`` returns (loss, per-level mean
    hard reconstruction error (L,) or None). ``s`` is the trainer's resolved
    settings (:class:`~.trainer.Settings`), ``phase`` "encoder" (warm-up, encoder
    alone) or "joint". ``validation_loss(s, model, x, y)`` scores the model on
    held-out data (lower is better); the trainer keeps the best-scoring state.
    """

    name: str = ""
    needs_labels: bool = False
    defaults: Defaults

    def loss(self, s, model, xb: torch.Tensor, yb: Optional[torch.Tensor], generator: torch.Generator,
             phase: str):
        raise NotImplementedError

    @torch.no_grad()
    def validation_loss(self, s, model, x: torch.Tensor, y: Optional[torch.Tensor]) -> float:
        """Default: the prefix-weighted hard reconstruction error of the features."""
        feats = model.features(x)
        return float(prefix_error(feats, model.quantizer(feats, s.beam).hard, s.prefix_weights))


class Unsupervised(Objective):
    """Prefix-weighted reconstruction: sum_m w_m ||x - Q_m(x)||^2 with beam-searched hard codes.

    Straight-through is not needed: given the codes the objective is
    differentiable in the codebooks. Soft terms only slowed it down on text embeddings.
    """

    name = "unsupervised"
    defaults = Defaults(soft="l2", normalize=False, metric="l2", epochs=4, beam=5, vector_encoder="identity",
                        warmup=0.0, codebook_lr=2e-2)

    def loss(self, s, model, xb, yb, generator, phase):
        feats = model.features(xb)
        q = model.quantizer(feats, beam=s.beam)
        return prefix_error(feats, q.hard, s.prefix_weights), _hard_error(feats, q)


class Supervised(Objective):
    """DPQ with labels: label losses on the features and on every prefix's reconstruction.

    Label loss = margin loss to fixed label embeddings + ce_weight x cross entropy.
    The reconstruction at prefix m carries weight w_m (``prefix_weights``). The
    quantization loss trains the codebooks on detached features (pulling
    features towards soft codeword mixtures collapsed classes on digits); end to
    end, the prefix label losses reach encoder and codewords by straight-through.
    """

    name = "supervised"
    needs_labels = True
    defaults = Defaults(soft="cosine", normalize=True, metric="ip", epochs=64, beam=1, vector_encoder="mlp",
                        warmup=0.5, codebook_lr=1e-2)

    def loss(self, s, model, xb, yb, generator, phase):
        feats = model.features(xb)
        loss = label_loss(s, model, feats, yb)
        if phase == "encoder":
            return loss, None
        q = model.quantizer(feats.detach(), beam=s.beam)
        loss = loss + s.tau * quantization_loss(feats.detach(), q.soft, q.hard, s.mu, s.nu)
        if s.end_to_end:
            # Straight-through: the value is the hard reconstruction, whose
            # gradient reaches the chosen codewords; the encoder gets it unchanged.
            recon = q.hard + (feats - feats.detach())
            loss = loss + _weighted(s.prefix_weights, [label_loss(s, model, z, yb) for z in recon])
        return loss, _hard_error(feats, q)

    @torch.no_grad()
    def validation_loss(self, s, model, x, y):
        feats = model.features(x)
        hard = model.quantizer(feats, s.beam).hard
        return float(_weighted(s.prefix_weights, [label_loss(s, model, z, y) for z in hard]))


class Contrastive(Objective):
    """SPQ-style self-supervision: cross-quantized NT-Xent between two augmented views at every prefix."""

    name = "contrastive"
    defaults = Defaults(soft="l2", normalize=True, metric="ip", epochs=64, beam=1, vector_encoder="mlp",
                        warmup=0.5, codebook_lr=1e-2)

    def loss(self, s, model, xb, yb, generator, phase):
        augment = augment_images if xb.dim() > 2 else augment_vectors
        f1, f2 = model.features(augment(xb, generator)), model.features(augment(xb, generator))
        t = s.contrastive_temperature
        if phase == "encoder":
            return nt_xent(f1, f2, t), None
        q1, q2 = model.quantizer(f1.detach()), model.quantizer(f2.detach())
        loss = s.tau * (quantization_loss(f1.detach(), q1.soft, q1.hard, s.mu, s.nu)
                        + quantization_loss(f2.detach(), q2.soft, q2.hard, s.mu, s.nu)) / 2
        if s.end_to_end:
            # one view's feature against the other view's soft reconstruction, both directions
            s1, s2 = model.quantizer(f1).soft, model.quantizer(f2).soft
            loss = loss + _weighted(s.prefix_weights, [(nt_xent(f1, b, t) + nt_xent(f2, a, t)) / 2
                                                       for a, b in zip(s1, s2)])
        else:
            loss = loss + nt_xent(f1, f2, t)
        return loss, (_hard_error(f1, q1) + _hard_error(f2, q2)) / 2


def label_loss(s, model, z: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Margin loss to the label embeddings + ce_weight x cross entropy (on unit vectors: a
    reconstruction cannot lower it by growing its norm)."""
    ce = F.cross_entropy(model.classifier(F.normalize(z, dim=1)), yb)
    return label_margin_loss(z, yb, model.label_embeddings) + s.ce_weight * ce


def _weighted(weights: torch.Tensor, terms: list) -> torch.Tensor:
    """sum_m w_m term_m / sum_m w_m."""
    return sum(w * t for w, t in zip(weights, terms)) / weights.sum()


def _hard_error(feats: torch.Tensor, q) -> torch.Tensor:
    return (feats.detach() - q.hard.detach()).pow(2).sum(-1).mean(-1)


MODES: dict = {}


def register_mode(objective: Objective) -> Objective:
    """Make `objective` available as ``DPQTrainer(mode=objective.name)``."""
    if not objective.name:
        raise ValueError("a mode needs a name")
    MODES[objective.name] = objective
    return objective


for _mode in (Supervised(), Unsupervised(), Contrastive()):
    register_mode(_mode)
