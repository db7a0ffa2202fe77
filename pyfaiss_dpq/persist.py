"""Persistence of IndexDPQ and of the Faiss wrappers around it.

File layout (all little-endian)::

    magic    8 bytes  b"PFDPQIDX"
    version  uint32   FORMAT_VERSION
    length   uint64   payload length in bytes
    crc32    uint32   zlib.crc32 of the payload
    payload  uint32 header length, UTF-8 JSON header, then binary blobs

The JSON header describes the index tree; each IndexDPQ is a blob written by
the C++ core; Faiss-native parts (vector transforms, refine indexes, any
sub-index without an IndexDPQ inside) are blobs in Faiss's own format. Files
are written atomically (temporary file, fsync, rename) and verified on read
before anything is parsed.

Importing ``pyfaiss_dpq`` installs hooks so that ``faiss.write_index``,
``faiss.read_index``, ``faiss.serialize_index``, ``faiss.deserialize_index``
and ``faiss.clone_index`` (and so pickling and LangChain/llama-index FAISS
stores) handle IndexDPQ too; every other index goes to Faiss unchanged. ``uninstall_faiss_io_hooks()``
turns this off.
"""

from __future__ import annotations

import copyreg
import json
import os
import struct
import zlib

import faiss
import numpy as np

from ._files import write_atomically
from ._native import core
from .index import IndexDPQ, downcast
from .ivf import IndexIVFDPQ, downcast_ivf

MAGIC = b"PFDPQIDX"
# A top-level IndexIVFDPQ file has its own layout (csrc/ivf/ivf_file.h):
# checksummed header and per-list checksums, so that it can be memory-mapped.
IVF_MAGIC = b"PFDPQIVF"
# One version number for the envelope and the C++ body (csrc/serialize.h).
FORMAT_VERSION = core.FORMAT_VERSION
_ENVELOPE = struct.Struct("<8sIQI")  # magic, version, payload length, crc32


class IndexFileError(ValueError):
    """An index file or byte string could not be read."""


class TruncatedFileError(IndexFileError):
    """The data ends before the length its envelope declares."""


class WrongMagicError(IndexFileError):
    """The data does not start with the pyfaiss-dpq magic bytes."""


class UnsupportedVersionError(IndexFileError):
    """The data was written by a newer (or unknown) format version."""


class ChecksumError(IndexFileError):
    """The payload does not match its checksum: the data is corrupt."""


class CorruptIndexError(IndexFileError):
    """The checksum matched but the content is inconsistent."""


# ---------------------------------------------------------------- tree <-> blobs

class _Blobs:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def add(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(self.parts) - 1


def _faiss_bytes(index) -> bytes:
    return _ORIGINAL["serialize_index"](index).tobytes()


def _is_ivf(index) -> bool:
    return isinstance(index, IndexIVFDPQ) or core.is_ivf_dpq(index)


def _ivf_bytes(index) -> bytes:
    """An IndexIVFDPQ file's bytes; the quantizer travels inside, in Faiss's format (or ours)."""
    index = downcast_ivf(index)
    quantizer = index.quantizer
    qbytes = serialize(quantizer) if _contains_dpq(quantizer) else _faiss_bytes(quantizer)
    return core.ivf_serialize(index, qbytes)


def _ivf_adopt(swig_this, qbytes: bytes) -> IndexIVFDPQ:
    """The Python IndexIVFDPQ of a C++ one read from a file, its quantizer rebuilt and attached."""
    index = IndexIVFDPQ._adopt(swig_this)
    quantizer = deserialize(qbytes) if is_dpq_data(qbytes) else \
        _ORIGINAL["deserialize_index"](np.frombuffer(qbytes, dtype=np.uint8))
    core.ivf_set_quantizer(index, quantizer, False)
    index.referenced_objects = [quantizer]
    return index


def _ivf_from_bytes(data) -> IndexIVFDPQ:
    try:
        return _ivf_adopt(*core.ivf_deserialize(data))
    except ValueError as exc:
        raise CorruptIndexError(str(exc)) from exc


def _contains_dpq(index) -> bool:
    if _is_ivf(index):
        return True
    if isinstance(index, IndexDPQ) or core.is_dpq(index):
        return True
    concrete = faiss.downcast_index(index)
    return any(_contains_dpq(child) for child in _children(concrete))


def _children(concrete) -> list:
    if isinstance(concrete, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexPreTransform)):
        return [concrete.index]
    if isinstance(concrete, faiss.IndexRefine):
        return [concrete.base_index, concrete.refine_index]
    if isinstance(concrete, faiss.IndexShards):
        return [concrete.at(i) for i in range(concrete.count())]
    if isinstance(concrete, faiss.IndexHNSW) and concrete.storage is not None:
        return [concrete.storage]
    return []


