"""Cosine IndexDPQ (``cosine=True``): unit inputs, unit reconstructions.

Against the numpy reference: the codes' reconstructions r_m summed from the
codebooks, projected onto the sphere, and compared with the unit queries.
Returned similarities are exact for the returned ids at every prefix; with
a shortlist covering the database the ids are the reference's exact top-k.
"""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ

from reference import assert_same_knn

LEVELS = 6
D = 24


@pytest.fixture(scope="module")
def cosine_codebooks(data):
    """Codebooks of unit training vectors, per nbits."""
    cache = {}

    def get(nbits):
        if nbits not in cache:
            index = IndexDPQ(D, LEVELS, nbits, faiss.METRIC_INNER_PRODUCT, cosine=True)
            index.train(data[0])
            cache[nbits] = index.codebooks
        return cache[nbits]
    return get


def build(cosine_codebooks, data, nbits, norms=None, norm_prefixes=None):
    index = IndexDPQ(D, LEVELS, nbits, faiss.METRIC_INNER_PRODUCT, norms=norms, norm_prefixes=norm_prefixes,
                     cosine=True)
    index.codebooks = cosine_codebooks(nbits)
    index.add(data[1])
    return index


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_directions(index, m):
    """r_m / ||r_m|| of every stored vector, from the codes and codebooks (float64)."""
    C = index.codebooks.astype(np.float64)
    codes = index.get_codes()
    r = sum(C[l][codes[:, l]] for l in range(m))
    return unit(r)


