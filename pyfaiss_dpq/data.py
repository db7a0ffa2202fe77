"""Vector data: loaders for the usual file formats and the benchmark data sets.

File formats read by :func:`load_vectors`:

- ``.npy``: a 2-D NumPy array (memory-mapped).
- ``.fvecs`` / ``.ivecs`` / ``.bvecs``: the TEXMEX formats, where every row is
  an int32 dimension ``d`` followed by ``d`` float32 / int32 / uint8 values.
- ``.hdf5`` / ``.h5``: ann-benchmarks files (datasets ``train``, ``test``,
  ``neighbors``, ``distances`` and the attribute ``distance``).

:func:`load_dataset` turns a name (``"digits"``, ``"minilm"``) or one of those
files into a :class:`Dataset` with train / base / query vectors and exact
ground truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import faiss
import numpy as np

__all__ = [
    "Dataset",
    "load_dataset",
    "load_vectors",
    "load_digits_images",
    "load_text_embeddings",
    "write_fvecs",
    "write_ivecs",
    "write_bvecs",
    "GT_K",
]

PathLike = Union[str, "os.PathLike[str]"]

GT_K = 100
"""Ground-truth neighbours per query (fewer only when the base is smaller)."""

SPLIT_SEED = 1234
"""Seed of every fixed train/query split below."""

MAX_TRAIN = 100_000
"""Largest training set drawn from a file's base vectors."""

_XVECS_DTYPES = {".fvecs": np.dtype("<f4"), ".ivecs": np.dtype("<i4"), ".bvecs": np.dtype("u1")}
_HDF5_SUFFIXES = (".hdf5", ".h5")
TEXT_EMBEDDINGS = "minilm_text.npz"


# ---------------------------------------------------------------- file formats
def load_vectors(path: PathLike, key: Optional[str] = None) -> np.ndarray:
    """Load a 2-D array of vectors from a ``.npy``, TEXMEX or HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        File ending in ``.npy``, ``.fvecs``, ``.bvecs``, ``.ivecs``, ``.hdf5`` or ``.h5``.
    key : str, optional
        HDF5 dataset to read (default ``"train"``); not allowed for other formats.

    Returns
    -------
    numpy.ndarray, shape (n, d)
        Floating data as float32 (``.bvecs`` bytes too); integer data
        (``.ivecs``, integer ``.npy`` or HDF5 datasets such as ``neighbors``)
        keeps its integer dtype (int32 for ``.ivecs``).

    Raises
    ------
    ValueError
        Unknown extension, or a file that is empty, truncated, inconsistent
        or not a 2-D numeric array; the message names the file.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"no such vector file: {path}")
    if suffix in _HDF5_SUFFIXES:
        return _load_hdf5(path, "train" if key is None else key)
    if key is not None:
        raise ValueError(f"key={key!r} applies to HDF5 files only, not {path.name}")
    if suffix == ".npy":
        return _load_npy(path)
    if suffix in _XVECS_DTYPES:
        return _load_xvecs(path, _XVECS_DTYPES[suffix])
    known = ", ".join([".npy", *_XVECS_DTYPES, *_HDF5_SUFFIXES])
    raise ValueError(f"{path}: unknown vector file extension {suffix!r} (known: {known})")


def _as_float32_or_int(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array of vectors, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        return arr if arr.dtype == np.float32 else arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr
    raise ValueError(f"{path}: expected numeric vectors, got dtype {arr.dtype}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # bad header, truncated data, pickled objects
        raise ValueError(f"{path}: not a readable .npy array: {exc}") from exc
    return _as_float32_or_int(arr, path)


def xvecs_shape(path: Path, dtype: np.dtype) -> tuple[int, int]:
    """(rows, d) of a .fvecs/.bvecs/.ivecs file of `dtype` values, from its size and first header."""
    size = path.stat().st_size
    if size < 4:
        raise ValueError(f"{path}: file is empty or shorter than one dimension header")
    d = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if d <= 0 or d > 1 << 24:
        raise ValueError(f"{path}: first row declares an invalid dimension {d}")
    row_bytes = 4 + d * dtype.itemsize
    if size % row_bytes:
        raise ValueError(
            f"{path}: size {size} bytes is not a multiple of the row size {row_bytes} "
            f"(d={d}): truncated or not a {path.suffix} file")
    return size // row_bytes, d


def _load_xvecs(path: Path, dtype: np.dtype) -> np.ndarray:
    _, d = xvecs_shape(path, dtype)
    rows = np.memmap(path, dtype=np.dtype([("d", "<i4"), ("v", dtype, (d,))]), mode="r")
    bad = np.flatnonzero(rows["d"] != d)
    if bad.size:
        raise ValueError(
            f"{path}: row {bad[0]} declares dimension {rows['d'][bad[0]]}, expected {d} "
            "(inconsistent per-row headers: corrupt file)")
    out = np.ascontiguousarray(rows["v"])
    return out.astype(np.float32) if dtype.kind == "u" else out.astype(dtype.newbyteorder("="), copy=False)


def _import_h5py():
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "reading HDF5 files needs h5py: pip install h5py (or pyfaiss-dpq[data])") from exc
    return h5py


def _load_hdf5(path: Path, key: str) -> np.ndarray:
    h5py = _import_h5py()
    try:
        with h5py.File(path, "r") as f:
            if key not in f or not isinstance(f[key], h5py.Dataset):
                names = sorted(k for k in f if isinstance(f[k], h5py.Dataset))
                raise ValueError(f"{path}: no dataset {key!r} (datasets: {names})")
            arr = f[key][()]
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file: {exc}") from exc
    return _as_float32_or_int(np.asarray(arr), path)


def _write_xvecs(path: PathLike, x, dtype: np.dtype) -> None:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"expected a 2-D array with d >= 1, got shape {x.shape}")
    rows = np.empty(x.shape[0], dtype=np.dtype([("d", "<i4"), ("v", dtype, (x.shape[1],))]))
    rows["d"] = x.shape[1]
    rows["v"] = x
    rows.tofile(path)


def write_fvecs(path: PathLike, x) -> None:
    """Write (n, d) vectors as ``.fvecs`` (float32 rows with an int32 dimension header)."""
    _write_xvecs(path, x, np.dtype("<f4"))


def write_ivecs(path: PathLike, x) -> None:
    """Write (n, d) integers as ``.ivecs`` (int32 rows with an int32 dimension header)."""
    _write_xvecs(path, x, np.dtype("<i4"))


def write_bvecs(path: PathLike, x) -> None:
    """Write (n, d) bytes as ``.bvecs`` (uint8 rows with an int32 dimension header)."""
    _write_xvecs(path, x, np.dtype("u1"))


# ---------------------------------------------------------------- embedded data
def load_digits_images() -> "tuple[np.ndarray, np.ndarray]":
    """The scikit-learn handwritten digits.

    Returns
    -------
    images : numpy.ndarray, shape (1797, 8, 8), float32 in [0, 1]
    labels : numpy.ndarray, shape (1797,), int64 in 0..9
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    return images, digits.target.astype(np.int64)


