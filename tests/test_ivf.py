"""IndexIVFDPQ against a numpy reference over the stored codes (c + r_m)."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexIVFDPQ, SearchParametersIVFDPQ
from pyfaiss_dpq._native import core
from reference import assert_same_knn

NLIST, LEVELS = 8, 4


@pytest.fixture(scope="module")
def built(data):
    """One trained and filled index per (nbits, metric), trained once."""
    xt, xb, _ = data
    cache = {}

    def get(nbits, metric):
        if (nbits, metric) not in cache:
            d = xt.shape[1]
            quantizer = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
            index = IndexIVFDPQ(quantizer, d, NLIST, LEVELS, nbits, metric)
            index.train_params.rounds = 1
            index.train(xt)
            index.add(xb)
            cache[nbits, metric] = index
        return cache[nbits, metric]
    return get


def reconstructions(index, m):
    """c + r_m of every stored vector (float64), with its id and list."""
    ids, lists, codes = index.list_contents()
    C = index.codebooks.astype(np.float64)
    rec = index.centroids.astype(np.float64)[lists]
    for l in range(m):
        rec += C[l, codes[:, l]]
    return ids, lists, rec


def reference(index, xq, k, m, probes=None, keep=None):
    """Exact k-NN over c + r_m, restricted per query to its probed lists (and kept ids)."""
    ids, lists, rec = reconstructions(index, m)
    q = xq.astype(np.float64)
    l2 = index.metric_type == faiss.METRIC_L2
    dist = ((q[:, None] - rec[None]) ** 2).sum(-1) if l2 else -(q @ rec.T)
    if probes is not None:
        allowed = (lists[None, :, None] == probes[:, None, :]).any(-1)
        dist = np.where(allowed, dist, np.inf)
    if keep is not None:
        dist = np.where(keep(ids)[None], dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    D = np.take_along_axis(dist, order, 1)
    I = np.where(np.isfinite(D), ids[order], -1)
    D = np.where(np.isfinite(D), D, np.finfo(np.float32).max)
    return (D, I) if l2 else (-D, I)


CASES = [(nbits, metric) for nbits in (4, 8) for metric in (faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT)]


@pytest.mark.parametrize("nbits,metric", CASES)
@pytest.mark.parametrize("m", [1, 3, LEVELS])
def test_all_lists_equal_flat_reference(built, data, nbits, metric, m):
    index = built(nbits, metric)
    xq = data[2]
    D, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST, levels=m))
    Dr, Ir = reference(index, xq, 10, m)
    scale = np.abs(Dr).max()
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("nbits,metric", CASES)
def test_probed_lists_equal_restricted_reference(built, data, nbits, metric):
    index = built(nbits, metric)
    xq = data[2]
    index.nprobe = 3
    D, I = index.search(xq, 10)
    _, probes = index.quantizer.search(xq, 3)
    Dr, Ir = reference(index, xq, 10, LEVELS, probes=probes)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    index.nprobe = 1


@pytest.mark.parametrize("nbits,metric", CASES)
def test_fast_kernels_equal_scalar_reference(built, data, kernel_runner, nbits, metric):
    index = built(nbits, metric)
    params = SearchParametersIVFDPQ(nprobe=4, levels=3)
    want = kernel_runner("scalar", lambda: index.search(data[2], 7, params=params))
    for name in core.scan_kernels():
        got = kernel_runner(name, lambda: index.search(data[2], 7, params=params))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_threads_do_not_change_results(built, data):
    index = built(8, faiss.METRIC_L2)
    xq = np.repeat(data[2], 20, axis=0)
    params = SearchParametersIVFDPQ(nprobe=3)
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = index.search(xq, 5, params=params)
        faiss.omp_set_num_threads(2)
        two = index.search(xq, 5, params=params)
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_id_selector(built, data, metric):
    index = built(4, metric)
    sel = faiss.IDSelectorRange(100, 700)
    D, I = index.search(data[2], 10, params=SearchParametersIVFDPQ(nprobe=NLIST, sel=sel))
    Dr, Ir = reference(index, data[2], 10, LEVELS, keep=lambda ids: (ids >= 100) & (ids < 700))
    assert ((I >= 100) & (I < 700)).all()
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


def test_rerank_with_every_candidate_equals_full_prefix(built, data):
    index = built(8, faiss.METRIC_L2)
    n = index.ntotal
    D, I = index.search(data[2], 5, params=SearchParametersIVFDPQ(nprobe=NLIST, levels=1, rerank_levels=LEVELS,
                                                                   rerank_k=n))
    Dr, Ir = reference(index, data[2], 5, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


def build_l2(data, nbits, offset=0.0, **kwargs):
    """(index, queries): an L2 index trained and filled with the data moved `offset` from the origin
    (as image pixels lie); kwargs go to IndexIVFDPQ."""
    xt, xb, xq = (x + np.float32(offset) for x in data)
    index = IndexIVFDPQ(faiss.IndexFlatL2(xt.shape[1]), xt.shape[1], NLIST, LEVELS, nbits, **kwargs)
    index.train_params.rounds = 1
    index.train(xt)
    index.add(xb)
    return index, xq


@pytest.fixture(scope="module")
def far(data):
    """Per nbits: build_l2 50 from the origin."""
    cache = {}

    def get(nbits):
        if nbits not in cache:
            cache[nbits] = build_l2(data, nbits, 50.0)
        return cache[nbits]
    return get


@pytest.mark.parametrize("nbits", [4, 8])
def test_far_from_the_origin(far, kernel_runner, tmp_path, nbits):
    """L2 norms relative to the centroid, each (query, list) pair's own quantized table: on vectors far
    from the origin the exact k-NN of c + r_m, from every kernel, whether the index keeps its centroids'
    tables or computes them per list, with and without re-ranking, with an IDSelector, and range search."""
    index, xq = far(nbits)
    assert index.relative_norms and index.centroid_table_bytes == NLIST * LEVELS * 2 ** nbits * 4  # chosen by train
    _, probes = index.quantizer.search(xq, 3)
    searches = {
        "scan": (SearchParametersIVFDPQ(nprobe=3, levels=3), 3),
        "rerank": (SearchParametersIVFDPQ(nprobe=3, levels=1, rerank_levels=LEVELS, rerank_k=index.ntotal), LEVELS),
    }
    for params, m in searches.values():
        D, I = index.search(xq, 10, params=params)
        Dr, Ir = reference(index, xq, 10, m, probes=probes)
        assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    D, I = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=3, sel=faiss.IDSelectorRange(100, 700)))
    Dr, Ir = reference(index, xq, 10, LEVELS, probes=probes, keep=lambda ids: (ids >= 100) & (ids < 700))
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    assert_range_equals_reference(index, xq[:6])
    want = {key: kernel_runner("scalar", lambda p=p: index.search(xq, 10, params=p))
            for key, (p, _) in searches.items()}
    for name in core.scan_kernels():
        for key, (params, _) in searches.items():
            got = kernel_runner(name, lambda: index.search(xq, 10, params=params))
            np.testing.assert_array_equal(got[0], want[key][0])
            np.testing.assert_array_equal(got[1], want[key][1])
    kept = {key: index.search(xq, 10, params=p) for key, (p, _) in searches.items()}
    index.max_centroid_table_bytes = 0
    try:
        assert index.centroid_table_bytes == 0
        for key, (params, _) in searches.items():
            D, I = index.search(xq, 10, params=params)
            np.testing.assert_array_equal(D, kept[key][0])
            np.testing.assert_array_equal(I, kept[key][1])
    finally:
        index.max_centroid_table_bytes = 2 << 30
    with pytest.raises(ValueError, match="max_centroid_table_bytes"):
        index.max_centroid_table_bytes = -1
    pyfaiss_dpq.write_index(index, str(tmp_path / "far.dpq"))
    back = pyfaiss_dpq.read_index(str(tmp_path / "far.dpq"), mmap=True)
    assert back.relative_norms and back.max_centroid_table_bytes == 2 << 30
    D, I = back.search(xq, 10, params=searches["scan"][0])
    np.testing.assert_array_equal(D, kept["scan"][0])
    np.testing.assert_array_equal(I, kept["scan"][1])


@pytest.fixture
def split_mode():
    """Sets when 4-bit scans split their tables (scan/tables.h SplitMode), restoring the setting."""
    previous = []

    def set_mode(mode):
        previous.append(core.set_split_columns(mode))
    yield set_mode
    for mode in reversed(previous):
        core.set_split_columns(mode)


def test_split_tables_change_no_result(far, built, data, split_mode):
    """4-bit tables split over extra columns (always), never, or once the scan admits many candidates
    (auto): the same results, bit for bit, with norms relative to the centroid (each pair's tables; some
    of the far data's split), and with the batch's tables (inner product, a level made wide enough to
    split); and those of the reference."""
    xt, xb, xq = data
    wide = IndexIVFDPQ(faiss.IndexFlatIP(xt.shape[1]), xt.shape[1], NLIST, LEVELS, 4, faiss.METRIC_INNER_PRODUCT)
    wide.train_params.rounds = 1
    wide.train(xt)
    books = wide.codebooks.copy()
    books[0] *= 24  # a first level far wider than the others: its tables split
    wide.codebooks = books
    wide.add(xb)
    assert core.plan_split(-np.einsum("qd,lkd->qlk", xq[:4], books).astype(np.float32))[:1] == [0]
    cases = [far(4), (wide, xq), (built(4, faiss.METRIC_INNER_PRODUCT), xq)]
    assert cases[0][0].relative_norms
    with pytest.raises(ValueError, match="'auto', 'always' or 'never'"):
        core.set_split_columns("sometimes")
    for index, xq in cases:
        params = SearchParametersIVFDPQ(nprobe=3)
        got = {}
        for mode in ("never", "always", "auto"):
            split_mode(mode)
            got[mode] = index.search(xq, 10, params=params)
        for mode in ("always", "auto"):
            np.testing.assert_array_equal(got[mode][0], got["never"][0], err_msg=mode)
            np.testing.assert_array_equal(got[mode][1], got["never"][1], err_msg=mode)
        _, probes = index.quantizer.search(xq, 3)
        Dr, Ir = reference(index, xq, 10, LEVELS, probes=probes)
        assert_same_knn(*got["always"], Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


def test_relative_norms_chosen_by_training_or_set(data):
    xt, xb, xq = data
    d = xt.shape[1]

    def make(metric=faiss.METRIC_L2):
        quantizer = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
        index = IndexIVFDPQ(quantizer, d, NLIST, LEVELS, 4, metric)
        index.train_params.rounds = 0
        return index
    near, far, capped = make(), make(), make()
    near.train(xt)
    far.train(xt + np.float32(50))
    capped.max_centroid_table_bytes = NLIST * LEVELS * 16 * 4 - 1  # the tables would not be kept
    capped.train(xt + np.float32(50))
    assert not near.relative_norms and near.centroid_table_bytes == 0
    assert far.relative_norms and not capped.relative_norms
    fixed = make()
    fixed.relative_norms = True
    fixed.train(xt)
    fixed.add(xb)
    assert fixed.relative_norms
    D, I = fixed.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST))
    Dr, Ir = reference(fixed, xq, 10, LEVELS)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    with pytest.raises(RuntimeError, match="while vectors are stored"):
        fixed.relative_norms = False
    with pytest.raises(ValueError, match="METRIC_L2"):
        make(faiss.METRIC_INNER_PRODUCT).relative_norms = True


def test_max_codes_stops_probing(built, data):
    index = built(4, faiss.METRIC_L2)
    xq = data[2][:5]
    _, probes = index.quantizer.search(xq, 4)
    sizes = index.list_sizes()
    D, I = index.search(xq, 5, params=SearchParametersIVFDPQ(nprobe=4, max_codes=1))
    # max_codes=1: only the first probed list is scanned.
    Dr, Ir = reference(index, xq, 5, LEVELS, probes=probes[:, :1])
    assert sizes[probes[:, 0]].min() >= 5
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


def test_faiss_search_parameters_ivf_set_nprobe(built, data):
    index = built(4, faiss.METRIC_L2)
    got = index.search(data[2], 5, params=faiss.SearchParametersIVF(nprobe=2))
    want = index.search(data[2], 5, params=SearchParametersIVFDPQ(nprobe=2))
    np.testing.assert_array_equal(got[1], want[1])


def assert_range_equals_reference(index, xq):
    """Range search at nprobe 2 returns the reference's hits, up to a float rounding of the radius."""
    _, probes = index.quantizer.search(xq, 2)
    Dk, _ = reference(index, xq, 20, LEVELS, probes=probes)
    radius = float(np.median(Dk[:, 10]))
    lims, D, I = index.range_search(xq, radius, params=SearchParametersIVFDPQ(nprobe=2))
    ids, lists, rec = reconstructions(index, LEVELS)
    for q in range(len(xq)):
        dist = ((xq[q].astype(np.float64) - rec) ** 2).sum(-1)
        ok = np.isin(lists, probes[q]) & (dist < radius)
        # Hits within a float rounding of the radius may go either way.
        sure = ok & (dist < radius * (1 - 1e-5))
        got = set(I[lims[q]:lims[q + 1]].tolist())
        assert set(ids[sure]) <= got <= set(ids[ok | (np.isin(lists, probes[q]) & (dist < radius * (1 + 1e-5)))])
        assert list(I[lims[q]:lims[q + 1]]) == sorted(got)


def test_range_search_equals_reference(built, data):
    assert_range_equals_reference(built(8, faiss.METRIC_L2), data[2][:6])


def small_l2_index(xt):
    """A trained, empty L2 index: 4 lists, 3 levels of 4 bits (one k-means pass per level)."""
    index = IndexIVFDPQ(faiss.IndexFlatL2(xt.shape[1]), xt.shape[1], 4, 3, 4)
    index.train_params.rounds = 0
    index.train(xt)
    return index


def test_add_with_ids_remove_reconstruct(data):
    xt, xb, xq = data
    d = xt.shape[1]
    index = small_l2_index(xt)
    ids = np.arange(len(xb), dtype=np.int64) * 10 + 7
    index.add_with_ids(xb, ids)
    assert index.ntotal == len(xb)
    assert sorted(np.concatenate([index.list_ids(l) for l in range(4)])) == sorted(ids)
    stored_ids, list_nos, codes = index.list_contents()
    assert sorted(stored_ids) == sorted(ids) and codes.shape == (len(ids), index.levels)
    for l in range(4):  # list by list, in list order
        np.testing.assert_array_equal(stored_ids[list_nos == l], index.list_ids(l))
        np.testing.assert_array_equal(codes[list_nos == l], index.list_codes(l))
    # Every stored vector reconstructs to its centroid plus its codewords.
    sid, lists, rec = reconstructions(index, 3)
    for j in range(0, len(sid), 97):
        np.testing.assert_allclose(index.reconstruct(int(sid[j])), rec[j], rtol=1e-5, atol=1e-5)
    with pytest.raises(IndexError):
        index.reconstruct(8)
    # A batch is one scan; repeated keys are fine; a missing one is named.
    keys = np.array([sid[5], sid[0], sid[5], sid[-1]])
    want = rec[[5, 0, 5, len(sid) - 1]]
    np.testing.assert_allclose(index.reconstruct_batch(keys), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(faiss.Index.reconstruct_batch(index, keys), index.reconstruct_batch(keys))
    assert index.reconstruct_batch(np.zeros(0, np.int64)).shape == (0, d)
    with pytest.raises(IndexError, match="id 8 is not stored"):
        index.reconstruct_batch(np.array([sid[0], 8]))
    _, I = index.search(xq, 5, params=SearchParametersIVFDPQ(nprobe=4))
    assert np.isin(I, ids).all()
    removed = index.remove_ids(faiss.IDSelectorBatch(ids[:100]))
    assert removed == 100 and index.ntotal == len(xb) - 100
    _, I = index.search(xq, 50, params=SearchParametersIVFDPQ(nprobe=4))
    assert not np.isin(I, ids[:100]).any()
    index.reset()
    assert index.ntotal == 0 and index.list_sizes().sum() == 0


def test_direct_map_follows_every_change(data, tmp_path):
    """With a direct map, reconstruction by id equals the scan's through add, remove, merge and reset."""
    xt, xb, _ = data
    d = xt.shape[1]
    index = small_l2_index(xt)
    index.add_with_ids(xb[:600], np.arange(600, dtype=np.int64) * 3)
    assert not index.has_direct_map
    index.make_direct_map()
    assert index.has_direct_map

    def check():
        sid, _, rec = reconstructions(index, 3)
        np.testing.assert_allclose(index.reconstruct_batch(sid), rec, rtol=1e-5, atol=1e-5)
        for j in range(0, len(sid), 101):
            np.testing.assert_array_equal(index.reconstruct(int(sid[j])), index.reconstruct_batch(sid[j:j + 1])[0])
        return sid

    check()
    index.add_with_ids(xb[600:900], np.arange(600, 900, dtype=np.int64) * 3)
    index.remove_ids(faiss.IDSelectorRange(300, 1200))  # ids 300..1197: whole runs of every list
    sid = check()
    with pytest.raises(IndexError, match="id 303 is not stored"):
        index.reconstruct(303)
    # Ids are unique keys while the map is kept: a repeat is refused and nothing is stored.
    n = index.ntotal
    with pytest.raises(ValueError, match=f"id {sid[0]} would be stored twice"):
        index.add_with_ids(xb[:2], np.array([10**9, sid[0]]))
    with pytest.raises(ValueError, match="id 5 would be stored twice"):
        index.add_with_ids(xb[:2], np.array([5, 5]))
    assert index.ntotal == n
    other = IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 3, 4)
    other.quantizer.add(index.centroids)
    other.codebooks = index.codebooks
    other.train(xt[:10])  # codebooks and quantizer given: the coarse level only
    other.add_with_ids(xb[900:1000], np.arange(100, dtype=np.int64))
    index.merge_from(other, 10**6)
    check()
    # Written and read (mmap too): the map is not stored; building it reads the lists' ids.
    path = str(tmp_path / "map.ivfdpq")
    pyfaiss_dpq.write_index(index, path)
    mapped = pyfaiss_dpq.read_index(path, mmap=True)
    assert not mapped.has_direct_map
    mapped.make_direct_map()
    np.testing.assert_array_equal(mapped.reconstruct_batch(sid), index.reconstruct_batch(sid))
    index.make_direct_map(False)
    index.add_with_ids(xb[:1], np.array([sid[0]]))  # repeats are allowed again
    with pytest.raises(ValueError, match="stored twice"):
        index.make_direct_map()
    assert not index.has_direct_map
    index.reset()
    index.make_direct_map()
    index.add(xb[:50])
    check()


@pytest.mark.parametrize("rerank", [False, True])
def test_exact_ties_go_to_the_smaller_id(data, rerank):
    """As in the flat index and a merge of shards: the order of (distance, id), not the storage order."""
    xt, xb, xq = data
    d = xt.shape[1]
    index = small_l2_index(xt)
    copies = np.repeat(xb[:5], 40, axis=0)  # 40 exact copies of 5 vectors: ties within each group
    ids = np.arange(len(copies), dtype=np.int64)[::-1].copy()  # stored in descending id order
    index.add_with_ids(copies, ids)
    extra = dict(rerank_levels=3, rerank_k=60) if rerank else {}
    params = SearchParametersIVFDPQ(nprobe=4, levels=2, **extra)
    D, I = index.search(xq, 30, params=params)
    for dq, iq in zip(D, I):
        for dist in np.unique(dq):
            tied = iq[dq == dist]
            group = ids[np.flatnonzero(np.all(copies == copies[ids == tied[0]], axis=1))]
            # the smallest ids of the tied group, ascending
            np.testing.assert_array_equal(tied, np.sort(group)[:len(tied)])


def test_quantizer_given_trained_and_codebooks_from_flat(data):
    xt, xb, xq = data
    d = xt.shape[1]
    flat = pyfaiss_dpq.IndexDPQ(d, 3, 4)
    flat.train_params.rounds = 0
    flat.train(xt)
    quantizer = faiss.IndexHNSWFlat(d, 8)
    km = faiss.Kmeans(d, 6, niter=5, seed=1)
    km.train(xt)
    quantizer.add(km.centroids)
    index = IndexIVFDPQ(quantizer, d, 6, 3, 4)
    index.use_codebooks_of(flat)
    index.train(xt)  # only copies the quantizer's centroids
    np.testing.assert_array_equal(index.codebooks, flat.codebooks)
    np.testing.assert_allclose(index.centroids, km.centroids)
    index.add(xb)
    D, I = index.search(xq, 5, params=SearchParametersIVFDPQ(nprobe=6))
    Dr, Ir = reference(index, xq, 5, 3)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


@pytest.mark.parametrize("nbits,metric", CASES)
def test_coarse_search_from_centroids_equals_the_quantizers(built, data, nbits, metric):
    """A plain flat quantizer is searched from the centroid copy; results equal
    those of a twin whose quantizer (an IndexIDMap2 around the same flat
    index) is called, whatever the metrics of quantizer and index."""
    xt, xb, xq = data
    index = built(nbits, metric)
    assert index.coarse_search == "centroids"
    d = xt.shape[1]
    for flat in (faiss.IndexFlatL2(d), faiss.IndexFlatIP(d)):
        flat.add(index.centroids)
        wrapped = faiss.IndexIDMap2(faiss.IndexFlatL2(d) if flat.metric_type == faiss.METRIC_L2
                                    else faiss.IndexFlatIP(d))
        wrapped.add_with_ids(index.centroids, np.arange(NLIST, dtype=np.int64))
        twins = []
        for quantizer in (flat, wrapped):
            twin = IndexIVFDPQ(quantizer, d, NLIST, LEVELS, nbits, metric)
            twin.codebooks = index.codebooks
            twin.train(xt)  # copies the quantizer's centroids
            twin.add(xb)
            twins.append(twin)
        assert [t.coarse_search for t in twins] == ["centroids", "quantizer"]
        for nprobe in (1, 3):
            got, want = (t.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=nprobe)) for t in twins)
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])
        _, probes = flat.search(xq, 3)
        Dr, Ir = reference(twins[0], xq, 10, LEVELS, probes=probes)
        D, I = twins[0].search(xq, 10, params=SearchParametersIVFDPQ(nprobe=3))
        assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())


