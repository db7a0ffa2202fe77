"""Bad input gets a clear exception; random valid input matches the reference."""

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ

from reference import assert_same_knn, exact_search


@pytest.fixture
def index(make_index):
    return make_index(8, levels=6)


@pytest.mark.parametrize("args, exc", [
    ((0, 4, 8), ValueError), ((8, 0, 8), ValueError), ((8, 256, 8), ValueError),
    ((8, 4, 5), ValueError), ((8, 4, 8, 7), ValueError), ((8, 4, 8, faiss.METRIC_L1), ValueError),
    ((8, 4, 8, 100), ValueError), ((8, 4, 8, -1), ValueError), ((8.5, 4, 8), TypeError),
    (("8", 4, 8), TypeError),
])
def test_constructor_rejects_bad_arguments(args, exc):
    with pytest.raises(exc):
        IndexDPQ(*args)


def test_wrong_dimension(index, data):
    with pytest.raises(ValueError, match=r"shape \(n, 24\)"):
        index.search(data[2][:, :10], 5)
    with pytest.raises(ValueError, match=r"shape \(n, 24\)"):
        index.add(np.zeros((3, 25), np.float32))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 3, 24), np.float32), 5)


def test_dtypes_are_converted_or_refused(index, data):
    D32, I32 = index.search(data[2], 5)
    D64, I64 = index.search(data[2].astype(np.float64), 5)
    np.testing.assert_array_equal(I32, I64)
    with pytest.raises(TypeError, match="dtype"):
        index.search(data[2].astype(np.complex64), 5)
    with pytest.raises(TypeError, match="dtype"):
        index.search(np.array([["a"] * 24]), 5)


def test_non_contiguous_and_read_only_inputs(index, data):
    xq = np.asfortranarray(data[2])
    ro = data[2].copy()
    ro.setflags(write=False)
    strided = np.repeat(data[2], 2, axis=0)[::2]
    ref = index.search(data[2], 5)[1]
    for x in (xq, ro, strided):
        np.testing.assert_array_equal(index.search(x, 5)[1], ref)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(index, data, bad):
    x = data[2].copy()
    x[3, 7] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        index.search(x, 5)
    with pytest.raises(ValueError, match="NaN or infinity"):
        index.add(x)
    with pytest.raises(ValueError, match="NaN or infinity"):
        IndexDPQ(24, 2, 4).train(np.full((100, 24), bad, np.float32))


def test_non_finite_values_through_a_faiss_wrapper(index, data):
    wrapped = faiss.IndexIDMap2(IndexDPQ(24, 6, 8))
    pyfaiss_dpq.downcast(wrapped.index).codebooks = index.codebooks
    x = data[1][:4].copy()
    x[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="NaN or infinity"):
        wrapped.add_with_ids(x, np.arange(4))
    assert wrapped.ntotal == 0


@pytest.mark.parametrize("k", [0, -3])
def test_bad_k(index, data, k):
    with pytest.raises(ValueError, match="k must be"):
        index.search(data[2], k)


def test_bad_levels(index, data):
    with pytest.raises(ValueError, match="levels"):
        index.search(data[2], 5, params=SearchParametersDPQ(levels=7))
    with pytest.raises(ValueError, match="rerank_levels"):
        index.search(data[2], 5, params=SearchParametersDPQ(levels=4, rerank_levels=3))
    with pytest.raises(ValueError, match="rerank_k needs"):
        index.search(data[2], 5, params=SearchParametersDPQ(levels=4, rerank_k=30))
    with pytest.raises(ValueError):
        SearchParametersDPQ(levels=-1)
    with pytest.raises(ValueError):
        index.search_levels = 0
    with pytest.raises(TypeError):
        index.search(data[2], 5, params="levels=3")