def _encode(index, blobs: _Blobs) -> dict:
    if _is_ivf(index):
        return {"type": "IndexIVFDPQ", "blob": blobs.add(_ivf_bytes(index))}
    if isinstance(index, IndexDPQ) or core.is_dpq(index):
        return {"type": "IndexDPQ", "blob": blobs.add(core.serialize(index))}
    if not _contains_dpq(index):
        return {"type": "faiss", "blob": blobs.add(_faiss_bytes(index))}
    w = faiss.downcast_index(index)
    if isinstance(w, (faiss.IndexIDMap2, faiss.IndexIDMap)):
        ids = faiss.vector_to_array(w.id_map).astype(np.int64)
        kind = "IndexIDMap2" if isinstance(w, faiss.IndexIDMap2) else "IndexIDMap"
        return {"type": kind, "ids": blobs.add(ids.tobytes()), "child": _encode(w.index, blobs)}
    if isinstance(w, faiss.IndexPreTransform):
        chain = []
        for i in range(w.chain.size()):
            writer = faiss.VectorIOWriter()
            faiss.write_VectorTransform(w.chain.at(i), writer)
            chain.append(blobs.add(faiss.vector_to_array(writer.data).tobytes()))
        return {"type": "IndexPreTransform", "chain": chain, "child": _encode(w.index, blobs)}
    if isinstance(w, faiss.IndexRefine):
        kind = "IndexRefineFlat" if isinstance(w, faiss.IndexRefineFlat) else "IndexRefine"
        return {"type": kind, "k_factor": float(w.k_factor),
                "base": _encode(w.base_index, blobs), "refine": _encode(w.refine_index, blobs)}
    if isinstance(w, faiss.IndexShards):
        # Faiss does not expose whether shards run threaded: they are read
        # back unthreaded (the results are the same).
        return {"type": "IndexShards", "successive_ids": bool(w.successive_ids),
                "shards": [_encode(w.at(i), blobs) for i in range(w.count())]}
    if isinstance(w, faiss.IndexHNSW):
        # Faiss writes the graph, we write the storage (our IndexDPQ). Faiss
        # 1.14 cannot write a plain IndexHNSW: the graph travels in an
        # IndexHNSWFlat shell without storage.
        shell = faiss.IndexHNSWFlat()
        shell.hnsw = w.hnsw  # a copy
        shell.d, shell.ntotal, shell.metric_type, shell.metric_arg = w.d, w.ntotal, w.metric_type, w.metric_arg
        writer = faiss.VectorIOWriter()
        _ORIGINAL["write_index"](shell, writer, faiss.IO_FLAG_SKIP_STORAGE)
        return {"type": "IndexHNSW", "graph": blobs.add(faiss.vector_to_array(writer.data).tobytes()),
                "storage": _encode(w.storage, blobs)}
    raise TypeError(f"cannot save a {type(w).__name__} that contains an IndexDPQ "
                    "(supported wrappers: IndexIDMap, IndexIDMap2, IndexPreTransform, "
                    "IndexRefine, IndexRefineFlat, IndexShards, IndexHNSW)")


def _blob(blobs: list[bytes], i) -> bytes:
    if not isinstance(i, int) or not 0 <= i < len(blobs):
        raise CorruptIndexError(f"index file refers to a missing blob {i!r}")
    return blobs[i]


