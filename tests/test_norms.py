"""Prefix-norm storage of L2 IndexDPQ (none, float32, 8-bit, 4-bit, declared prefixes).

Against the numpy reference: returned distances are the exact distances of
the returned ids at every prefix, for every norm choice and both code widths;
with a shortlist covering the whole database the ids are the reference's
exact top-k. Fast kernels (the norm codes as one more lookup column) return
what the scalar reference returns, bit for bit.
"""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ

from reference import assert_same_knn, exact_search

NORMS = ["none", "float32", "8bit", "4bit"]
LEVELS = 6


def build(trained, data, nbits, norms, norm_prefixes=None, levels=LEVELS):
    index = IndexDPQ(24, levels, nbits, faiss.METRIC_L2, norms=norms, norm_prefixes=norm_prefixes)
    index.codebooks = trained(nbits, levels)
    index.add(data[1])
    return index


def prefix_recons(index, m):
    return np.stack([index.reconstruct_prefix(i, m) for i in range(index.ntotal)])


def exact_distances(recons, xq, I):
    q = xq.astype(np.float64)[:, None, :]
    return ((q - recons.astype(np.float64)[I]) ** 2).sum(-1)



@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", NORMS)
def test_every_prefix_returns_exact_distances_and_the_exact_top_k(trained, data, nbits, norms):
    index = build(trained, data, nbits, norms)
    xq = data[2]
    for m in range(1, LEVELS + 1):
        recons = prefix_recons(index, m)
        # Default shortlist: whatever is returned carries its exact distance.
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m))
        assert (I >= 0).all()
        np.testing.assert_allclose(D, exact_distances(recons, xq, I), rtol=1e-4, atol=1e-3)
        # A shortlist of the whole database: the reference's exact top-k.
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m, shortlist=index.ntotal))
        Dref, Iref = exact_search(recons, xq, 10, faiss.METRIC_L2)
        assert_same_knn(D, I, Dref, Iref)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", ["8bit", "4bit", "float32"])
def test_declared_prefixes_only(trained, data, nbits, norms):
    index = build(trained, data, nbits, norms, norm_prefixes=[5, 2])
    assert index.norm_prefixes == (2, 5)
    xq = data[2]
    for m in (2, 3, 5, 6):  # kept, not kept
        recons = prefix_recons(index, m)
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m, shortlist=index.ntotal))
        Dref, Iref = exact_search(recons, xq, 10, faiss.METRIC_L2)
        assert_same_knn(D, I, Dref, Iref)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", NORMS)