def reference_knn(dirs, xq, k):
    sims = unit(xq) @ dirs.T
    order = np.lexsort((np.broadcast_to(np.arange(dirs.shape[0]), sims.shape), -sims), axis=-1)[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("stored", [False, True])
def test_every_prefix_returns_exact_cosines_and_the_exact_top_k(cosine_codebooks, data, nbits, stored):
    """Norms computed from the codes, or (stored) read for prefixes 2 and 6 and computed for the others."""
    index = build(cosine_codebooks, data, nbits, *(("float32", [2, 6]) if stored else ()))
    assert index.bytes_per_vector == LEVELS * nbits // 8 + (8 if stored else 0)
    xq = data[2]
    for m in range(1, LEVELS + 1):
        dirs = reference_directions(index, m)
        # Default shortlist: whatever is returned carries its exact cosine.
        Dm, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m))
        assert (I >= 0).all()
        np.testing.assert_allclose(Dm, np.take_along_axis(unit(xq) @ dirs.T, I, axis=1), rtol=1e-5, atol=1e-5)
        # A shortlist of the whole database: the reference's exact top-k.
        Dm, I = index.search(xq, 10, params=SearchParametersDPQ(levels=m, shortlist=index.ntotal))
        assert_same_knn(Dm, I, *reference_knn(dirs, xq, 10), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nbits", [4, 8])
def test_a_wider_shortlist_never_ranks_worse(cosine_codebooks, data, nbits):
    """The shortlist is re-scored exactly: a longer one can only raise the k-th similarity."""
    index = build(cosine_codebooks, data, nbits)
    prev = None
    for shortlist in (10, 30, 100, index.ntotal):
        Dm, _ = index.search(data[2], 10, params=SearchParametersDPQ(levels=3, shortlist=shortlist))
        if prev is not None:
            assert (Dm[:, -1] >= prev[:, -1] - 1e-6).all()
        prev = Dm


@pytest.mark.parametrize("nbits", [4, 8])
def test_fast_kernels_equal_the_scalar_reference(kernel_runner, cosine_codebooks, data, nbits):
    fast = [k for k in ("avx2", "avx512") if k in pyfaiss_dpq.supported_simd_levels()]
    if not fast:
        pytest.skip("this CPU has no SIMD scan kernel")
    index = build(cosine_codebooks, data, nbits)
    xq = data[2]
    for m in (1, 3, LEVELS):
        p = SearchParametersDPQ(levels=m, shortlist=20)
        ref = kernel_runner("scalar", lambda: index.search(xq, 10, params=p))
        for kernel in fast:
            got = kernel_runner(kernel, lambda: index.search(xq, 10, params=p))
            np.testing.assert_array_equal(got[1], ref[1], err_msg=f"{kernel} ids m={m}")
            np.testing.assert_array_equal(got[0], ref[0], err_msg=f"{kernel} similarities m={m}")


@pytest.mark.parametrize("nbits", [4, 8])
def test_range_search_returns_every_cosine_above_the_radius(cosine_codebooks, data, nbits):
    index = build(cosine_codebooks, data, nbits)
    m = 4
    xq = data[2][:5]
    sims = unit(xq) @ reference_directions(index, m).T
    radius = float(np.median(np.sort(sims, axis=1)[:, -30]))
    lims, Dm, I = index.range_search(xq, radius, params=SearchParametersDPQ(levels=m))
    for q in range(len(xq)):
        got = set(I[lims[q]:lims[q + 1]].tolist())
        near = np.isclose(sims[q], radius, rtol=1e-5)
        assert set(np.nonzero((sims[q] > radius) & ~near)[0]) <= got <= set(np.nonzero((sims[q] > radius) | near)[0])
        np.testing.assert_allclose(Dm[lims[q]:lims[q + 1]], sims[q][I[lims[q]:lims[q + 1]]], rtol=1e-5, atol=1e-5)


def test_inputs_are_compared_by_direction(cosine_codebooks, data):
    """Scaling a vector by a power of two scales it to the same unit vector, bit for bit."""
    index = build(cosine_codebooks, data, 8)
    twice = IndexDPQ(D, LEVELS, 8, faiss.METRIC_INNER_PRODUCT, cosine=True)
    twice.codebooks = index.codebooks
    twice.add(data[1] * np.float32(4))
    np.testing.assert_array_equal(twice.get_codes(), index.get_codes())
    np.testing.assert_array_equal(index.sa_encode(data[1][:50] * np.float32(0.5)), index.sa_encode(data[1][:50]))
    a = index.search(data[2], 5)
    b = index.search(data[2] * np.float32(8), 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # Training sees directions too: the same codebooks from scaled vectors.
    scaled = IndexDPQ(D, LEVELS, 8, faiss.METRIC_INNER_PRODUCT, cosine=True)
    scaled.train(data[0] * np.float32(2))
    np.testing.assert_array_equal(scaled.codebooks, index.codebooks)


def test_reconstructions_are_unit_and_agree_with_search(cosine_codebooks, data):
    index = build(cosine_codebooks, data, 4)
    for m in (2, LEVELS):
        recons = np.stack([index.reconstruct_prefix(i, m) for i in range(index.ntotal)])
        np.testing.assert_allclose(recons, reference_directions(index, m), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(recons, axis=1), 1, rtol=1e-6)
        Dm, I = index.search(data[2][:3], 4, params=SearchParametersDPQ(levels=m))
        np.testing.assert_allclose(Dm, np.einsum("qd,qkd->qk", unit(data[2][:3]), recons[I]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(index.sa_decode(index.sa_encode(data[1][:20])), index.reconstruct_n(0, 20), rtol=1e-6)


@pytest.mark.parametrize("nbits", [4, 8])
def test_distance_computer_agrees_with_search_bit_for_bit(cosine_codebooks, data, nbits):
    index = build(cosine_codebooks, data, nbits)
    index.search_levels = 4
    Dm, I = index.search(data[2], 5)
    dc = index.get_distance_computer()
    for q in range(len(data[2])):
        # The computer scales its query as search does.
        dc.set_query(faiss.swig_ptr(np.ascontiguousarray(data[2][q] * np.float32(2))))
        got = np.array([dc(int(i)) for i in I[q]], dtype=np.float32)
        np.testing.assert_array_equal(got, Dm[q])
    del dc


def test_truncation_round_trip_and_merge_keep_the_flag(cosine_codebooks, data):
    index = build(cosine_codebooks, data, 4)
    short = index.truncated(3)
    assert short.cosine
    fresh = IndexDPQ(D, 3, 4, faiss.METRIC_INNER_PRODUCT, cosine=True)
    fresh.codebooks = index.codebooks[:3]
    fresh.add_codes(index.get_codes()[:, :3])
    for a, b in zip(short.search(data[2], 10), fresh.search(data[2], 10)):
        np.testing.assert_array_equal(a, b)
    back = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))
    assert back.cosine and "cosine=True" in repr(back)
    for a, b in zip(index.search(data[2], 10), back.search(data[2], 10)):
        np.testing.assert_array_equal(a, b)
    plain = IndexDPQ(D, LEVELS, 4, faiss.METRIC_INNER_PRODUCT)
    plain.codebooks = index.codebooks
    with pytest.raises(RuntimeError, match="cosine"):  # through Faiss's SWIG merge_from
        index.merge_from(plain)


def test_bad_arguments_and_zero_vectors_raise(cosine_codebooks, data):
    with pytest.raises(ValueError, match="METRIC_INNER_PRODUCT"):
        IndexDPQ(D, LEVELS, 8, faiss.METRIC_L2, cosine=True)
    with pytest.raises(ValueError, match="norms"):
        IndexDPQ(D, LEVELS, 8, faiss.METRIC_INNER_PRODUCT, norms="8bit", cosine=True)
    with pytest.raises(TypeError, match="cosine must be a bool"):
        IndexDPQ(D, LEVELS, 8, faiss.METRIC_INNER_PRODUCT, cosine="yes")
    index = build(cosine_codebooks, data, 8)
    bad = data[1][:4].copy()
    bad[2] = 0
    with pytest.raises(ValueError, match="vector 2 has norm 0"):
        index.add(bad)
    assert index.ntotal == len(data[1])  # nothing added
    with pytest.raises(ValueError, match="IndexDPQ.search: vector 2 has norm 0"):
        index.search(bad, 3)
    with pytest.raises(ValueError, match="norm 0"):
        index.range_search(bad, 0.5)
    with pytest.raises(ValueError, match="norm 0"):
        index.sa_encode(bad)


# ---------------------------------------------------------------- IndexIVFDPQ(cosine=True)
NLIST = 8


@pytest.fixture(scope="module")
def ivf_cosine(data):
    """A cosine IndexIVFDPQ per nbits, trained and filled once."""
    cache = {}

    def get(nbits):
        if nbits not in cache:
            index = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(D), D, NLIST, 4, nbits, faiss.METRIC_INNER_PRODUCT,
                                            cosine=True)
            index.train_params.rounds = 0
            index.train(data[0])
            index.add(data[1])
            cache[nbits] = index
        return cache[nbits]
    return get


def ivf_directions(index, m):
    """(ids, lists, (c + r_m) / ||c + r_m||) of every stored vector, float64."""
    ids, lists, codes = [], [], []
    for l in range(index.nlist):
        ids.append(index.list_ids(l))
        codes.append(index.list_codes(l))
        lists.append(np.full(len(ids[-1]), l))
    ids, lists, codes = np.concatenate(ids), np.concatenate(lists), np.concatenate(codes)
    C = index.codebooks.astype(np.float64)
    rec = index.centroids.astype(np.float64)[lists] + sum(C[l][codes[:, l]] for l in range(m))
    return ids, lists, unit(rec)


@pytest.mark.parametrize("nbits", [4, 8])
def test_ivf_every_list_returns_exact_cosines_and_the_exact_top_k(ivf_cosine, data, nbits):
    from pyfaiss_dpq import SearchParametersIVFDPQ

    index = ivf_cosine(nbits)
    assert index.cosine and "cosine=True" in repr(index)
    xq = data[2]
    for m in (1, 4):
        ids, _, dirs = ivf_directions(index, m)
        sims = unit(xq) @ dirs.T
        Dm, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST, levels=m))
        pos = {int(v): j for j, v in enumerate(ids)}
        np.testing.assert_allclose(Dm, sims[np.arange(len(xq))[:, None], np.vectorize(pos.get)(I)],
                                   rtol=1e-5, atol=1e-5)
        Dm, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST, levels=m, shortlist=len(ids)))
        order = np.lexsort((np.broadcast_to(ids, sims.shape), -sims), axis=-1)[:, :10]
        assert_same_knn(Dm, I, np.take_along_axis(sims, order, 1), ids[order], rtol=1e-5, atol=1e-5)