def load_text_embeddings() -> np.ndarray:
    """Real all-MiniLM-L6-v2 sentence embeddings shipped with the package.

    They were computed by ``benchmarks/make_text_embeddings.py`` from
    sentences of the Python standard library's docstrings.

    Returns
    -------
    numpy.ndarray, shape (n, 384), float32, every row of unit L2 norm
    """
    source = resources.files("pyfaiss_dpq") / "datasets" / TEXT_EMBEDDINGS
    if not source.is_file():
        raise FileNotFoundError(
            f"{TEXT_EMBEDDINGS} is missing from the installed package; rebuild it with "
            "benchmarks/make_text_embeddings.py")
    with resources.as_file(source) as path, np.load(path, allow_pickle=False) as npz:
        x = npz["embeddings"].astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# ---------------------------------------------------------------- data sets
@dataclass
class Dataset:
    """Train / base / query vectors with exact ground truth.

    Attributes
    ----------
    name : str
    train : numpy.ndarray, shape (n_t, d), float32
        Vectors to train quantizers on.
    base : numpy.ndarray, shape (n_b, d), float32
        Database vectors that are indexed.
    queries : numpy.ndarray, shape (n_q, d), float32
    gt : numpy.ndarray, shape (n_q, min(100, n_b)), int64
        Exact nearest neighbours of each query in ``base``, best first.
    labels_base, labels_queries : numpy.ndarray of int64, shapes (n_b,), (n_q,), or None
        Class labels where the data has them.
    metric : int
        ``faiss.METRIC_L2`` or ``faiss.METRIC_INNER_PRODUCT``.
    labels_train : numpy.ndarray of int64, shape (n_t,), or None
        Labels of ``train`` (for supervised training).
    """

    name: str
    train: np.ndarray
    base: np.ndarray
    queries: np.ndarray
    gt: np.ndarray
    labels_base: Optional[np.ndarray]
    labels_queries: Optional[np.ndarray]
    metric: int
    labels_train: Optional[np.ndarray] = None

    @property
    def d(self) -> int:
        """Vector dimension."""
        return int(self.base.shape[1])

    @property
    def metric_name(self) -> str:
        """``"L2"`` or ``"IP"``."""
        return "L2" if self.metric == faiss.METRIC_L2 else "IP"


def exact_knn(queries: np.ndarray, base: np.ndarray, k: int, metric: int) -> np.ndarray:
    """Exact k nearest neighbours (Faiss brute force). Returns (n_q, k) int64 ids."""
    _, ids = faiss.knn(np.ascontiguousarray(queries, dtype=np.float32),
                       np.ascontiguousarray(base, dtype=np.float32), k, metric=metric)
    return ids.astype(np.int64)


