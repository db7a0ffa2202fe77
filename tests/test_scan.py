"""Scan kernels: every SIMD kernel against the scalar reference.

Two levels of checking:

* the raw quantized sums of each kernel equal the scalar reference's bit for
  bit (and the scalar reference equals a numpy sum over the code layout);
* searches through each kernel return exactly what the float reference scan
  returns: same ids, same float distances. No tolerance is needed because a
  fast kernel only pre-selects candidates with quantized tables (with a
  margin that covers the quantization error, checked by
  test_quantization_error_is_within_its_bound) and every candidate is
  re-scored with the float tables in the reference's own summation order.
  The hard cases below (near-ties, duplicated vectors, wide-range tables)
  would expose a margin that is too small.

Kernels this CPU lacks are skipped, and the skip says so.
"""

import os
import subprocess
import sys

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq._native import core

from reference import assert_same_knn, exact_search

KERNELS = ["scalar", "avx2", "avx512"]
METRICS = [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT]
D = 16
LEVELS = 5
N = 32 * 40 + 7  # the last block is ragged


def require(name):
    if name not in pyfaiss_dpq.supported_simd_levels():
        pytest.skip(f"this CPU cannot run the {name} scan kernel")



@pytest.fixture(params=KERNELS[1:])
def fast_kernel(request):
    require(request.param)
    return request.param


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((12, D)).astype(np.float32) * 2
    def sample(n):
        return (centers[rng.integers(0, 12, n)] + rng.standard_normal((n, D))).astype(np.float32)
    return sample(2000), sample(N), sample(11)


@pytest.fixture(scope="module")
def codebooks(vectors):
    books = {}
    for nbits in (4, 8):
        index = IndexDPQ(D, LEVELS, nbits)
        index.train(vectors[0])
        books[nbits] = index.codebooks
    return books


def build(codebooks, vectors, nbits, metric, n=N):
    index = IndexDPQ(D, LEVELS, nbits, metric)
    index.codebooks = codebooks[nbits]
    index.add(vectors[1][:n])
    return index


def search_all(index, xq, k, **params):
    return index.search(xq, k, params=SearchParametersDPQ(**params))


# ---------------------------------------------------------------- SIMD level (public)

def test_scalar_is_always_available_and_auto_picks_the_fastest():
    levels = pyfaiss_dpq.supported_simd_levels()
    assert levels[0] == "scalar"
    assert set(levels) <= set(KERNELS)
    previous = pyfaiss_dpq.set_simd_level("auto")
    try:
        assert pyfaiss_dpq.simd_level() == levels[-1]
    finally:
        pyfaiss_dpq.set_simd_level(previous)


def test_forcing_a_level_and_restoring_it(kernel_runner):
    before = pyfaiss_dpq.set_simd_level("auto")
    try:
        assert kernel_runner("scalar", pyfaiss_dpq.simd_level) == "scalar"
        assert pyfaiss_dpq.set_simd_level("auto") == "auto"  # kernel_runner restored the setting
        with pytest.raises(ValueError, match="'sse9' is unknown or not supported.*supported: scalar"):
            pyfaiss_dpq.set_simd_level("sse9")
        with pytest.raises(TypeError, match="string"):
            pyfaiss_dpq.set_simd_level(2)
        for name in [k for k in KERNELS if k not in pyfaiss_dpq.supported_simd_levels()]:
            with pytest.raises(ValueError, match="not supported"):
                pyfaiss_dpq.set_simd_level(name)
        assert pyfaiss_dpq.simd_level() == pyfaiss_dpq.supported_simd_levels()[-1]
    finally:
        pyfaiss_dpq.set_simd_level(before)


