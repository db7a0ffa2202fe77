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

from .losses import hard_error, label_margin_loss, prefix_error, prefix_weighted, quantization_loss
from .mecoq import contrastive_memory_loss, contrastive_validation_loss
from .paired import paired_loss, paired_validation_loss


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
    contrastive_temperature: float = 0.5  # softmax temperature of the contrastive / paired losses


class Objective:
    """One training mode. Subclasses set ``name``, ``defaults`` and implement ``loss``.

    ``loss(s, model, xb, yb, generator, phase, memory=None)`` returns (loss,
    per-level mean hard reconstruction error (L,) or None). ``s`` is the
    trainer's resolved settings (:class:`~.trainer.Settings`), ``phase``
    "encoder" (warm-up, encoder alone) or "joint", ``memory`` the fit's
    :class:`~.code_memory.CodeMemory` (``code_memory=``; None without one).
    ``validation_loss(s, model, x, y)`` scores the model on held-out data
    (lower is better); the trainer keeps the best-scoring state.

    Class attributes: ``needs_labels`` (y: integer class labels),
    ``needs_keys`` (y: one key per row of X, the shape of X; the codebooks
    code the keys), ``codebooks_only`` (no trainable encoder: encoder
    "identity" or a frozen module), ``normalizes_identity`` (the identity
    encoder's features are L2-normalized too), ``options`` (the names of the
    trainer's mode-specific parameters it takes: code_memory, diversity,
    debias, query_encoder).
    """

    name: str = ""
    needs_labels: bool = False
    needs_keys: bool = False
    codebooks_only: bool = False
    normalizes_identity: bool = False
    options: frozenset = frozenset()
    defaults: Defaults

    def loss(self, s, model, xb: torch.Tensor, yb: Optional[torch.Tensor], generator: torch.Generator,
             phase: str, memory=None):
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
    codebooks_only = True
    defaults = Defaults(soft="l2", normalize=False, metric="l2", epochs=4, beam=5, vector_encoder="identity",
                        warmup=0.0, codebook_lr=2e-2)

    def loss(self, s, model, xb, yb, generator, phase, memory=None):
        feats = model.features(xb)
        q = model.quantizer(feats, beam=s.beam)
        return prefix_error(feats, q.hard, s.prefix_weights), hard_error(feats, q)


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

    def loss(self, s, model, xb, yb, generator, phase, memory=None):
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
            loss = loss + prefix_weighted(s.prefix_weights, [label_loss(s, model, z, yb) for z in recon])
        return loss, hard_error(feats, q)

    @torch.no_grad()
    def validation_loss(self, s, model, x, y):
        feats = model.features(x)
        hard = model.quantizer(feats, s.beam).hard
        return float(prefix_weighted(s.prefix_weights, [label_loss(s, model, z, y) for z in hard]))


class Contrastive(Objective):
    """SPQ-style self-supervision: cross-quantized NT-Xent between two augmented views at every prefix,
    with MeCoQ's optional parts (``code_memory``, ``debias``, ``diversity``; see :mod:`.mecoq`)."""

    name = "contrastive"
    options = frozenset({"code_memory", "diversity", "debias"})
    defaults = Defaults(soft="l2", normalize=True, metric="ip", epochs=64, beam=1, vector_encoder="mlp",
                        warmup=0.5, codebook_lr=1e-2)

    def loss(self, s, model, xb, yb, generator, phase, memory=None):
        return contrastive_memory_loss(s, model, xb, generator, phase, memory)

    def validation_loss(self, s, model, x, y):
        return contrastive_validation_loss(s, model, x)


class Paired(Objective):
    """MoPQ from (query, key) pairs, ``fit(queries, keys)``: the Multinoulli contrastive loss of each
    query against the quantized keys at every prefix (see :mod:`.paired`). The codebooks code the keys;
    queries go through the query tower (``query_encoder=``) when there is one."""

    name = "paired"
    needs_keys = True
    normalizes_identity = True  # the loss and the exported index score by cosine
    options = frozenset({"code_memory", "diversity", "query_encoder"})
    # temperature 0.05 on unit features: the sharp softmax of dense retrieval. codebook_lr 0.1: the
    # codebooks must travel from the keys' k-means start to where the queries score them (1e-2 left
    # recall@10 of rotated MiniLM pairs at 0.09 after 4 epochs, 0.1 reached 0.92; tests/test_modes.py)
    defaults = Defaults(soft="l2", normalize=True, metric="ip", epochs=20, beam=1, vector_encoder="identity",
                        warmup=0.5, codebook_lr=0.1, contrastive_temperature=0.05)

    def loss(self, s, model, xb, yb, generator, phase, memory=None):
        return paired_loss(s, model, xb, yb, phase, memory)

    def validation_loss(self, s, model, x, y):
        return paired_validation_loss(s, model, x, y)


def label_loss(s, model, z: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Margin loss to the label embeddings + ce_weight x cross entropy (on unit vectors: a
    reconstruction cannot lower it by growing its norm)."""
    ce = F.cross_entropy(model.classifier(F.normalize(z, dim=1)), yb)
    return label_margin_loss(z, yb, model.label_embeddings) + s.ce_weight * ce


MODES: dict = {}


def register_mode(objective: Objective) -> Objective:
    """Make `objective` available as ``DPQTrainer(mode=objective.name)``."""
    if not objective.name:
        raise ValueError("a mode needs a name")
    MODES[objective.name] = objective
    return objective


for _mode in (Supervised(), Unsupervised(), Contrastive(), Paired()):
    register_mode(_mode)