def load_dataset(name_or_path: PathLike) -> Dataset:
    """Load a benchmark data set by name or from a file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        ``"digits"``: the scikit-learn digits as 64-d pixel vectors in [0, 1],
        L2, with a stratified held-out query split (train = base).
        ``"minilm"``: the shipped sentence embeddings, inner product.
        A ``.npy`` / ``.fvecs`` / ``.bvecs`` file: L2, queries split off with a
        fixed seed. An ann-benchmarks ``.hdf5`` / ``.h5`` file: ``train`` is the
        base, ``test`` the queries, ``neighbors`` the ground truth (computed
        when absent or too short) and the ``distance`` attribute the metric
        (``angular`` vectors are normalized and searched by inner product).

    Returns
    -------
    Dataset
    """
    name = os.fspath(name_or_path)
    if name == "digits":
        return _digits_dataset()
    if name == "minilm":
        return _split_dataset("minilm", load_text_embeddings(), faiss.METRIC_INNER_PRODUCT)
    path = Path(name)
    if not path.exists():
        raise ValueError(f"unknown dataset {name!r}: not 'digits', 'minilm' or an existing file")
    if path.suffix.lower() in _HDF5_SUFFIXES:
        return _ann_benchmarks_dataset(path)
    if path.suffix.lower() == ".ivecs":
        raise ValueError(f"{path}: .ivecs holds integer ids, not vectors to index")
    x = load_vectors(path)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return _split_dataset(path.stem, x, faiss.METRIC_L2)


def _digits_dataset() -> Dataset:
    from sklearn.model_selection import train_test_split

    images, labels = load_digits_images()
    x = images.reshape(len(images), -1)
    xb, xq, yb, yq = train_test_split(x, labels, test_size=0.2, stratify=labels, random_state=SPLIT_SEED)
    xb, xq = np.ascontiguousarray(xb), np.ascontiguousarray(xq)
    gt = exact_knn(xq, xb, min(GT_K, len(xb)), faiss.METRIC_L2)
    return Dataset("digits", xb, xb, xq, gt, yb, yq, faiss.METRIC_L2, labels_train=yb)


def _split_dataset(name: str, x: np.ndarray, metric: int) -> Dataset:
    """Split one array into base and queries with a fixed seed; train is a subset of base."""
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"dataset {name!r} needs at least 2 vectors, got shape {x.shape}")
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(x.shape[0])
    n_q = min(1000, max(1, x.shape[0] // 10))
    xq = np.ascontiguousarray(x[np.sort(order[:n_q])], dtype=np.float32)
    xb = np.ascontiguousarray(x[np.sort(order[n_q:])], dtype=np.float32)
    xt = xb if len(xb) <= MAX_TRAIN else xb[np.sort(rng.choice(len(xb), MAX_TRAIN, replace=False))]
    gt = exact_knn(xq, xb, min(GT_K, len(xb)), metric)
    return Dataset(name, xt, xb, xq, gt, None, None, metric)


_ANN_METRICS = {"euclidean": faiss.METRIC_L2, "angular": faiss.METRIC_INNER_PRODUCT,
                "dot": faiss.METRIC_INNER_PRODUCT, "ip": faiss.METRIC_INNER_PRODUCT}


def _ann_benchmarks_dataset(path: Path) -> Dataset:
    h5py = _import_h5py()
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("train", "test") if k not in f]
            if missing:
                raise ValueError(f"{path}: not an ann-benchmarks file, missing datasets {missing}")
            distance = f.attrs.get("distance", "euclidean")
            if isinstance(distance, bytes):
                distance = distance.decode()
            neighbors = np.asarray(f["neighbors"][()]) if "neighbors" in f else None
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file: {exc}") from exc
    if distance not in _ANN_METRICS:
        raise ValueError(f"{path}: unsupported distance {distance!r} (supported: {sorted(_ANN_METRICS)})")
    metric = _ANN_METRICS[distance]
    xb = np.ascontiguousarray(load_vectors(path, "train"), dtype=np.float32)
    xq = np.ascontiguousarray(load_vectors(path, "test"), dtype=np.float32)
    if xb.shape[1] != xq.shape[1]:
        raise ValueError(f"{path}: train has d={xb.shape[1]} but test has d={xq.shape[1]}")
    if distance == "angular":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    k = min(GT_K, len(xb))
    if neighbors is not None and neighbors.ndim == 2 and neighbors.shape[0] == len(xq) and neighbors.shape[1] >= k:
        gt = neighbors[:, :k].astype(np.int64)
    else:
        gt = exact_knn(xq, xb, k, metric)
    rng = np.random.default_rng(SPLIT_SEED)
    xt = xb if len(xb) <= MAX_TRAIN else xb[np.sort(rng.choice(len(xb), MAX_TRAIN, replace=False))]
    return Dataset(path.stem, xt, xb, xq, gt, None, None, metric)