def test_ivf_range_search_reconstruct_and_round_trip(ivf_cosine, data, tmp_path):
    from pyfaiss_dpq import SearchParametersIVFDPQ

    index = ivf_cosine(4)
    xq = data[2][:4]
    ids, lists, dirs = ivf_directions(index, 4)
    sims = unit(xq) @ dirs.T
    radius = float(np.median(np.sort(sims, axis=1)[:, -20]))
    lims, Dm, I = index.range_search(xq, radius, params=SearchParametersIVFDPQ(nprobe=NLIST))
    for q in range(len(xq)):
        got = set(I[lims[q]:lims[q + 1]].tolist())
        near = np.isclose(sims[q], radius, rtol=1e-5)
        assert set(ids[(sims[q] > radius) & ~near]) <= got <= set(ids[(sims[q] > radius) | near])
    np.testing.assert_allclose(index.reconstruct_batch(ids[:50]), dirs[:50], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(index.sa_decode(index.sa_encode(data[1][:20] * np.float32(3))),
                               index.sa_decode(index.sa_encode(data[1][:20])), rtol=1e-6)
    path = str(tmp_path / "cos.ivfdpq")
    pyfaiss_dpq.write_index(index, path)
    for back in (pyfaiss_dpq.read_index(path), pyfaiss_dpq.read_index(path, mmap=True)):
        assert back.cosine
        for a, b in zip(index.search(data[2], 5), back.search(data[2], 5)):
            np.testing.assert_array_equal(a, b)


def test_ivf_cosine_bad_arguments(data):
    with pytest.raises(ValueError, match="METRIC_INNER_PRODUCT"):
        pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatL2(D), D, NLIST, 4, 4, faiss.METRIC_L2, cosine=True)
    index = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(D), D, NLIST, 4, 4, faiss.METRIC_INNER_PRODUCT, cosine=True)
    bad = data[0][:300].copy()
    bad[7] = 0
    with pytest.raises(ValueError, match="IndexIVFDPQ.train: vector 7 has norm 0"):
        index.train(bad)


