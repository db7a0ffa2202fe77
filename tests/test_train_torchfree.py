"""The torch-free trainer (pyfaiss_dpq.train_codebooks, IndexDPQ.train) on small real data.

References: numpy least squares for the codebook update, numpy for the
prefix-weighted objective, greedy encoding and the index's scalar beam
encoder for the beam search.
"""

import warnings

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import TrainParameters, train_codebooks
from pyfaiss_dpq._clustering import faiss_kmeans
from pyfaiss_dpq._native import core
from pyfaiss_dpq.codebooks import beam_encode, default_prefix_weights, prefix_objective, solve_codebooks
from pyfaiss_dpq.data import load_digits_images, load_text_embeddings

# Small real sets on purpose: the few-vectors warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore:training on .* vectors:UserWarning")


@pytest.fixture(scope="module")
def digits():
    images, _ = load_digits_images()
    return np.ascontiguousarray(images.reshape(len(images), -1))


@pytest.fixture(scope="module")
def minilm():
    return load_text_embeddings()[:1000]


def numpy_objective(x, C, codes, w):
    """sum_m w_m ||x - sum_{l<=m} C_l[b_l]||^2 per vector (w normalised), float64."""
    w = np.asarray(w, np.float64) / np.sum(w)
    r = x.astype(np.float64).copy()
    obj = np.zeros(len(x))
    for l in range(C.shape[0]):
        r -= C[l][codes[:, l]]
        obj += w[l] * (r ** 2).sum(1)
    return obj


def numpy_solve(x, C_prev, codes, w, ridge):
    """The weighted least-squares codebooks by numpy lstsq on the stacked design."""
    L, K, d = C_prev.shape
    n = len(x)
    w = np.asarray(w, np.float64) / np.sum(w)
    rows, rhs = [], []
    for m in range(L):
        A = np.zeros((n, L * K))
        for l in range(m + 1):
            A[np.arange(n), l * K + codes[:, l]] = 1
        rows.append(np.sqrt(w[m]) * A)
        rhs.append(np.sqrt(w[m]) * x.astype(np.float64))
    A = np.vstack(rows)
    lam = ridge * np.trace(A.T @ A) / (L * K)
    A = np.vstack([A, np.sqrt(lam) * np.eye(L * K)])
    B = np.vstack(rhs + [np.sqrt(lam) * C_prev.reshape(L * K, d).astype(np.float64)])
    return np.linalg.lstsq(A, B, rcond=None)[0].reshape(L, K, d)


def faiss_greedy_codebooks(x, levels, K):
    """Greedy residual coding with Faiss's ProgressiveDimClustering per level (as Faiss's RQ trains)."""
    r = x.copy()
    C = np.zeros((levels, K, x.shape[1]), np.float32)
    for l in range(levels):
        C[l] = faiss_kmeans(r, K, progressive_dim=True)
        r -= C[l][faiss.knn(r, C[l], 1)[1][:, 0]]
    return C


def test_greedy_trainer_matches_greedy_residual_faiss_clustering():
    """Held-out full-length error of greedy codes (rounds=0, beam 1) within 1% of the Faiss reference."""
    x = load_text_embeddings()
    train, held_out = x[:2000], x[8000:]
    levels = 4

    def error(C):
        codes, obj = beam_encode(held_out, C, 1, [0] * (levels - 1) + [1])
        return obj.mean()

    reference = error(faiss_greedy_codebooks(train, levels, 256))
    trainer = error(train_codebooks(train, levels, 8, TrainParameters(rounds=0, beam_size=1)))
    assert abs(trainer - reference) <= 0.01 * reference


@pytest.fixture
def clustering_spy():
    """Records every k-means the C++ core asks for (points, K, progressive_dim, centroids)."""
    calls = []

    def spy(x, k, progressive_dim):
        centroids = faiss_kmeans(x, k, progressive_dim)
        calls.append((np.array(x), k, progressive_dim, centroids))
        return centroids

    core.set_clustering(spy)
    yield calls
    core.set_clustering(faiss_kmeans)


def test_levels_are_faiss_progressive_dim_kmeans_of_the_beam_residuals(minilm, clustering_spy):
    x = minilm[:600]
    C = train_codebooks(x, 3, 4, TrainParameters(rounds=0, beam_size=2))
    assert [(k, prog) for _, k, prog, _ in clustering_spy] == [(16, True)] * 3
    for l, (points, k, _, centroids) in enumerate(clustering_spy):
        np.testing.assert_array_equal(C[l], centroids)
        # Faiss's own clustering of the points the core passed (a fresh run: deterministic)
        np.testing.assert_array_equal(centroids, faiss_kmeans(points, k, progressive_dim=True))
    # Level 1 clusters the vectors themselves (beam entries of one vector are equal there).
    first = clustering_spy[0][0]
    assert {tuple(row) for row in first} <= {tuple(row) for row in x}


