"""The Python face of the C++ IndexIVFDPQ: a genuine ``faiss.Index``."""

from __future__ import annotations

import faiss
import numpy as np

from ._native import core
from ._native_index import NativeIndex
from .index import _norm_prefixes
from ._validate import as_bool, as_ids, as_int, int_property

__all__ = ["IndexIVFDPQ", "SearchParametersIVFDPQ"]

class IndexIVFDPQ(NativeIndex):
    """Inverted file of progressive (residual) codes, searchable at any prefix.

    Each vector goes to the list of its nearest coarse centroid c and is coded
    as ``levels`` indices of ``nbits`` bits of its residual from c. Searches
    compute one lookup table per query for all the lists it probes.

    Parameters
    ----------
    quantizer : faiss.Index
        The coarse quantizer (``faiss.IndexFlatL2``, ``IndexFlatIP``,
        ``IndexHNSWFlat``, ...), of dimension d: empty (``train`` fills it by
        k-means) or already holding ``nlist`` centroids. Kept alive by this
        index; not copied.
    d, nlist, levels, nbits, metric
        As ``faiss.IndexIVFPQ(quantizer, d, nlist, M, nbits, metric)``:
        ``nbits`` 4 or 8, ``metric`` ``METRIC_L2`` or ``METRIC_INNER_PRODUCT``.
    norms : {'float32', '8bit', '4bit'}, optional
        L2: how the prefix norms ``||r_m||^2`` are kept. ``'float32'`` (the
        default; 4 bytes a prefix) ranks with them exactly. ``'8bit'`` and
        ``'4bit'`` keep a 1-D k-means code (1 byte, half a byte) of
        ``||r_m||^2`` less its own terms (one quantizer per prefix for every
        list, trained by ``train``; always relative to the centroid): the scan
        ranks with the code (4-bit norms of 4-bit levels, 8-bit of 8-bit: one
        more table lookup) and its best ``SearchParametersIVFDPQ.shortlist``
        are re-scored with the exact norm computed from the code, so returned
        distances are exact. Cosine: ``'float32'`` where ``norm_prefixes`` are
        declared, else ``'none'``.
    norm_prefixes : sequence of int, optional
        L2: the prefixes m whose norms ``||r_m||^2`` (relative to the list's
        centroid; see ``relative_norms``) are kept, as ``norms`` says;
        searches scan one of these. Default: every prefix.
        A cosine index keeps none by default; those declared here spare its
        re-score computing ``||c + r_m||`` at those prefixes (4-bit codes:
        m + m^2/2 table lookups; 8-bit: decoding).
    cosine : bool, optional
        ``METRIC_INNER_PRODUCT`` only: compare directions, as
        ``IndexDPQ(..., cosine=True)``, over ``c + r_m``: training, added and
        query vectors are scaled to unit norm, searches return
        ``<q, c + r_m> / ||c + r_m||`` (the scan ranks by ``<q, c + r_m>``
        and its best ``SearchParametersIVFDPQ.shortlist`` are re-scored, the
        norm computed from the code), ``reconstruct`` is the unit vector.
        No bytes are stored beyond the codes.

    Notes
    -----
    ``train`` runs k-means (Faiss's; two-level from ``two_level_min_nlist``
    lists) for the coarse level when the quantizer is empty, then trains the levels on residuals with
    :func:`pyfaiss_dpq.train_codebooks` (``train_params``) unless
    ``codebooks`` were set first (e.g. from a trained flat ``IndexDPQ``).
    Ids are stored per list (``add_with_ids``); ``bytes_per_vector`` counts
    codes and norms, not the 8-byte ids every IVF index keeps.
    """

    def __init__(self, quantizer, d: int, nlist: int, levels: int, nbits: int = 8,
                 metric: int = faiss.METRIC_L2, norms: str | None = None, norm_prefixes=None,
                 cosine: bool = False):
        if not isinstance(quantizer, faiss.Index):
            raise TypeError(f"quantizer must be a faiss.Index, got {type(quantizer).__name__}")
        d, nlist, levels = as_int(d, "d"), as_int(nlist, "nlist"), as_int(levels, "levels")
        nbits, metric = as_int(nbits, "nbits"), as_int(metric, "metric")
        if nlist < 1:
            raise ValueError(f"nlist must be >= 1, got {nlist}")
        if norms is not None and not isinstance(norms, str):
            raise TypeError(f"norms must be a str or None, got {type(norms).__name__}")
        prefixes = _norm_prefixes(norm_prefixes)  # C++ checks them and norms
        self.this = core.ivf_new(quantizer, d, nlist, levels, nbits, metric, norms, prefixes,
                                 as_bool(cosine, "cosine"))
        self.referenced_objects = [quantizer]
        self._register()

    # ------------------------------------------------------------ attributes
    def _info(self) -> dict:
        return core.ivf_info(self)

    nlist = property(lambda self: self._info()["nlist"], doc="Number of inverted lists (read-only).")
    levels = property(lambda self: self._info()["levels"], doc="Number of levels L (read-only).")
    nbits = property(lambda self: self._info()["nbits"], doc="Bits per level code, 4 or 8 (read-only).")
    norm_prefixes = property(lambda self: tuple(self._info()["norm_prefixes"]),
                             doc="Prefixes whose norms are kept (L2), ascending (read-only).")
    norms = property(lambda self: self._info()["norms"],
                     doc="How prefix norms are kept: 'none', 'float32', '8bit' or '4bit' (read-only).")

    norm_centroids = property(
        lambda self: core.ivf_get_norm_centroids(self),
        doc="Quantized norms: the centroids of each stored prefix's code, (prefixes, 16 or 256), ascending per "
            "row; empty until trained (read-only).")

    cosine = property(lambda self: self._info()["cosine"],
                      doc="Whether the index compares directions (unit vectors, cosine similarity; read-only).")
    @property
    def relative_norms(self) -> bool:
        """L2: whether the stored norms are ``||r_m||^2``, relative to the list's centroid, rather than
        ``||c + r_m||^2`` (as in every file before format 4, still read and searched as written).

        With relative norms each (query, list) pair quantizes its own table, whose entries span
        ``<q - c, codeword>`` instead of ``<q, codeword>``: a finer scan, so fewer candidates re-scored,
        where vectors lie far from the origin (image pixels), at a cost per pair elsewhere. Unless set,
        ``train`` chooses them where the training vectors' residuals from their centroids hold less than
        1/16 of their energy (image patches: 0.017; unit-norm embeddings: about 0.3-0.5) and the centroids'
        tables fit in ``max_centroid_table_bytes`` (else each scanned list's would be computed). Settable
        (bool, METRIC_L2) while no vector is stored; ``train`` then keeps the choice. False for inner
        product.
        """
        return self._info()["relative_norms"]

    @relative_norms.setter
    def relative_norms(self, value) -> None:
        core.ivf_set_relative_norms(self, as_bool(value, "relative_norms"))

    centroid_table_bytes = property(
        lambda self: self._info()["centroid_table_bytes"],
        doc="RAM kept for the centroids' lookup tables (relative norms: nlist x levels x K floats, up to "
            "``max_centroid_table_bytes``; 0 where they would take more). Not stored in files (read-only).")
    bytes_per_vector = property(lambda self: self._info()["bytes_per_vector"],
                                doc="Stored bytes per vector: codes plus norms, rounded up (ids apart, 8 bytes).")
    read_only = property(lambda self: not self._info()["writable"], doc="True for a memory-mapped index.")
    coarse_search = property(
        lambda self: self._info()["coarse_search"],
        doc="How searches pick the lists to probe: 'centroids' (the index ranks its copy of the centroids "
            "with its lookup-table kernel; chosen when the quantizer is a plain IndexFlat/IndexFlatL2/IndexFlatIP "
            "holding exactly those centroids, and equal to its search up to float rounding) or 'quantizer' "
            "(the quantizer's own search: HNSW and every other index). Read-only; decided when the quantizer "
            "or the centroids are set, so a quantizer changed in place afterwards is not seen: assign "
            "``index.quantizer`` again.")

    def _knob(name: str, doc: str):  # noqa: N805 - property factory used in the class body
        return int_property(name, doc, lambda ix: core.ivf_get(ix, name), lambda ix, v: core.ivf_set(ix, name, v))

    nprobe = _knob("nprobe", "Lists probed per query (clamped to nlist, as Faiss's IVF).")
    search_levels = _knob("search_levels", "Default prefix length scanned (1..levels).")
    beam_size = _knob("beam_size", "Beam width of encoding (1 = greedy).")
    two_level_min_nlist = _knob(
        "two_level_min_nlist",
        "From this nlist on (default 4096; 0: never) ``train`` clusters the coarse level in two levels: "
        "sqrt(nlist) clusters, then each split into a share of nlist proportional to its size, as "
        "faiss.contrib.clustering.two_level_clustering does (k-means time ~2 sqrt(nlist) instead of nlist "
        "centroids an iteration).")
    max_centroid_table_bytes = _knob(
        "max_centroid_table_bytes",
        "Relative norms (L2): the most RAM kept for the centroids' lookup tables, nlist x levels x K floats "
        "(default 2 GiB, as Faiss's precomputed tables); above it each scanned list's table is computed during "
        "the search instead, with the same results. ``centroid_table_bytes`` says what is kept.")
    del _knob

    @property
    def quantizer(self):
        """The coarse quantizer (a faiss.Index)."""
        ptr = core.ivf_quantizer(self)
        for obj in getattr(self, "referenced_objects", []):
            if isinstance(obj, faiss.Index) and int(obj.this) == int(ptr):
                return obj
        proxy = faiss.Index.__new__(faiss.Index)
        proxy.this = ptr
        out = faiss.downcast_index(proxy)
        out.referenced_objects = [self]  # the quantizer lives as long as this index
        return out

    @quantizer.setter
    def quantizer(self, quantizer) -> None:
        """Replaces the coarse quantizer, e.g. a flat one by an HNSW over the same
        centroids. It must have dimension d and, once trained, hold nlist vectors;
        lists keep the centroid copy (``centroids``) for their per-list terms."""
        if not isinstance(quantizer, faiss.Index):
            raise TypeError(f"IndexIVFDPQ.quantizer must be a faiss.Index, got {type(quantizer).__name__}")
        core.ivf_set_quantizer(self, quantizer, False)
        self.referenced_objects = [quantizer]

    @property
    def train_params(self):
        """Knobs of the level training (a live :class:`pyfaiss_dpq.TrainParameters`)."""
        return core.ivf_get_train_params(self)

    @train_params.setter
    def train_params(self, value) -> None:
        from .codebooks import TrainParameters

        if not isinstance(value, TrainParameters):
            raise TypeError(f"train_params must be a TrainParameters, got {type(value).__name__}")
        core.ivf_set_train_params(self, value)

    @property
    def codebooks(self) -> np.ndarray:
        """Residual codebooks, shape (levels, K, d) (a copy). Settable while empty."""
        return core.ivf_get_codebooks(self)

    @codebooks.setter
    def codebooks(self, value) -> None:
        core.ivf_set_codebooks(self, np.ascontiguousarray(value, dtype=np.float32))

    @property
    def centroids(self) -> np.ndarray:
        """The copy of the coarse centroids, shape (nlist, d) (empty before training)."""
        return core.ivf_get_centroids(self)

    def use_codebooks_of(self, flat) -> None:
        """Take the codebooks of a trained flat ``IndexDPQ`` (same d, levels, nbits).

        ``train`` then only trains the coarse quantizer: one model, flat or IVF.
        """
        from .index import downcast

        flat = downcast(flat)
        if not getattr(flat, "is_trained", False) or not hasattr(flat, "codebooks"):
            raise ValueError("use_codebooks_of expects a trained IndexDPQ")
        self.codebooks = flat.codebooks

    # ------------------------------------------------------------ lists
    def list_sizes(self) -> np.ndarray:
        """Vectors per list, shape (nlist,)."""
        return core.ivf_list_sizes(self)

    def list_ids(self, list_no: int) -> np.ndarray:
        """Ids stored in list ``list_no``, in list order."""
        return core.ivf_list_ids(self, as_int(list_no, "list_no"))

    def list_codes(self, list_no: int) -> np.ndarray:
        """Level indices of list ``list_no``'s vectors, shape (n, levels), uint8."""
        return core.ivf_list_codes(self, as_int(list_no, "list_no"))

    def list_contents(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored vector, list by list, in list order.

        Returns
        -------
        ids : ndarray of int64, shape (ntotal,)
        list_nos : ndarray of int64, shape (ntotal,)
            The list holding each vector.
        codes : ndarray of uint8, shape (ntotal, levels)
        """
        ids = [self.list_ids(l) for l in range(self.nlist)]
        list_nos = [np.full(len(i), l, np.int64) for l, i in enumerate(ids)]
        codes = [self.list_codes(l) for l in range(self.nlist)]
        return np.concatenate(ids), np.concatenate(list_nos), np.concatenate(codes)

    def verify(self) -> None:
        """Check every list now (a memory-mapped index's per-list checksums); raises on corruption."""
        core.ivf_verify(self)

    # ------------------------------------------------------------ entry points
    def train(self, x) -> None:
        """Coarse k-means (if the quantizer is empty), then the levels on residuals. x: (n, d)."""
        core.ivf_train(self, self._vectors(x))

    def add(self, x) -> None:
        """Encode and append vectors with ids ntotal, ntotal + 1, ... x: (n, d)."""
        core.ivf_add(self, self._vectors(x), None)

    def add_with_ids(self, x, ids) -> None:
        """Encode and append vectors with the given int64 ids (stored per list)."""
        x = self._vectors(x)
        ids = as_ids(ids, name="ids")
        if ids.shape != (x.shape[0],):
            raise ValueError(f"ids must have shape ({x.shape[0]},), got {ids.shape}")
        core.ivf_add(self, x, ids)

    def make_direct_map(self, on: bool = True) -> None:
        """Keep (or drop) an id -> (list, offset) map, as Faiss's IVF indexes do.

        With it, ``reconstruct`` finds an id without scanning the lists' ids
        (about 40 bytes per vector in RAM; not stored in files: call again
        after reading). While it is kept, ids are unique: adding or merging an
        id already stored raises ValueError, and building it raises when the
        index holds an id twice. It follows add, remove_ids, merge_from and
        reset. A memory-mapped index can build one (it reads every list's ids).
        """
        core.ivf_make_direct_map(self, bool(on))

    has_direct_map = property(lambda self: core.ivf_has_direct_map(self),
                              doc="Whether an id -> (list, offset) map is kept (make_direct_map).")

    def reconstruct(self, key, x=None) -> np.ndarray:
        """Centroid plus all levels of the vector stored with id `key`, shape (d,).

        From the direct map where one is kept (``make_direct_map``), else by a
        scan of the lists' ids (``reconstruct_batch`` answers many keys in one
        scan). IndexError names a key that is not stored."""
        return _into(core.ivf_reconstruct(self, np.array([as_int(key, "key")], dtype=np.int64))[0], x)

    def reconstruct_batch(self, keys, x=None) -> np.ndarray:
        """Reconstructions of the vectors stored with ids `keys` (1-D), shape (len(keys), d),
        from the direct map or in one scan of the lists' ids. IndexError names a key that is not stored."""
        return _into(core.ivf_reconstruct(self, as_ids(keys, name="keys")), x)

    def merge_from(self, other, add_id: int = 0) -> None:
        """Move every vector of another IndexIVFDPQ (same codebooks and centroids) here, ids + add_id."""
        other = downcast_ivf(other)
        if not isinstance(other, IndexIVFDPQ):
            raise TypeError("merge_from expects an IndexIVFDPQ")
        core.ivf_check_merge(self, other)
        super().merge_from(other, as_int(add_id, "add_id"))

    def __repr__(self) -> str:
        metric = "L2" if self.metric_type == faiss.METRIC_L2 else "IP"
        return (f"IndexIVFDPQ(d={self.d}, nlist={self.nlist}, levels={self.levels}, nbits={self.nbits}, "
                f"metric={metric}{', cosine=True' if self.cosine else ''}, nprobe={self.nprobe}, "
                f"ntotal={self.ntotal}, is_trained={self.is_trained})")


class SearchParametersIVFDPQ(faiss.SearchParametersIVF):
    """Per-call search settings of an IndexIVFDPQ (a genuine faiss.SearchParametersIVF).

    Parameters
    ----------
    nprobe : int
        Lists probed per query; 0 (the default): the index's ``nprobe``.
    levels : int
        Prefix length to scan; 0: the index's ``search_levels``.
    rerank_levels, rerank_k : int
        If rerank_levels > levels, the best rerank_k (at least k) are
        re-scored with rerank_levels levels.
    max_codes : int
        Stop probing a query's lists once this many codes are visited (0: no limit).
    shortlist : int
        Cosine indexes: how many of the scan's best are re-scored (at least
        k); 0: ``DEFAULT_SHORTLIST``.
    sel : faiss.IDSelector, optional
        Restrict the search to these ids.
    """

    DEFAULT_SHORTLIST = core.DEFAULT_SHORTLIST

    def __init__(self, nprobe: int = 0, levels: int = 0, rerank_levels: int = 0, rerank_k: int = 0,
                 max_codes: int = 0, sel=None, shortlist: int = 0):
        self.this = core.ivf_new_search_parameters()
        nprobe, max_codes = as_int(nprobe, "nprobe"), as_int(max_codes, "max_codes")
        if nprobe < 0 or max_codes < 0:
            raise ValueError(f"nprobe and max_codes must be >= 0, got {nprobe}, {max_codes}")
        self.nprobe = nprobe
        self.max_codes = max_codes
        self.levels = levels
        self.rerank_levels = rerank_levels
        self.rerank_k = rerank_k
        self.shortlist = shortlist
        if sel is not None:
            self.sel = sel
            self.referenced_objects = [sel]

    def _field(name: str, doc: str):  # noqa: N805 - property factory used in the class body
        return int_property(name, doc, lambda p: core.ivf_params_get(p, name),
                            lambda p, v: core.ivf_params_set(p, name, v))

    levels = _field("levels", "Prefix length to scan; 0 uses the index's search_levels.")
    rerank_levels = _field("rerank_levels", "Levels used to re-score candidates; 0 disables re-ranking.")
    rerank_k = _field("rerank_k", "How many short-prefix candidates to re-score.")
    shortlist = _field("shortlist", "Cosine: how many scan candidates to re-score (0: default).")
    del _field

    def __repr__(self) -> str:
        return (f"SearchParametersIVFDPQ(nprobe={self.nprobe}, levels={self.levels}, "
                f"rerank_levels={self.rerank_levels}, rerank_k={self.rerank_k}, max_codes={self.max_codes}, "
                f"shortlist={self.shortlist})")


def _into(out: np.ndarray, x):
    """out, or copied into the caller's array x (Faiss's optional output argument)."""
    if x is None:
        return out
    x[...] = out
    return x


def downcast_ivf(index):
    """The IndexIVFDPQ behind a plain ``faiss.Index``, or ``index`` unchanged."""
    if isinstance(index, IndexIVFDPQ) or not isinstance(index, faiss.Index):
        return index
    if core.is_ivf_dpq(index):
        return IndexIVFDPQ._face_of(index)
    return index