def _around_filled(wrapper_cls, field: str, child):
    """Build a Faiss wrapper around a non-empty child.

    Faiss's wrapper constructors insist on an empty child, so the wrapper is
    made around an empty stand-in whose place the child then takes.
    """
    wrapper = wrapper_cls(faiss.IndexFlat(child.d, child.metric_type))
    setattr(wrapper, field, child)
    wrapper.referenced_objects = [child]
    return wrapper


def _decode(node, blobs: list[bytes]):
    if not isinstance(node, dict):
        raise CorruptIndexError("index file tree node is not an object")
    kind = node.get("type")
    try:
        if kind == "IndexDPQ":
            return IndexDPQ._adopt(core.deserialize(_blob(blobs, node["blob"])))
        if kind == "IndexIVFDPQ":
            return _ivf_from_bytes(_blob(blobs, node["blob"]))
        if kind == "faiss":
            data = np.frombuffer(_blob(blobs, node["blob"]), dtype=np.uint8)
            return _ORIGINAL["deserialize_index"](data)
        if kind in ("IndexIDMap", "IndexIDMap2"):
            child = _decode(node["child"], blobs)
            raw = _blob(blobs, node["ids"])
            if len(raw) % 8:
                raise CorruptIndexError("id map has a partial id")
            ids = np.frombuffer(raw, dtype=np.int64)
            if len(ids) != child.ntotal:
                raise CorruptIndexError(f"id map holds {len(ids)} ids for {child.ntotal} vectors")
            cls = faiss.IndexIDMap2 if kind == "IndexIDMap2" else faiss.IndexIDMap
            wrapper = _around_filled(cls, "index", child)
            faiss.copy_array_to_vector(ids, wrapper.id_map)
            wrapper.ntotal = len(ids)
            if kind == "IndexIDMap2":
                wrapper.construct_rev_map()
            return wrapper
        if kind == "IndexPreTransform":
            child = _decode(node["child"], blobs)
            wrapper = faiss.IndexPreTransform(child)
            transforms = []
            for i in reversed(node["chain"]):
                reader = faiss.VectorIOReader()
                faiss.copy_array_to_vector(np.frombuffer(_blob(blobs, i), dtype=np.uint8), reader.data)
                transform = faiss.read_VectorTransform(reader)
                wrapper.prepend_transform(transform)
                transforms.append(transform)
            # The wrapper does not own its parts: keep the Python owners alive.
            wrapper.referenced_objects = [child, *transforms]
            return wrapper
        if kind in ("IndexRefine", "IndexRefineFlat"):
            base = _decode(node["base"], blobs)
            refine = _decode(node["refine"], blobs)
            if refine.ntotal != base.ntotal:
                raise CorruptIndexError("refine index and base index sizes differ")
            if kind == "IndexRefineFlat":
                wrapper = _around_filled(faiss.IndexRefineFlat, "base_index", base)
                if refine.ntotal:
                    faiss.downcast_index(wrapper.refine_index).add(refine.reconstruct_n(0, refine.ntotal))
            else:
                wrapper = faiss.IndexRefine(base, refine)
            wrapper.ntotal = base.ntotal
            wrapper.k_factor = float(node["k_factor"])
            return wrapper
        if kind == "IndexShards":
            shards = [_decode(s, blobs) for s in node["shards"]]
            if not shards:
                raise CorruptIndexError("IndexShards without shards")
            wrapper = faiss.IndexShards(shards[0].d, False, bool(node["successive_ids"]))
            for shard in shards:
                wrapper.add_shard(shard)
            return wrapper
        if kind == "IndexHNSW":
            storage = _decode(node["storage"], blobs)
            reader = faiss.VectorIOReader()
            faiss.copy_array_to_vector(np.frombuffer(_blob(blobs, node["graph"]), dtype=np.uint8), reader.data)
            shell = _ORIGINAL["read_index"](reader)
            if not isinstance(shell, faiss.IndexHNSWFlat) or shell.storage is not None:
                raise CorruptIndexError("IndexHNSW entry does not hold a graph without storage")
            if (shell.d, shell.ntotal, shell.metric_type) != (storage.d, storage.ntotal, storage.metric_type):
                raise CorruptIndexError("HNSW graph and storage differ in d, size or metric")
            wrapper = faiss.IndexHNSW(storage)
            wrapper.hnsw = shell.hnsw  # a copy
            wrapper.ntotal, wrapper.metric_arg = shell.ntotal, shell.metric_arg
            wrapper.referenced_objects = [storage]
            return wrapper
    except IndexFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CorruptIndexError(f"invalid {kind} entry in index file: {exc}") from exc
    raise CorruptIndexError(f"unknown index type {kind!r} in index file")


