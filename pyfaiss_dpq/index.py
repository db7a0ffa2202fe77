"""The Python face of the C++ IndexDPQ: a genuine ``faiss.Index``."""

from __future__ import annotations

import weakref

import faiss
import numpy as np

from ._native import core
from ._validate import as_count, as_ids, as_vectors

__all__ = ["IndexDPQ", "SearchParametersDPQ", "downcast"]

# C++ address -> live Python IndexDPQ, so that downcast() returns the very
# object a user made when a Faiss wrapper hands back a plain faiss.Index.
_live: "weakref.WeakValueDictionary[int, IndexDPQ]" = weakref.WeakValueDictionary()


class IndexDPQ(faiss.Index):
    """Deep progressive quantizer index, searchable at any prefix of its levels.

    Each vector is coded as ``levels`` indices of ``nbits`` bits; level l
    quantizes the residual left by levels 1..l-1, and the reconstruction is
    the sum of the chosen codewords. Searching with the first m levels reads
    only those levels of every code.

    Parameters
    ----------
    d : int
        Vector dimension.
    levels : int
        Number of codebooks L (1..255).
    nbits : int
        Bits per level: 4 (K=16 codewords) or 8 (K=256).
    metric : int
        ``faiss.METRIC_L2`` or ``faiss.METRIC_INNER_PRODUCT``. For L2 the
        index also stores the exact squared norm of every prefix
        reconstruction (4 bytes per level per vector; see ``bytes_per_vector``).

    Notes
    -----
    ``train`` learns the codebooks with the torch-free trainer
    (:func:`pyfaiss_dpq.train_codebooks`, knobs in ``train_params``);
    ``codebooks`` can also be set from a trained model (see ``pyfaiss_dpq.train``).
    """

    def __init__(self, d: int, levels: int, nbits: int = 8, metric: int = faiss.METRIC_L2):
        d = as_count(d, "d", 1)
        levels = as_count(levels, "levels", 1, 255)
        nbits = as_count(nbits, "nbits", 4, 8)
        if nbits not in (4, 8):
            raise ValueError(f"nbits must be 4 or 8, got {nbits}")
        if metric not in (faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT):
            raise ValueError(f"metric must be faiss.METRIC_L2 or faiss.METRIC_INNER_PRODUCT, got {metric}")
        self.this = core.new_index(d, levels, nbits, int(metric))
        _live[int(self.this)] = self

    @classmethod
    def _adopt(cls, swig_this, keep_alive=None) -> "IndexDPQ":
        obj = cls.__new__(cls)
        obj.this = swig_this
        if keep_alive is not None:
            obj.referenced_objects = [keep_alive]
        _live[int(obj.this)] = obj
        return obj

    # ------------------------------------------------------------ attributes
    levels = property(lambda self: core.levels(self), doc="Number of levels L (read-only).")
    nbits = property(lambda self: core.nbits(self), doc="Bits per level code, 4 or 8 (read-only).")

    @property
    def codebooks(self) -> np.ndarray:
        """Codebooks, shape (levels, K, d), float32 (a copy). Settable while empty."""
        return core.get_codebooks(self)

    @codebooks.setter
    def codebooks(self, value) -> None:
        K = 1 << self.nbits
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"codebooks must be real numbers, got dtype {arr.dtype}")
        if arr.shape != (self.levels, K, self.d):
            raise ValueError(f"codebooks must have shape {(self.levels, K, self.d)}, got {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("codebooks contain NaN or infinity")
        if self.ntotal > 0:
            raise RuntimeError("cannot replace codebooks while the index holds vectors; call reset() first")
        core.set_codebooks(self, arr)

    @property
    def search_levels(self) -> int:
        """Default prefix length used by search (1..levels)."""
        return core.get_search_levels(self)

    @search_levels.setter
    def search_levels(self, value: int) -> None:
        core.set_search_levels(self, as_count(value, "search_levels", 1, self.levels))

    @property
    def beam_size(self) -> int:
        """Beam width of encoding (1 = greedy); wider finds better codes, slower."""
        return core.get_beam_size(self)

    @beam_size.setter
    def beam_size(self, value: int) -> None:
        core.set_beam_size(self, as_count(value, "beam_size", 1, 1024))

    @property
    def train_params(self):
        """Knobs of ``train`` (a live :class:`pyfaiss_dpq.TrainParameters`; edits apply to the next train)."""
        return core.get_train_params(self)

    @train_params.setter
    def train_params(self, value) -> None:
        from .codebooks import TrainParameters

        if not isinstance(value, TrainParameters):
            raise TypeError(f"train_params must be a TrainParameters, got {type(value).__name__}")
        core.set_train_params(self, value)

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per vector: packed codes plus, for L2, 4 bytes of norm per level."""
        return core.bytes_per_vector(self)

    # ------------------------------------------------------------ validated entry points
    def train(self, x) -> None:
        """Learn the codebooks with the torch-free trainer and ``train_params``. x: (n, d), n >= K."""
        from .codebooks import warn_if_few

        x = as_vectors(x, self.d)
        K = 1 << self.nbits
        if x.shape[0] < K:
            raise ValueError(f"train needs at least {K} vectors (K codewords per level), got {x.shape[0]}")
        self.train_params.validate(self.levels)
        warn_if_few(x.shape[0], self.nbits)
        super().train(x)

    def add(self, x) -> None:
        """Encode and append vectors. x: (n, d)."""
        self._require_trained()
        super().add(as_vectors(x, self.d))

    def search(self, x, k, *, params=None, D=None, I=None):
        """k nearest neighbours of each query. x: (nq, d) -> (D, I), each (nq, k).

        ``params=SearchParametersDPQ(levels=m)`` scans the first m levels;
        ids are -1 (distance +-FLT_MAX) where fewer than k vectors qualify.
        """
        self._require_trained()
        x = as_vectors(x, self.d)
        k = as_count(k, "k", 1)
        self._check_params(params)
        return super().search(x, k, params=params, D=D, I=I)

    def range_search(self, x, thresh, *, params=None):
        """All vectors within `thresh` (L2: distance < thresh; IP: similarity > thresh)."""
        self._require_trained()
        x = as_vectors(x, self.d)
        self._check_params(params)
        return super().range_search(x, float(thresh), params=params)

    def sa_encode(self, x) -> np.ndarray:
        """Packed codes, shape (n, sa_code_size()), uint8."""
        self._require_trained()
        return super().sa_encode(as_vectors(x, self.d))

    def sa_decode(self, codes) -> np.ndarray:
        """Reconstructions (n, d) of packed codes (n, sa_code_size())."""
        self._require_trained()
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.sa_code_size():
            raise ValueError(f"codes must have shape (n, {self.sa_code_size()}), got {codes.shape}")
        return super().sa_decode(codes)

    def add_sa_codes(self, codes, ids=None) -> None:
        """Append packed codes (n, sa_code_size()) without re-encoding."""
        self._require_trained()
        if ids is not None:
            raise ValueError("IndexDPQ ids are sequential; wrap it in faiss.IndexIDMap2 to use ids")
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.sa_code_size():
            raise ValueError(f"codes must have shape (n, {self.sa_code_size()}), got {codes.shape}")
        if self.nbits == 4 and self.levels % 2 and codes.size and (codes[:, -1] >> 4).any():
            raise ValueError("a code has bits set past its last level (odd number of 4-bit levels)")
        super().add_sa_codes(codes)

    def reconstruct(self, key, x=None) -> np.ndarray:
        """Reconstruction of stored vector `key` from all levels, shape (d,)."""
        key = as_count(key, "key", 0, self.ntotal - 1) if self.ntotal else self._empty_key(key)
        return super().reconstruct(key, x) if x is not None else super().reconstruct(key)

    def reconstruct_prefix(self, key: int, levels: int) -> np.ndarray:
        """Reconstruction of stored vector `key` from its first `levels` levels, shape (d,)."""
        key = as_count(key, "key", 0, max(self.ntotal - 1, 0))
        return core.reconstruct_prefix(self, key, as_count(levels, "levels", 1, self.levels))

    def reconstruct_n(self, n0=0, ni=-1, x=None) -> np.ndarray:
        """Reconstructions of stored vectors [n0, n0 + ni), shape (ni, d)."""
        if ni == -1:
            ni = self.ntotal - n0
        n0 = as_count(n0, "n0", 0, self.ntotal)
        ni = as_count(ni, "ni", 0, self.ntotal - n0)
        return super().reconstruct_n(n0, ni, x) if x is not None else super().reconstruct_n(n0, ni)

    def reconstruct_batch(self, keys, x=None) -> np.ndarray:
        """Reconstructions of the stored vectors `keys`, shape (len(keys), d)."""
        keys = as_ids(keys, name="keys")
        if keys.size and (keys.min() < 0 or keys.max() >= self.ntotal):
            raise IndexError(f"keys must be in [0, {self.ntotal}), got range [{keys.min()}, {keys.max()}]")
        return super().reconstruct_batch(keys, x) if x is not None else super().reconstruct_batch(keys)

    def get_codes(self, i0: int = 0, n: int | None = None) -> np.ndarray:
        """Level indices of stored vectors [i0, i0 + n), shape (n, levels), uint8."""
        i0 = as_count(i0, "i0", 0, self.ntotal)
        n = self.ntotal - i0 if n is None else as_count(n, "n", 0, self.ntotal - i0)
        return core.get_codes(self, i0, n)

    def add_codes(self, codes) -> None:
        """Append vectors given by their level indices, shape (n, levels)."""
        self._require_trained()
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu" or codes.ndim != 2 or codes.shape[1] != self.levels:
            raise ValueError(f"codes must be integers of shape (n, {self.levels}), got {codes.dtype} {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= (1 << self.nbits)):
            raise ValueError(f"codes must be in [0, {1 << self.nbits})")
        core.add_codes(self, np.ascontiguousarray(codes, dtype=np.uint8))

    def merge_from(self, other, add_id: int = 0) -> None:
        """Move all vectors of another IndexDPQ with identical codebooks into this one."""
        other = downcast(other)
        if not isinstance(other, IndexDPQ):
            raise TypeError("merge_from expects an IndexDPQ")
        if add_id != 0:
            raise ValueError("IndexDPQ ids are sequential: add_id must be 0")
        super().merge_from(other, 0)

    # ------------------------------------------------------------ helpers
    def _require_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError("IndexDPQ is not trained: call train(x) or set codebooks first")

    def _empty_key(self, key):
        raise IndexError(f"key {key} out of range: the index is empty")

    def _check_params(self, params) -> None:
        if params is None:
            return
        if not isinstance(params, faiss.SearchParameters):
            raise TypeError(f"params must be a faiss.SearchParameters, got {type(params).__name__}")
        if isinstance(params, SearchParametersDPQ):
            params._check(self.levels)

    def __repr__(self) -> str:
        metric = "L2" if self.metric_type == faiss.METRIC_L2 else "IP"
        return (f"IndexDPQ(d={self.d}, levels={self.levels}, nbits={self.nbits}, metric={metric}, "
                f"ntotal={self.ntotal}, is_trained={self.is_trained})")

    def __getstate__(self):
        from .io import serialize

        return {"bytes": serialize(self)}

    def __setstate__(self, state):
        from .io import deserialize

        other = deserialize(state["bytes"])
        self.this = other.this
        _live[int(self.this)] = self


class SearchParametersDPQ(faiss.SearchParameters):
    """Per-call search settings of an IndexDPQ (a genuine faiss.SearchParameters).

    Parameters
    ----------
    levels : int
        Prefix length m to scan (0: the index's ``search_levels``).
    rerank_levels : int
        If > levels, re-score the best ``rerank_k`` candidates with this many levels.
    rerank_k : int
        Number of candidates to re-score (at least k).
    sel : faiss.IDSelector, optional
        Restrict the search to these ids.
    """

    def __init__(self, levels: int = 0, rerank_levels: int = 0, rerank_k: int = 0, sel=None):
        self.this = core.new_search_parameters()
        self.levels = levels
        self.rerank_levels = rerank_levels
        self.rerank_k = rerank_k
        if sel is not None:
            self.sel = sel

    def _field(name: str, doc: str):  # noqa: N805 - property factory used in the class body
        def get(self):
            return core.params_get(self, name)

        def set_(self, value):
            core.params_set(self, name, as_count(value, name, 0, 2**31 - 1))

        return property(get, set_, doc=doc)

    levels = _field("levels", "Prefix length to scan; 0 uses the index's search_levels.")
    rerank_levels = _field("rerank_levels", "Levels used to re-score candidates; 0 disables re-ranking.")
    rerank_k = _field("rerank_k", "How many short-prefix candidates to re-score.")
    del _field

    def _check(self, levels: int) -> None:
        if self.levels > levels:
            raise ValueError(f"SearchParametersDPQ.levels must be in [0, {levels}], got {self.levels}")
        if self.rerank_levels and not (max(self.levels, 1) <= self.rerank_levels <= levels):
            raise ValueError(f"rerank_levels must be in [levels, {levels}], got {self.rerank_levels}")
        if self.rerank_k and not self.rerank_levels:
            raise ValueError("rerank_k needs rerank_levels")

    def __repr__(self) -> str:
        return (f"SearchParametersDPQ(levels={self.levels}, rerank_levels={self.rerank_levels}, "
                f"rerank_k={self.rerank_k})")


def downcast(index):
    """Turn a plain ``faiss.Index`` that refers to an IndexDPQ back into the IndexDPQ.

    Any other index is returned as ``faiss.downcast_index`` would return it.
    """
    if isinstance(index, IndexDPQ):
        return index
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}")
    if core.is_dpq(index):
        live = _live.get(int(index.this))
        if live is not None:
            return live
        return IndexDPQ._adopt(index.this, keep_alive=index)
    return faiss.downcast_index(index)