@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_coarse_search_selection_with_many_lists(built, data, metric):
    """With nprobe small against nlist the centroid search selects by group
    minima (topk.h SmallestOfDense) instead of a heap: the probed lists, in
    order, equal those of the quantizer-calling twin, for nprobe on both sides
    of where the two ways meet (nlist >= 8 nprobe)."""
    xt, xb, xq = data
    d, nlist = xt.shape[1], 256
    rng = np.random.default_rng(7)
    centroids = (xb[rng.choice(len(xb), nlist, replace=False)] + 0.1 * rng.standard_normal((nlist, d))).astype(np.float32)
    queries = np.vstack([xq, centroids[:5], centroids[:5] + 1e-3]).astype(np.float32)  # near-ties too
    flat = faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
    flat.add(centroids)
    wrapped = faiss.IndexIDMap2(faiss.IndexFlatL2(d) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(d))
    wrapped.add_with_ids(centroids, np.arange(nlist, dtype=np.int64))
    twins = []
    for quantizer in (flat, wrapped):
        twin = IndexIVFDPQ(quantizer, d, nlist, LEVELS, 4, metric)
        twin.codebooks = built(4, metric).codebooks
        twin.train(xt)
        twin.add(xb)
        twins.append(twin)
    assert [t.coarse_search for t in twins] == ["centroids", "quantizer"]
    for nprobe in (1, 2, 7, 31, 32, 33, 64, 255, 256):
        got, want = (t.search(queries, 10, params=SearchParametersIVFDPQ(nprobe=nprobe)) for t in twins)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def test_coarse_search_follows_the_quantizer(data):
    """Other quantizers are called; a flat one holding other vectors than the
    centroids is called too."""
    xt, _, _ = data
    d = xt.shape[1]
    index = IndexIVFDPQ(faiss.IndexHNSWFlat(d, 8), d, NLIST, 2, 4)
    index.train_params.rounds = 0
    index.train(xt)
    assert index.coarse_search == "quantizer"
    moved = faiss.IndexFlatL2(d)
    moved.add(index.centroids + 1)
    index.quantizer = moved
    assert index.coarse_search == "quantizer"
    same = faiss.IndexFlatL2(d)
    same.add(index.centroids)
    index.quantizer = same
    assert index.coarse_search == "centroids"
    with pytest.raises(ValueError, match="dimension"):
        index.quantizer = faiss.IndexFlatL2(d + 1)
    with pytest.raises(ValueError, match="centroids"):
        index.quantizer = faiss.IndexFlatL2(d)  # empty
    with pytest.raises(TypeError, match="faiss.Index"):
        index.quantizer = index.centroids
    assert index.coarse_search == "centroids"


