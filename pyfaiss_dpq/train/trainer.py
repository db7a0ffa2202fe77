"""DPQTrainer: a scikit-learn estimator that trains a :class:`DPQModel`."""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from .._validate import as_samples
from ..codebooks import default_prefix_weights
from .init import torch_free_codebooks
from .mode_options import check_mode_options, make_memory
from .model import DPQModel
from .modes import MODES, Objective
from .paired import check_keys
from .quantizer import SOFT_ASSIGNMENTS

# Default temperature of each soft assignment (cosine: divides; l2: SPQ's lambda, multiplies).
_SOFT_TEMPERATURE = {"cosine": 0.1, "l2": 5.0}


@dataclass
class EpochStats:
    """One epoch: mean training loss, mean hard reconstruction error per level, held-out score.

    ``epoch`` -1 is the state the joint phase starts from (codebooks just
    initialised by the torch-free trainer), scored on the held-out split only.
    """

    epoch: int
    phase: str
    loss: float
    reconstruction: list = field(default_factory=list)
    validation: Optional[float] = None


@dataclass(frozen=True)
class Settings:
    """The trainer's parameters with every default resolved for one ``fit``."""

    objective: Objective
    levels: int
    nbits: int
    epochs: int
    warmup: float
    soft: str
    temperature: float
    normalize: bool
    metric: str
    beam: int
    prefix_weights: torch.Tensor
    end_to_end: bool
    tau: float
    mu: float
    nu: float
    ce_weight: float
    contrastive_temperature: float
    code_memory: int
    diversity: float
    debias: float
    query_encoder: Optional[str]
    batch_size: int
    lr: float
    codebook_lr: float
    weight_decay: float
    patience: Optional[int]
    validation_fraction: float