# ---------------------------------------------------------------- bytes

def serialize(index) -> bytes:
    """Serialize an IndexDPQ, or a supported Faiss wrapper around one, to bytes."""
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}")
    blobs = _Blobs()
    tree = _encode(index, blobs)
    header = json.dumps({"tree": tree, "blobs": [len(b) for b in blobs.parts]}).encode()
    payload = b"".join([struct.pack("<I", len(header)), header, *blobs.parts])
    return _ENVELOPE.pack(MAGIC, FORMAT_VERSION, len(payload), zlib.crc32(payload)) + payload


def is_dpq_data(data) -> bool:
    """True if `data` (bytes-like) starts with the pyfaiss-dpq magic."""
    return bytes(data[: len(MAGIC)]) in (MAGIC, IVF_MAGIC)


def deserialize(data):
    """Rebuild an index from :func:`serialize` output; raises IndexFileError subclasses."""
    data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if bytes(data[: len(IVF_MAGIC)]) == IVF_MAGIC:
        return _ivf_from_bytes(bytes(data))
    if len(data) < len(MAGIC) or not is_dpq_data(data):
        raise WrongMagicError("not a pyfaiss-dpq index (wrong magic bytes)")
    if len(data) < _ENVELOPE.size:
        raise TruncatedFileError(f"index data truncated: {len(data)} bytes, header needs {_ENVELOPE.size}")
    _, version, length, crc = _ENVELOPE.unpack_from(data)
    if not core.OLDEST_FORMAT_VERSION <= version <= FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"index format version {version} is not supported (this pyfaiss-dpq reads versions "
            f"{core.OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})")
    payload = bytes(data[_ENVELOPE.size:])
    if len(payload) < length:
        raise TruncatedFileError(f"index data truncated: payload has {len(payload)} of {length} bytes")
    if len(payload) > length:
        raise CorruptIndexError(f"{len(payload) - length} unexpected bytes after the payload")
    if zlib.crc32(payload) != crc:
        raise ChecksumError("index data checksum mismatch: the data is corrupt")
    try:
        (hlen,) = struct.unpack_from("<I", payload)
        header = json.loads(payload[4:4 + hlen].decode())
        sizes = header["blobs"]
        if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
            raise CorruptIndexError("invalid blob table")
        if 4 + hlen + sum(sizes) != len(payload):
            raise CorruptIndexError("blob sizes do not add up to the payload length")
        blobs, pos = [], 4 + hlen
        for size in sizes:
            blobs.append(payload[pos:pos + size])
            pos += size
        tree = header["tree"]
    except IndexFileError:
        raise
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorruptIndexError(f"index header is unreadable: {exc}") from exc
    return _decode(tree, blobs)


def _reduce_index(index):
    return deserialize, (serialize(index),)


# Pickling (and copy.copy/deepcopy) of an IndexDPQ goes through our format;
# registered here so that index.py needs nothing from this module.
copyreg.pickle(IndexDPQ, _reduce_index)
copyreg.pickle(IndexIVFDPQ, _reduce_index)


# ---------------------------------------------------------------- files

def write_index(index, path) -> None:
    """Write `index` to `path` atomically: a crash mid-write leaves any old file intact.

    An IndexIVFDPQ is written in its own layout, which ``read_index(path, mmap=True)`` maps.
    """
    write_atomically(path, file_bytes(index))


def file_bytes(index) -> bytes:
    """The bytes :func:`write_index` writes: an IndexIVFDPQ in its mappable layout, anything else serialized."""
    return _ivf_bytes(index) if _is_ivf(index) else serialize(index)