def test_two_level_coarse_training(data):
    """Two-level k-means (then Lloyd refinement) is deterministic for a seed and
    ends near the flat k-means objective; the index it trains searches exactly."""
    xt, xb, xq = data
    d, nlist = xt.shape[1], 64

    def trained(two_level_min_nlist):
        index = IndexIVFDPQ(faiss.IndexFlatL2(d), d, nlist, 2, 4)
        index.two_level_min_nlist = two_level_min_nlist
        index.train_params.rounds = 0
        index.train(xt)
        return index

    def objective(centroids):
        return faiss.knn(xt, centroids, 1)[0].mean()

    flat, two, again = trained(0), trained(nlist), trained(nlist)
    assert flat.two_level_min_nlist == 0 and IndexIVFDPQ(faiss.IndexFlatL2(d), d, 8, 2).two_level_min_nlist == 4096
    np.testing.assert_array_equal(two.centroids, again.centroids)
    assert not np.array_equal(two.centroids, flat.centroids)
    assert objective(two.centroids) <= 1.05 * objective(flat.centroids)
    two.add(xb)
    D, I = two.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=nlist))
    Dr, Ir = reference(two, xq, 10, 2)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-4, atol=1e-5 * np.abs(Dr).max())
    with pytest.raises(ValueError, match="two_level_min_nlist"):
        two.two_level_min_nlist = -1


