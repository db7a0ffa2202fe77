"""Packaging: scikit-build-core builds it, metadata without deprecated forms, data files installed."""

import sys
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_built_by_scikit_build_core(pyproject):
    assert pyproject["build-system"]["build-backend"] == "scikit_build_core.build"
    assert not (ROOT / "setup.py").exists()


def test_license_is_an_spdx_expression(pyproject):
    # The table form ({text = ...}) is deprecated: pip install printed a warning.
    assert pyproject["project"]["license"] == "MIT"


def test_the_installed_package_carries_its_data_and_core():
    import pyfaiss_dpq

    files = resources.files(pyfaiss_dpq)
    assert files.joinpath("datasets", "minilm_text.npz").is_file()
    assert any(p.name.startswith("_core") for p in files.iterdir())
