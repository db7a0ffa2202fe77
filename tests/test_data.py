import faiss
import h5py
import numpy as np
import pytest

from pyfaiss_dpq import data


@pytest.fixture
def vectors():
    rng = np.random.default_rng(7)
    return rng.standard_normal((50, 12)).astype(np.float32)


# ---------------------------------------------------------------- round trips
def test_fvecs_round_trip(tmp_path, vectors):
    path = tmp_path / "x.fvecs"
    data.write_fvecs(path, vectors)
    assert path.stat().st_size == 50 * (4 + 12 * 4)
    out = data.load_vectors(path)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, vectors)


def test_ivecs_round_trip_stays_int32(tmp_path):
    ids = np.arange(60, dtype=np.int32).reshape(6, 10) - 5
    path = tmp_path / "gt.ivecs"
    data.write_ivecs(path, ids)
    out = data.load_vectors(path)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ids)


def test_bvecs_round_trip_becomes_float32(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (9, 16)).astype(np.uint8)
    path = tmp_path / "x.bvecs"
    data.write_bvecs(path, x)
    out = data.load_vectors(path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_fvecs_matches_hand_written_layout(tmp_path):
    # Two rows of d=2 written byte by byte: <int32 d><float32 x d>.
    raw = np.array([2, 0, 0, 2, 0, 0], dtype="<i4")
    raw.view("<f4")[[1, 2, 4, 5]] = [1.5, -2.0, 3.25, 4.0]
    path = tmp_path / "hand.fvecs"
    raw.tofile(path)
    np.testing.assert_array_equal(data.load_vectors(path), [[1.5, -2.0], [3.25, 4.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.float32])
def test_npy_floats_become_float32(tmp_path, vectors, dtype):
    path = tmp_path / "x.npy"
    np.save(path, vectors.astype(dtype))
    out = data.load_vectors(path)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, vectors.astype(dtype).astype(np.float32))


def test_npy_integers_keep_dtype(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(12, dtype=np.int64).reshape(3, 4))
    out = data.load_vectors(path)
    assert out.dtype == np.int64 and out.shape == (3, 4)


def test_hdf5_keys(tmp_path, vectors):
    path = tmp_path / "ann.hdf5"
    with h5py.File(path, "w") as f:
        f["train"] = vectors.astype(np.float64)
        f["test"] = vectors[:5]
        f["neighbors"] = np.arange(15, dtype=np.int32).reshape(5, 3)
    train = data.load_vectors(path)
    assert train.dtype == np.float32
    np.testing.assert_allclose(train, vectors)
    np.testing.assert_array_equal(data.load_vectors(path, key="test"), vectors[:5])
    assert data.load_vectors(path, key="neighbors").dtype == np.int32


# ---------------------------------------------------------------- bad files
def test_truncated_fvecs_raises_naming_file(tmp_path, vectors):
    path = tmp_path / "cut.fvecs"
    data.write_fvecs(path, vectors)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 3)
    with pytest.raises(ValueError, match="cut.fvecs.*multiple of the row size"):
        data.load_vectors(path)


def test_inconsistent_row_header_raises(tmp_path, vectors):
    path = tmp_path / "bad.fvecs"
    data.write_fvecs(path, vectors)
    raw = np.fromfile(path, dtype="<i4")
    raw[3 * 13] = 11  # header of row 3 claims d=11
    raw.tofile(path)
    with pytest.raises(ValueError, match=r"bad.fvecs: row 3 declares dimension 11"):
        data.load_vectors(path)


@pytest.mark.parametrize("content", [b"", b"\x01\x00", np.array([-4], "<i4").tobytes()])
def test_empty_or_invalid_header_raises(tmp_path, content):
    path = tmp_path / "tiny.fvecs"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="tiny.fvecs"):
        data.load_vectors(path)


def test_unknown_extension_raises(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="unknown vector file extension '.csv'"):
        data.load_vectors(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_vectors(tmp_path / "nope.fvecs")


def test_bad_npy_raises(tmp_path):
    one_d = tmp_path / "flat.npy"
    np.save(one_d, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="flat.npy.*2-D"):
        data.load_vectors(one_d)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match="garbage.npy"):
        data.load_vectors(garbage)
    strings = tmp_path / "text.npy"
    np.save(strings, np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="numeric"):
        data.load_vectors(strings)


def test_hdf5_missing_key_and_bad_file(tmp_path, vectors):
    path = tmp_path / "ann.h5"
    with h5py.File(path, "w") as f:
        f["train"] = vectors
    with pytest.raises(ValueError, match=r"no dataset 'test'.*\['train'\]"):
        data.load_vectors(path, key="test")
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.hdf5"):
        data.load_vectors(bad)


def test_key_refused_for_non_hdf5(tmp_path, vectors):
    path = tmp_path / "x.fvecs"
    data.write_fvecs(path, vectors)
    with pytest.raises(ValueError, match="HDF5 files only"):
        data.load_vectors(path, key="train")


# ---------------------------------------------------------------- embedded data
def test_digits_images():
    images, labels = data.load_digits_images()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(10))