class DPQTrainer(BaseEstimator):
    """Train L progressive codebooks (and an encoder) once; serve 1..L levels.

    A scikit-learn estimator: ``__init__`` only stores its parameters, ``fit``
    resolves the defaults, validates, trains and returns ``self``; the trained
    model is ``model_``, and ``encode``, ``encode_query``, ``codes``,
    ``to_index`` and ``save`` delegate to it, so
    ``DPQTrainer(...).fit(X).to_index()`` works. ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` behave as for any estimator.

    Parameters
    ----------
    levels : int
        Number of quantization levels L (bytes per vector at nbits=8).
    nbits : int
        4 or 8 bits per level (K = 16 or 256 codewords).
    mode : str
        A name in :data:`~.modes.MODES`. supervised: DPQ with labels (label
        losses on the features and on every prefix's reconstruction).
        unsupervised: the prefix-weighted reconstruction error, starting from
        the torch-free trainer's codebooks (identity encoder). The held-out
        split chooses the number of epochs (``best_epoch_`` + 1, possibly
        none); the model returned is then refit on all of X: ``IndexDPQ.train``
        of X followed by that many epochs. contrastive:
        SPQ-style self-supervision on two augmented views, with MeCoQ's
        optional parts (``code_memory``, ``debias``, ``diversity``). paired:
        MoPQ, from (query, key) pairs: ``fit(queries, keys)``.
    encoder : "auto", "identity", "linear", "mlp", "cnn", "pyramid" or torch.nn.Module
        "auto": "cnn" for images (n, H, W)/(n, C, H, W), else the mode's
        default ("identity" unsupervised and paired, "mlp" otherwise).
        "pyramid": PHPQ's pyramid hybrid pooling CNN (images). A custom
        module maps (n, *input_shape) to (n, dim).
    dim : int, optional
        Feature dimension (default 64; the input size for identity).
    hidden : int
        Width of the hidden layers of mlp/cnn encoders.
    epochs : int, optional
        Total epochs (mode default: 64, unsupervised 4). The first `warmup`
        fraction trains the encoder alone; then the codebooks are initialised
        by the torch-free trainer (``IndexDPQ.train``) on the features and
        everything trains.
    warmup : float, optional
        Fraction of epochs that train the encoder alone (mode default; ignored
        without a trainable encoder).
    end_to_end : bool
        True: the label/contrastive losses on the prefix reconstructions reach
        encoder and codewords (straight-through). False: as the DPQ reference,
        codebooks learn only from the quantization loss.
    soft, temperature : str, float, optional
        Soft assignment "cosine" (softmax(cos / temperature), DPQ) or "l2"
        (softmax(-temperature * ||r - c||^2), SPQ's lambda). Defaults per mode.
    prefix_weights : array of L floats, optional
        Weight w_m of the prefix of m levels in every per-prefix term (the
        reconstruction objective sum_m w_m ||x - Q_m||^2, the label and
        contrastive losses on the reconstructions). Default: unsupervised, the
        torch-free trainer's (:func:`pyfaiss_dpq.codebooks.default_prefix_weights`);
        other modes, all ones.
    tau, mu, nu : float
        Quantization loss tau * [sum_l ||x - Q^soft_l||^2 + mu sum_l ||x - Q^hard_l||^2
        + nu ||Q^soft_L - Q^hard_L||^2] (supervised, contrastive).
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
    batch_size, lr, weight_decay : training hyper-parameters of the encoder (Adam).
    codebook_lr : float, optional
        Adam step of the codebooks relative to each level's codeword RMS at the
        start of the joint phase, so deep levels (small residuals) move as much,
        relatively, as the first. Mode default: 2e-2 unsupervised, 1e-2 otherwise.
    beam : int, optional
        Beam width of the hard codes, in training and in the exported index
        (``codes``, ``IndexDPQ.beam_size``). Mode default: 5 unsupervised, 1 otherwise.
    patience : int, optional
        Early stopping: stop when the held-out score (or, without a held-out
        split, the training loss) has not improved by 0.1% for `patience` epochs.
    validation_fraction : float
        Share of the training data held out to score every epoch of the joint
        phase and its starting point; the best-scoring state is the one kept,
        so training never ends worse (on held-out data) than where it started.
        0 disables the split (the last state is kept).
    device : "auto", "cpu", "cuda" or torch.device
        "auto" uses CUDA when available.
    seed : int
        Seeds torch, numpy and Python's random; the same seed gives the same model on CPU.
    checkpoint : path, optional
        The model is saved there (atomically) after every epoch.
    verbose : bool
        tqdm progress bar per epoch with the loss and per-level reconstruction error.

    Attributes
    ----------
    model_ : DPQModel
        The trained model: the best held-out state (unsupervised: refit on
        all of X for as many epochs).
    history_ : list of EpochStats
        The fit on the training split, scored on the held-out one.
    best_epoch_ : int
        The epoch whose state ``model_`` holds (-1: the start of the joint
        phase); unsupervised: the last epoch of the refit.
    memory_ : CodeMemory or None
        The code memory of the last fit (``code_memory`` > 0).
    """

    def __init__(self, levels: int = 8, nbits: int = 8, mode: str = "supervised", encoder="auto",
                 dim: Optional[int] = None, hidden: int = 256, epochs: Optional[int] = None,
                 warmup: Optional[float] = None, end_to_end: bool = True, soft: Optional[str] = None,
                 temperature: Optional[float] = None, prefix_weights=None, tau: float = 1.0, mu: float = 1.0,
                 nu: float = 0.1, ce_weight: float = 0.1, contrastive_temperature: Optional[float] = None,
                 batch_size: int = 128, lr: float = 1e-3, codebook_lr: Optional[float] = None,
                 weight_decay: float = 0.0, beam: Optional[int] = None, patience: Optional[int] = None,
                 validation_fraction: float = 0.1, code_memory: int = 0, diversity: float = 0.0,
                 debias: float = 0.0, query_encoder: Optional[str] = None,
                 device="auto", seed: int = 0, checkpoint: Optional[str | os.PathLike] = None,
                 verbose: bool = True):
        self.levels = levels
        self.nbits = nbits
        self.mode = mode
        self.encoder = encoder
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.warmup = warmup
        self.end_to_end = end_to_end
        self.soft = soft
        self.temperature = temperature
        self.prefix_weights = prefix_weights
        self.tau = tau
        self.mu = mu
        self.nu = nu
        self.ce_weight = ce_weight
        self.contrastive_temperature = contrastive_temperature
        self.batch_size = batch_size
        self.lr = lr
        self.codebook_lr = codebook_lr
        self.weight_decay = weight_decay
        self.beam = beam
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.code_memory = code_memory
        self.diversity = diversity
        self.debias = debias
        self.query_encoder = query_encoder
        self.device = device
        self.seed = seed
        self.checkpoint = checkpoint
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> "DPQTrainer":
        """Train on X (and y) and return self; the model is ``self.model_``.

        X : (n, d) float features, or images (n, H, W) / (n, C, H, W); the queries in mode="paired".
        y : (n,) integer class labels, required when the mode needs labels; in mode="paired" the
            keys (the shape of X), y[i] the match of X[i]; ignored otherwise.
        """
        s = self._settings()
        X, labels, n_classes = self._check_data(X, y, s)
        _seed_everything(self.seed)
        device = _device(self.device)
        (Xtr, ytr), (Xval, yval) = _holdout(X, labels, s.validation_fraction, 1 << s.nbits, self.seed)
        model = self._build_model(X, n_classes, s).to(device)
        has_encoder = any(p.requires_grad for p in model.encoder.parameters())
        warmup_epochs = min(int(round(s.warmup * s.epochs)), s.epochs - 1) if has_encoder else 0
        encoder_params = [p for n, p in model.named_parameters()
                          if not n.startswith("quantizer.") and p.requires_grad]
        opts = [torch.optim.Adam(encoder_params, lr=s.lr, weight_decay=s.weight_decay)] if encoder_params else []
        generator = torch.Generator().manual_seed(self.seed)
        Xt, yt = torch.from_numpy(Xtr), None if ytr is None else torch.from_numpy(ytr)
        val = None if Xval is None else (torch.from_numpy(Xval).to(device),
                                         None if yval is None else torch.from_numpy(yval).to(device))
        self.history_: list[EpochStats] = []
        self.memory_ = make_memory(s.code_memory, model, device)
        keeper = _BestState(s.patience)
        bar = tqdm(range(s.epochs), desc=f"DPQ {s.objective.name}", unit="epoch", disable=not self.verbose, leave=True)
        for epoch in bar:
            phase = "encoder" if epoch < warmup_epochs else "joint"
            if epoch == warmup_epochs:
                # the codebooks code what the index holds: the keys in a mode that has them
                opts.append(self._start_joint_phase(model, ytr if s.objective.needs_keys else Xtr, s))
                if val is not None:
                    start = EpochStats(-1, "start", float("nan"), validation=self._score(model, val, s))
                    self.history_.append(start)
                    keeper.consider(start.validation, -1, model)
            stats = self._epoch(model, opts, Xt, yt, generator, device, phase, epoch, s)
            if phase == "joint":
                if val is not None:
                    stats.validation = self._score(model, val, s)
                stop = keeper.consider(stats.validation if val is not None else stats.loss, epoch, model)
            else:
                stop = False
            self.history_.append(stats)
            bar.set_postfix(_postfix(stats))
            if self.checkpoint is not None:
                model.save(self.checkpoint)
            if stop:
                break
        if val is not None and s.objective.codebooks_only:
            self._refit(model, X, keeper.epoch + 1, generator, device, s)
        elif val is not None:
            keeper.restore(model)
        self.best_epoch_ = keeper.epoch if val is not None else self.history_[-1].epoch
        self.model_ = model.eval()
        return self

    # ------------------------------------------------------------ the fitted model's face
    def encode(self, X, batch_size: int = 1024) -> np.ndarray:
        """Features of database vectors; see :meth:`DPQModel.encode`."""
        return self._model().encode(X, batch_size)

    def encode_query(self, X, batch_size: int = 1024) -> np.ndarray:
        """Features of queries; see :meth:`DPQModel.encode_query`."""
        return self._model().encode_query(X, batch_size)

    def codes(self, X, batch_size: int = 1024) -> np.ndarray:
        """Level indices (n, levels) uint8; see :meth:`DPQModel.codes`."""
        return self._model().codes(X, batch_size)

    def to_index(self, metric=None, beam_size: Optional[int] = None):
        """A trained, empty index with the model's codebooks; see :meth:`DPQModel.to_index`."""
        return self._model().to_index(metric=metric, beam_size=beam_size)

    def save(self, path: str | os.PathLike) -> None:
        """Write the trained model to `path` atomically; read it back with :meth:`DPQModel.load`."""
        self._model().save(path)

    def _model(self) -> DPQModel:
        check_is_fitted(self, "model_")
        return self.model_

    # ------------------------------------------------------------ setup
    def _settings(self) -> Settings:
        """Validate the parameters and resolve every default (mode defaults, temperature, weights)."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {tuple(MODES)}, got {self.mode!r}")
        objective = MODES[self.mode]
        d = objective.defaults
        levels = self.levels
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 255:
            raise ValueError(f"levels must be an integer in [1, 255], got {levels!r}")
        if self.nbits not in (4, 8):
            raise ValueError(f"nbits must be 4 or 8, got {self.nbits!r}")
        soft = d.soft if self.soft is None else self.soft
        if soft not in SOFT_ASSIGNMENTS:
            raise ValueError(f"soft must be one of {SOFT_ASSIGNMENTS}, got {soft!r}")
        warmup = d.warmup if self.warmup is None else float(self.warmup)
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {warmup}")
        epochs = d.epochs if self.epochs is None else int(self.epochs)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        beam = d.beam if self.beam is None else int(self.beam)
        if not 1 <= beam <= 1024:
            raise ValueError(f"beam must be in [1, 1024], got {self.beam}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        check_mode_options(objective, MODES, self.code_memory, self.diversity, self.debias, self.query_encoder)
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.prefix_weights is not None:
            weights = np.asarray(self.prefix_weights, dtype=float)
        elif self.mode == "unsupervised":  # the objective of the torch-free start it refines
            weights = default_prefix_weights(levels).astype(float)
        else:  # the label and contrastive losses ride on every prefix
            weights = np.ones(levels)
        if weights.shape != (levels,) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"prefix_weights must be {levels} finite non-negative numbers, not all zero, "
                             f"got {self.prefix_weights!r}")
        return Settings(
            objective=objective, levels=int(levels), nbits=int(self.nbits), epochs=epochs, warmup=warmup, soft=soft,
            temperature=_SOFT_TEMPERATURE[soft] if self.temperature is None else float(self.temperature),
            normalize=d.normalize, metric=d.metric, beam=beam,
            prefix_weights=torch.tensor(weights, dtype=torch.float32), end_to_end=bool(self.end_to_end),
            tau=self.tau, mu=self.mu, nu=self.nu, ce_weight=self.ce_weight,
            contrastive_temperature=(d.contrastive_temperature if self.contrastive_temperature is None
                                     else float(self.contrastive_temperature)),
            code_memory=int(self.code_memory), diversity=float(self.diversity), debias=float(self.debias),
            query_encoder=self.query_encoder, batch_size=int(self.batch_size), lr=self.lr,
            codebook_lr=d.codebook_lr if self.codebook_lr is None else float(self.codebook_lr),
            weight_decay=self.weight_decay, patience=self.patience,
            validation_fraction=float(self.validation_fraction))

    def _check_data(self, X, y, s: Settings):
        X = as_samples(X, name="X")
        K = 1 << s.nbits
        if X.shape[0] < K:
            raise ValueError(f"need at least K = {K} training samples (nbits={s.nbits}), got {X.shape[0]}")
        if s.objective.needs_keys:
            return X, check_keys(X, y), 0  # the keys travel the labels' path (split, batches)
        if not s.objective.needs_labels:
            return X, None, 0
        if y is None:
            raise ValueError(f"mode={s.objective.name!r} needs labels y; use mode='unsupervised' or "
                             "'contrastive' without labels")
        y = np.asarray(y)
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iub":
            raise ValueError(f"y must be integer labels of shape ({X.shape[0]},), got {y.dtype} {y.shape}")
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("supervised training needs at least 2 classes in y")
        return X, labels.astype(np.int64), len(classes)

    def _build_model(self, X: np.ndarray, n_classes: int, s: Settings) -> DPQModel:
        images = X.ndim > 2
        input_shape = X.shape[1:]
        name = self.encoder
        custom = isinstance(name, nn.Module)
        if name == "auto":
            name = "cnn" if images else s.objective.defaults.vector_encoder
        if not custom and s.objective.codebooks_only and name != "identity":
            raise ValueError(f"mode={s.objective.name!r} trains codebooks only: use encoder='identity' (or a "
                             "pre-trained custom module, frozen with requires_grad=False)")
        if custom:
            dim = self.dim or _output_dim(name, X[:2])
        else:
            dim = int(np.prod(input_shape)) if name == "identity" else (self.dim or 64)
        config = {
            "mode": s.objective.name, "levels": s.levels, "nbits": s.nbits, "input_shape": tuple(input_shape),
            "dim": int(dim), "encoder": "custom" if custom else name, "hidden": self.hidden,
            "n_classes": n_classes, "soft": s.soft, "temperature": s.temperature,
            "normalize": s.normalize and (name != "identity" or s.objective.normalizes_identity),
            "metric": s.metric, "beam": s.beam, "seed": self.seed, "query_encoder": s.query_encoder,
        }
        return DPQModel(config, encoder=name if custom else None)

    # ------------------------------------------------------------ training
    def _start_joint_phase(self, model: DPQModel, data: np.ndarray, s: Settings) -> torch.optim.Optimizer:
        """Codebooks from the torch-free trainer on the current features of `data`, and their optimizer.

        The codebooks are trained as unit-RMS parameters times a fixed per-level
        scale, so one (Adam) learning rate suits levels whose residuals differ by orders of magnitude.
        """
        codebooks = torch_free_codebooks(model.encode(data), s.levels, s.nbits)
        model.quantizer.set_codebooks(torch.from_numpy(codebooks).to(model.device))
        return torch.optim.Adam([model.quantizer.unit_codebooks], lr=s.codebook_lr)

    def _refit(self, model: DPQModel, X: np.ndarray, epochs: int, generator, device, s: Settings) -> None:
        """The held-out split chose how many epochs to run: run them again on all of X, from its torch-free start.

        Only without a trainable encoder, whose fixed features make the start
        ``IndexDPQ.train`` of X. Zero epochs returns that model itself.
        """
        opts = [self._start_joint_phase(model, X, s)]
        Xt = torch.from_numpy(X)
        for epoch in range(epochs):
            self._epoch(model, opts, Xt, None, generator, device, "joint", epoch, s)

    def _epoch(self, model, opts, Xt, yt, generator, device, phase, epoch, s: Settings) -> EpochStats:
        model.train()
        order = torch.randperm(len(Xt), generator=generator)
        total, count, rec = 0.0, 0, torch.zeros(s.levels)
        for start in range(0, len(Xt), s.batch_size):
            idx = order[start:start + s.batch_size]
            if len(idx) < 2:
                continue
            xb = Xt[idx].to(device)
            yb = None if yt is None else yt[idx].to(device)
            loss, hard_err = s.objective.loss(s, model, xb, yb, generator, phase, memory=self.memory_)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in opts:
                opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            if hard_err is not None:
                rec += hard_err.detach().cpu() * len(idx)
        reconstruction = (rec / count).tolist() if phase == "joint" else []
        return EpochStats(epoch, phase, total / count, reconstruction)

    def _score(self, model: DPQModel, val, s: Settings, batch_size: int = 4096) -> float:
        """The mode's held-out score (lower is better), averaged over batches weighted by size."""
        x, y = val
        model.eval()
        total = 0.0
        for i in range(0, len(x), batch_size):
            yb = None if y is None else y[i:i + batch_size]
            total += s.objective.validation_loss(s, model, x[i:i + batch_size], yb) * len(x[i:i + batch_size])
        return total / len(x)