def test_kmeans_sample_sizes_per_half_of_the_levels(minilm, clustering_spy):
    """K * max points per centroid residuals per level; at most tail_kmeans_max_points for l >= L / 2."""
    x = minilm[:600]
    params = TrainParameters(rounds=0, beam_size=2, kmeans_max_points_per_centroid=20, tail_kmeans_max_points=80)
    train_codebooks(x, 4, 4, params)
    assert [len(points) for points, *_ in clustering_spy] == [16 * 20] * 2 + [80] * 2
    for tail in (0, 1000):  # no further limit; a limit above the first half's
        clustering_spy.clear()
        params.tail_kmeans_max_points = tail
        train_codebooks(x, 4, 4, params)
        assert [len(points) for points, *_ in clustering_spy] == [16 * 20] * 4


def test_ivf_coarse_quantizer_is_plain_faiss_kmeans(minilm, clustering_spy):
    index = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatL2(minilm.shape[1]), minilm.shape[1], 8, 2, 4, faiss.METRIC_L2)
    index.train(minilm[:600])
    assert (8, False) in [(k, prog) for _, k, prog, _ in clustering_spy]


def test_a_failing_kmeans_raises_its_error(minilm):
    def broken(x, k, progressive_dim):
        raise RuntimeError("k-means exploded")

    core.set_clustering(broken)
    try:
        with pytest.raises(RuntimeError, match="k-means exploded"):
            train_codebooks(minilm[:300], 1, 4, TrainParameters(rounds=0))
    finally:
        core.set_clustering(faiss_kmeans)


@pytest.mark.parametrize("weights", [None, [0, 0, 1], [3, 1, 0.5]])
def test_least_squares_matches_numpy_and_never_increases(digits, weights):
    x = digits[:300]
    p = TrainParameters(rounds=0, beam_size=1)
    C0 = train_codebooks(x, 3, 4, p)
    w = default_prefix_weights(3) if weights is None else weights
    codes, _ = beam_encode(x, C0, 4, w)
    C1 = solve_codebooks(x, C0, codes, w, ridge=1e-3)
    np.testing.assert_allclose(C1, numpy_solve(x, C0, codes, w, 1e-3), rtol=1e-4, atol=1e-4)
    before = numpy_objective(x, C0, codes, w).sum()
    after = numpy_objective(x, C1, codes, w).sum()
    assert after <= before * (1 + 1e-6)
    assert after < before  # the k-means initialisation is not already the joint optimum


def test_least_squares_never_increases_on_embeddings(minilm):
    C0 = train_codebooks(minilm, 4, 8, TrainParameters(rounds=0))
    for w in (None, [1, 1, 1, 1], [0, 0, 0, 1]):
        codes, obj = beam_encode(minilm, C0, 3, w)
        C1 = solve_codebooks(minilm, C0, codes, w)
        assert prefix_objective(minilm, C1, codes, w).sum() <= obj.sum() * (1 + 1e-6)