def test_text_embeddings_are_unit_minilm_vectors():
    x = data.load_text_embeddings()
    assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 384
    assert x.shape[0] >= 10_000
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # Real sentence embeddings are far from isotropic: their mean has a clear direction.
    assert np.linalg.norm(x.mean(axis=0)) > 0.1
    assert len(np.unique(x, axis=0)) == len(x)


def test_text_embeddings_file_records_distinct_sentences():
    from importlib import resources

    path = resources.files("pyfaiss_dpq") / "datasets" / data.TEXT_EMBEDDINGS
    with resources.as_file(path) as p, np.load(p) as npz:
        n = len(npz["embeddings"])
        assert npz["embeddings"].dtype == np.float16
        assert len(np.unique(npz["sentence_hash"])) == n
        assert npz["source"].shape == (n,) and npz["source"].max() < len(npz["modules"])


# ---------------------------------------------------------------- data sets
def assert_exact_gt(ds: data.Dataset) -> None:
    k = ds.gt.shape[1]
    index = faiss.IndexFlat(ds.d, ds.metric)
    index.add(ds.base)
    D, I = index.search(ds.queries, k)
    # Ties can be ordered either way: compare the distances the ids reach.
    xb, xq = ds.base, ds.queries
    if ds.metric == faiss.METRIC_L2:
        reached = ((xb[ds.gt] - xq[:, None, :]) ** 2).sum(-1)
    else:
        reached = np.einsum("qkd,qd->qk", xb[ds.gt], xq)
    np.testing.assert_allclose(reached, D, rtol=1e-4, atol=1e-4)
    assert ds.gt.dtype == np.int64


def test_digits_dataset():
    ds = data.load_dataset("digits")
    assert ds.metric == faiss.METRIC_L2 and ds.d == 64
    assert ds.train is ds.base
    assert len(ds.base) + len(ds.queries) == 1797
    assert ds.gt.shape == (len(ds.queries), 100)
    assert ds.labels_base.shape == (len(ds.base),) and ds.labels_queries.shape == (len(ds.queries),)
    # Stratified: every class appears among the queries in about its share.
    counts = np.bincount(ds.labels_queries, minlength=10)
    assert counts.min() >= 30
    assert_exact_gt(ds)
    again = data.load_dataset("digits")
    np.testing.assert_array_equal(again.queries, ds.queries)


def test_minilm_dataset():
    ds = data.load_dataset("minilm")
    assert ds.metric == faiss.METRIC_INNER_PRODUCT and ds.d == 384
    assert ds.labels_base is None and ds.labels_queries is None
    assert len(ds.queries) == 1000 and ds.gt.shape == (1000, 100)
    assert_exact_gt(ds)


@pytest.mark.parametrize("suffix", [".npy", ".fvecs"])
def test_file_dataset_split(tmp_path, suffix):
    x = np.random.default_rng(3).standard_normal((300, 8)).astype(np.float32)
    path = tmp_path / f"pts{suffix}"
    np.save(path, x) if suffix == ".npy" else data.write_fvecs(path, x)
    ds = data.load_dataset(path)
    assert ds.name == "pts" and ds.metric == faiss.METRIC_L2
    assert len(ds.queries) == 30 and len(ds.base) == 270
    # The split is a partition of the file's rows.
    rows = np.concatenate([ds.base, ds.queries])
    np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(x, axis=0))
    assert ds.gt.shape == (30, 100)
    assert_exact_gt(ds)


def test_ann_benchmarks_dataset_uses_stored_neighbors(tmp_path):
    rng = np.random.default_rng(5)
    xb = rng.standard_normal((200, 6)).astype(np.float32)
    xq = rng.standard_normal((7, 6)).astype(np.float32)
    true = data.exact_knn(xq, xb, 100, faiss.METRIC_L2)
    path = tmp_path / "toy-6-euclidean.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f["train"], f["test"] = xb, xq
        f["neighbors"] = true.astype(np.int32)
        f["distances"] = np.zeros((7, 100), np.float32)
    ds = data.load_dataset(path)
    assert ds.metric == faiss.METRIC_L2
    np.testing.assert_array_equal(ds.base, xb)
    np.testing.assert_array_equal(ds.queries, xq)
    np.testing.assert_array_equal(ds.gt, true)
    assert_exact_gt(ds)


def test_ann_benchmarks_angular_without_neighbors(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "toy-angular.h5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f["train"] = rng.standard_normal((150, 5)) * 3
        f["test"] = rng.standard_normal((4, 5))
    ds = data.load_dataset(path)
    assert ds.metric == faiss.METRIC_INNER_PRODUCT
    np.testing.assert_allclose(np.linalg.norm(ds.base, axis=1), 1.0, rtol=1e-5)
    assert ds.gt.shape == (4, 100)
    assert_exact_gt(ds)


def test_bad_dataset_names(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nosuch'"):
        data.load_dataset("nosuch")
    path = tmp_path / "jac.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "jaccard"
        f["train"], f["test"] = np.zeros((3, 2)), np.zeros((1, 2))
    with pytest.raises(ValueError, match="unsupported distance 'jaccard'"):
        data.load_dataset(path)
