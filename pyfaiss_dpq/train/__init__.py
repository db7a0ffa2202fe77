"""Train deep progressive quantizers in PyTorch and export them into IndexDPQ.

One model serves every code length: the first m of its L levels form an
m-level code. Needs the optional extra: ``pip install pyfaiss-dpq[train]``.

>>> from pyfaiss_dpq.train import DPQTrainer
>>> trainer = DPQTrainer(levels=4, nbits=8, mode="supervised").fit(X, y)  # doctest: +SKIP
>>> index = trainer.to_index()          # trained IndexDPQ (or IndexPreTransform)  # doctest: +SKIP
>>> index.add(trainer.encode(X_base))   # doctest: +SKIP
>>> trainer.model_.save("dpq.pt")       # the model alone: DPQModel.load("dpq.pt")  # doctest: +SKIP
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "pyfaiss_dpq.train needs PyTorch: pip install pyfaiss-dpq[train] "
        "(CPU build: pip install torch==2.13.0 first)"
    ) from exc

from .model import DPQModel
from .modes import MODES, Objective, register_mode
from .trainer import DPQTrainer

__all__ = ["DPQTrainer", "DPQModel", "MODES", "Objective", "register_mode"]
