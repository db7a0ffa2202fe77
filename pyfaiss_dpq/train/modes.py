"""The trainer options of the MeCoQ (contrastive) and MoPQ (paired) modes: checks and the code memory."""

from __future__ import annotations

import torch

from .code_memory import CodeMemory
from .paired import QUERY_ENCODERS


def check_mode_options(mode: str, code_memory, diversity, debias, query_encoder) -> None:
    """ValueError naming the option that `mode` does not take or whose value is out of range."""
    if isinstance(code_memory, bool) or not isinstance(code_memory, int) or code_memory < 0:
        raise ValueError(f"code_memory must be a non-negative integer (0: no memory), got {code_memory!r}")
    if code_memory and mode not in ("contrastive", "paired"):
        raise ValueError(f"code_memory is an option of mode='contrastive' or 'paired', not {mode!r}")
    if not diversity >= 0:
        raise ValueError(f"diversity must be >= 0, got {diversity!r}")
    if diversity and mode not in ("contrastive", "paired"):
        raise ValueError(f"diversity is an option of mode='contrastive' or 'paired', not {mode!r}")
    if not 0 <= debias < 1:
        raise ValueError(f"debias (the positive prior tau_plus) must be in [0, 1), got {debias!r}")
    if debias and mode != "contrastive":
        raise ValueError(f"debias is an option of mode='contrastive', not {mode!r}")
    if query_encoder is not None:
        if mode != "paired":
            raise ValueError(f"query_encoder (a second tower) is an option of mode='paired', not {mode!r}")
        if query_encoder not in QUERY_ENCODERS:
            raise ValueError(f"query_encoder must be None (one tower) or one of {QUERY_ENCODERS}, "
                             f"got {query_encoder!r}")


def make_memory(trainer, model, device: torch.device) -> CodeMemory | None:
    """A fresh, empty code memory of ``trainer.code_memory`` codes for `model`, or None without one."""
    if not trainer.code_memory:
        return None
    levels, K, _ = model.quantizer.codebooks.shape
    return CodeMemory(int(trainer.code_memory), levels, K, device)