def test_norm_prefixes_and_bytes(data):
    xt = data[0]
    d = xt.shape[1]
    index = IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 6, 4, norm_prefixes=[6])
    assert index.bytes_per_vector == 3 + 4
    assert IndexIVFDPQ(faiss.IndexFlatIP(d), d, 4, 6, 8, faiss.METRIC_INNER_PRODUCT).bytes_per_vector == 6
    index.train_params.rounds = 0
    index.train(xt)
    index.add(data[1])
    with pytest.raises(ValueError, match="no norm is stored for prefix 3"):
        index.search(data[2], 5, params=SearchParametersIVFDPQ(levels=3))


def test_merge_from(built, data):
    xt, xb, xq = data
    d = xt.shape[1]
    src = built(4, faiss.METRIC_L2)
    parts = []
    for half in (xb[:700], xb[700:]):
        ix = _empty_like(src, xt)
        ix.add(half)
        parts.append(ix)
    parts[0].merge_from(parts[1], 700)
    assert parts[0].ntotal == len(xb) and parts[1].ntotal == 0
    params = SearchParametersIVFDPQ(nprobe=NLIST)
    D, I = parts[0].search(xq, 10, params=params)
    Dr, Ir = src.search(xq, 10, params=params)
    assert_same_knn(D, I, Dr, Ir, rtol=1e-5, atol=1e-5 * np.abs(Dr).max())