def test_unused_codewords_stay_put(digits):
    x = digits[:200]
    C0 = train_codebooks(x, 2, 4, TrainParameters(rounds=0))
    codes, _ = beam_encode(x, C0, 1)
    codes[:, 1] = np.minimum(codes[:, 1], 7)  # codewords 8..15 of level 2 unused
    C1 = solve_codebooks(x, C0, codes)
    np.testing.assert_allclose(C1[1, 8:], C0[1, 8:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights", [None, [0, 0, 0, 1], [4, 2, 1, 1]])
@pytest.mark.parametrize("method", [0, 1])
def test_beam_never_worse_than_greedy(minilm, weights, method):
    from pyfaiss_dpq._native import core

    C = train_codebooks(minilm, 4, 8, TrainParameters(rounds=1))
    w = None if weights is None else [float(v) for v in weights]
    greedy, g_obj = core.beam_encode(minilm, C, 1, w, method)
    codes, obj = core.beam_encode(minilm, C, 5, w, method)
    wn = default_prefix_weights(4) if weights is None else weights
    # Objectives are exact for the returned codes.
    np.testing.assert_allclose(obj, numpy_objective(minilm, C, codes, wn), rtol=1e-4, atol=1e-6)
    assert (obj <= g_obj + 1e-6).all()
    assert obj.sum() < g_obj.sum()  # and the beam does find better codes


def test_cross_product_search_matches_residual_search(minilm):
    from pyfaiss_dpq._native import core

    C = train_codebooks(minilm, 4, 8, TrainParameters(rounds=0))
    a, oa = core.beam_encode(minilm, C, 4, None, 0)
    b, ob = core.beam_encode(minilm, C, 4, None, 1)
    assert (a == b).all(1).mean() > 0.99  # differ only on float near-ties
    np.testing.assert_allclose(oa.sum(), ob.sum(), rtol=1e-5)


def test_full_length_beam_matches_index_encoder(minilm):
    """With weights (0, ..., 0, 1) the beam is Faiss RQ's: same codes as the index's scalar beam encoder."""
    C = train_codebooks(minilm, 4, 8, TrainParameters(rounds=0))
    index = pyfaiss_dpq.IndexDPQ(minilm.shape[1], 4, 8)
    index.codebooks = C
    index.beam_size = 5
    index.add(minilm[:500])
    w = [0, 0, 0, 1]
    ref = prefix_objective(minilm[:500], C, index.get_codes(), w)
    codes, obj = beam_encode(minilm[:500], C, 5, w)
    assert (codes == index.get_codes()).all(1).mean() > 0.99
    np.testing.assert_allclose(obj.sum(), ref.sum(), rtol=1e-5)


def test_rounds_lower_the_objective(minilm):
    x = minilm
    objs = []
    for rounds in (0, 1, 3):
        C = train_codebooks(x, 3, 8, TrainParameters(rounds=rounds, seed=5))
        objs.append(beam_encode(x, C, 5)[1].sum())
    assert objs[1] < objs[0] and objs[2] <= objs[1] * (1 + 1e-4)


def test_same_seed_same_codebooks(minilm):
    p = TrainParameters(rounds=2, seed=7)
    a = train_codebooks(minilm, 2, 8, p)
    b = train_codebooks(minilm, 2, 8, p)
    np.testing.assert_array_equal(a, b)
    c = train_codebooks(minilm, 2, 8, TrainParameters(rounds=2, seed=8))
    assert not np.array_equal(a, c)


def test_same_codebooks_for_any_thread_count(digits):
    before = faiss.omp_get_max_threads()
    try:
        out = []
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            out.append(train_codebooks(digits, 3, 4, TrainParameters(rounds=2)))
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(out[0], out[1])


def test_index_train_delegates(digits):
    index = pyfaiss_dpq.IndexDPQ(64, 3, 4)
    index.train_params.rounds = 1
    index.train_params.seed = 3
    index.train(digits)
    expected = train_codebooks(digits, 3, 4, TrainParameters(rounds=1, seed=3))
    np.testing.assert_array_equal(index.codebooks, expected)
    # The parameters object is live and replaceable as a whole.
    index.train_params = TrainParameters(rounds=0, beam_size=1)
    assert index.train_params.rounds == 0 and index.train_params.beam_size == 1


@pytest.mark.parametrize("bad", [dict(rounds=-1), dict(beam_size=0), dict(beam_size=1000),
                                 dict(prefix_weights=[1, -1]), dict(prefix_weights=[0, 0]),
                                 dict(prefix_weights=[1, float("nan")]), dict(ridge=0), dict(ridge=float("inf")),
                                 dict(kmeans_max_points_per_centroid=0),
                                 dict(tail_kmeans_max_points=-1)])
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError, match="TrainParameters"):
        TrainParameters(**bad)
    p = TrainParameters()
    name, value = next(iter(bad.items()))
    with pytest.raises(ValueError, match=name):
        setattr(p, name, value)


def test_bad_training_calls_raise(digits):
    with pytest.raises(TypeError):
        TrainParameters(roundz=1)
    with pytest.raises(ValueError, match="one weight per level"):
        train_codebooks(digits, 3, 4, TrainParameters(prefix_weights=[1, 1]))
    with pytest.raises(ValueError, match="at least 16"):
        train_codebooks(digits[:10], 3, 4)
    with pytest.raises(ValueError, match="nbits"):
        train_codebooks(digits, 3, 5)
    with pytest.raises(ValueError, match="levels"):
        train_codebooks(digits, 0, 4)
    with pytest.raises(TypeError, match="TrainParameters"):
        train_codebooks(digits, 3, 4, params={"rounds": 1})
    index = pyfaiss_dpq.IndexDPQ(64, 3, 4)
    with pytest.raises(TypeError, match="TrainParameters"):
        index.train_params = {"rounds": 1}
    index.train_params.prefix_weights = [1, 1]
    with pytest.raises(ValueError, match="one weight per level"):
        index.train(digits)
    with pytest.raises(ValueError, match="NaN"):
        train_codebooks(np.full((100, 4), np.nan, np.float32), 2, 4)


def test_few_vectors_give_one_clear_warning(digits, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_codebooks(digits[:100], 2, 4, TrainParameters(rounds=1))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "fewer than 624" in messages[0]
    # Faiss's own per-level k-means warning (and iteration log) never reaches the console.
    out, err = capfd.readouterr()
    assert "clustering" not in out + err and "Iteration" not in out + err


def test_default_weights_are_the_power_of_two_prefixes_and_the_full_code():
    np.testing.assert_array_equal(default_prefix_weights(8), [1, 1, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(np.flatnonzero(default_prefix_weights(12)) + 1, [1, 2, 4, 8, 12])
    np.testing.assert_array_equal(default_prefix_weights(1), [1])
