"""The options of the MeCoQ (contrastive) and MoPQ (paired) objectives: their checks and the code memory."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .code_memory import CodeMemory
from .paired import QUERY_ENCODERS


def check_mode_options(objective, modes: dict, code_memory, diversity, debias, query_encoder) -> None:
    """ValueError naming the option that `objective` does not take (``Objective.options``) or whose value is
    out of range; `modes` is the registry, to name the modes that do take it."""

    def taken(option: str, value) -> None:
        if value and option not in objective.options:
            takers = " or ".join(repr(name) for name, o in modes.items() if option in o.options)
            raise ValueError(f"{option} is an option of mode={takers}, not {objective.name!r}")

    if isinstance(code_memory, bool) or not isinstance(code_memory, (int, np.integer)) or code_memory < 0:
        raise ValueError(f"code_memory must be a non-negative integer (0: no memory), got {code_memory!r}")
    taken("code_memory", code_memory)
    if not diversity >= 0:
        raise ValueError(f"diversity must be >= 0, got {diversity!r}")
    taken("diversity", diversity)
    if not 0 <= debias < 1:
        raise ValueError(f"debias (the positive prior tau_plus) must be in [0, 1), got {debias!r}")
    taken("debias", debias)
    if query_encoder is not None:
        taken("query_encoder", query_encoder)
        if query_encoder not in QUERY_ENCODERS:
            raise ValueError(f"query_encoder must be None (one tower) or one of {QUERY_ENCODERS}, "
                             f"got {query_encoder!r}")


def make_memory(code_memory: int, model, device: torch.device) -> Optional[CodeMemory]:
    """A fresh, empty code memory of `code_memory` codes for `model`, or None when it is 0."""
    if not code_memory:
        return None
    levels, K, _ = model.quantizer.codebooks.shape
    return CodeMemory(int(code_memory), levels, K, device)
