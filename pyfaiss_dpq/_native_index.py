"""What the Python faces of IndexDPQ and IndexIVFDPQ share.

Each is a genuine ``faiss.Index`` whose ``this`` points at our C++ object.
This base keeps, per class, a registry from C++ address to the live Python
object (so that a Faiss wrapper handing back a plain ``faiss.Index`` can be
turned into the very object a user made), adopts a bare SWIG pointer, and
runs ``search`` / ``range_search`` with Faiss's calling conventions.
"""

from __future__ import annotations

import weakref
from typing import Optional

import faiss
import numpy as np

from ._native import core
from ._validate import as_int, as_vectors

__all__ = ["NativeIndex"]


def _into(out: Optional[np.ndarray], value: np.ndarray) -> np.ndarray:
    """``value``, copied into ``out`` when the caller passed one (as Faiss does)."""
    if out is None:
        return value
    out[...] = value
    return out


class NativeIndex(faiss.Index):
    """Base of our C++ indexes' Python faces (not used directly)."""

    _live: "weakref.WeakValueDictionary[int, NativeIndex]"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._live = weakref.WeakValueDictionary()

    def _register(self) -> None:
        type(self)._live[int(self.this)] = self

    @classmethod
    def _adopt(cls, swig_this, keep_alive=None):
        """The Python face of an existing C++ object (kept alive by `keep_alive`)."""
        obj = cls.__new__(cls)
        obj.this = swig_this
        if keep_alive is not None:
            obj.referenced_objects = [keep_alive]
        obj._register()
        return obj

    @classmethod
    def _face_of(cls, index: faiss.Index):
        """The registered face of `index`'s C++ object, or a new one adopting it."""
        live = cls._live.get(int(index.this))
        return live if live is not None else cls._adopt(index.this, keep_alive=index)

    def search(self, x, k, *, params=None, D=None, I=None):
        """k nearest neighbours of each query. x: (nq, d) -> (D, I), each (nq, k).

        ``params`` (this index's search parameters class) overrides the
        index's defaults for this call; ids are -1 (distance +-FLT_MAX) where
        fewer than k vectors qualify. ``D`` and ``I``, when given, receive the
        results (as in Faiss).
        """
        Dk, Ik = core.index_search(self, self._vectors(x), as_int(k, "k"), params)
        return _into(D, Dk), _into(I, Ik)

    def range_search(self, x, thresh, *, params=None):
        """All vectors within `thresh` (L2: distance < thresh; IP: similarity > thresh) -> (lims, D, I)."""
        return core.index_range_search(self, self._vectors(x), float(thresh), params)

    def _vectors(self, x) -> np.ndarray:
        return as_vectors(x, self.d, finite=False)  # the C++ core checks finiteness
