"""pyfaiss_dpq.robustness: the attacks stay inside their budget and push the original neighbours away."""

import faiss
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyfaiss_dpq import robustness  # noqa: E402
from pyfaiss_dpq.demo import split_digits  # noqa: E402
from pyfaiss_dpq.train import DPQTrainer  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_and_faiss_on_one_thread):
    yield


@pytest.fixture(scope="module")
def digits():
    ib, iq, yb, yq = split_digits(0)
    return ib[:600], iq[:30], yb[:600], yq[:30]


@pytest.fixture(scope="module")
def dpq(digits):
    """(model, index over its features): a small contrastive DPQ on the digits images (inner product)."""
    ib = digits[0]
    model = DPQTrainer(mode="contrastive", levels=2, nbits=4, epochs=3, verbose=False).fit(ib).model_
    index = model.to_index()
    index.add(model.encode(ib))
    return model, index


@pytest.fixture(scope="module")
def pq(digits):
    flat = digits[0].reshape(len(digits[0]), -1)
    index = faiss.IndexPQ(flat.shape[1], 8, 4)
    index.train(flat)
    index.add(flat)
    return index


def _dpq_similarity_to_original_neighbours(model, index, q, adv, k=10):
    """Mean inner product of each query's features with its original top-k's reconstructions: (clean, attacked)."""
    ids = index.search(model.encode_query(q), k)[1]
    recon = index.reconstruct_batch(ids.ravel()).reshape(len(q), k, -1)
    return [float(np.einsum("nd,nkd->nk", model.encode_query(x), recon).mean()) for x in (q, adv)]


def _pq_distance_to_original_neighbours(index, q, adv, k=10):
    """Mean L2 distance of each query to its original top-k's reconstructions: (clean, attacked)."""
    ids = index.search(q, k)[1]
    recon = index.reconstruct_batch(ids.ravel()).reshape(len(q), k, -1)
    return [float(((x[:, None] - recon) ** 2).sum(-1).mean()) for x in (q, adv)]


@pytest.mark.parametrize("method", robustness.METHODS)
def test_attack_on_dpq_stays_in_budget_and_lowers_similarity_to_the_neighbours(dpq, digits, method):
    model, index = dpq
    q, eps = digits[1], 0.1
    adv = robustness.attack(model, q, eps, index=index, method=method, steps=10, samples=8)
    assert adv.shape == q.shape and adv.dtype == np.float32
    assert np.abs(adv - q).max() <= eps + 1e-6
    clean, attacked = _dpq_similarity_to_original_neighbours(model, index, q, adv)
    assert attacked < clean


@pytest.mark.parametrize("method", robustness.METHODS)
def test_attack_on_index_pq_raises_the_distance_to_the_neighbours(pq, digits, method):
    q, eps = digits[1].reshape(len(digits[1]), -1), 0.1
    adv = robustness.attack(pq, q, eps, index=pq, method=method, steps=10, samples=8, clip=(0.0, 1.0))
    assert np.abs(adv - q).max() <= eps + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    clean, attacked = _pq_distance_to_original_neighbours(pq, q, adv)
    assert attacked > clean


def test_black_box_needs_only_search_results(pq, digits):
    q = digits[1].reshape(len(digits[1]), -1)
    adv = robustness.attack(None, q, 0.1, index=pq, method="black", steps=5, samples=4)
    assert np.abs(adv - q).max() <= 0.1 + 1e-6
    assert robustness.attack(None, q, 0.1, index=pq, method="black", steps=5, samples=4, seed=0).tolist() == adv.tolist()


def test_report_rows_and_table(dpq, digits):
    model, index = dpq
    _, q, yb, yq = digits
    rows = robustness.report(model, index, q, [0.05, 0.2], methods=("white",), base_labels=yb, query_labels=yq,
                             steps=5)
    assert [(r["method"], r["eps"]) for r in rows] == [("none", 0.0), ("white", 0.05), ("white", 0.2)]
    assert rows[0]["overlap"] == 1.0 and all(0 <= r["precision"] <= 1 for r in rows)
    assert all(r["linf"] <= r["eps"] + 1e-6 for r in rows)
    assert rows[2]["overlap"] <= rows[1]["overlap"] < 1.0
    table = robustness.format_report(rows, "DPQ")
    assert table.count("\n") == 4 and "| DPQ | white | 0.2 |" in table


def test_bad_arguments_raise(dpq, digits, pq):
    model, index = dpq
    q = digits[1]
    for eps in (0, -0.1, float("nan"), float("inf"), "0.1"):
        with pytest.raises(ValueError, match="eps"):
            robustness.attack(model, q, eps, index=index)
    with pytest.raises(ValueError, match="method"):
        robustness.attack(model, q, 0.1, index=index, method="grey")
    with pytest.raises(ValueError, match="index"):
        robustness.attack(model, q, 0.1, method="black")
    with pytest.raises(ValueError, match="model"):
        robustness.attack(None, q, 0.1, index=index, method="white")
    with pytest.raises(TypeError, match="DPQModel or a faiss.IndexPQ"):
        robustness.attack(faiss.IndexFlatL2(64), q.reshape(len(q), -1), 0.1)
    with pytest.raises(ValueError, match="dimension"):
        robustness.attack(pq, q.reshape(len(q), -1)[:, :32], 0.1)
    with pytest.raises(ValueError, match="steps"):
        robustness.attack(model, q, 0.1, steps=0)
    with pytest.raises(ValueError, match="NaN"):
        robustness.attack(model, np.full_like(q, np.nan), 0.1)
    with pytest.raises(ValueError, match="labels"):
        robustness.report(model, index, q, [0.1], base_labels=digits[2])