@pytest.mark.parametrize("nbits,metric", CASES)
def test_standalone_codes_add_what_add_adds(built, data, nbits, metric):
    """add_sa_codes(sa_encode(x)) stores what add(x) stores; sa_decode is c + r_L; bad codes raise."""
    _, xb, _ = data
    src = built(nbits, metric)
    by_add, by_codes = (pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(src)) for _ in range(2))
    by_add.reset()
    by_codes.reset()
    by_add.add(xb)
    codes = by_codes.sa_encode(xb)
    lb = 1  # NLIST - 1 fits one byte
    assert codes.shape == (len(xb), lb + (LEVELS * nbits + 7) // 8) == (len(xb), by_codes.sa_code_size())
    by_codes.add_sa_codes(codes)
    assert pyfaiss_dpq.serialize(by_add) == pyfaiss_dpq.serialize(by_codes)
    ids, lists, rec = reconstructions(by_add, LEVELS)
    order = np.argsort(ids)
    np.testing.assert_allclose(by_codes.sa_decode(codes), rec[order], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(codes[:, 0], lists[order])
    bad = codes[:3].copy()
    bad[:, 0] = NLIST  # a list number past nlist - 1
    with pytest.raises((ValueError, RuntimeError), match="list number"):
        by_codes.add_sa_codes(bad)
    assert by_codes.ntotal == len(xb)


def test_bad_arguments_raise(built, data):
    d = data[0].shape[1]
    with pytest.raises(ValueError, match="nlist"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, 0, 4, 4)
    with pytest.raises(ValueError, match="dimension"):
        IndexIVFDPQ(faiss.IndexFlatL2(d + 1), d, 4, 4, 4)
    with pytest.raises(ValueError, match="nbits"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 4, 5)
    with pytest.raises(TypeError, match="quantizer"):
        IndexIVFDPQ(None, d, 4, 4, 4)
    with pytest.raises(ValueError, match="norm_prefixes serve METRIC_L2 and cosine"):
        IndexIVFDPQ(faiss.IndexFlatIP(d), d, 4, 4, 4, faiss.METRIC_INNER_PRODUCT, norm_prefixes=[2])
    with pytest.raises(ValueError, match="given twice"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 4, 4, norm_prefixes=[2, 2])
    with pytest.raises(ValueError, match=r"must be in \[1, 4\]"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 4, 4, norm_prefixes=[5])
    fresh = IndexIVFDPQ(faiss.IndexFlatL2(d), d, 4, 4, 4)
    with pytest.raises(RuntimeError, match="not trained"):
        fresh.search(data[2], 3)
    with pytest.raises(ValueError, match="at least nlist"):
        IndexIVFDPQ(faiss.IndexFlatL2(d), d, 50, 2, 4).train(data[0][:10])
    index = built(4, faiss.METRIC_L2)
    with pytest.raises(ValueError, match="nprobe"):
        index.nprobe = 0
    with pytest.raises(ValueError, match="nprobe"):
        SearchParametersIVFDPQ(nprobe=-1)
    with pytest.raises(ValueError, match="levels"):
        index.search(data[2], 3, params=SearchParametersIVFDPQ(levels=LEVELS + 1))
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(data[2], 0)
    with pytest.raises(ValueError, match="shape"):
        index.search(data[2][:, :5], 3)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, d), np.nan, dtype=np.float32), 3)
    big = index.search(data[2], 3, params=SearchParametersIVFDPQ(nprobe=10 * NLIST))  # clamped to nlist, as Faiss
    np.testing.assert_array_equal(big[1], index.search(data[2], 3, params=SearchParametersIVFDPQ(nprobe=NLIST))[1])


