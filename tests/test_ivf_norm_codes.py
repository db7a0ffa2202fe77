"""IndexIVFDPQ with its L2 prefix norms kept as 4- or 8-bit codes, against the numpy reference over c + r_m."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexIVFDPQ, SearchParametersIVFDPQ
from pyfaiss_dpq._native import core
from pyfaiss_dpq.persist import deserialize, serialize
from reference import assert_same_knn
from test_ivf import LEVELS, NLIST, assert_range_equals_reference, build_l2, reconstructions, reference

PREFIXES = [2, LEVELS]
CASES = [(nbits, norms) for nbits in (4, 8) for norms in ("4bit", "8bit")]


@pytest.fixture(scope="module")
def coded(data):
    """Per (nbits, norms, offset): a trained and filled index with norm codes of PREFIXES, and its queries;
    offset moves the data away from the origin (as image pixels lie)."""
    cache = {}

    def get(nbits, norms, offset=0.0):
        key = nbits, norms, offset
        if key not in cache:
            cache[key] = build_l2(data, nbits, offset, norms=norms, norm_prefixes=PREFIXES)
        return cache[key]
    return get


def exact_distances(index, xq, I, m):
    """||q - c - r_m||^2 of the ids I, in float64."""
    ids, _, rec = reconstructions(index, m)
    row = {int(v): j for j, v in enumerate(ids)}
    return np.array([[((xq[q].astype(np.float64) - rec[row[int(i)]]) ** 2).sum() for i in I[q]]
                     for q in range(len(I))])


@pytest.mark.parametrize("nbits,norms", CASES)
@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_shortlist_of_every_candidate_equals_reference(coded, nbits, norms, offset):
    """A shortlist as large as the index re-scores every scanned vector: the exact k-NN of c + r_m, at
    every stored prefix, over all lists and over the probed ones."""
    index, xq = coded(nbits, norms, offset)
    for m in PREFIXES:
        params = SearchParametersIVFDPQ(nprobe=NLIST, levels=m, shortlist=index.ntotal)
        D, I = index.search(xq, 10, params=params)
        Dr, Ir = reference(index, xq, 10, m)
        assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    _, probes = index.quantizer.search(xq, 3)
    D, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=3, shortlist=index.ntotal))
    Dr, Ir = reference(index, xq, 10, LEVELS, probes=probes)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


@pytest.mark.parametrize("nbits,norms", CASES)
def test_returned_distances_are_exact(coded, nbits, norms):
    """With the default shortlist the ranking is the codes', the distances of what is returned exact; and
    the codes rank well: most of the exact 10-NN come back."""
    index, xq = coded(nbits, norms)
    for m in PREFIXES:
        D, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=3, levels=m))
        assert (I >= 0).all()
        np.testing.assert_allclose(D, exact_distances(index, xq, I, m), rtol=1e-4, atol=1e-4)
        assert (np.diff(D, axis=1) >= 0).all()
        _, probes = index.quantizer.search(xq, 3)
        _, Ir = reference(index, xq, 10, m, probes=probes)
        assert np.mean([len(set(a) & set(b)) for a, b in zip(I, Ir)]) >= 9


@pytest.mark.parametrize("nbits,norms", CASES)
def test_fast_kernels_equal_scalar_reference(coded, kernel_runner, nbits, norms):
    index, xq = coded(nbits, norms, 50.0)
    searches = [SearchParametersIVFDPQ(nprobe=4, levels=m, shortlist=s) for m in PREFIXES for s in (10, 40)]
    searches.append(SearchParametersIVFDPQ(nprobe=4, levels=2, rerank_levels=LEVELS, rerank_k=30))
    for params in searches:
        want = kernel_runner("scalar", lambda: index.search(xq, 7, params=params))
        for name in core.scan_kernels():
            got = kernel_runner(name, lambda: index.search(xq, 7, params=params))
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("nbits,norms", CASES)
def test_range_search_equals_reference(coded, nbits, norms):
    """Range search scans without norms (a lower bound) and adds the exact one to what passes."""
    index, xq = coded(nbits, norms)
    assert_range_equals_reference(index, xq[:6])


def test_rerank_with_every_candidate_equals_full_prefix(coded, data):
    index, xq = coded(4, "4bit")
    params = SearchParametersIVFDPQ(nprobe=NLIST, levels=2, rerank_levels=LEVELS, rerank_k=index.ntotal)
    D, I = index.search(xq, 10, params=params)
    Dr, Ir = reference(index, xq, 10, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


@pytest.mark.parametrize("nbits,norms", CASES)
def test_bytes_norm_centroids_and_files(coded, tmp_path, nbits, norms):
    index, xq = coded(nbits, norms)
    bits = 4 if norms == "4bit" else 8
    assert index.norms == norms and index.norm_prefixes == tuple(PREFIXES) and index.relative_norms
    assert index.bytes_per_vector == -(-(LEVELS * nbits + len(PREFIXES) * bits) // 8)
    c = index.norm_centroids
    assert c.shape == (len(PREFIXES), 2 ** bits) and (np.diff(c, axis=1) >= 0).all()
    params = SearchParametersIVFDPQ(nprobe=3, levels=2)
    D, I = index.search(xq, 10, params=params)
    path = str(tmp_path / "coded.dpq")
    pyfaiss_dpq.write_index(index, path)
    for mmap in (False, True):
        back = pyfaiss_dpq.read_index(path, mmap=mmap)
        assert back.norms == norms and back.bytes_per_vector == index.bytes_per_vector
        np.testing.assert_array_equal(back.norm_centroids, c)
        D2, I2 = back.search(xq, 10, params=params)
        np.testing.assert_array_equal(D2, D)
        np.testing.assert_array_equal(I2, I)
        if mmap:
            back.verify()


def test_remove_merge_and_reconstruct(data):
    xt, xb, xq = data
    d = xt.shape[1]
    index = IndexIVFDPQ(faiss.IndexFlatL2(d), d, NLIST, LEVELS, 4, norms="4bit")
    index.train_params.rounds = 1
    index.train(xt)
    other = deserialize(serialize(index))  # the same model, empty
    index.add(xb[:700])
    other.add_with_ids(xb[700:], np.arange(700, len(xb)))
    index.merge_from(other)
    assert index.ntotal == len(xb) and other.ntotal == 0
    params = SearchParametersIVFDPQ(nprobe=NLIST, shortlist=len(xb))
    D, I = index.search(xq, 10, params=params)
    Dr, Ir = reference(index, xq, 10, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    assert index.remove_ids(faiss.IDSelectorRange(0, 750)) == 750
    D, I = index.search(xq, 10, params=params)
    assert (I >= 750).all()
    Dr, Ir = reference(index, xq, 10, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    ids, _, rec = reconstructions(index, LEVELS)
    np.testing.assert_allclose(index.reconstruct(int(ids[5])), rec[5], rtol=1e-5, atol=1e-5)


def test_codebooks_from_flat_train_norm_codes_on_first_add(data):
    """Codebooks and centroids set directly (no train): the first vectors added train the norm codes."""
    xt, xb, xq = data
    d = xt.shape[1]
    flat = pyfaiss_dpq.IndexDPQ(d, LEVELS, 4)
    flat.train(xt)
    km = faiss.Kmeans(d, NLIST, niter=5, seed=1)
    km.train(xt)
    quantizer = faiss.IndexFlatL2(d)
    quantizer.add(km.centroids)
    index = IndexIVFDPQ(quantizer, d, NLIST, LEVELS, 4, norms="8bit")
    index.codebooks = flat.codebooks
    index.train(xt)  # the coarse level from the quantizer, and the norm codes
    assert index.norm_centroids.shape == (LEVELS, 256)
    index.codebooks = flat.codebooks  # new codebooks drop the norm codes ...
    assert index.norm_centroids.shape == (0, 256)
    index.add(xb)  # ... which the first add trains again
    assert index.norm_centroids.shape == (LEVELS, 256)
    D, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST, shortlist=len(xb)))
    Dr, Ir = reference(index, xq, 10, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


def test_bad_norms_raise(data):
    d = data[0].shape[1]
    with pytest.raises(ValueError, match="norms must be"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, NLIST, LEVELS, 4, norms="2bit")
    with pytest.raises(TypeError, match="norms"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, NLIST, LEVELS, 4, norms=8)
    with pytest.raises(ValueError, match="METRIC_L2 keeps norms"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, NLIST, LEVELS, 4, norms="none")
    with pytest.raises(ValueError, match="inner product keeps no norms"):
        IndexIVFDPQ(faiss.IndexFlatIP(d), d, NLIST, LEVELS, 4, faiss.METRIC_INNER_PRODUCT, norms="8bit")
    index = IndexIVFDPQ(faiss.IndexFlatL2(d), d, NLIST, LEVELS, 4, norms="4bit", norm_prefixes=[2])
    with pytest.raises(ValueError, match="always relative"):
        index.relative_norms = False
    index.train(data[0])
    with pytest.raises(ValueError, match="no norm is stored for prefix 3"):
        index.search(data[2], 5, params=SearchParametersIVFDPQ(levels=3))