def import_with_simd_env(value, tmp_path):
    env = dict(os.environ, PYFAISS_DPQ_SIMD=value, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", "import pyfaiss_dpq; print(pyfaiss_dpq.simd_level())"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_environment_variable_forces_the_level_at_import(tmp_path):
    for level in pyfaiss_dpq.supported_simd_levels():
        out = import_with_simd_env(level.upper() if level == "scalar" else level, tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-1] == level
    out = import_with_simd_env("auto", tmp_path)
    assert out.stdout.split()[-1] == pyfaiss_dpq.supported_simd_levels()[-1]


def test_environment_variable_with_a_bad_level_is_a_clear_error(tmp_path):
    out = import_with_simd_env("sse9", tmp_path)
    assert out.returncode != 0
    assert "ValueError: PYFAISS_DPQ_SIMD='sse9'" in out.stderr
    assert "supported: scalar" in out.stderr


# ---------------------------------------------------------------- raw quantized sums

def layout_codes(blocks, nbits, levels):
    """Level indices (nblocks * 32, levels) of blocks laid out as code_layout.h says."""
    nb = len(blocks)
    if nbits == 8:
        return blocks.reshape(nb, levels, 32).transpose(0, 2, 1).reshape(nb * 32, levels).astype(int)
    lv = blocks.reshape(nb, levels, 16)
    codes = np.concatenate([lv & 15, lv >> 4], axis=2)  # slot j and slot j + 16
    return codes.transpose(0, 2, 1).reshape(nb * 32, levels).astype(int)


@pytest.mark.parametrize("nbits", [4, 8])
def test_scalar_sums_follow_the_code_layout(nbits):
    rng = np.random.default_rng(nbits)
    levels, m, nb = 6, 5, 3
    blocks = rng.integers(0, 256, (nb, levels * 32 * nbits // 8), dtype=np.uint8)
    codes = layout_codes(blocks, nbits, levels)[:, :m]
    if nbits == 4:
        lut = rng.integers(0, 256, (m, 16), dtype=np.uint8)
        expected = lut[np.arange(m), codes].sum(1)
        np.testing.assert_array_equal(core.quantized_sums("scalar", blocks, m, lut), expected)
        # Split columns (kernels.h SplitColumns4): column m + j looks up level split[j]'s codes again.
        split = [0, 0, 3]
        extra = rng.integers(0, 256, (len(split), 16), dtype=np.uint8)
        expected = expected + extra[np.arange(len(split)), codes[:, split]].sum(1)
        np.testing.assert_array_equal(core.quantized_sums("scalar", blocks, m, np.vstack([lut, extra]), split),
                                      expected)
    else:
        lut = rng.integers(0, 65535 // m + 1, (m, 256, 4)).astype(np.uint16)
        expected = lut[np.arange(m), codes].astype(np.int64).sum(1)
        np.testing.assert_array_equal(core.quantized_sums("scalar", blocks, m, lut), expected)


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 7, 16, 33])
def test_quantized_sums_are_bit_exact(fast_kernel, levels):
    rng = np.random.default_rng(levels)
    for m in sorted({1, 2, 3, levels // 2 + 1, levels} - {0}):
        if m > levels:
            continue
        blocks4 = rng.integers(0, 256, (5, levels * 16), dtype=np.uint8)
        lut4 = rng.integers(0, 256, (m, 16), dtype=np.uint8)
        np.testing.assert_array_equal(core.quantized_sums(fast_kernel, blocks4, m, lut4),
                                      core.quantized_sums("scalar", blocks4, m, lut4), err_msg=f"4-bit m={m}")
        for split in ([0], sorted(rng.integers(0, m, 1 + m % 5).tolist())):  # odd and even column counts
            lut = rng.integers(0, 256, (m + len(split), 16), dtype=np.uint8)
            np.testing.assert_array_equal(core.quantized_sums(fast_kernel, blocks4, m, lut, split),
                                          core.quantized_sums("scalar", blocks4, m, lut, split),
                                          err_msg=f"4-bit m={m} split={split}")
        blocks8 = rng.integers(0, 256, (5, levels * 32), dtype=np.uint8)
        lut8 = rng.integers(0, 65535 // m + 1, (m, 256, 4)).astype(np.uint16)
        np.testing.assert_array_equal(core.quantized_sums(fast_kernel, blocks8, m, lut8),
                                      core.quantized_sums("scalar", blocks8, m, lut8), err_msg=f"8-bit m={m}")


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 8, 13, 32, 64])
def test_exact_block_distances_are_bit_exact(fast_kernel, m):
    """Every kernel's exact4 (a block's float distances at once) equals the
    scalar reference bit for bit, and that one the numpy sum."""
    rng = np.random.default_rng(m)
    for spread in (1e-3, 1.0, 1e5):
        block = rng.integers(0, 256, m * 16, dtype=np.uint8)
        lut = (rng.standard_normal((m, 16)) * spread).astype(np.float32)
        init = (rng.standard_normal(32) * spread * m).astype(np.float32)
        want = core.exact_block4("scalar", block, m, lut, init)
        np.testing.assert_array_equal(core.exact_block4(fast_kernel, block, m, lut, init), want, err_msg=f"m={m}")
        codes = layout_codes(block[None], 4, m)
        exact = init.astype(np.float64) + lut.astype(np.float64)[np.arange(m), codes].sum(1)
        np.testing.assert_allclose(want, exact, rtol=1e-5, atol=1e-5 * spread * m)
    with pytest.raises(ValueError, match="exact_block4"):
        core.exact_block4("scalar", np.zeros(16 * m - 1, np.uint8), m, lut, init)


def test_quantized_sums_reject_bad_shapes():
    with pytest.raises(ValueError):
        core.quantized_sums("scalar", np.zeros((2, 16), np.uint8), 2, np.zeros((2, 16), np.uint8))
    with pytest.raises(ValueError, match="not supported"):
        core.quantized_sums("no-such-kernel", np.zeros((2, 32), np.uint8), 1, np.zeros((1, 16), np.uint8))


@pytest.mark.parametrize("kernel", KERNELS)
def test_inner_products_for_lookup_tables(kernel):
    require(kernel)
    rng = np.random.default_rng(5)
    for nx, d, n in ((1, 1, 3), (3, 7, 16), (5, 16, 9), (2, 96, 256), (4, 385, 17), (13, 40, 70), (7, 384, 33)):
        X = rng.standard_normal((nx, d)).astype(np.float32)
        C = rng.standard_normal((n, d)).astype(np.float32)
        # float32 sums in any order: relative error well below 1e-5 for these sizes
        np.testing.assert_allclose(core.inner_products(kernel, X, C), X.astype(np.float64) @ C.T, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- quantization error bound

@pytest.mark.parametrize("K", [16, 256])
@pytest.mark.parametrize("spread", [1e-3, 1.0, 1e4])
def test_quantization_error_is_within_its_bound(K, spread):
    """|base + qsum / scale - float sum| <= err + rel * A for every code (scan/tables.h)."""
    rng = np.random.default_rng(K)
    for m in (1, 2, 7, 40):
        # Levels of very different ranges, like a residual quantizer's.
        lut = (rng.standard_normal((m, K)) * spread * np.exp(-np.arange(m) / 4)[:, None] + 3).astype(np.float32)
        bias = np.float32(rng.standard_normal() * spread)
        q, p = core.quantize_lut(lut, float(bias))
        assert p["ok"]
        assert q.min() >= 0 and q.max() <= (255 if K == 16 else 32767 // m)
        codes = rng.integers(0, K, (4000, m))
        codes[:K, :] = np.arange(K)[:, None]  # every entry used
        exact = np.full(len(codes), bias, np.float32)
        for l in range(m):  # the reference's float32 summation order
            exact = exact + lut[l, codes[:, l]]
        approx = np.float64(p["base"]) + q[np.arange(m), codes].astype(np.float64).sum(1) * p["inv_scale"]
        bound = p["err"] + p["rel"] * p["magnitude"]
        assert np.abs(approx - exact.astype(np.float64)).max() <= bound


def residual_like_lut(rng, m, spread):
    """4-bit tables whose first levels span far more than the rest, as a residual code's do."""
    return (rng.standard_normal((m, 16)) * spread * np.exp(-np.arange(m) / 3)[:, None] + 3).astype(np.float32)


def spanning(spans):
    """A (1, levels, 16) table whose level l spans exactly spans[l]."""
    return (np.asarray(spans, np.float32)[:, None] * np.linspace(0, 1, 16, dtype=np.float32))[None]


def test_split_plan_widens_only_the_widest_levels():
    """plan_split (tables.h plan_split4): levels spanning more than twice the
    mean span get the fewest extra columns that bring them under it; past a
    budget of max(1, m / 4) extra columns, that many go to the widest level
    per column; levels alike get none."""
    rng = np.random.default_rng(3)
    flat = rng.uniform(-1, 1, (2, 24, 16)).astype(np.float32)
    assert core.plan_split(flat) == []
    # Within budget: 24 levels, level 0 spanning 8 and level 1 4 (mean 34 / 24): 2 x the mean
    # is 2.83, so level 0 takes 3 columns, level 1 two; every column then spans under it.
    assert core.plan_split(spanning([8, 4] + [1] * 22)) == [0, 0, 1]
    # Over budget (5 levels: one extra column) where level 0 alone would take 3.
    assert core.plan_split(spanning([100, 1, 1, 1, 1])) == [0]
    # Residual-like tables: the budget (6 of 24) spent, widest first, in level order.
    luts = np.stack([residual_like_lut(rng, 24, 1.0) for _ in range(3)])
    split = core.plan_split(luts)
    assert len(split) == 24 // 4 and split == sorted(split) and split[0] == 0
    spans = np.ptp(luts, axis=2).max(0)
    width = 1 + np.bincount(split, minlength=24)
    assert width[np.argmax(spans)] == width.max()
    with pytest.raises(ValueError, match="plan_split"):
        core.plan_split(np.zeros((5, 3, 16), np.float32))


@pytest.mark.parametrize("spread", [1e-3, 1.0, 1e4])
def test_split_tables_sum_to_the_unsplit_values_within_the_bound(spread):
    """A split level's columns sum to its quantized value at the finer step,
    and approximations stay within err + rel * A (tables.h)."""
    rng = np.random.default_rng(11)
    for m in (2, 7, 24, 40):
        lut = residual_like_lut(rng, m, spread)
        bias = np.float32(rng.standard_normal() * spread)
        split = core.plan_split(lut[None])
        assert split or m < 24  # the long tables' first levels are split
        q, p = core.quantize_lut(lut, float(bias), split)
        _, whole = core.quantize_lut(lut, float(bias))
        assert q.shape == (m + len(split), 16) and p["ok"]
        assert p["err"] <= whole["err"] * (1 + 1e-6)  # finer (or equal) steps
        values = q[:m].astype(np.int64)
        for j, level in enumerate(split):
            values[level] += q[m + j]
        codes = rng.integers(0, 16, (4000, m))
        codes[:16, :] = np.arange(16)[:, None]
        exact = np.full(len(codes), bias, np.float32)
        for level in range(m):
            exact = exact + lut[level, codes[:, level]]
        approx = np.float64(p["base"]) + values[np.arange(m), codes].sum(1) * p["inv_scale"]
        assert np.abs(approx - exact.astype(np.float64)).max() <= p["err"] + p["rel"] * p["magnitude"]


@pytest.mark.parametrize("m", [1, 3, 8, 24, 40])
def test_table_quantization_is_bit_exact(kernel_runner, fast_kernel, m):
    """Every kernel's stats4 and quantize4 (the 4-bit tables' minima and
    maxima, and their quantized columns, split or not) equal the scalar
    reference's bit for bit."""
    rng = np.random.default_rng(m)
    for spread in (1e-3, 1.0, 1e5):
        lut = residual_like_lut(rng, m, spread)
        bias = float(rng.standard_normal() * spread)
        for split in ([], core.plan_split(lut[None]), sorted(rng.integers(0, m, min(m, 5)).tolist())):
            want = kernel_runner("scalar", lambda: core.quantize_lut(lut, bias, split))
            got = kernel_runner(fast_kernel, lambda: core.quantize_lut(lut, bias, split))
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"spread={spread} split={split}")
            assert got[1] == want[1]


def test_non_finite_tables_are_reported():
    _, p = core.quantize_lut(np.array([[np.inf] + [0.0] * 15], np.float32), 0.0)
    assert not p["ok"]


# ---------------------------------------------------------------- search against the reference

@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_search_equals_scalar_at_every_prefix(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric)
    xq = vectors[2]
    for m in range(1, LEVELS + 1):
        for nq in (len(xq), 1):  # a batch, and a single query
            ref = kernel_runner("scalar", lambda: search_all(index, xq[:nq], 10, levels=m))
            got = kernel_runner(fast_kernel, lambda: search_all(index, xq[:nq], 10, levels=m))
            np.testing.assert_array_equal(got[1], ref[1], err_msg=f"ids, m={m} nq={nq}")
            np.testing.assert_array_equal(got[0], ref[0], err_msg=f"distances, m={m} nq={nq}")


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_fast_search_matches_exact_numpy_reference(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric)
    m = 3
    recons = np.stack([index.reconstruct_prefix(i, m) for i in range(index.ntotal)])
    Dref, Iref = exact_search(recons, vectors[2], 10, metric)
    D, I = kernel_runner(fast_kernel, lambda: search_all(index, vectors[2], 10, levels=m))
    assert_same_knn(D, I, Dref, Iref)


@pytest.fixture
def split_always():
    """4-bit scans split their tables from the start (tables.h SplitMode), whatever they admit."""
    previous = core.set_split_columns("always")
    yield
    core.set_split_columns(previous)


@pytest.mark.parametrize("metric", METRICS)
def test_search_with_split_columns_equals_scalar_and_numpy(kernel_runner, fast_kernel, codebooks, vectors, metric,
                                                           split_always):
    """A first level spanning 24x the others' makes the 4-bit scan split its
    table over two columns (tables.h plan_split4); the kernels' results still
    equal the scalar reference's bit for bit, the exact k-NN of the codes and
    the results without splits."""
    books = codebooks[4].copy()
    books[0] *= 24
    index = IndexDPQ(D, LEVELS, 4, metric)
    index.codebooks = books
    index.add(vectors[1] * 3)
    xq = vectors[2] * 3
    lut = -np.einsum("qd,lkd->qlk", xq, books).astype(np.float32)  # each query's tables, up to their scale
    assert all(core.plan_split(lut[q:q + 1])[:1] == [0] for q in range(len(xq)))
    for m in (2, LEVELS):
        ref = kernel_runner("scalar", lambda: search_all(index, xq, 10, levels=m))
        got = kernel_runner(fast_kernel, lambda: search_all(index, xq, 10, levels=m))
        np.testing.assert_array_equal(got[1], ref[1], err_msg=f"ids, m={m}")
        np.testing.assert_array_equal(got[0], ref[0], err_msg=f"distances, m={m}")
        recons = np.stack([index.reconstruct_prefix(i, m) for i in range(index.ntotal)])
        assert_same_knn(*got, *exact_search(recons, xq, 10, metric))
        previous = core.set_split_columns("never")
        try:
            unsplit = kernel_runner(fast_kernel, lambda: search_all(index, xq, 10, levels=m))
        finally:
            core.set_split_columns(previous)
        np.testing.assert_array_equal(unsplit[1], got[1])
        np.testing.assert_array_equal(unsplit[0], got[0])


@pytest.mark.parametrize("nthreads", [2, 3])
@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_threads_split_queries_or_database_identically(kernel_runner, codebooks, vectors, nbits, nthreads, metric):
    """Batches split over queries, small batches over the database: same results.

    The database is large enough (random codes) that even one query is above
    the size under which a search stays on the calling thread. Both metrics:
    inner product's scan tests integer thresholds, L2's float norms.
    """
    index = IndexDPQ(D, LEVELS, nbits, metric)
    index.codebooks = codebooks[nbits]
    index.add_codes(np.random.default_rng(3).integers(0, 1 << nbits, (300_007, LEVELS)))
    xq = vectors[2]
    kernel = pyfaiss_dpq.supported_simd_levels()[-1]
    previous = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        ref = [kernel_runner("scalar", lambda: search_all(index, xq[:nq], 7, levels=4)) for nq in (1, 2, 11)]
        faiss.omp_set_num_threads(nthreads)
        got = [kernel_runner(kernel, lambda: search_all(index, xq[:nq], 7, levels=4)) for nq in (1, 2, 11)]
    finally:
        faiss.omp_set_num_threads(previous)
    for (Dr, Ir), (Dg, Ig) in zip(ref, got):
        np.testing.assert_array_equal(Ig, Ir)
        np.testing.assert_array_equal(Dg, Dr)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_selectors(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric)
    selectors = [faiss.IDSelectorRange(100, 700), faiss.IDSelectorBatch(np.arange(3, N, 17).astype(np.int64)),
                 faiss.IDSelectorRange(N - 5, N + 100)]
    for sel in selectors:
        def go():
            return index.search(vectors[2], 10, params=SearchParametersDPQ(levels=4, sel=sel))
        D, I = kernel_runner(fast_kernel, go)
        Dr, Ir = kernel_runner("scalar", go)
        np.testing.assert_array_equal(I, Ir)
        np.testing.assert_array_equal(D, Dr)
        assert all(sel.is_member(int(i)) for i in I[I >= 0])


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_k_larger_than_ntotal(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric, n=45)
    D, I = kernel_runner(fast_kernel, lambda: search_all(index, vectors[2], 60, levels=2))
    Dr, Ir = kernel_runner("scalar", lambda: search_all(index, vectors[2], 60, levels=2))
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(D, Dr)
    assert (I[:, 45:] == -1).all() and sorted(I[0, :45]) == list(range(45))


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_empty_index(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric, n=0)
    D, I = kernel_runner(fast_kernel, lambda: index.search(vectors[2], 4))
    assert (I == -1).all()
    assert (D == (np.finfo(np.float32).max if metric == faiss.METRIC_L2 else -np.finfo(np.float32).max)).all()
    lims, _, _ = kernel_runner(fast_kernel, lambda: index.range_search(vectors[2], 1e9))
    assert (lims == 0).all()


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_rerank_uses_the_fast_prefix_scan(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric)
    params = dict(levels=1, rerank_levels=LEVELS, rerank_k=40)
    D, I = kernel_runner(fast_kernel, lambda: search_all(index, vectors[2], 10, **params))
    Dr, Ir = kernel_runner("scalar", lambda: search_all(index, vectors[2], 10, **params))
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(D, Dr)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_range_search(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    index = build(codebooks, vectors, nbits, metric)
    D0, _ = search_all(index, vectors[2], 50, levels=3)
    radius = float(np.median(D0[:, -1]))
    for nq in (len(vectors[2]), 1):
        def go():
            return index.range_search(vectors[2][:nq], radius, params=SearchParametersDPQ(levels=3))
        got, ref = kernel_runner(fast_kernel, go), kernel_runner("scalar", go)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
        if nq > 1:
            assert 0 < len(got[2]) < nq * N


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_ties_and_duplicates(kernel_runner, fast_kernel, codebooks, vectors, nbits, metric):
    """Many vectors share codes: ties at the threshold go to the smaller id."""
    index = IndexDPQ(D, LEVELS, nbits, metric)
    index.codebooks = codebooks[nbits]
    rng = np.random.default_rng(3)
    base = rng.integers(0, 1 << nbits, (9, LEVELS))
    index.add_codes(base[rng.integers(0, 9, N)])
    dis, ids = kernel_runner(fast_kernel, lambda: search_all(index, vectors[2], 25, levels=LEVELS))
    dis_ref, ids_ref = kernel_runner("scalar", lambda: search_all(index, vectors[2], 25, levels=LEVELS))
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_array_equal(dis, dis_ref)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("position", [0, 1, 3])
def test_a_query_with_overflowing_tables_leaves_its_group_exact(kernel_runner, fast_kernel, codebooks, vectors, nbits,
                                                               metric, position):
    """Kernels scan 4 queries at once; one whose tables overflow to infinity
    sends its whole group to the float reference, wherever it sits."""
    index = build(codebooks, vectors, nbits, metric)
    xq = vectors[2][:4].copy()
    xq[position] *= np.float32(1e37)  # finite, but its products with the codewords are not
    for m in (1, LEVELS):
        dis, ids = kernel_runner(fast_kernel, lambda: search_all(index, xq, 10, levels=m))
        dis_ref, ids_ref = kernel_runner("scalar", lambda: search_all(index, xq, 10, levels=m))
        np.testing.assert_array_equal(ids, ids_ref)
        np.testing.assert_array_equal(dis, dis_ref)
        assert not np.isfinite(dis[position]).any()


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_wide_range_tables_with_near_ties(kernel_runner, fast_kernel, nbits, metric):
    """One coarse level dwarfs the fine ones: quantization steps exceed the gaps
    between candidates, so only the margin keeps the true neighbours."""
    rng = np.random.default_rng(11)
    K = 1 << nbits
    books = rng.standard_normal((LEVELS, K, D)).astype(np.float32)
    books[0] *= 1000
    books[1:] *= 0.01
    index = IndexDPQ(D, LEVELS, nbits, metric)
    index.codebooks = books
    codes = rng.integers(0, K, (N, LEVELS))
    codes[:, 0] = rng.integers(0, 2, N)  # few coarse cells: many near-equal distances
    index.add_codes(codes)
    xq = rng.standard_normal((6, D)).astype(np.float32) * 1000
    for m in (1, 3, LEVELS):
        dis, ids = kernel_runner(fast_kernel, lambda: search_all(index, xq, 20, levels=m))
        dis_ref, ids_ref = kernel_runner("scalar", lambda: search_all(index, xq, 20, levels=m))
        np.testing.assert_array_equal(ids, ids_ref)
        np.testing.assert_array_equal(dis, dis_ref)
