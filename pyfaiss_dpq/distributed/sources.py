"""Vector sources of a sharded build: files or arrays, read by global row range.

The rows of all sources, in the order given, are the database; a vector's
global id is its row number in that concatenation. Build tasks read only the
rows of their slice, so a file is never loaded whole by a task: ``.npy`` files
are memory-mapped by :func:`pyfaiss_dpq.data.load_vectors`, and ``.fvecs`` /
``.bvecs`` rows are memory-mapped here (``load_vectors`` copies a whole TEXMEX
file, which a task reading one slice of a billion rows cannot afford).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from ..data import load_vectors, xvecs_shape

__all__ = ["VectorSource", "as_sources", "read_rows"]

SUFFIXES = (".npy", ".fvecs", ".bvecs")
_XVECS_VALUES = {".fvecs": np.dtype("<f4"), ".bvecs": np.dtype("u1")}
_CRC_CHUNK = 1 << 24


@dataclass(frozen=True)
class VectorSource:
    """One input of a build: a file path or an in-memory float32 array.

    Attributes
    ----------
    rows, d : int
        Number of vectors and their dimension.
    path : str or None
        Absolute path of a file source.
    array : numpy.ndarray or None
        Contiguous float32 rows of an array source.
    fingerprint : dict
        What identifies the source to a resumed build: path, size and
        modification time of a file; CRC-32 of an array's bytes.
    """

    rows: int
    d: int
    fingerprint: dict
    path: Union[str, None] = None
    array: Union[np.ndarray, None] = None


def _file_source(path: Path) -> VectorSource:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: a build reads {', '.join(SUFFIXES)} files or arrays, not {suffix!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no such vector file: {path}")
    if suffix == ".npy":
        x = load_vectors(path)
        rows, d = x.shape
    else:
        rows, d = xvecs_shape(path, _XVECS_VALUES[suffix])
    stat = path.stat()
    fingerprint = {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "rows": rows, "d": d}
    return VectorSource(rows=rows, d=d, fingerprint=fingerprint, path=str(path))


def _array_source(x: Any, position: int) -> VectorSource:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise ValueError(f"sources[{position}]: expected a 2-D numeric array, got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"sources[{position}] contains NaN or infinity")
    view = arr.reshape(-1).view(np.uint8)
    crc = 0
    for start in range(0, view.size, _CRC_CHUNK):
        crc = zlib.crc32(view[start:start + _CRC_CHUNK], crc)
    fingerprint = {"array_crc32": crc, "rows": arr.shape[0], "d": arr.shape[1]}
    return VectorSource(rows=arr.shape[0], d=arr.shape[1], fingerprint=fingerprint, array=arr)


def as_sources(sources: Any) -> list[VectorSource]:
    """Normalize a path, an array, or a sequence of them into a list of sources."""
    if isinstance(sources, (str, os.PathLike, np.ndarray)):
        sources = [sources]
    if not isinstance(sources, Sequence) or not sources:
        raise ValueError("sources must be a path, an array, or a non-empty list of them")
    out = []
    for i, s in enumerate(sources):
        if isinstance(s, (str, os.PathLike)):
            out.append(_file_source(Path(s).resolve()))
        else:
            out.append(_array_source(s, i))
    dims = {s.d for s in out}
    if len(dims) > 1:
        raise ValueError(f"sources have different dimensions: {[s.d for s in out]}")
    return out


def _read_file_rows(path: str, start: int, stop: int, d: int) -> np.ndarray:
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return np.ascontiguousarray(load_vectors(path)[start:stop], dtype=np.float32)
    values = _XVECS_VALUES[suffix]
    rows = np.memmap(path, dtype=np.dtype([("d", "<i4"), ("v", values, (d,))]), mode="r")[start:stop]
    bad = np.flatnonzero(rows["d"] != d)
    if bad.size:
        raise ValueError(f"{path}: row {start + bad[0]} declares dimension {rows['d'][bad[0]]}, expected {d}")
    return np.ascontiguousarray(rows["v"], dtype=np.float32)


def read_rows(sources: Sequence[VectorSource], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of the concatenation of `sources`, float32 (stop - start, d)."""
    parts, offset = [], 0
    for s in sources:
        lo, hi = max(start - offset, 0), min(stop - offset, s.rows)
        if lo < hi:
            parts.append(s.array[lo:hi] if s.array is not None else _read_file_rows(s.path, lo, hi, s.d))
        offset += s.rows
    if not parts:
        return np.empty((0, sources[0].d), dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
