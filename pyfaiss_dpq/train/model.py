"""A trained deep progressive quantizer: encoder + progressive codebooks (+ label heads)."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import as_samples
from .checkpoint import load_checkpoint, save_checkpoint
from .encoders import build_encoder
from .losses import label_embeddings
from .quantizer import ProgressiveQuantizer, Quantized


class DPQModel(nn.Module):
    """Encoder and L progressive codebooks of K = 2**nbits codewords each.

    Made by :meth:`DPQTrainer.fit` (``trainer.model_``) or :meth:`load`. ``encode`` gives the
    features that are quantized and searched, ``encode_query`` the features
    of queries (the query tower's, for paired models with two), ``codes`` the
    level indices, ``to_index`` a trained IndexDPQ whose codebooks are this model's.

    Parameters
    ----------
    config : dict
        mode, levels, nbits, input_shape, dim, encoder (a name from
        ``encoders.ENCODERS`` or "custom"), hidden, n_classes, soft,
        temperature, normalize, metric ("l2" or "ip"), beam, seed, and
        query_encoder (paired mode: None, or the name of the query tower).
    encoder : torch.nn.Module, optional
        Required when ``config["encoder"] == "custom"``.
    """

    def __init__(self, config: dict, encoder: nn.Module | None = None):
        super().__init__()
        self.config = dict(config)
        c = self.config
        if c["encoder"] == "custom":
            if encoder is None:
                raise ValueError("this model uses a custom encoder: pass the same torch.nn.Module as encoder=")
            self.encoder = encoder
        else:
            self.encoder = build_encoder(c["encoder"], tuple(c["input_shape"]), c["dim"], c["hidden"])
        self.query_encoder = None  # paired mode with two towers: the queries' own encoder
        if c.get("query_encoder"):
            from .paired import build_query_encoder

            self.query_encoder = build_query_encoder(c["query_encoder"], tuple(c["input_shape"]), c["dim"], c["hidden"])
        self.quantizer = ProgressiveQuantizer(c["levels"], 1 << c["nbits"], c["dim"], c["soft"], c["temperature"])
        self.classifier = None
        if c.get("n_classes"):
            self.classifier = nn.Linear(c["dim"], c["n_classes"])
            self.register_buffer("label_embeddings", label_embeddings(c["n_classes"], c["dim"], c["seed"]))

    # ------------------------------------------------------------ properties
    levels = property(lambda self: self.config["levels"], doc="Number of levels L.")
    nbits = property(lambda self: self.config["nbits"], doc="Bits per level (K = 2**nbits).")
    dim = property(lambda self: self.config["dim"], doc="Feature dimension d of the codebooks.")
    device = property(lambda self: self.quantizer.codebooks.device, doc="Device of the parameters.")

    @property
    def codebooks(self) -> np.ndarray:
        """Codebooks, shape (levels, K, dim), float32 (a copy)."""
        return self.quantizer.codebooks.detach().cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------ torch side
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output, L2-normalized when the config says so. (n, *input_shape) -> (n, dim)."""
        h = self.encoder(x)
        return F.normalize(h, dim=1) if self.config["normalize"] else h

    def query_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of queries: the query tower's when the model has one, else :meth:`features`."""
        if self.query_encoder is None:
            return self.features(x)
        h = self.query_encoder(x)
        return F.normalize(h, dim=1) if self.config["normalize"] else h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """(features (n, dim), their progressive quantization with the model's beam width)."""
        feats = self.features(x)
        return feats, self.quantizer(feats, self.config["beam"])

    # ------------------------------------------------------------ numpy side
    def encode(self, X, batch_size: int = 1024) -> np.ndarray:
        """Features of X, shape (n, dim) float32: what an exported IndexDPQ expects."""
        return self._batched(X, batch_size, lambda x: self.features(x))

    def encode_query(self, X, batch_size: int = 1024) -> np.ndarray:
        """Features of queries X, (n, dim) float32, to search the index built from :meth:`encode`.

        The same as ``encode`` unless the model has a query tower (paired mode, ``query_encoder=``).
        """
        return self._batched(X, batch_size, lambda x: self.query_features(x))

    def codes(self, X, batch_size: int = 1024) -> np.ndarray:
        """Level indices of X, shape (n, levels) uint8: greedy, or beam search when config["beam"] > 1."""
        return self._batched(X, batch_size, lambda x: self(x)[1].codes).astype(np.uint8)

    def reconstruct(self, X, levels: int | None = None, batch_size: int = 1024) -> np.ndarray:
        """Hard reconstruction of the features of X from the first `levels` levels, (n, dim)."""
        m = self.levels if levels is None else levels
        if not 1 <= m <= self.levels:
            raise ValueError(f"levels must be in [1, {self.levels}], got {m}")
        return self._batched(X, batch_size, lambda x: self(x)[1].hard[m - 1])

    def reconstruction_error(self, X, batch_size: int = 1024) -> np.ndarray:
        """Mean squared error ||x - Q_m||^2 of the hard reconstruction for m = 1..levels, shape (levels,)."""
        def err(x):
            feats, q = self(x)
            return (feats - q.hard).pow(2).sum(-1).T
        return self._batched(X, batch_size, err).mean(0)

    def to_index(self, metric: str | int | None = None, beam_size: int | None = None):
        """A trained, empty index whose codebooks are this model's; see :func:`.export.to_index`."""
        from .export import to_index

        return to_index(self, metric=metric, beam_size=beam_size)

    def check_input(self, X) -> np.ndarray:
        """X as writable float32 of shape (n, *input_shape); ValueError/TypeError otherwise."""
        return as_samples(X, tuple(self.config["input_shape"]), name="inputs")

    @torch.no_grad()
    def _batched(self, X, batch_size: int, fn) -> np.ndarray:
        arr = self.check_input(X)
        was_training = self.training
        self.eval()
        try:
            out = [fn(torch.from_numpy(arr[i:i + batch_size]).to(self.device)).cpu()
                   for i in range(0, len(arr), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy()

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write config and weights to `path` atomically (temporary file, then rename)."""
        save_checkpoint(path, self.config, {k: v.detach().cpu() for k, v in self.state_dict().items()})

    @classmethod
    def load(cls, path: str | os.PathLike, encoder: nn.Module | None = None,
             map_location: str | torch.device = "cpu") -> "DPQModel":
        """Read a model written by :meth:`save`. Pass `encoder` for models with a custom encoder."""
        config, state = load_checkpoint(path)
        model = cls(config, encoder)
        model.load_state_dict(state)
        return model.to(map_location).eval()

    def extra_repr(self) -> str:
        c = self.config
        return (f"mode={c['mode']}, levels={c['levels']}, nbits={c['nbits']}, dim={c['dim']}, "
                f"encoder={c['encoder']}, input_shape={tuple(c['input_shape'])}, "
                f"bytes per vector={math.ceil(c['levels'] * c['nbits'] / 8)}")
