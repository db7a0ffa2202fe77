"""What a sharded build and search need from an index: clone, encode, append codes, open.

Every index the package persists works: an ``IndexDPQ``, an
``IndexPreTransform`` around one, or a plain Faiss index with a standalone
codec (``IndexFlat``, ``IndexPQ``, ``IndexScalarQuantizer``, ...). An
``IndexIVFDPQ`` too: its ``sa_encode`` codes carry the list number and
``add_sa_codes`` files them.
"""

from __future__ import annotations

import faiss
import numpy as np

import pyfaiss_dpq

from ..index import IndexDPQ, downcast
from ..persist import is_mappable

__all__ = ["clone_empty", "encode", "append_codes", "open_shard", "inner_dpq", "check_template", "split_transforms"]


def clone_empty(template_bytes: bytes):
    """A fresh copy of the (empty, trained) template from its serialized bytes."""
    return pyfaiss_dpq.deserialize(template_bytes)  # already the concrete class (and its owner)


def encode(index, x: np.ndarray) -> np.ndarray:
    """Standalone codes of `x`, (n, sa_code_size()) uint8: what ``add`` would store."""
    return np.ascontiguousarray(index.sa_encode(x), dtype=np.uint8)


def append_codes(index, codes: np.ndarray) -> None:
    """Append standalone codes as ``add`` would have appended their vectors.

    ``IndexPreTransform.sa_encode`` codes are the inner index's codes of the
    transformed vectors, so they go to the inner index (Faiss's wrapper has no
    ``add_sa_codes``).
    """
    if isinstance(index, faiss.IndexPreTransform):
        inner = downcast(index.index)
        append_codes(inner, codes)
        index.ntotal = inner.ntotal
        return
    index.add_sa_codes(codes)


def split_transforms(index) -> tuple[list, faiss.Index]:
    """(vector transforms, in order, of a chain of IndexPreTransform; the index they feed).

    A sharded search applies the transforms once, in the driver: BLAS-backed
    transforms round differently with the batch size and the thread count, so
    transforming in every shard could break the bit-for-bit merge.
    """
    transforms, node = [], index
    while isinstance(node, faiss.IndexPreTransform):
        transforms += [node.chain.at(i) for i in range(node.chain.size())]
        node = downcast(node.index)
    return transforms, node


def inner_dpq(index) -> IndexDPQ | None:
    """The IndexDPQ at the bottom of a chain of IndexPreTransform, or None."""
    node = split_transforms(index)[1]
    return node if isinstance(node, IndexDPQ) else None


def check_template(template, sample: np.ndarray) -> bytes:
    """Serialized template, after checking it can be built in slices.

    The template must be trained and empty, and appending the standalone codes
    of `sample` must give the very bytes that ``add(sample)`` gives: that is
    what makes a sharded build identical to one ``add`` over all vectors.
    """
    if not isinstance(template, faiss.Index):
        raise TypeError(f"template must be a faiss.Index (an IndexDPQ or a Faiss index), got {type(template).__name__}")
    if not template.is_trained:
        raise ValueError("template is not trained: train it (or set its codebooks) before a build")
    if template.ntotal:
        raise ValueError(f"template must be empty, it holds {template.ntotal} vectors")
    try:
        data = pyfaiss_dpq.serialize(template)
    except TypeError as exc:
        raise TypeError(f"template cannot be saved, so it cannot be sharded: {exc}") from exc
    by_add, by_codes = clone_empty(data), clone_empty(data)
    try:
        by_add.add(sample)
        append_codes(by_codes, encode(by_codes, sample))
    except RuntimeError as exc:
        raise TypeError(f"template {type(downcast(template)).__name__} has no standalone codec "
                        f"(sa_encode / add_sa_codes), so slices cannot be encoded apart: {exc}") from exc
    if pyfaiss_dpq.serialize(by_add) != pyfaiss_dpq.serialize(by_codes):
        raise TypeError(f"template {type(downcast(template)).__name__}: appending sa_encode codes does not give "
                        "the index that add() gives, so a sharded build would differ from a single one")
    return data


def open_shard(path: str):
    """Open one shard file for search: the single place where shards are opened.

    An IndexIVFDPQ shard is memory-mapped read-only (opening checks its header,
    each list is verified when first searched), so a restarted actor is back in
    milliseconds whatever the shard's size; other indexes are read into memory
    (``pyfaiss_dpq.read_index`` verifies the file's checksum).
    """
    return pyfaiss_dpq.read_index(path, mmap=is_mappable(path))