def test_fast_kernels_equal_the_scalar_reference(kernel_runner, trained, data, nbits, norms):
    fast = [k for k in ("avx2", "avx512") if k in pyfaiss_dpq.supported_simd_levels()]
    if not fast:
        pytest.skip("this CPU has no SIMD scan kernel")
    index = build(trained, data, nbits, norms, norm_prefixes=None if norms == "none" else [1, 3, 4, 6])
    xq = data[2]
    for m in range(1, LEVELS + 1):
        for shortlist in (10, 40):
            for nq in (len(xq), 1):
                p = SearchParametersDPQ(levels=m, shortlist=shortlist)
                ref = kernel_runner("scalar", lambda: index.search(xq[:nq], 10, params=p))
                for kernel in fast:
                    got = kernel_runner(kernel, lambda: index.search(xq[:nq], 10, params=p))
                    np.testing.assert_array_equal(got[1], ref[1], err_msg=f"{kernel} ids m={m}")
                    np.testing.assert_array_equal(got[0], ref[0], err_msg=f"{kernel} distances m={m}")


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", NORMS)
def test_range_search_is_exact_without_float_norms(trained, data, nbits, norms):
    index = build(trained, data, nbits, norms)
    m = 4
    recons = prefix_recons(index, m).astype(np.float64)
    xq = data[2][:5]
    dist = ((xq.astype(np.float64)[:, None] - recons[None]) ** 2).sum(-1)
    radius = float(np.median(np.sort(dist, axis=1)[:, 30]))
    lims, D, I = index.range_search(xq, radius, params=SearchParametersDPQ(levels=m))
    for q in range(len(xq)):
        got = set(I[lims[q]:lims[q + 1]].tolist())
        near = np.isclose(dist[q], radius, rtol=1e-4)
        assert set(np.nonzero((dist[q] < radius) & ~near)[0]) <= got <= set(np.nonzero((dist[q] < radius) | near)[0])
        np.testing.assert_allclose(D[lims[q]:lims[q + 1]], dist[q][I[lims[q]:lims[q + 1]]], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", NORMS)
def test_truncation_equals_a_fresh_index(trained, data, nbits, norms):
    prefixes = None if norms == "none" else [2, 3, 6]
    index = build(trained, data, nbits, norms, norm_prefixes=prefixes)
    codes = index.get_codes()
    for m in (1, 3, 5):
        small = index.truncated(m)
        kept = [] if prefixes is None else [p for p in prefixes if p <= m]
        fresh = IndexDPQ(24, m, nbits, faiss.METRIC_L2, norms=norms if kept else "none",
                         norm_prefixes=kept or None)
        fresh.codebooks = index.codebooks[:m]
        if norms in ("8bit", "4bit") and kept:
            fresh.norm_centroids = index.norm_centroids[[prefixes.index(p) for p in kept]]
        fresh.add_codes(codes[:, :m])
        assert small.levels == m and small.ntotal == index.ntotal
        assert small.norms == fresh.norms and small.norm_prefixes == fresh.norm_prefixes
        assert small.bytes_per_vector == fresh.bytes_per_vector
        np.testing.assert_array_equal(small.get_codes(), codes[:, :m])
        np.testing.assert_array_equal(small.norm_centroids, fresh.norm_centroids)
        for level in range(1, m + 1):
            p = SearchParametersDPQ(levels=level)
            Ds, Is = small.search(data[2], 10, params=p)
            Df, If = fresh.search(data[2], 10, params=p)
            np.testing.assert_array_equal(Is, If)
            np.testing.assert_array_equal(Ds, Df)
    with pytest.raises(ValueError, match="levels"):
        index.truncated(LEVELS + 1)
    if prefixes:
        # A subset of the stored prefixes: equal to a fresh index declaring that subset.
        small = index.truncated(5, norm_prefixes=[3])
        fresh = IndexDPQ(24, 5, nbits, faiss.METRIC_L2, norms=norms, norm_prefixes=[3])
        fresh.codebooks = index.codebooks[:5]
        if norms in ("8bit", "4bit"):
            fresh.norm_centroids = index.norm_centroids[[1]]
        fresh.add_codes(codes[:, :5])
        for level in (3, 5):
            p = SearchParametersDPQ(levels=level)
            np.testing.assert_array_equal(small.search(data[2], 10, params=p)[0], fresh.search(data[2], 10, params=p)[0])
        assert index.truncated(5, norm_prefixes=[]).norms == "none"
        with pytest.raises(ValueError, match="stored prefixes"):
            index.truncated(5, norm_prefixes=[6])


@pytest.mark.parametrize("nbits", [4, 8])
def test_bytes_per_vector_and_sa_code_size(trained, data, nbits):
    code_bits = LEVELS * nbits
    expected = {"none": 0, "float32": 32 * LEVELS, "8bit": 8 * LEVELS, "4bit": 4 * LEVELS}
    for norms, bits in expected.items():
        index = IndexDPQ(24, LEVELS, nbits, faiss.METRIC_L2, norms=norms)
        assert index.bytes_per_vector == (code_bits + bits + 7) // 8, norms
        assert index.sa_code_size() == (code_bits + 7) // 8
    index = IndexDPQ(24, LEVELS, nbits, faiss.METRIC_L2, norms="4bit", norm_prefixes=[6])
    assert index.bytes_per_vector == (code_bits + 4 + 7) // 8
    assert IndexDPQ(24, LEVELS, nbits, faiss.METRIC_INNER_PRODUCT).bytes_per_vector == (code_bits + 7) // 8


def test_sa_codes_do_not_depend_on_norm_storage(trained, data):
    a = build(trained, data, 8, "float32")
    b = build(trained, data, 8, "4bit")
    np.testing.assert_array_equal(a.sa_encode(data[2]), b.sa_encode(data[2]))
    np.testing.assert_array_equal(a.sa_decode(a.sa_encode(data[2])), b.sa_decode(b.sa_encode(data[2])))


@pytest.mark.parametrize("norms", ["8bit", "4bit"])
def test_norm_quantizers_are_trained_per_prefix(data, norms):
    index = IndexDPQ(24, 4, 4, faiss.METRIC_L2, norms=norms)
    assert index.norm_centroids.shape[0] == 0
    index.train(data[0])
    C = index.norm_centroids
    K = 256 if norms == "8bit" else 16
    assert C.shape == (4, K)
    assert (np.diff(C, axis=1) >= 0).all()
    # Each prefix's own quantizer codes that prefix's cross terms
    # ||r_m||^2 - sum_l ||c_l||^2 (the own terms are exact in the tables) closely.
    index.add(data[1])
    codes = index.get_codes()
    own = np.cumsum([(index.codebooks[l][codes[:, l]].astype(np.float64) ** 2).sum(-1) for l in range(4)], axis=0)
    for m in range(4):
        cross = (prefix_recons(index, m + 1).astype(np.float64) ** 2).sum(-1) - own[m]
        coded = C[m][np.abs(cross[:, None] - C[m][None]).argmin(1)]
        spread = cross.std() + 1e-6
        assert np.abs(coded - cross).mean() < (0.02 if K == 256 else 0.1) * spread, m


@pytest.mark.parametrize("kwargs, message", [
    (dict(norms="16bit"), "norms must be one of"),
    (dict(norms=8), "norms must be one of"),
    (dict(norms="4bit", norm_prefixes=[0]), r"norm_prefixes must be in \[1, 6\]"),
    (dict(norms="4bit", norm_prefixes=[7]), r"norm_prefixes must be in \[1, 6\]"),
    (dict(norms="4bit", norm_prefixes=[]), "norm_prefixes is empty"),
    (dict(norms="8bit", norm_prefixes=[2, 2]), "given twice"),
    (dict(norms="none", norm_prefixes=[2]), "stores no prefixes"),
    (dict(norms="8bit", metric=faiss.METRIC_INNER_PRODUCT), r"prefix norms serve METRIC_L2 \(and float32"),
    (dict(norms="float32", metric=faiss.METRIC_INNER_PRODUCT), "a cosine index"),
])
def test_bad_norm_arguments_raise(kwargs, message):
    kwargs = dict(kwargs)
    metric = kwargs.pop("metric", faiss.METRIC_L2)
    with pytest.raises(ValueError, match=message):
        IndexDPQ(24, LEVELS, 8, metric, **kwargs)


def test_bad_norm_centroids_raise(trained, data):
    index = IndexDPQ(24, LEVELS, 4, faiss.METRIC_L2, norms="4bit")
    with pytest.raises(ValueError, match="shape"):
        index.norm_centroids = np.zeros((LEVELS, 15), np.float32)
    with pytest.raises(ValueError, match="ascending"):
        index.norm_centroids = np.tile(np.arange(16, 0, -1, dtype=np.float32), (LEVELS, 1))
    with pytest.raises(ValueError, match="shape"):
        IndexDPQ(24, LEVELS, 4, faiss.METRIC_L2, norms="float32").norm_centroids = np.zeros((LEVELS, 16))
    filled = build(trained, data, 4, "4bit")
    with pytest.raises(RuntimeError, match="holds vectors"):
        filled.norm_centroids = filled.norm_centroids


def test_l2_on_normalized_vectors(trained, data):
    """METRIC_L2 on unit vectors (the cosine recipe before ``cosine=True``) is exact too."""
    xb = data[1].copy()
    xq = data[2].copy()
    faiss.normalize_L2(xb)
    faiss.normalize_L2(xq)
    index = IndexDPQ(24, LEVELS, 8, faiss.METRIC_L2, norms="8bit")
    index.train(np.ascontiguousarray(xb))
    index.add(xb)
    recons = prefix_recons(index, LEVELS).astype(np.float64)
    D, I = index.search(xq, 10, params=SearchParametersDPQ(shortlist=index.ntotal))
    Dref, Iref = exact_search(recons, xq, 10, faiss.METRIC_L2)
    assert_same_knn(D, I, Dref, Iref)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", NORMS + ["ip"])
def test_distance_computer_agrees_with_search_bit_for_bit(trained, data, nbits, norms):
    if norms == "ip":
        index = IndexDPQ(24, LEVELS, nbits, faiss.METRIC_INNER_PRODUCT)
        index.codebooks = trained(nbits, LEVELS)
        index.add(data[1])
    else:
        index = build(trained, data, nbits, norms)
    index.search_levels = 4
    D, I = index.search(data[2], 5)
    dc = index.get_distance_computer()
    for q in range(len(data[2])):
        dc.set_query(faiss.swig_ptr(np.ascontiguousarray(data[2][q])))
        got = np.array([dc(int(i)) for i in I[q]], dtype=np.float32)
        np.testing.assert_array_equal(got, D[q])
    del dc


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms", ["8bit", "4bit"])
def test_norm_codes_far_from_the_origin(data, nbits, norms):
    """Norms far wider than the neighbour gaps (as raw pixels): the shortlist's
    lower-bound skipping (rescore.h) keeps the exact top-k and exact distances."""
    xt, xb, xq = (x + np.float32(30) for x in data)
    index = IndexDPQ(24, 4, nbits, faiss.METRIC_L2, norms=norms)
    index.train(xt)
    index.add(xb)
    atol = 5e-2  # float32 cancellation: ||q||^2 and ||r||^2 are ~2e4, distances ~30
    for m in (2, 4):
        recons = prefix_recons(index, m)
        Dref, Iref = exact_search(recons, xq, 10, faiss.METRIC_L2)
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m, shortlist=index.ntotal))
        assert_same_knn(D, I, Dref, Iref, atol=atol)
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m, shortlist=20))
        np.testing.assert_allclose(D, exact_distances(recons, xq, I), rtol=1e-4, atol=atol)


