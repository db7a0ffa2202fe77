"""Faiss wrappers take an IndexDPQ unchanged and agree with it."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ

from reference import assert_same_knn


def test_idmap2_translates_ids_and_forwards_params(make_index, data):
    direct = make_index()
    wrapped = faiss.IndexIDMap2(make_index(fill=False))
    ids = np.arange(1500, dtype=np.int64) * 7 + 3
    wrapped.add_with_ids(data[1], ids)
    for m in (2, 6):
        p = SearchParametersDPQ(levels=m)
        D, I = direct.search(data[2], 10, params=p)
        Dw, Iw = wrapped.search(data[2], 10, params=SearchParametersDPQ(levels=m))
        np.testing.assert_array_equal(Iw, ids[I])
        np.testing.assert_allclose(Dw, D)
    assert pyfaiss_dpq.downcast(wrapped.index).levels == 6
    np.testing.assert_allclose(wrapped.reconstruct(int(ids[10])), direct.reconstruct(10))


def test_downcast_returns_the_same_object(make_index):
    index = make_index(fill=False)
    wrapped = faiss.IndexIDMap2(index)
    assert pyfaiss_dpq.downcast(wrapped.index) is index


def test_shards_equal_single_index(make_index, data):
    direct = make_index()
    shards = faiss.IndexShards(24, False, True)
    parts = [make_index(fill=False) for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(data[1], 3)):
        part.add(chunk)
        shards.add_shard(part)
    D, I = direct.search(data[2], 10)
    Ds, Is = shards.search(data[2], 10)
    assert_same_knn(Ds, Is, D, I)


def test_refine_flat_reranks_with_exact_distances(make_index, data):
    refine = faiss.IndexRefineFlat(make_index(fill=False))
    refine.k_factor = 4
    refine.add(data[1])
    D, I = refine.search(data[2], 10)
    exact = ((data[2][:, None, :] - data[1][I]) ** 2).sum(-1)
    np.testing.assert_allclose(D, exact, rtol=1e-4, atol=1e-3)
    Dflat, Iflat = faiss.knn(data[2], data[1], 10)
    assert (I == Iflat).mean() > (make_index().search(data[2], 10)[1] == Iflat).mean()


def test_pretransform_applies_the_transform(make_index, data, trained):
    rot = faiss.RandomRotationMatrix(24, 24)
    rot.init(7)
    inner = make_index(fill=False)
    pre = faiss.IndexPreTransform(rot, inner)
    pre.add(data[1])
    direct = make_index(fill=False)
    direct.add(rot.apply(data[1]))
    D, I = pre.search(data[2], 10, params=SearchParametersDPQ(levels=3))
    Dd, Id = direct.search(rot.apply(data[2]), 10, params=SearchParametersDPQ(levels=3))
    np.testing.assert_array_equal(I, Id)
    np.testing.assert_allclose(D, Dd)


@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_hnsw_uses_it_as_storage(make_index, data, metric):
    storage = make_index(metric=metric, fill=False)
    hnsw = faiss.IndexHNSW(storage, 16)
    hnsw.hnsw.efSearch = 64
    hnsw.add(data[1])
    D, I = hnsw.search(data[2], 10)
    Dd, Id = make_index(metric=metric).search(data[2], 10)
    # HNSW is approximate; on 1,500 vectors it finds nearly all true neighbours
    # (the graph, and so which ones, differs between Faiss releases) and
    # reports exactly the storage's distance for each one it finds.
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Id)])
    assert recall >= 0.95
    for row in range(len(I)):
        ref = dict(zip(Id[row], Dd[row]))
        found = [(d, ref[i]) for i, d in zip(I[row], D[row]) if i in ref]
        np.testing.assert_allclose(*zip(*found), rtol=1e-4, atol=1e-3)