class _BestState:
    """Keeps a copy of the best-scoring model state; counts epochs without progress for early stopping."""

    def __init__(self, patience: Optional[int]):
        self.patience, self.score, self.epoch, self.state, self.stale = patience, float("inf"), None, None, 0

    def consider(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record (score, epoch, state); True when `patience` epochs passed without a 0.1% improvement."""
        if score < self.score:
            improved = self.score == float("inf") or score < self.score - 1e-3 * abs(self.score)
            self.score, self.epoch, self.state = score, epoch, copy.deepcopy(model.state_dict())
            self.stale = 0 if improved else self.stale + 1
        else:
            self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)


def _holdout(X: np.ndarray, labels, fraction: float, K: int, seed: int):
    """((X_train, y_train), (X_val, y_val)): a seeded random split; no split when fraction is 0."""
    n_val = int(round(fraction * len(X)))
    if n_val == 0:
        return (X, labels), (None, None)
    if len(X) - n_val < K:
        raise ValueError(f"holding out {n_val} of {len(X)} samples (validation_fraction={fraction}) leaves fewer "
                         f"than K = {K} to train on: lower validation_fraction or give more data")
    order = np.random.default_rng(seed).permutation(len(X))
    tr, va = np.sort(order[n_val:]), np.sort(order[:n_val])
    pick = (lambda a, i: None if a is None else np.ascontiguousarray(a[i]))  # noqa: E731
    return (pick(X, tr), pick(labels, tr)), (pick(X, va), pick(labels, va))


def _postfix(stats: EpochStats) -> dict:
    out = {"phase": stats.phase, "loss": f"{stats.loss:.4f}"}
    if stats.reconstruction:
        out["rec"] = "/".join(f"{e:.3g}" for e in stats.reconstruction)
    if stats.validation is not None:
        out["val"] = f"{stats.validation:.4g}"
    return out


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