def test_split_norm_column_changes_no_result(kernel_runner, data):
    """Far from the origin the 4-bit norm codes' table spans far more than the
    levels' (their ||r||^2 ~ 2e6): with split table columns (tables.h
    plan_split4, forced on) the kernels look the norm codes up again in extra
    columns, and return what the scalar reference and an unsplit scan return."""
    from pyfaiss_dpq._native import core

    fast = [k for k in ("avx2", "avx512") if k in pyfaiss_dpq.supported_simd_levels()]
    if not fast:
        pytest.skip("this CPU has no SIMD scan kernel")
    xt, xb, xq = (x + np.float32(300) for x in data)
    index = IndexDPQ(24, 4, 4, faiss.METRIC_L2, norms="4bit")
    index.train(xt)
    index.add(xb)
    p = SearchParametersDPQ(levels=4, shortlist=40)
    previous = core.set_split_columns("never")
    try:
        unsplit = kernel_runner(fast[-1], lambda: index.search(xq, 10, params=p))
        core.set_split_columns("always")
        ref = kernel_runner("scalar", lambda: index.search(xq, 10, params=p))
        for kernel in fast:
            got = kernel_runner(kernel, lambda: index.search(xq, 10, params=p))
            for a, b, c in zip(got, ref, unsplit):
                np.testing.assert_array_equal(a, b, err_msg=kernel)
                np.testing.assert_array_equal(a, c, err_msg=kernel)
    finally:
        core.set_split_columns(previous)