# ---------------------------------------------------------------- persistence

@pytest.mark.parametrize("nbits,metric", [(4, faiss.METRIC_L2), (8, faiss.METRIC_INNER_PRODUCT)])
def test_file_round_trip_in_ram_and_mapped(built, data, tmp_path, nbits, metric):
    index = built(nbits, metric)
    path = tmp_path / "ivf.dpq"
    pyfaiss_dpq.write_index(index, path)
    params = SearchParametersIVFDPQ(nprobe=3, levels=3)
    want = index.search(data[2], 10, params=params)
    for mmap in (False, True):
        back = pyfaiss_dpq.read_index(path, mmap=mmap)
        assert isinstance(back, IndexIVFDPQ) and back.read_only == mmap
        assert (back.ntotal, back.nlist, back.nprobe) == (index.ntotal, index.nlist, index.nprobe)
        got = back.search(data[2], 10, params=params)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        back.verify()
    mapped = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)  # Faiss's hook and flag
    assert isinstance(mapped, IndexIVFDPQ) and mapped.read_only
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.add(data[1][:3])
    copy = faiss.deserialize_index(faiss.serialize_index(index))
    np.testing.assert_array_equal(copy.search(data[2], 10, params=params)[1], want[1])


def _corrupt_list(index, path, list_no):
    """Flips a byte inside list `list_no`'s stored ids."""
    raw = bytearray(path.read_bytes())
    at = raw.find(index.list_ids(list_no).tobytes())
    assert at > 0
    raw[at + 3] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupted_list_is_detected_when_touched(built, data, tmp_path):
    index = built(4, faiss.METRIC_L2)
    path = tmp_path / "ivf.dpq"
    pyfaiss_dpq.write_index(index, path)
    xq = data[2]
    _, probes = index.quantizer.search(xq, 1)
    bad = int(probes[0, 0])
    _corrupt_list(index, path, bad)
    mapped = pyfaiss_dpq.read_index(path, mmap=True)  # the header is intact: opens
    clean = xq[probes[:, 0] != bad]
    assert len(clean)
    np.testing.assert_array_equal(mapped.search(clean, 5, params=SearchParametersIVFDPQ(nprobe=1))[1],
                                  index.search(clean, 5, params=SearchParametersIVFDPQ(nprobe=1))[1])
    with pytest.raises(RuntimeError, match=f"list {bad} is corrupt"):
        mapped.search(xq[:1], 5, params=SearchParametersIVFDPQ(nprobe=1))
    with pytest.raises(RuntimeError, match="corrupt"):
        mapped.verify()
    with pytest.raises(pyfaiss_dpq.CorruptIndexError, match="checksum"):
        pyfaiss_dpq.read_index(path)  # in RAM: every list is checked


