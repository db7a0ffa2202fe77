"""faiss.clone_index on an IndexDPQ and on Faiss wrappers around one."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ


def same_search(a, b, xq, params=None):
    Da, Ia = a.search(xq, 10, params=params)
    Db, Ib = b.search(xq, 10, params=params)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)


def idmap2(make_index, x):
    index = faiss.IndexIDMap2(make_index(fill=False))
    index.add_with_ids(x, np.arange(len(x), dtype=np.int64) * 7 + 5)
    return index


def pretransform(make_index, x):
    rot = faiss.RandomRotationMatrix(24, 24)
    rot.init(3)
    index = faiss.IndexPreTransform(rot, make_index(fill=False))
    index.add(x)
    return index


def refine_flat(make_index, x):
    index = faiss.IndexRefineFlat(make_index(fill=False))
    index.k_factor = 3
    index.add(x)
    return index


def shards(make_index, x):
    index = faiss.IndexShards(24, False, True)
    for chunk in np.array_split(x, 3):
        part = make_index(fill=False)
        part.add(chunk)
        index.add_shard(part)
    return index


def hnsw(make_index, x):
    storage = make_index(fill=False)
    index = faiss.IndexHNSW(storage, 16)
    index.referenced_objects = [storage]
    index.add(x)
    index.hnsw.efSearch = 32
    return index


WRAPPERS = [idmap2, pretransform, refine_flat, shards, hnsw]


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_clone_of_an_index_searches_identically_and_is_independent(make_index, data, nbits, metric):
    index = make_index(nbits, metric)
    index.search_levels = 4
    index.beam_size = 2
    clone = faiss.clone_index(index)
    assert isinstance(clone, IndexDPQ) and clone.this is not index.this
    assert (clone.levels, clone.nbits, clone.metric_type, clone.search_levels, clone.beam_size) == (
        6, nbits, metric, 4, 2)
    np.testing.assert_array_equal(clone.get_codes(), index.get_codes())
    same_search(index, clone, data[2])
    same_search(index, clone, data[2], SearchParametersDPQ(levels=2, rerank_levels=5, rerank_k=30))

    before, codes = index.search(data[2], 10), index.get_codes()
    clone.add(data[2])
    clone.search_levels = 2
    assert (index.ntotal, index.search_levels) == (1500, 4)
    index.reset()
    assert clone.ntotal == 1520
    np.testing.assert_array_equal(clone.get_codes(0, 1500), codes)
    del clone  # the original outlives its clone and the other way round
    index.add_codes(codes)
    np.testing.assert_array_equal(index.search(data[2], 10)[1], before[1])


def test_clone_of_an_untrained_index():
    clone = faiss.clone_index(IndexDPQ(8, 3, 4))
    assert isinstance(clone, IndexDPQ) and not clone.is_trained and clone.d == 8


@pytest.mark.parametrize("build", WRAPPERS, ids=lambda f: f.__name__)
def test_clone_of_a_wrapper_searches_identically_and_is_independent(make_index, data, build):
    index = build(make_index, data[1])
    clone = faiss.clone_index(index)
    assert type(clone) is type(index)
    assert clone.this is not index.this and clone.ntotal == index.ntotal == 1500
    same_search(index, clone, data[2])
    if build is hnsw:
        assert clone.hnsw.efSearch == 32
        assert faiss.vector_to_array(clone.hnsw.neighbors).tolist() == \
            faiss.vector_to_array(index.hnsw.neighbors).tolist()

    before = index.search(data[2], 10)
    if build is idmap2:
        clone.add_with_ids(data[2], np.arange(20, dtype=np.int64) + 10**6)
    elif build is shards:  # successive-id shards only take one add(): grow a shard
        pyfaiss_dpq.downcast(clone.at(2)).add(data[2])
        clone.syncWithSubIndexes()
    else:
        clone.add(data[2])
    assert index.ntotal == 1500 and clone.ntotal == 1520
    np.testing.assert_array_equal(index.search(data[2], 10)[1], before[1])
    index.reset()
    assert clone.ntotal == 1520


def test_clone_of_a_clone_and_of_plain_faiss_indexes(make_index, data):
    flat = faiss.IndexFlatL2(24)
    flat.add(data[1])
    flat_clone = faiss.clone_index(flat)  # Faiss's own cloner, untouched
    assert type(flat_clone) is faiss.IndexFlatL2
    same_search(flat, flat_clone, data[2])
    index = refine_flat(make_index, data[1])
    same_search(index, faiss.clone_index(faiss.clone_index(index)), data[2])


def test_hnsw_over_dpq_round_trips_through_files(make_index, data, tmp_path):
    index = hnsw(make_index, data[1])
    path = str(tmp_path / "hnsw.index")
    faiss.write_index(index, path)
    back = faiss.read_index(path)
    assert type(back) is faiss.IndexHNSW
    assert isinstance(pyfaiss_dpq.downcast(back.storage), IndexDPQ)
    same_search(index, back, data[2])


def test_clone_hook_can_be_turned_off(make_index):
    index = make_index(fill=False)
    pyfaiss_dpq.uninstall_faiss_io_hooks()
    try:
        with pytest.raises(RuntimeError):
            faiss.clone_index(index)
    finally:
        pyfaiss_dpq.install_faiss_io_hooks()
    assert isinstance(faiss.clone_index(index), IndexDPQ)


def test_copy_and_pickle_go_through_the_format(make_index, data):
    import copy
    import pickle

    index = make_index(4)
    for other in (copy.deepcopy(index), copy.copy(index), pickle.loads(pickle.dumps(index))):
        assert isinstance(other, IndexDPQ) and other.this is not index.this
        same_search(index, other, data[2])
        other.reset()
        assert index.ntotal == 1500
