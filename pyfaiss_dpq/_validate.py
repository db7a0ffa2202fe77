"""Conversion of user input where it enters: clear exceptions, never a crash.

These functions convert (dtype, shape, Python int); the rules on values an
IndexDPQ accepts (ranges, levels, k, finiteness) live once, in the C++ core
(csrc/check.h), which raises ValueError/IndexError through pybind11.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_vectors(x, d: int, name: str = "x", finite: bool = True) -> np.ndarray:
    """Return `x` as a C-contiguous float32 array of shape (n, d).

    Integer and floating inputs are converted; anything else is refused, as
    are wrong shapes and, with ``finite`` (for callers without the C++ core's
    own check), non-finite values.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be an array of shape (n, {d}): {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers (float32 preferred), got dtype {arr.dtype}")
    if arr.ndim == 1 and arr.shape[0] == d:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, {d}), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if finite:
        check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str = "x") -> None:
    """Raise ValueError naming the first row of `arr` (n, d) with a NaN or infinity.

    One cheap sum answers for clean data (it is finite unless a value is NaN
    or infinite, or the sum overflowed); only then are the values scanned.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()
    if np.isfinite(total):
        return
    bad_rows = np.nonzero(~np.isfinite(arr).all(axis=tuple(range(1, arr.ndim))))[0]
    if bad_rows.size:
        raise ValueError(f"{name} contains NaN or infinity (first at row {int(bad_rows[0])})")


def as_samples(x, shape: tuple | None = None, name: str = "X") -> np.ndarray:
    """Return `x` as a writable, C-contiguous float32 array of shape (n, *shape), n >= 1.

    shape None accepts features (n, d) and images (n, H, W) / (n, C, H, W).
    Dtype and finiteness are checked by :func:`as_vectors` on the flattened rows.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be an array of samples: {exc}") from exc
    if shape is None:
        if arr.ndim not in (2, 3, 4):
            raise ValueError(f"{name} must be features (n, d) or images (n, H, W) / (n, C, H, W), "
                             f"got shape {arr.shape}")
    elif arr.shape[1:] != tuple(shape) or arr.ndim != len(shape) + 1:
        raise ValueError(f"{name} must have shape (n, {', '.join(map(str, shape))}), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one row")
    flat = as_vectors(arr.reshape(arr.shape[0], -1), int(np.prod(arr.shape[1:])), name)
    if not flat.flags.writeable:  # e.g. a memory-mapped file: torch needs writable memory
        flat = flat.copy()
    return flat.reshape(arr.shape)


def as_int(value, name: str) -> int:
    """Return `value` as a Python int (bool and non-integers refused); its range is C++'s to check."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def as_bool(value, name: str) -> bool:
    """Return `value` as a Python bool (a numpy bool too); anything else is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def as_count(value, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Return `value` as a Python int in [minimum, maximum] (for ranges no C++ call checks)."""
    value = as_int(value, name)
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f", {maximum}"
        raise ValueError(f"{name} must be in [{minimum}{upper}], got {value}")
    return value


def as_ids(ids, n: int | None = None, name: str = "ids") -> np.ndarray:
    """Return `ids` as a contiguous int64 array (of length n when given)."""
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} exceed the int64 range")
    arr = np.ascontiguousarray(arr.ravel(), dtype=np.int64)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries, got {arr.shape[0]}")
    return arr


def int_property(name: str, doc: str, get, set_) -> property:
    """A property over a C++ getter and setter of an int: Python converts, C++ checks the range."""
    return property(lambda self: get(self), lambda self, value: set_(self, as_int(value, name)), doc=doc)