def test_mapped_open_reads_the_header_only(built, tmp_path):
    index = built(8, faiss.METRIC_L2)
    path = tmp_path / "ivf.dpq"
    pyfaiss_dpq.write_index(index, path)
    for l in range(index.nlist):
        if index.list_sizes()[l]:
            _corrupt_list(index, path, l)
    mapped = pyfaiss_dpq.read_index(path, mmap=True)  # opens: no list was read
    assert mapped.ntotal == index.ntotal
    with pytest.raises(RuntimeError, match="corrupt"):
        mapped.verify()
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0xFF  # inside the header
    path.write_bytes(bytes(raw))
    with pytest.raises(pyfaiss_dpq.CorruptIndexError, match="header checksum"):
        pyfaiss_dpq.read_index(path, mmap=True)
    with pytest.raises(ValueError, match="IndexIVFDPQ files only"):
        flat = tmp_path / "flat.dpq"
        f = pyfaiss_dpq.IndexDPQ(index.d, 2, 4)
        pyfaiss_dpq.write_index(f, flat)
        pyfaiss_dpq.read_index(flat, mmap=True)


# ---------------------------------------------------------------- Faiss wrappers

def _empty_like(index, xt):
    """An empty IndexIVFDPQ with `index`'s centroids and codebooks."""
    d = index.d
    out = IndexIVFDPQ(faiss.IndexFlatL2(d), d, index.nlist, index.levels, index.nbits)
    out.quantizer.add(index.centroids)
    out.codebooks = index.codebooks
    out.train(xt[:10])  # copies the quantizer's centroids, keeps the codebooks
    return out


