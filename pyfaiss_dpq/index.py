"""The Python face of the C++ IndexDPQ: a genuine ``faiss.Index``."""

from __future__ import annotations

import faiss
import numpy as np

from ._native import core
from ._native_index import NativeIndex
from ._validate import as_bool, as_count, as_ids, as_int, int_property

__all__ = ["IndexDPQ", "SearchParametersDPQ", "downcast"]

class IndexDPQ(NativeIndex):
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
        ``faiss.METRIC_L2`` or ``faiss.METRIC_INNER_PRODUCT``. For cosine
        similarity use ``METRIC_INNER_PRODUCT`` with ``cosine=True``; plain
        inner product is for true maximum inner product search.
    norms : str, optional
        How an L2 index keeps the prefix norms ``||r_m||^2`` its distances
        need: ``"float32"`` (exact, 4 bytes per stored prefix), ``"8bit"`` or
        ``"4bit"`` (non-uniform codes, one 1-D k-means quantizer per prefix,
        trained by ``train`` or on the first vectors added), or ``"none"``.
        Where a searched prefix has no float32 norm, the scan ranks with what
        is kept and re-scores a shortlist exactly (``SearchParametersDPQ.shortlist``):
        returned distances are always exact. Default: ``"float32"`` for L2,
        ``"none"`` for inner product (the only choice there, but for a
        cosine index's optional ``"float32"``).
    norm_prefixes : sequence of int, optional
        Keep norms only for these prefixes (1..levels); default every prefix.
    cosine : bool, optional
        Compare directions (``METRIC_INNER_PRODUCT`` only): training, added
        and query vectors are scaled to unit norm (a zero vector is a
        ValueError), a stored vector's reconstruction at prefix m is
        ``r_m / ||r_m||``, and searches return the cosine similarity
        ``<q, r_m> / ||r_m||`` of the unit query. The scan ranks by
        ``<q, r_m>`` and its best ``SearchParametersDPQ.shortlist`` are
        re-scored exactly, ``||r_m||`` computed from the code, or read where
        ``norms="float32"`` keeps it (4 bytes per prefix in
        ``norm_prefixes``; the default keeps none). On unit sentence
        embeddings this ranks above both inner product and L2 with the
        prefix norm (README, "Cosine").

    Notes
    -----
    ``train`` learns the codebooks with the torch-free trainer
    (:func:`pyfaiss_dpq.train_codebooks`, knobs in ``train_params``);
    ``codebooks`` can also be set from a trained model (see ``pyfaiss_dpq.train``).
    """

    NORMS = ("none", "float32", "8bit", "4bit")

    def __init__(self, d: int, levels: int, nbits: int = 8, metric: int = faiss.METRIC_L2,
                 norms: str | None = None, norm_prefixes=None, cosine: bool = False):
        # The C++ constructor checks d, levels, nbits and metric (ValueError naming the bad one).
        d, levels, nbits = as_int(d, "d"), as_int(levels, "levels"), as_int(nbits, "nbits")
        metric = as_int(metric, "metric")
        if norms is None:
            norms = "float32" if metric == faiss.METRIC_L2 else "none"
        if not isinstance(norms, str) or norms not in self.NORMS:
            raise ValueError(f"norms must be one of {self.NORMS}, got {norms!r}")
        prefixes = _norm_prefixes(norm_prefixes)
        self.this = core.new_index(d, levels, nbits, metric, norms, prefixes, as_bool(cosine, "cosine"))
        self._register()

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
        # C++ refuses non-finite values and a replacement while vectors are stored.
        core.set_codebooks(self, np.ascontiguousarray(arr, dtype=np.float32))

    search_levels = int_property("search_levels", "Default prefix length used by search (1..levels).",
                                   core.get_search_levels, core.set_search_levels)
    beam_size = int_property("beam_size", "Beam width of encoding (1 = greedy); wider finds better codes, slower.",
                               core.get_beam_size, core.set_beam_size)

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
        """Stored bytes per vector: packed codes plus the stored prefix norms (rounded up)."""
        return core.bytes_per_vector(self)

    @property
    def norms(self) -> str:
        """How prefix norms are kept: 'none', 'float32', '8bit' or '4bit' (read-only)."""
        return core.norm_spec(self)[0]

    @property
    def cosine(self) -> bool:
        """Whether the index compares directions (unit vectors, cosine similarity; read-only)."""
        return core.cosine(self)

    @property
    def norm_prefixes(self) -> tuple:
        """The prefixes whose norms are kept, ascending (read-only)."""
        return tuple(core.norm_spec(self)[1])

    @property
    def norm_centroids(self) -> np.ndarray:
        """Centroids of the norm quantizers, shape (len(norm_prefixes), K), ascending per row.

        Empty until trained (quantized ``norms`` only). Settable while the index is empty.
        """
        return core.get_norm_centroids(self)

    @norm_centroids.setter
    def norm_centroids(self, value) -> None:
        arr = np.ascontiguousarray(value, dtype=np.float32)
        core.set_norm_centroids(self, arr)

    def truncated(self, levels: int, norm_prefixes=None) -> "IndexDPQ":
        """The first ``levels`` levels as an index of their own, without re-encoding.

        Equal to a fresh ``levels``-level index given the same codebooks, norm
        centroids and codes. It keeps the norms of the stored prefixes <= levels,
        or only those of ``norm_prefixes`` (stored ones; empty: none). One
        training and one encoding pass thus serve every memory budget.
        """
        keep = None if norm_prefixes is None else [as_int(p, "norm_prefixes") for p in norm_prefixes]
        # C++ checks: trained, 1 <= levels <= self.levels, prefixes distinct, stored and <= levels.
        return IndexDPQ._adopt(core.truncated(self, as_int(levels, "levels"), keep))

    # ------------------------------------------------------------ entry points
    # Arrays are converted here; every rule on their values (finiteness,
    # counts, k, levels) is checked once, by the C++ core.
    def train(self, x) -> None:
        """Learn the codebooks with the torch-free trainer and ``train_params``. x: (n, d), n >= K."""
        from .codebooks import warn_if_few

        x = self._vectors(x)
        warn_if_few(x.shape[0], self.nbits)
        core.train(self, x)

    def add(self, x) -> None:
        """Encode and append vectors. x: (n, d)."""
        core.add(self, self._vectors(x))

    def sa_encode(self, x) -> np.ndarray:
        """Packed codes, shape (n, sa_code_size()), uint8."""
        return core.sa_encode(self, self._vectors(x))

    def sa_decode(self, codes) -> np.ndarray:
        """Reconstructions (n, d) of packed codes (n, sa_code_size())."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.sa_code_size():
            raise ValueError(f"codes must have shape (n, {self.sa_code_size()}), got {codes.shape}")
        return super().sa_decode(codes)

    def add_sa_codes(self, codes, ids=None) -> None:
        """Append packed codes (n, sa_code_size()) without re-encoding."""
        if ids is not None:
            raise ValueError("IndexDPQ ids are sequential; wrap it in faiss.IndexIDMap2 to use ids")
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.sa_code_size():
            raise ValueError(f"codes must have shape (n, {self.sa_code_size()}), got {codes.shape}")
        core.add_sa_codes(self, codes)  # C++ checks: trained, no bits past the last level

    def reconstruct(self, key, x=None) -> np.ndarray:
        """Reconstruction of stored vector `key` from all levels, shape (d,); IndexError out of range."""
        out = self.reconstruct_prefix(key, self.levels)
        if x is not None:
            x[...] = out
            return x
        return out

    def reconstruct_prefix(self, key: int, levels: int) -> np.ndarray:
        """Reconstruction of stored vector `key` from its first `levels` levels, shape (d,)."""
        # C++ checks: 0 <= key < ntotal (IndexError), 1 <= levels <= self.levels (ValueError).
        return core.reconstruct_prefix(self, as_int(key, "key"), as_int(levels, "levels"))

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
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu" or codes.ndim != 2 or codes.shape[1] != self.levels:
            raise ValueError(f"codes must be integers of shape (n, {self.levels}), got {codes.dtype} {codes.shape}")
        # Values a byte cannot hold are refused before the conversion wraps them; C++ checks < K.
        if codes.size and (codes.min() < 0 or codes.max() > 255):
            raise ValueError(f"codes must be in [0, {1 << self.nbits}), got values in [{codes.min()}, {codes.max()}]")
        core.add_codes(self, np.ascontiguousarray(codes, dtype=np.uint8))

    def merge_from(self, other, add_id: int = 0) -> None:
        """Move all vectors of another IndexDPQ with identical codebooks into this one."""
        other = downcast(other)
        if not isinstance(other, IndexDPQ):
            raise TypeError("merge_from expects an IndexDPQ")
        if add_id != 0:
            raise ValueError("IndexDPQ ids are sequential: add_id must be 0")
        super().merge_from(other, 0)

    def __repr__(self) -> str:
        metric = "L2" if self.metric_type == faiss.METRIC_L2 else "IP"
        cosine = ", cosine=True" if self.cosine else ""
        return (f"IndexDPQ(d={self.d}, levels={self.levels}, nbits={self.nbits}, metric={metric}{cosine}, "
                f"norms={self.norms!r}, ntotal={self.ntotal}, is_trained={self.is_trained})")


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
    shortlist : int
        L2 at a prefix without a float32 norm, and cosine indexes: how many
        of the scan's best are re-scored exactly (at least k); 0:
        ``DEFAULT_SHORTLIST``.
    sel : faiss.IDSelector, optional
        Restrict the search to these ids.
    """

    DEFAULT_SHORTLIST = core.DEFAULT_SHORTLIST

    def __init__(self, levels: int = 0, rerank_levels: int = 0, rerank_k: int = 0, shortlist: int = 0, sel=None):
        self.this = core.new_search_parameters()
        self.levels = levels
        self.rerank_levels = rerank_levels
        self.rerank_k = rerank_k
        self.shortlist = shortlist
        if sel is not None:
            self.sel = sel

    def _field(name: str, doc: str):  # noqa: N805 - property factory used in the class body
        return int_property(name, doc, lambda p: core.params_get(p, name), lambda p, v: core.params_set(p, name, v))

    levels = _field("levels", "Prefix length to scan; 0 uses the index's search_levels.")
    rerank_levels = _field("rerank_levels", "Levels used to re-score candidates; 0 disables re-ranking.")
    rerank_k = _field("rerank_k", "How many short-prefix candidates to re-score.")
    shortlist = _field("shortlist", "How many scan candidates to re-score exactly (no float32 norm, or cosine; 0: default).")
    del _field

    def __repr__(self) -> str:
        return (f"SearchParametersDPQ(levels={self.levels}, rerank_levels={self.rerank_levels}, "
                f"rerank_k={self.rerank_k}, shortlist={self.shortlist})")


def _norm_prefixes(value) -> list[int] | None:
    """The declared norm prefixes as a sorted list of ints (None: every prefix); C++ checks them."""
    if value is None:
        return None
    try:
        return sorted(int(p) for p in value)
    except TypeError as exc:
        raise TypeError(f"norm_prefixes must be a sequence of ints, got {type(value).__name__}") from exc


def downcast(index):
    """Turn a plain ``faiss.Index`` that refers to an IndexDPQ back into the IndexDPQ.

    Any other index is returned as ``faiss.downcast_index`` would return it.
    """
    if isinstance(index, IndexDPQ):
        return index
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}")
    if core.is_dpq(index):
        return IndexDPQ._face_of(index)
    return faiss.downcast_index(index)
