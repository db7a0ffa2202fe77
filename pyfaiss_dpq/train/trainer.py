"""DPQTrainer: a scikit-learn-like front end that trains a :class:`DPQModel`."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .losses import label_margin_loss, quantization_loss
from .mecoq import contrastive_memory_loss
from .model import DPQModel
from .modes import check_mode_options, make_memory
from .paired import DEFAULT_TEMPERATURE, check_keys, paired_loss
from .quantizer import SOFT_ASSIGNMENTS

MODES = ("supervised", "unsupervised", "contrastive", "paired")

# Per-mode defaults: (soft assignment, normalize features, metric, epochs).
_MODE_DEFAULTS = {
    "supervised": ("cosine", True, "ip", 64),
    "unsupervised": ("l2", False, "l2", 20),
    "contrastive": ("l2", True, "ip", 64),
    "paired": ("l2", True, "ip", 20),
}
# Default temperature of each soft assignment (cosine: divides; l2: SPQ's lambda, multiplies).
_SOFT_TEMPERATURE = {"cosine": 0.1, "l2": 5.0}


@dataclass
class EpochStats:
    """What one epoch reports: mean loss and mean hard reconstruction error per level."""

    epoch: int
    phase: str
    loss: float
    reconstruction: list = field(default_factory=list)


class DPQTrainer:
    """Train L progressive codebooks (and an encoder) once; serve 1..L levels.

    Parameters
    ----------
    levels : int
        Number of quantization levels L (bytes per vector at nbits=8).
    nbits : int
        4 or 8 bits per level (K = 16 or 256 codewords).
    mode : {"supervised", "unsupervised", "contrastive", "paired"}
        supervised: DPQ with labels (label-embedding margin loss + 0.1 x cross
        entropy on the features and on every progressive reconstruction).
        unsupervised: progressive reconstruction error only (identity encoder).
        contrastive: SPQ-style self-supervision on two augmented views, with
        MeCoQ's optional parts (``code_memory``, ``debias``, ``diversity``).
        paired: MoPQ, from (query, key) pairs: ``fit(queries, keys)``.
    encoder : "auto", "identity", "linear", "mlp", "cnn", "pyramid" or torch.nn.Module
        "auto" picks "cnn" for images (n, H, W)/(n, C, H, W), "mlp" for
        vectors in supervised/contrastive mode and "identity" in unsupervised
        and paired mode. "pyramid": PHPQ's pyramid hybrid pooling CNN.
        A custom module maps (n, *input_shape) to (n, dim).
    dim : int, optional
        Feature dimension (default 64; the input size for identity).
    hidden : int
        Width of the hidden layers of mlp/cnn encoders.
    epochs : int, optional
        Total epochs (default 64, unsupervised 20). The first `warmup`
        fraction trains the encoder alone; then the codebooks are initialised
        by progressive residual k-means on the features and everything trains.
    warmup : float
        Fraction of epochs that train the encoder alone (ignored without one).
    end_to_end : bool
        True: every loss reaches every parameter (straight-through hard
        reconstructions in the label losses, quantization loss into the
        encoder). False: as the DPQ reference, codebooks learn only from the
        quantization loss and the encoder only from the label/contrastive loss.
    soft, temperature : str, float, optional
        Soft assignment "cosine" (softmax(cos / temperature), DPQ) or "l2"
        (softmax(-temperature * ||r - c||^2), SPQ's lambda). Defaults per mode.
    tau, mu, nu : float
        Quantization loss tau * [sum_l ||x - Q^soft_l||^2 + mu sum_l ||x - Q^hard_l||^2
        + nu ||Q^soft_L - Q^hard_L||^2].
    ce_weight : float
        Weight of the cross entropy next to the margin loss (supervised).
    contrastive_temperature : float, optional
        Temperature of the contrastive softmax: NT-Xent (contrastive, default
        0.5) or the Multinoulli loss (paired, default 0.05).
    code_memory : int
        MeCoQ / MoPQ negative pool: keep the codes of this many past samples
        (contrastive: soft codes of both views; paired: hard key codes) and
        decode them with the current codebooks as extra negatives. 0: none.
    diversity : float
        Weight of MeCoQ's codeword-diversity regulariser (contrastive, paired).
    debias : float
        Positive prior tau_plus of the debiased contrastive loss (contrastive); 0: plain NT-Xent.
    query_encoder : str, optional
        paired: None shares the encoder between queries and keys (one tower);
        "linear", "mlp", "cnn" or "pyramid" gives queries their own (two towers).
    batch_size, lr, codebook_lr, weight_decay : training hyper-parameters (Adam).
    beam : int, optional
        Beam width of the hard codes, in training and in the exported index
        (``model.codes``, ``IndexDPQ.beam_size``). Default 1 (greedy) for
        supervised/contrastive and 5 for unsupervised, where beam-trained
        codebooks beat Faiss's residual quantizer on text embeddings.
    patience : int, optional
        Early stopping: stop when the epoch loss of the joint phase has not
        improved by 0.1% for `patience` epochs. None: fixed schedule.
    device : "auto", "cpu", "cuda" or torch.device
        "auto" uses CUDA when available.
    seed : int
        Seeds torch, numpy and Python's random; the same seed gives the same model on CPU.
    checkpoint : path, optional
        Saved (atomically) after every epoch.
    verbose : bool
        tqdm progress bar per epoch with the loss and per-level reconstruction error.
    """

    def __init__(self, levels: int = 8, nbits: int = 8, mode: str = "supervised", encoder="auto",
                 dim: int | None = None, hidden: int = 256, epochs: int | None = None, warmup: float = 0.5,
                 end_to_end: bool = True, soft: str | None = None, temperature: float | None = None,
                 tau: float = 1.0, mu: float = 1.0, nu: float = 0.1, ce_weight: float = 0.1,
                 contrastive_temperature: float | None = None, batch_size: int = 128, lr: float = 1e-3,
                 codebook_lr: float = 1e-3, weight_decay: float = 0.0, beam: int | None = None,
                 patience: int | None = None, code_memory: int = 0, diversity: float = 0.0,
                 debias: float = 0.0, query_encoder: str | None = None,
                 device="auto", seed: int = 0, checkpoint: str | os.PathLike | None = None,
                 verbose: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 255:
            raise ValueError(f"levels must be an integer in [1, 255], got {levels!r}")
        if nbits not in (4, 8):
            raise ValueError(f"nbits must be 4 or 8, got {nbits!r}")
        if soft is not None and soft not in SOFT_ASSIGNMENTS:
            raise ValueError(f"soft must be one of {SOFT_ASSIGNMENTS}, got {soft!r}")
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}")
        default_soft, normalize, metric, default_epochs = _MODE_DEFAULTS[mode]
        self.levels, self.nbits, self.mode, self.encoder = int(levels), int(nbits), mode, encoder
        self.dim, self.hidden = dim, hidden
        self.epochs = default_epochs if epochs is None else int(epochs)
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.warmup, self.end_to_end = warmup, end_to_end
        self.soft = soft or default_soft
        self.temperature = _SOFT_TEMPERATURE[self.soft] if temperature is None else float(temperature)
        self.normalize, self.metric = normalize, metric
        self.tau, self.mu, self.nu, self.ce_weight = tau, mu, nu, ce_weight
        check_mode_options(mode, code_memory, diversity, debias, query_encoder)
        self.code_memory, self.diversity, self.debias = code_memory, diversity, debias
        self.query_encoder = query_encoder
        if contrastive_temperature is None:
            contrastive_temperature = DEFAULT_TEMPERATURE if mode == "paired" else 0.5
        self.contrastive_temperature = contrastive_temperature
        self.batch_size, self.lr, self.codebook_lr, self.weight_decay = batch_size, lr, codebook_lr, weight_decay
        self.beam = (5 if mode == "unsupervised" else 1) if beam is None else int(beam)
        if not 1 <= self.beam <= 1024:
            raise ValueError(f"beam must be in [1, 1024], got {beam}")
        self.patience, self.device, self.seed = patience, device, seed
        self.checkpoint, self.verbose = checkpoint, verbose
        self.history_: list[EpochStats] = []

    # ------------------------------------------------------------ public
    def fit(self, X, y=None) -> DPQModel:
        """Train on X and return the model.

        X : (n, d) float features, or images (n, H, W) / (n, C, H, W); the queries in mode="paired".
        y : (n,) integer class labels, required for mode="supervised"; in mode="paired"
            the keys (the shape of X), y[i] the match of X[i]; ignored otherwise.
        """
        X, labels, n_classes = self._check_data(X, y)
        _seed_everything(self.seed)
        device = _device(self.device)
        model = self._build_model(X, n_classes).to(device)
        has_encoder = any(p.requires_grad for p in model.encoder.parameters())
        warmup_epochs = int(round(self.warmup * self.epochs)) if has_encoder else 0
        opt = torch.optim.Adam([
            {"params": [p for n, p in model.named_parameters() if not n.startswith("quantizer.")], "lr": self.lr},
            {"params": [model.quantizer.codebooks], "lr": self.codebook_lr},
        ], weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self.seed)
        Xt = torch.from_numpy(X)
        yt = None if labels is None else torch.from_numpy(labels)
        self.history_ = []
        self.memory_ = make_memory(self, model, device)
        kmeans_data = labels if self.mode == "paired" else X  # paired: the codebooks code the keys
        best, stale = float("inf"), 0
        bar = tqdm(range(self.epochs), desc=f"DPQ {self.mode}", unit="epoch", disable=not self.verbose, leave=True)
        for epoch in bar:
            phase = "encoder" if epoch < warmup_epochs else "joint"
            if epoch == warmup_epochs:
                model.quantizer.init_residual_kmeans(model.encode(kmeans_data), seed=self.seed)
            stats = self._epoch(model, opt, Xt, yt, generator, device, phase, epoch)
            self.history_.append(stats)
            postfix = {"phase": phase, "loss": f"{stats.loss:.4f}"}
            if stats.reconstruction:
                postfix["rec"] = "/".join(f"{e:.3g}" for e in stats.reconstruction)
            bar.set_postfix(postfix)
            if self.checkpoint is not None:
                model.save(self.checkpoint)
            if self.patience is not None and phase == "joint":
                if best == float("inf") or stats.loss < best - 1e-3 * abs(best):
                    best, stale = stats.loss, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        return model.eval()

    # ------------------------------------------------------------ setup
    def _check_data(self, X, y):
        X = np.asarray(X)
        if X.dtype.kind not in "fiu":
            raise TypeError(f"X must be real numbers, got dtype {X.dtype}")
        if X.ndim not in (2, 3, 4):
            raise ValueError(f"X must be features (n, d) or images (n, H, W) / (n, C, H, W), got shape {X.shape}")
        X = np.array(X, dtype=np.float32, order="C")  # a writable copy: torch shares its memory
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        K = 1 << self.nbits
        if X.shape[0] < K:
            raise ValueError(f"need at least K = {K} training samples (nbits={self.nbits}), got {X.shape[0]}")
        if self.mode == "paired":
            return X, check_keys(X, y), 0
        if self.mode != "supervised":
            return X, None, 0
        if y is None:
            raise ValueError("mode='supervised' needs labels y; use mode='unsupervised' or 'contrastive' without labels")
        y = np.asarray(y)
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iub":
            raise ValueError(f"y must be integer labels of shape ({X.shape[0]},), got {y.dtype} {y.shape}")
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("supervised training needs at least 2 classes in y")
        return X, labels.astype(np.int64), len(classes)

    def _build_model(self, X: np.ndarray, n_classes: int) -> DPQModel:
        images = X.ndim > 2
        input_shape = X.shape[1:]
        name = self.encoder
        custom = isinstance(name, nn.Module)
        if name == "auto":
            name = "cnn" if images else ("identity" if self.mode in ("unsupervised", "paired") else "mlp")
        if not custom and self.mode == "unsupervised" and name != "identity":
            raise ValueError("mode='unsupervised' trains codebooks only: use encoder='identity' (or a pre-trained "
                             "custom module, frozen with requires_grad=False)")
        if custom:
            dim = self.dim or _output_dim(name, X[:2])
        else:
            dim = int(np.prod(input_shape)) if name == "identity" else (self.dim or 64)
        config = {
            "mode": self.mode, "levels": self.levels, "nbits": self.nbits, "input_shape": tuple(input_shape),
            "dim": int(dim), "encoder": "custom" if custom else name, "hidden": self.hidden,
            "n_classes": n_classes, "soft": self.soft, "temperature": float(self.temperature),
            "normalize": self.normalize and not (name == "identity" and self.mode == "unsupervised"),
            "metric": self.metric, "beam": self.beam, "seed": self.seed, "query_encoder": self.query_encoder,
        }
        return DPQModel(config, encoder=name if custom else None)

    # ------------------------------------------------------------ training
    def _epoch(self, model, opt, Xt, yt, generator, device, phase, epoch) -> EpochStats:
        model.train()
        order = torch.randperm(len(Xt), generator=generator)
        total, count, rec = 0.0, 0, torch.zeros(self.levels)
        for start in range(0, len(Xt), self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < 2:
                continue
            xb = Xt[idx].to(device)
            yb = None if yt is None else yt[idx].to(device)
            loss, hard_err = self._loss(model, xb, yb, generator, phase)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            if hard_err is not None:
                rec += hard_err.detach().cpu() * len(idx)
        reconstruction = (rec / count).tolist() if phase == "joint" else []
        return EpochStats(epoch, phase, total / count, reconstruction)

    def _loss(self, model, xb, yb, generator, phase):
        """(loss, per-level mean hard reconstruction error or None).

        Unsupervised: sum_l ||x - Q^hard_l||^2 (soft terms only slowed it down
        on text embeddings). The quantization loss trains the codebooks only (features detached):
        letting it pull the features towards soft mixtures of codewords
        collapsed the classes in our digits runs. End to end, the label or
        contrastive losses on the reconstructions reach codebooks and encoder.
        """
        if self.mode == "contrastive":
            return contrastive_memory_loss(self, model, xb, generator, phase, self.memory_)
        if self.mode == "paired":
            return paired_loss(self, model, xb, yb, phase, self.memory_)
        feats = model.features(xb)
        if self.mode == "unsupervised":
            q = model.quantizer(feats, beam=self.beam)
            return (feats - q.hard).pow(2).sum(-1).mean(-1).sum(), _hard_error(feats, q)
        loss = self._label_loss(model, feats, yb)
        if phase == "encoder":
            return loss, None
        q = model.quantizer(feats.detach())
        loss = loss + self._quantization(feats.detach(), q)
        if self.end_to_end:
            # Straight-through: the value is the hard reconstruction, whose
            # gradient reaches the chosen codewords; the encoder gets it unchanged.
            recon = q.hard + (feats - feats.detach())
            loss = loss + sum(self._label_loss(model, z, yb) for z in recon) / self.levels
        return loss, _hard_error(feats, q)

    def _label_loss(self, model, z, yb):
        # On unit vectors: a reconstruction cannot lower the loss by growing its norm.
        ce = F.cross_entropy(model.classifier(F.normalize(z, dim=1)), yb)
        return label_margin_loss(z, yb, model.label_embeddings) + self.ce_weight * ce

    def _quantization(self, feats, q):
        return self.tau * quantization_loss(feats, q.soft, q.hard, self.mu, self.nu)


def _hard_error(feats, q) -> torch.Tensor:
    return (feats.detach() - q.hard.detach()).pow(2).sum(-1).mean(-1)


def _output_dim(encoder: nn.Module, sample: np.ndarray) -> int:
    with torch.no_grad():
        out = encoder.eval()(torch.from_numpy(sample))
    if out.dim() != 2:
        raise ValueError(f"a custom encoder must return (n, dim) features, got shape {tuple(out.shape)}")
    return out.shape[1]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _device(device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
