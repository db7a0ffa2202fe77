"""Which Faiss releases the core is built for, and the import-time guard over them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import faiss
import pytest

from pyfaiss_dpq import _core, _native

ROOT = Path(__file__).resolve().parents[1]


def test_the_build_declares_the_supported_releases():
    assert tuple(_core.FAISS_ABI_RELEASES.split()) == _native.SUPPORTED_FAISS


def test_the_core_was_built_against_the_installed_faiss():
    # CMakeLists.txt reads the faiss of the build environment; with the
    # installed faiss that is the one imported here (make test, make test-faiss-compat).
    assert _core.FAISS_BUILT_AGAINST == ".".join(faiss.__version__.split(".")[:2])


def test_runtime_dependency_is_the_supported_range():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = [d for d in meta["project"]["dependencies"] if d.startswith("faiss-cpu")]
    assert deps == [_native.SUPPORTED_FAISS_REQUIREMENT]
    assert _native.SUPPORTED_FAISS_REQUIREMENT in meta["build-system"]["requires"]


@pytest.mark.parametrize("version", ["1.13.2", "1.16.0", "2.0.0"])
def test_an_undeclared_release_is_refused_naming_the_supported_ones(monkeypatch, version):
    monkeypatch.setattr(faiss, "__version__", version)
    with pytest.raises(ImportError, match=rf"faiss-cpu 1\.14 and 1\.15 only.*found faiss {re.escape(version)}"):
        _native._load()


def test_a_core_built_for_another_abi_is_refused(monkeypatch):
    # A core compiled for a declaration that does not cover the installed faiss.
    monkeypatch.setattr(_core, "FAISS_ABI_RELEASES", "1.99")
    monkeypatch.setattr(_core, "FAISS_BUILT_AGAINST", "1.99")
    with pytest.raises(ImportError, match=r"compiled against faiss 1\.99.*reinstall pyfaiss-dpq"):
        _native._load()


def _compile_abi_header(tmp_path, major, minor):
    cxx = shutil.which("c++") or shutil.which("g++")
    assert cxx, "a C++ compiler is needed to build the core"
    src = tmp_path / "abi.cpp"
    src.write_text('#include "faiss_abi.h"\nconst char* releases = DPQ_FAISS_ABI_RELEASES;\n')
    return subprocess.run([cxx, "-std=c++17", "-fsyntax-only", f"-I{ROOT / 'csrc'}",
                           f"-DDPQ_FAISS_VERSION_MAJOR={major}", f"-DDPQ_FAISS_VERSION_MINOR={minor}", str(src)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("minor", [14, 15])
def test_the_abi_header_declares_each_supported_release(tmp_path, minor):
    proc = _compile_abi_header(tmp_path, 1, minor)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("minor", [13, 16])
def test_the_build_stops_for_an_undeclared_release(tmp_path, minor):
    proc = _compile_abi_header(tmp_path, 1, minor)
    assert proc.returncode != 0
    assert "declares the faiss::Index ABI of faiss-cpu 1.14 (>= 1.14.2) and 1.15 only" in proc.stderr