def test_inside_index_refine_flat_and_shards(built, data, tmp_path):
    xt, xb, xq = data
    index = built(4, faiss.METRIC_L2)
    base = _empty_like(index, xt)
    refine = faiss.IndexRefineFlat(base)
    refine.add(xb)
    params = faiss.IndexRefineSearchParameters(k_factor=4, base_index_params=SearchParametersIVFDPQ(nprobe=NLIST))
    D, I = refine.search(xq, 5, params=params)
    # The 20 IVF candidates re-ranked exactly: the exact top 5 of those candidates.
    _, cand = base.search(xq, 20, params=SearchParametersIVFDPQ(nprobe=NLIST))
    for q in range(len(xq)):
        dist = ((xb[cand[q]] - xq[q]) ** 2).sum(1)
        np.testing.assert_allclose(D[q], np.sort(dist)[:5], rtol=1e-4)
    back = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(refine))
    np.testing.assert_array_equal(back.search(xq, 5, params=params)[1], I)

    shards = faiss.IndexShards(xt.shape[1], True, False)
    for lo, hi in ((0, 700), (700, len(xb))):
        part = _empty_like(index, xt)
        part.add_with_ids(xb[lo:hi], np.arange(lo, hi))
        part.nprobe = NLIST
        shards.add_shard(part)
    D, I = shards.search(xq, 10)
    Dr, Ir = index.search(xq, 10, params=SearchParametersIVFDPQ(nprobe=NLIST))
    assert_same_knn(D, I, Dr, Ir, rtol=1e-5, atol=1e-5 * np.abs(Dr).max())
    path = tmp_path / "shards.dpq"
    faiss.write_index(shards, str(path))
    back = faiss.read_index(str(path))
    np.testing.assert_array_equal(back.search(xq, 10)[1], I)
