"""Which SIMD scan kernel searches use: see it and force it, as Faiss's ``FAISS_SIMD_LEVEL`` does.

The C++ core picks the fastest scan kernel the CPU supports (``avx512``, then
``avx2``, then ``scalar``, the plain C++ reference). The environment variable
``PYFAISS_DPQ_SIMD`` (``scalar``, ``avx2``, ``avx512`` or ``auto``), read once
when ``pyfaiss_dpq`` is imported, forces one; :func:`set_simd_level` changes it
at run time. A level this CPU cannot run, or an unknown name, is a
``ValueError`` naming the supported ones (at import, for the variable).

The level changes speed, never results: the float lookup tables every level
ranks and re-scores with come from the fastest kernel, so every level returns
the same neighbours and distances bit for bit (tests/test_scan.py).
"""

from __future__ import annotations

import os

from ._native import core

ENV_VAR = "PYFAISS_DPQ_SIMD"

__all__ = ["ENV_VAR", "simd_level", "set_simd_level", "supported_simd_levels"]


def supported_simd_levels() -> list[str]:
    """The levels this CPU can run, slowest first: ``"scalar"``, then ``"avx2"``, ``"avx512"``."""
    return list(core.scan_kernels())


def simd_level() -> str:
    """The level searches use now: ``"scalar"``, ``"avx2"`` or ``"avx512"``."""
    return core.active_scan_kernel()


def set_simd_level(level: str) -> str:
    """Force a level (one of :func:`supported_simd_levels`), or ``"auto"`` for the fastest.

    Returns the previous setting (``"auto"`` or a level), so that it can be restored.
    Raises ``ValueError`` for a level this CPU cannot run or an unknown name.
    """
    if not isinstance(level, str):
        raise TypeError(f"level must be a string, got {type(level).__name__}")
    return core.set_scan_kernel(level)


def _apply_environment() -> None:
    """Force the level named by PYFAISS_DPQ_SIMD, if set (once, at import)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return
    try:
        set_simd_level(value.lower())
    except ValueError as exc:
        raise ValueError(f"{ENV_VAR}={value!r}: {exc}; use auto or one of {supported_simd_levels()}") from None


_apply_environment()