def is_mappable(path) -> bool:
    """True when `path` holds an index ``read_index(path, mmap=True)`` can map (an IndexIVFDPQ file)."""
    with open(os.fspath(path), "rb") as f:
        return f.read(len(IVF_MAGIC)) == IVF_MAGIC


def read_index(path, mmap: bool = False):
    """Read an index written by :func:`write_index` (verified before it is parsed).

    ``mmap=True`` (IndexIVFDPQ files): a read-only index that searches the
    file in place. Opening reads and checks the header only; each list's
    checksum is checked when a search first reads it (``verify()`` checks
    all), and only the lists searched are paged in.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(len(IVF_MAGIC))
        if head == IVF_MAGIC:
            if mmap:
                try:
                    return _ivf_adopt(*core.ivf_map(path))
                except ValueError as exc:
                    raise CorruptIndexError(str(exc)) from exc
            return _ivf_from_bytes(head + f.read())
        if mmap:
            raise ValueError(f"{path}: mmap=True reads IndexIVFDPQ files only")
        return deserialize(head + f.read())


# ---------------------------------------------------------------- faiss hooks

_ORIGINAL = {name: getattr(faiss, name) for name in
             ("write_index", "read_index", "serialize_index", "deserialize_index", "clone_index")}


def _hooked_write_index(index, f, *args):
    if isinstance(index, faiss.Index) and _contains_dpq(index):
        if isinstance(f, (str, os.PathLike)):
            return write_index(index, f)
        if isinstance(f, faiss.VectorIOWriter):
            faiss.copy_array_to_vector(np.frombuffer(serialize(index), dtype=np.uint8), f.data)
            return None
        raise TypeError("an index containing IndexDPQ can be written to a path or a faiss.VectorIOWriter")
    return _ORIGINAL["write_index"](index, f, *args)


def _hooked_read_index(f, *args):
    if isinstance(f, (str, os.PathLike)):
        with open(os.fspath(f), "rb") as fh:
            head = fh.read(len(MAGIC))
        if is_dpq_data(head):
            # Faiss's IO_FLAG_MMAP maps an IndexIVFDPQ file (read-only, as Faiss's).
            mmap = head == IVF_MAGIC and bool(args) and bool(int(args[0]) & faiss.IO_FLAG_MMAP)
            return read_index(f, mmap=mmap)
    elif isinstance(f, faiss.VectorIOReader):
        data = faiss.vector_to_array(f.data)
        if is_dpq_data(data):
            return deserialize(data.tobytes())
    return _ORIGINAL["read_index"](f, *args)


def _hooked_serialize_index(index, *args):
    if isinstance(index, faiss.Index) and _contains_dpq(index):
        return np.frombuffer(serialize(index), dtype=np.uint8).copy()
    return _ORIGINAL["serialize_index"](index, *args)


def _hooked_deserialize_index(data, *args):
    arr = np.asarray(data, dtype=np.uint8)
    if is_dpq_data(arr):
        return deserialize(arr.tobytes())
    return _ORIGINAL["deserialize_index"](data, *args)


def _hooked_clone_index(index, *args):
    # Faiss's C++ cloner does not know IndexDPQ: a round trip through our
    # format copies the index and every supported wrapper around it.
    if isinstance(index, faiss.Index) and _contains_dpq(index):
        return deserialize(serialize(index))
    return _ORIGINAL["clone_index"](index, *args)


_HOOKS = {
    "write_index": _hooked_write_index,
    "read_index": _hooked_read_index,
    "serialize_index": _hooked_serialize_index,
    "deserialize_index": _hooked_deserialize_index,
    "clone_index": _hooked_clone_index,
}


def install_faiss_io_hooks() -> None:
    """Make faiss.write_index/read_index/serialize_index/deserialize_index/clone_index handle IndexDPQ.

    Installed on ``import pyfaiss_dpq``. Indexes without an IndexDPQ inside go
    to Faiss's own functions unchanged.
    """
    for name, hook in _HOOKS.items():
        setattr(faiss, name, hook)


def uninstall_faiss_io_hooks() -> None:
    """Restore Faiss's original I/O functions."""
    for name, original in _ORIGINAL.items():
        setattr(faiss, name, original)
