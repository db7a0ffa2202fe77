"""IndexDPQ search, codec and Faiss-interface behaviour against exact references."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ

from reference import assert_same_knn, exact_search

METRICS = [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT]


def prefix_recons(index, m):
    return np.stack([index.reconstruct_prefix(i, m) for i in range(index.ntotal)])


def test_is_a_genuine_faiss_index(make_index):
    index = make_index()
    assert isinstance(index, faiss.Index)
    assert index.is_trained and index.ntotal == 1500 and index.d == 24
    assert index.codebooks.shape == (6, 256, 24)


def test_untrained_index_reports_it(data):
    index = IndexDPQ(24, 4, 8)
    assert not index.is_trained
    with pytest.raises(RuntimeError, match="not trained"):
        index.add(data[1])


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", METRICS)
def test_search_matches_reference_at_every_prefix(make_index, data, nbits, metric):
    index = make_index(nbits, metric)
    xq = data[2]
    for m in range(1, index.levels + 1):
        D, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m))
        Dref, Iref = exact_search(prefix_recons(index, m), xq, 10, metric)
        assert_same_knn(D, I, Dref, Iref)


@pytest.mark.parametrize("metric", METRICS)
def test_prefix_search_equals_index_of_first_m_codebooks(make_index, trained, data, metric):
    full = make_index(8, metric)
    codes = full.get_codes()
    for m in (1, 3, 5):
        small = IndexDPQ(24, m, 8, metric)
        small.codebooks = trained(8)[:m]
        small.add_codes(codes[:, :m])
        D, I = full.search(data[2], 10, params=SearchParametersDPQ(levels=m))
        Ds, Is = small.search(data[2], 10)
        np.testing.assert_array_equal(I, Is)
        np.testing.assert_allclose(D, Ds, rtol=1e-5, atol=1e-4)


def test_search_levels_attribute_is_the_default_prefix(make_index, data):
    index = make_index()
    D1, I1 = index.search(data[2], 5, params=SearchParametersDPQ(levels=3))
    index.search_levels = 3
    D2, I2 = index.search(data[2], 5)
    np.testing.assert_array_equal(I1, I2)


def test_reconstruction_error_decreases_with_levels(make_index, data):
    index = make_index()
    errors = [np.mean((prefix_recons(index, m) - data[1]) ** 2) for m in range(1, 7)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_beam_search_codes_are_no_worse_than_greedy(make_index, data):
    greedy = make_index(fill=False)
    beam = make_index(fill=False)
    beam.beam_size = 8
    greedy.add(data[1])
    beam.add(data[1])
    err_g = ((greedy.reconstruct_n(0, greedy.ntotal) - data[1]) ** 2).sum(1)
    err_b = ((beam.reconstruct_n(0, beam.ntotal) - data[1]) ** 2).sum(1)
    assert np.all(err_b <= err_g + 1e-3)
    assert err_b.mean() < err_g.mean()


@pytest.mark.parametrize("nbits", [4, 8])
def test_sa_codec_round_trip(make_index, data, nbits):
    index = make_index(nbits)
    codes = index.sa_encode(data[1][:50])
    assert codes.shape == (50, index.sa_code_size()) and index.sa_code_size() == 6 * nbits // 8
    np.testing.assert_allclose(index.sa_decode(codes), index.reconstruct_n(0, 50), rtol=1e-5, atol=1e-5)
    other = make_index(nbits, fill=False)
    other.add_sa_codes(codes)
    np.testing.assert_array_equal(other.get_codes(), index.get_codes(0, 50))


def test_bytes_per_vector_counts_norms_for_l2(make_index):
    assert make_index(8, faiss.METRIC_L2).bytes_per_vector == 6 + 4 * 6  # default: float32 norms
    assert make_index(8, faiss.METRIC_INNER_PRODUCT).bytes_per_vector == 6
    assert make_index(4, faiss.METRIC_INNER_PRODUCT).bytes_per_vector == 3


def test_k_larger_than_ntotal_pads_with_minus_one(make_index, data):
    index = make_index(fill=False)
    index.add(data[1][:3])
    D, I = index.search(data[2][:2], 5)
    assert (I[:, 3:] == -1).all() and (I[:, :3] >= 0).all()
    assert (D[:, 3:] == np.finfo(np.float32).max).all()


def test_selector_restricts_results(make_index, data):
    index = make_index()
    sel = faiss.IDSelectorRange(100, 200)
    D, I = index.search(data[2], 10, params=SearchParametersDPQ(levels=4, sel=sel))
    assert ((I >= 100) & (I < 200)).all()
    recons = prefix_recons(index, 4)[100:200]
    Dref, Iref = exact_search(recons, data[2], 10, faiss.METRIC_L2)
    assert_same_knn(D, I, Dref, Iref + 100)


@pytest.mark.parametrize("metric", METRICS)
def test_range_search_matches_reference(make_index, data, metric):
    index = make_index(8, metric)
    recons = prefix_recons(index, index.levels)
    Dall, _ = exact_search(recons, data[2], index.ntotal, metric)
    radius = float(np.median(Dall[:, 50]))
    lims, D, I = index.range_search(data[2], radius)
    for q in range(len(data[2])):
        got = set(I[lims[q]:lims[q + 1]].tolist())
        b = recons.astype(np.float64)
        qv = data[2][q].astype(np.float64)
        dist = ((b - qv) ** 2).sum(1) if metric == faiss.METRIC_L2 else b @ qv
        inside = dist < radius if metric == faiss.METRIC_L2 else dist > radius
        borderline = np.isclose(dist, radius, rtol=1e-4)
        assert set(np.nonzero(inside & ~borderline)[0]) <= got <= set(np.nonzero(inside | borderline)[0])


def test_rerank_with_more_levels(make_index, data):
    index = make_index()
    p = SearchParametersDPQ(levels=2, rerank_levels=6, rerank_k=200)
    D, I = index.search(data[2], 10, params=p)
    # Re-ranked distances are exact full-code distances of the returned ids.
    full = prefix_recons(index, 6)
    dist = ((data[2][:, None, :] - full[I]) ** 2).sum(-1)
    np.testing.assert_allclose(D, dist, rtol=1e-4, atol=1e-3)
    # ... and the result is the exact full-code top-10 among the 200 candidates.
    _, Ic = index.search(data[2], 200, params=SearchParametersDPQ(levels=2))
    for q in range(len(I)):
        cand = Ic[q]
        dc = ((data[2][q] - full[cand]) ** 2).sum(1)
        assert set(I[q]) == set(cand[np.argsort(dc, kind="stable")[:10]])


def test_remove_ids_and_reset(make_index, data):
    index = make_index()
    removed = index.remove_ids(faiss.IDSelectorRange(0, 500))
    assert removed == 500 and index.ntotal == 1000
    ref = make_index(fill=False)
    ref.add(data[1][500:])
    np.testing.assert_array_equal(index.get_codes(), ref.get_codes())
    index.reset()
    assert index.ntotal == 0


def test_merge_from(make_index, data):
    a, b = make_index(fill=False), make_index(fill=False)
    a.add(data[1][:700])
    b.add(data[1][700:])
    a.merge_from(b)
    assert a.ntotal == 1500 and b.ntotal == 0
    np.testing.assert_array_equal(a.get_codes(), make_index().get_codes())


def test_train_learns_codebooks_from_data(data):
    index = IndexDPQ(24, 3, 4)
    index.train(data[0])
    assert index.is_trained
    index.add(data[1])
    err = np.mean((index.reconstruct_n(0, index.ntotal) - data[1]) ** 2)
    assert err < 0.5 * np.mean((data[1] - data[1].mean(0)) ** 2)


def test_reconstruct_batch_and_n(make_index):
    index = make_index()
    keys = np.array([5, 0, 1499])
    np.testing.assert_array_equal(index.reconstruct_batch(keys), index.reconstruct_n(0, 1500)[keys])


def test_search_levels_and_beam_size_change_safely_during_searches(make_index, data):
    """Writers of search_levels/beam_size race GIL-free searches: each search
    sees one value or the other, never a torn or out-of-range one."""
    import threading

    index = make_index()
    xq = data[2]
    expected = {m: index.search(xq, 5, params=SearchParametersDPQ(levels=m)) for m in (2, 5)}
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            index.search_levels = 2 if i % 2 else 5
            index.beam_size = 1 + i % 4
            i += 1

    def searcher():
        try:
            for _ in range(150):
                D, I = index.search(xq, 5)
                assert any(np.array_equal(I, e[1]) and np.array_equal(D, e[0]) for e in expected.values())
        except AssertionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert not errors, errors[0]
