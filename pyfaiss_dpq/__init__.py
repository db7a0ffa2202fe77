"""pyfaiss-dpq: deep progressive quantization as a native Faiss index.

One trained model serves every code length: an :class:`IndexDPQ` with L
levels can be searched with any prefix of m <= L levels.
"""

from ._native import SUPPORTED_FAISS
from .codebooks import TrainParameters, train_codebooks
from .index import IndexDPQ, SearchParametersDPQ, downcast
from .ivf import IndexIVFDPQ, SearchParametersIVFDPQ
from .persist import (
    ChecksumError,
    CorruptIndexError,
    IndexFileError,
    TruncatedFileError,
    UnsupportedVersionError,
    WrongMagicError,
    deserialize,
    install_faiss_io_hooks,
    read_index,
    serialize,
    uninstall_faiss_io_hooks,
    write_index,
)
from .simd import set_simd_level, simd_level, supported_simd_levels

__version__ = "0.1.0"

install_faiss_io_hooks()

__all__ = [
    "IndexDPQ",
    "TrainParameters",
    "train_codebooks",
    "SearchParametersDPQ",
    "IndexIVFDPQ",
    "SearchParametersIVFDPQ",
    "downcast",
    "read_index",
    "write_index",
    "serialize",
    "deserialize",
    "install_faiss_io_hooks",
    "uninstall_faiss_io_hooks",
    "IndexFileError",
    "TruncatedFileError",
    "WrongMagicError",
    "UnsupportedVersionError",
    "ChecksumError",
    "CorruptIndexError",
    "SUPPORTED_FAISS",
    "simd_level",
    "set_simd_level",
    "supported_simd_levels",
]
