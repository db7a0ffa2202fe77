"""Loads the C++ core and proves that it agrees with the installed Faiss.

Importing this module either returns a usable ``_core`` or raises
``ImportError`` naming the supported faiss-cpu releases: a Faiss whose C++
ABI differs from the one ``csrc/faiss_abi.h`` declares must never be called
into (that would be a segfault, not an error).
"""

from __future__ import annotations

import faiss

# The faiss-cpu minor releases whose faiss::Index ABI csrc/faiss_abi.h
# declares (the C++ side says which of them the built core accepts, in
# _core.FAISS_ABI_RELEASES; a test keeps the two equal). The requirement is
# the same range as pyproject.toml's dependency.
SUPPORTED_FAISS = ("1.14", "1.15")
SUPPORTED_FAISS_REQUIREMENT = "faiss-cpu>=1.14.2,<1.16"


def _fail(reason: str) -> ImportError:
    return ImportError(
        f"pyfaiss_dpq supports faiss-cpu {' and '.join(SUPPORTED_FAISS)} only "
        f"(install {SUPPORTED_FAISS_REQUIREMENT!r}); {reason}"
    )


def _load():
    version = getattr(faiss, "__version__", "unknown")
    release = ".".join(version.split(".")[:2])
    if release not in SUPPORTED_FAISS:
        raise _fail(f"found faiss {version}")
    try:
        from . import _core
    except ImportError as exc:  # e.g. a symbol missing from another libfaiss.so
        raise _fail(f"the C++ core did not load against faiss {version}: {exc}") from exc
    if release not in _core.FAISS_ABI_RELEASES.split():
        raise _fail(f"this build of the C++ core was compiled against faiss {_core.FAISS_BUILT_AGAINST}, "
                    f"whose ABI faiss {version} does not share: reinstall pyfaiss-dpq")
    if not _core.swig_runtime_ok():
        raise _fail("faiss's SWIG type table is not reachable from the C++ core")
    # A live Faiss object with distinctive values, read back through our
    # declaration of faiss::Index (after its vtable is checked).
    live = faiss.IndexFlat(13, faiss.METRIC_INNER_PRODUCT)
    live.add(faiss.rand((3, 13)))
    live.verbose = True
    live.metric_arg = 2.5
    problems = _core.abi_check(live, 13, 3, True, True, faiss.METRIC_INNER_PRODUCT, 2.5)
    if problems:
        raise _fail(f"the faiss::Index ABI of faiss {version} differs: {problems}")
    # SearchParametersIVF, which SearchParametersIVFDPQ derives from.
    params = faiss.SearchParametersIVF()
    params.nprobe, params.max_codes = 77, 12345
    problems = _core.abi_check_search_parameters_ivf(params, 77, 12345)
    if problems:
        raise _fail(f"the faiss::SearchParametersIVF ABI of faiss {version} differs: {problems}")
    from ._clustering import faiss_kmeans

    _core.set_clustering(faiss_kmeans)
    return _core


core = _load()
