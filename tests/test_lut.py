"""Lookup-table kernels (csrc/scan/tables.h): every kernel against the scalar reference.

The kernels sum each inner product in their own order, so their tables agree
with the scalar reference to float rounding, not bit for bit. The tolerance is
the rounding bound of a d-term float32 dot product, d * 2^-24 * sum |x_i c_i|
(times the table's factor, 2 for L2), doubled to cover both sides; a wrong
level, codeword, sign or scale misses it by orders of magnitude.
"""

import faiss
import numpy as np
import pytest

from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq._native import core
from pyfaiss_dpq.data import load_text_embeddings

METRICS = {"l2": faiss.METRIC_L2, "ip": faiss.METRIC_INNER_PRODUCT}


@pytest.fixture(scope="module")
def minilm():
    """Real 384-d sentence embeddings: (train, queries)."""
    x = load_text_embeddings()
    return np.ascontiguousarray(x[:2000]), np.ascontiguousarray(x[2000:2037])


@pytest.fixture(scope="module", params=[(8, 3), (4, 12)], ids=["8bit", "4bit"])
def index(request, minilm):
    nbits, levels = request.param
    train, _ = minilm
    K = 2**nbits
    # Codebooks cut from real embeddings, each level at half the previous
    # scale as residual codebooks shrink; training would add nothing here.
    rng = np.random.default_rng(nbits)
    C = np.stack([train[rng.choice(len(train), K, replace=False)] * 0.5**l for l in range(levels)])
    index = IndexDPQ(train.shape[1], levels, nbits, faiss.METRIC_INNER_PRODUCT)
    index.codebooks = C
    return index


def tolerance(x, codebooks, factor):
    """Rounding bound of factor * <x, c> in float32, per table entry."""
    d = x.shape[1]
    mag = np.abs(x).astype(np.float64) @ np.abs(codebooks.reshape(-1, d)).astype(np.float64).T
    return (2 * factor * d * 2.0**-24 * mag).reshape(len(x), *codebooks.shape[:2]) + 1e-30


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("kernel", ["simd", "scalar"])
def test_kernel_tables_equal_the_scalar_reference(index, minilm, kernel, metric):
    x = minilm[1]
    C = index.codebooks
    l2 = metric == "l2"
    factor = 2.0 if l2 else 1.0
    ref, ref_bias = core.lookup_tables("scalar", index, x, C.shape[0], l2)
    got, bias = core.lookup_tables(kernel, index, x, C.shape[0], l2)
    exact = -factor * np.einsum("qd,lkd->qlk", x.astype(np.float64), C.astype(np.float64))
    tol = tolerance(x, C, factor)
    assert np.all(np.abs(ref - exact) <= tol), "scalar reference against float64"
    assert np.all(np.abs(got - ref) <= 2 * tol), f"{kernel} against the scalar reference"
    np.testing.assert_allclose(bias, ref_bias, rtol=1e-5)
    np.testing.assert_allclose(ref_bias, (x.astype(np.float64) ** 2).sum(1) if l2 else 0, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["simd", "scalar"])
def test_tables_of_a_prefix_are_the_first_levels(index, minilm, kernel):
    x = minilm[1]
    full, _ = core.lookup_tables(kernel, index, x, index.levels, False)
    part, _ = core.lookup_tables(kernel, index, x, 2, False)
    assert part.shape == (len(x), 2, full.shape[2])
    tol = tolerance(x, index.codebooks[:2], 1.0)
    assert np.all(np.abs(part - full[:, :2]) <= 2 * tol)


@pytest.mark.parametrize("kernel", ["simd", "scalar"])
def test_a_querys_tables_do_not_depend_on_its_batch(index, minilm, kernel):
    """Bit for bit: searches split their queries over threads in different ways."""
    x = minilm[1]
    batch, _ = core.lookup_tables(kernel, index, x, index.levels, True)
    for q in (0, 17, len(x) - 1):
        one, _ = core.lookup_tables(kernel, index, x[q:q + 1], index.levels, True)
        np.testing.assert_array_equal(one[0], batch[q])
        three, _ = core.lookup_tables(kernel, index, x[max(0, q - 2):q + 1], index.levels, True)
        np.testing.assert_array_equal(three[-1], batch[q])


@pytest.mark.parametrize("kernel", ["simd", "scalar"])
def test_search_through_each_table_kernel_finds_the_same_neighbours(index, minilm, kernel):
    """Exact re-scoring with tables that differ by rounding: the same ids (no near-ties here)."""
    base = minilm[0][:1500]
    index.reset()
    index.add(base)
    params = SearchParametersDPQ(levels=2, rerank_levels=index.levels, rerank_k=50)
    previous = core.set_lut_kernel("scalar")
    try:
        D_ref, I_ref = index.search(minilm[1], 10, params=params)
        core.set_lut_kernel(kernel)
        assert core.active_lut_kernel() == kernel
        D, I = index.search(minilm[1], 10, params=params)
    finally:
        core.set_lut_kernel(previous)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, rtol=1e-5, atol=1e-6)


def test_unknown_kernel_is_a_clear_error(index, minilm):
    with pytest.raises(ValueError, match="lookup-table kernel 'fma'"):
        core.set_lut_kernel("fma")
    with pytest.raises(ValueError, match="lookup-table kernel"):
        core.lookup_tables("blas", index, minilm[1], 1, True)
    with pytest.raises(ValueError, match="levels"):
        core.lookup_tables("simd", index, minilm[1], index.levels + 1, True)
    assert core.lut_kernels() == ["simd", "scalar"]
