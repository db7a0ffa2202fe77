"""Train deep progressive quantizers in PyTorch and export them into IndexDPQ.

One model serves every code length: the first m of its L levels form an
m-level code. Needs the optional extra: ``pip install pyfaiss-dpq[train]``.

>>> from pyfaiss_dpq.train import DPQTrainer
>>> model = DPQTrainer(levels=4, nbits=8, mode="supervised").fit(X, y)  # doctest: +SKIP
>>> index = model.to_index()            # trained IndexDPQ (or IndexPreTransform)  # doctest: +SKIP
>>> index.add(model.encode(X_base))     # doctest: +SKIP
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "pyfaiss_dpq.train needs PyTorch: pip install pyfaiss-dpq[train] "
        "(CPU build: pip install torch==2.13.0 first)"
    ) from exc

from .model import DPQModel
from .trainer import MODES, DPQTrainer

__all__ = ["DPQTrainer", "DPQModel", "MODES"]