def test_bad_levels_through_a_faiss_wrapper(index, data):
    wrapped = faiss.IndexIDMap2(IndexDPQ(24, 6, 8))
    with pytest.raises(RuntimeError, match="not trained"):
        wrapped.search(data[2], 5)
    pyfaiss_dpq.downcast(wrapped.index).codebooks = index.codebooks
    wrapped.add_with_ids(data[1][:50], np.arange(50))
    with pytest.raises(RuntimeError, match="levels must be in"):
        wrapped.search(data[2], 5, params=SearchParametersDPQ(levels=9))


def test_search_before_train(data):
    with pytest.raises(RuntimeError, match="not trained"):
        IndexDPQ(24, 2, 8).search(data[2], 5)


def test_train_needs_enough_points(data):
    with pytest.raises(ValueError, match="at least 256"):
        IndexDPQ(24, 2, 8).train(data[0][:100])


def test_codebooks_shape_and_replacement(index):
    with pytest.raises(ValueError, match="shape"):
        index.codebooks = np.zeros((6, 16, 24), np.float32)
    with pytest.raises(RuntimeError, match="reset"):
        index.codebooks = index.codebooks


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_codebooks_are_refused_by_cpp(index, bad):
    fresh = IndexDPQ(24, 6, 8)
    C = index.codebooks
    C[2, 5, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        fresh.codebooks = C
    assert not fresh.is_trained


def test_reconstruct_out_of_range(index):
    with pytest.raises(IndexError, match="out of range"):
        index.reconstruct(index.ntotal)
    with pytest.raises(IndexError, match="out of range"):
        IndexDPQ(24, 6, 8).reconstruct(0)
    with pytest.raises(IndexError):
        index.reconstruct_batch(np.array([0, 10**12]))
    with pytest.raises(ValueError):
        index.reconstruct_prefix(0, 7)


def test_empty_batches(index):
    D, I = index.search(np.zeros((0, 24), np.float32), 5)
    assert D.shape == (0, 5) and I.shape == (0, 5)
    n = index.ntotal
    index.add(np.zeros((0, 24), np.float32))
    assert index.ntotal == n


def test_bad_codes(index):
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        index.add_codes(np.full((2, 6), 256))
    with pytest.raises(ValueError):
        index.add_codes(np.zeros((2, 5), np.uint8))
    with pytest.raises(ValueError):
        index.sa_decode(np.zeros((2, 5), np.uint8))
    four = IndexDPQ(24, 3, 4)
    four.codebooks = np.zeros((3, 16, 24), np.float32)
    with pytest.raises(ValueError, match="past its last level"):
        four.add_sa_codes(np.array([[0, 0xF0]], np.uint8))


def test_ids_out_of_int64_range():
    with pytest.raises(ValueError, match="int64"):
        pyfaiss_dpq._validate.as_ids(np.array([2**63], dtype=np.uint64))


# ---------------------------------------------------------------- properties

@st.composite
def scenario(draw):
    nbits = draw(st.sampled_from([4, 8]))
    levels = draw(st.integers(1, 5))
    d = draw(st.integers(1, 12))
    n = draw(st.integers(0, 90))
    metric = draw(st.sampled_from([faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT]))
    seed = draw(st.integers(0, 2**32 - 1))
    nq = draw(st.integers(1, 6))
    k = draw(st.integers(1, 100))
    m = draw(st.integers(1, levels))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    return nbits, levels, d, n, metric, seed, nq, k, m, scale


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_random_indexes_match_reference(sc):
    nbits, levels, d, n, metric, seed, nq, k, m, scale = sc
    rng = np.random.default_rng(seed)
    index = IndexDPQ(d, levels, nbits, metric)
    index.codebooks = (rng.standard_normal((levels, 1 << nbits, d)) * scale).astype(np.float32)
    xb = (rng.standard_normal((n, d)) * scale).astype(np.float32)
    xq = (rng.standard_normal((nq, d)) * scale).astype(np.float32)
    index.add(xb)
    assert index.ntotal == n
    recons = np.stack([index.reconstruct_prefix(i, m) for i in range(n)]) if n else np.zeros((0, d))
    D, I = index.search(xq, k, params=SearchParametersDPQ(levels=m))
    kk = min(k, n)
    assert (I[:, kk:] == -1).all()
    if kk:
        Dref, Iref = exact_search(recons, xq, kk, metric)
        tol = 1e-4 * scale * scale * max(d, 1) * 4
        assert_same_knn(D[:, :kk], I[:, :kk], Dref, Iref, rtol=1e-4, atol=tol)
    # Removing a random subset keeps the others, in order.
    if n:
        drop = rng.random(n) < 0.3
        before = index.get_codes()
        removed = index.remove_ids(faiss.IDSelectorBatch(np.nonzero(drop)[0].astype(np.int64)))
        assert removed == drop.sum()
        np.testing.assert_array_equal(index.get_codes(), before[~drop])


# ---------------------------------------------------------------- one rule, one place

def test_levels_zero_means_the_index_default_everywhere(index, data):
    # levels=0 is the index's search_levels, also when checking rerank_levels
    # (the Python side once read it as 1 and let this through to C++).
    index.search_levels = 5
    with pytest.raises(ValueError, match="rerank_levels must be in"):
        index.search(data[2], 5, params=SearchParametersDPQ(levels=0, rerank_levels=4))
    implicit = index.search(data[2], 5, params=SearchParametersDPQ(levels=0, rerank_levels=6, rerank_k=20))
    explicit = index.search(data[2], 5, params=SearchParametersDPQ(levels=5, rerank_levels=6, rerank_k=20))
    np.testing.assert_array_equal(implicit[1], explicit[1])
    np.testing.assert_array_equal(implicit[0], explicit[0])


def test_range_search_checks_like_search(index, data):
    with pytest.raises(ValueError, match="levels must be in"):
        index.range_search(data[2], 10.0, params=SearchParametersDPQ(levels=7))
    with pytest.raises(ValueError, match="NaN or infinity"):
        index.range_search(np.full((1, 24), np.nan, np.float32), 10.0)
    lims, D, I = index.range_search(data[2], 200.0)
    ref = faiss.Index.range_search(index, data[2], 200.0)  # Faiss's own wrapper, same C++ call
    for got, want in zip((lims, D, I), ref):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("position", [0, 17, 40, 71])
def test_non_finite_value_found_wherever_it_is(index, position):
    # 3 x 24 = 72 values: four 16-value blocks of the cheap sum, then a tail.
    x = np.ones((3, 24), np.float32)
    x.flat[position] = np.nan
    with pytest.raises(ValueError, match=rf"NaN or infinity \(first at row {position // 24}\)"):
        index.sa_encode(x)
    with pytest.raises(ValueError, match=rf"first at row {position // 24}"):
        pyfaiss_dpq._validate.check_finite(x)


def test_a_sum_that_overflows_is_not_a_non_finite_value(index):
    # The cheap check sums the values; an overflowing sum falls back to the
    # value-by-value scan, which finds nothing to refuse.
    x = np.full((3, 24), 3e38, np.float32)
    pyfaiss_dpq._validate.check_finite(x)
    assert index.sa_encode(x).shape == (3, index.sa_code_size())


def test_search_params_fields_are_checked_in_cpp():
    with pytest.raises(ValueError, match="SearchParametersDPQ.levels must be a non-negative int32"):
        SearchParametersDPQ(levels=2**31)
    with pytest.raises(ValueError, match="rerank_k must be a non-negative int64"):
        SearchParametersDPQ(rerank_k=-1)
    with pytest.raises(TypeError):
        SearchParametersDPQ(levels=1.5)


def test_search_writes_into_given_outputs(index, data):
    D = np.empty((20, 5), np.float32)
    I = np.empty((20, 5), np.int64)
    Dr, Ir = index.search(data[2], 5, D=D, I=I)
    assert Dr is D and Ir is I
    ref = faiss.Index.search(index, data[2], 5)  # Faiss's own wrapper
    np.testing.assert_array_equal(I, ref[1])
    np.testing.assert_array_equal(D, ref[0])