def test_ivf_stored_norms_spare_the_decoding(ivf_cosine, data):
    """A cosine IVF index keeping float32 norms of prefix 4 re-scores from them: same results."""
    from pyfaiss_dpq import SearchParametersIVFDPQ

    plain = ivf_cosine(4)
    kept = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(D), D, NLIST, 4, 4, faiss.METRIC_INNER_PRODUCT,
                                   norm_prefixes=[4], cosine=True)
    kept.quantizer.add(plain.centroids)
    kept.codebooks = plain.codebooks
    kept.train(data[0][:10])  # quantizer and codebooks given: nothing to learn
    kept.add(data[1])
    assert kept.norm_prefixes == (4,) and kept.bytes_per_vector == plain.bytes_per_vector + 4
    for m in (2, 4):  # prefix 2 has no stored norm: decoded
        p = SearchParametersIVFDPQ(nprobe=NLIST, levels=m, shortlist=200)
        (Da, Ia), (Db, Ib) = plain.search(data[2], 10, params=p), kept.search(data[2], 10, params=p)
        assert_same_knn(Db, Ib, Da, Ia, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="norm_prefixes serve"):
        pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatIP(D), D, NLIST, 4, 4, faiss.METRIC_INNER_PRODUCT, norm_prefixes=[4])


def test_ivf_4bit_norms_from_tables_equal_the_decoded(ivf_cosine, data):
    """4-bit codes: ||c + r_m||^2 as sums of codeword and centroid products, or (no centroid tables
    kept) by decoding: the same cosines and ids, at every prefix, k-NN and range search."""
    from pyfaiss_dpq import SearchParametersIVFDPQ

    index = ivf_cosine(4)
    assert index.centroid_table_bytes == NLIST * 4 * 16 * 4
    params = [SearchParametersIVFDPQ(nprobe=NLIST, levels=m, shortlist=200) for m in (1, 3, 4)]
    tables = [index.search(data[2], 10, params=p) for p in params]
    ranged = index.range_search(data[2], 0.5, params=params[-1])
    index.max_centroid_table_bytes = 0
    try:
        for p, (Dt, It) in zip(params, tables):
            Dd, Id = index.search(data[2], 10, params=p)
            assert_same_knn(Dt, It, Dd, Id, rtol=1e-5, atol=1e-5)
        lims, Dd, Id = index.range_search(data[2], 0.5, params=params[-1])
        np.testing.assert_array_equal(lims, ranged[0])
        np.testing.assert_array_equal(Id, ranged[2])
        np.testing.assert_allclose(Dd, ranged[1], rtol=1e-5, atol=1e-5)
    finally:
        index.max_centroid_table_bytes = 2 << 30
