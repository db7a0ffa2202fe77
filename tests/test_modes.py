"""The MeCoQ, MoPQ (paired) and PHPQ (pyramid) training modes: losses against references, memory, export."""

import faiss
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyfaiss_dpq.demo import split_digits  # noqa: E402
from pyfaiss_dpq.train import DPQModel, DPQTrainer  # noqa: E402
from pyfaiss_dpq.train.code_memory import CodeMemory, one_hot_codes, soft_codes  # noqa: E402
from pyfaiss_dpq.train.losses import nt_xent  # noqa: E402
from pyfaiss_dpq.train.quantizer import ProgressiveQuantizer  # noqa: E402
from pyfaiss_dpq.train.retrieval_losses import (codeword_diversity, debiased_nt_xent,  # noqa: E402
                                                multinoulli_contrastive)

FAST = dict(levels=2, nbits=4, verbose=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_and_faiss_on_one_thread):
    yield


@pytest.fixture(scope="module")
def images():
    return split_digits(0)[0][:300]


@pytest.fixture(scope="module")
def pairs():
    """(queries, keys): real MiniLM sentence embeddings, each key a noisy, rotated copy of its query."""
    from pyfaiss_dpq.data import load_text_embeddings

    q = load_text_embeddings()[:400].astype(np.float32)
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.standard_normal((q.shape[1], q.shape[1])))[0].astype(np.float32)
    k = q @ rotation + 0.02 * rng.standard_normal(q.shape).astype(np.float32)
    return q, k / np.linalg.norm(k, axis=1, keepdims=True)


# ---------------------------------------------------------------- losses against references
def _np_debiased(a, b, t, negatives, tau):
    z = np.concatenate([a, b])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    negs = negatives / np.linalg.norm(negatives, axis=1, keepdims=True)
    n = len(a)
    losses = []
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        pos = np.exp(z[i] @ z[p] / t)
        others = [np.exp(z[i] @ z[j] / t) for j in range(2 * n) if j not in (i, p)]
        others += list(np.exp(negs @ z[i] / t))
        N = len(others)
        ng = sum(others) if tau == 0 else max((sum(others) - tau * N * pos) / (1 - tau), N * np.exp(-1 / t))
        losses.append(-np.log(pos / (pos + ng)))
    return np.mean(losses)


@pytest.mark.parametrize("tau", [0.0, 0.1, 0.3])
def test_debiased_nt_xent_matches_the_formula(tau):
    g = torch.Generator().manual_seed(0)
    a, b, negs = (torch.randn(s, 6, generator=g, dtype=torch.float64) for s in (5, 5, 7))
    got = debiased_nt_xent(a, b, 0.5, negs, tau).item()
    assert got == pytest.approx(_np_debiased(a.numpy(), b.numpy(), 0.5, negs.numpy(), tau), rel=1e-9)


def test_debiased_nt_xent_without_parts_is_nt_xent():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    assert debiased_nt_xent(a, b, 0.3).item() == pytest.approx(nt_xent(a, b, 0.3).item(), rel=1e-6)


def test_multinoulli_contrastive_matches_cross_entropy():
    g = torch.Generator().manual_seed(2)
    q, k, negs = (torch.randn(s, 4, generator=g, dtype=torch.float64) for s in (6, 6, 3))
    logits = q.numpy() @ np.concatenate([k.numpy(), negs.numpy()]).T / 0.1
    ref = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(logits)])
    assert multinoulli_contrastive(q, k, 0.1, negs).item() == pytest.approx(ref, rel=1e-9)


def test_codeword_diversity_is_the_mean_off_diagonal_cosine():
    C = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    c = C.numpy() / np.linalg.norm(C.numpy(), axis=-1, keepdims=True)
    ref = np.mean([(c[l] @ c[l].T)[~np.eye(5, dtype=bool)].mean() for l in range(3)])
    assert codeword_diversity(C).item() == pytest.approx(ref, rel=1e-9)


# ---------------------------------------------------------------- code memory
def test_code_memory_keeps_the_newest_codes_in_a_ring():
    mem = CodeMemory(5, 2, 3)
    batches = [torch.rand(n, 2, 3) for n in (3, 4, 2)]
    mem.push(batches[0])
    assert len(mem) == 3 and mem.count == 3
    for b in batches[1:]:
        mem.push(b)
    assert len(mem) == 5 and mem.count == 9
    newest = torch.cat(batches)[-5:]  # codes 4..8 sit in slots 4, 0, 1, 2, 3
    np.testing.assert_array_equal(mem.weights[[4, 0, 1, 2, 3]].numpy(), newest.numpy())
    mem.push(torch.rand(8, 2, 3))  # more than the memory holds: its last 5
    assert len(mem) == 5 and mem.count == 17


def test_code_memory_decodes_with_the_codebooks_it_is_given():
    mem = CodeMemory(4, 2, 3)
    mem.push(torch.rand(4, 2, 3))
    for seed in (0, 1):  # codebooks change: the same codes decode to the new reconstructions
        C = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(seed))
        w = mem.weights.numpy()
        ref = np.cumsum(np.einsum("nlk,lkd->lnd", w, C.numpy()), axis=0)
        np.testing.assert_allclose(mem.decode(C).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_soft_and_one_hot_codes_decode_to_the_quantizers_reconstructions():
    qz = ProgressiveQuantizer(3, 8, 6, soft="l2", temperature=2.0)
    x = torch.randn(10, 6)
    qz.set_codebooks(torch.randn(3, 8, 6))
    q = qz(x)
    for weights, expected in ((soft_codes(qz, x), q.soft), (one_hot_codes(q.codes, 8), q.hard)):
        mem = CodeMemory(10, 3, 8)
        mem.push(weights)
        torch.testing.assert_close(mem.decode(qz.codebooks), expected, rtol=1e-5, atol=1e-5)


def test_code_memory_rejects_bad_sizes_and_shapes():
    with pytest.raises(ValueError, match="size"):
        CodeMemory(0, 2, 3)
    with pytest.raises(ValueError, match="shape"):
        CodeMemory(4, 2, 3).push(torch.rand(2, 3, 3))


# ---------------------------------------------------------------- trainer modes
def _assert_exported_codes_agree(model, index_input, raw):
    index = model.to_index()
    index.add(index_input)
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    from pyfaiss_dpq.index import downcast

    np.testing.assert_array_equal(downcast(inner).get_codes(), model.codes(raw))


def test_mecoq_contrastive_trains_fills_its_memory_and_exports(images):
    trainer = DPQTrainer(mode="contrastive", epochs=2, warmup=0.5, batch_size=64, code_memory=96,
                         debias=0.1, diversity=0.1, **FAST)
    model = trainer.fit(images).model_
    n_train = len(images) - round(trainer.validation_fraction * len(images))  # the rest is held out
    assert len(trainer.memory_) == 96
    assert trainer.memory_.count == 2 * n_train  # both views of every training sample of the one joint epoch
    _assert_exported_codes_agree(model, model.encode(images), images)


def test_contrastive_parts_act_in_the_joint_phase(images):
    # no held-out split: the trainer keeps the last state, not the best-scoring one (which, after one
    # joint epoch, is the start of the joint phase, the same for every variant)
    FAST = dict(validation_fraction=0.0, **globals()["FAST"])
    plain = DPQTrainer(mode="contrastive", epochs=2, seed=3, **FAST)
    plain_model = plain.fit(images).model_
    for parts in ({"code_memory": 64}, {"diversity": 1.0}, {"debias": 0.2}):
        other = DPQTrainer(mode="contrastive", epochs=2, seed=3, **parts, **FAST)
        other_model = other.fit(images).model_
        if "debias" not in parts:  # memory and diversity need codebooks: the encoder epoch is unchanged
            assert other.history_[0].loss == pytest.approx(plain.history_[0].loss, rel=1e-6)
        assert not np.allclose(other_model.codebooks, plain_model.codebooks, atol=1e-6), parts


@pytest.mark.parametrize("query_encoder", [None, "linear"])
def test_paired_mode_trains_exports_and_encodes_queries(pairs, query_encoder, tmp_path):
    q, k = pairs
    trainer = DPQTrainer(mode="paired", epochs=3, code_memory=128, query_encoder=query_encoder,
                         checkpoint=tmp_path / "p.pt", **FAST)
    model = trainer.fit(q, k).model_
    n_train = len(k) - round(trainer.validation_fraction * len(k))  # the rest is held out
    assert trainer.memory_.count == 3 * n_train and len(trainer.memory_) == 128  # no warmup: identity keys
    if query_encoder is None:  # one tower: a native Faiss pipeline over raw keys
        assert isinstance(model.to_index(), faiss.IndexPreTransform)
        np.testing.assert_array_equal(model.encode_query(q), model.encode(q))
        _assert_exported_codes_agree(model, k, k)
    else:
        assert not isinstance(model.to_index(), faiss.IndexPreTransform)
        assert not np.allclose(model.encode_query(q), model.encode(q))
        _assert_exported_codes_agree(model, model.encode(k), k)
    loaded = DPQModel.load(tmp_path / "p.pt")
    np.testing.assert_array_equal(loaded.encode_query(q[:20]), model.encode_query(q[:20]))
    np.testing.assert_array_equal(loaded.codes(k[:20]), model.codes(k[:20]))


def test_paired_training_finds_keys_that_unsupervised_codes_miss(pairs):
    """Keys are rotated queries: only codebooks trained on the pairs can bring a query to its key."""
    q, k = pairs

    def recall_at_10(model):
        index = model.to_index()
        index.add(model.encode(k) if model.query_encoder is not None else k)
        ids = index.search(model.encode_query(q), 10)[1]
        return np.mean((ids == np.arange(len(q))[:, None]).any(1))

    settings = dict(levels=4, nbits=4, verbose=False)
    unsupervised = DPQTrainer(mode="unsupervised", epochs=2, **settings).fit(k).model_
    paired = DPQTrainer(mode="paired", epochs=4, **settings).fit(q, k).model_
    assert recall_at_10(paired) > recall_at_10(unsupervised) + 0.5


@pytest.mark.parametrize("mode", ["contrastive", "supervised"])
def test_pyramid_encoder_trains_and_exports(images, mode, tmp_path):
    y = np.arange(len(images)) % 3
    model = DPQTrainer(mode=mode, encoder="pyramid", epochs=2, **FAST).fit(images, y).model_
    feats = model.encode(images)
    assert feats.shape == (len(images), 64) and model.config["encoder"] == "pyramid"
    _assert_exported_codes_agree(model, feats, images)
    model.save(tmp_path / "m.pt")
    np.testing.assert_array_equal(DPQModel.load(tmp_path / "m.pt").codes(images), model.codes(images))


def test_mode_options_are_checked(images, pairs):
    q, k = pairs
    bad = [
        (dict(mode="supervised", code_memory=10), "code_memory"),
        (dict(mode="contrastive", code_memory=-1), "code_memory"),
        (dict(mode="contrastive", code_memory=2.5), "code_memory"),
        (dict(mode="unsupervised", diversity=0.1), "diversity"),
        (dict(mode="contrastive", diversity=-1.0), "diversity"),
        (dict(mode="contrastive", debias=1.0), "debias"),
        (dict(mode="paired", debias=0.1), "debias"),
        (dict(mode="contrastive", query_encoder="linear"), "query_encoder"),
        (dict(mode="paired", query_encoder="identity"), "query_encoder"),
    ]
    for kwargs, word in bad:  # checked by fit (the scikit-learn contract: __init__ only stores)
        trainer = DPQTrainer(**kwargs, **FAST)
        with pytest.raises(ValueError, match=word):
            trainer.fit(q, k) if kwargs["mode"] == "paired" else trainer.fit(images, np.arange(len(images)) % 3)
    with pytest.raises(ValueError, match="keys"):
        DPQTrainer(mode="paired", **FAST).fit(q)
    with pytest.raises(ValueError, match="shape"):
        DPQTrainer(mode="paired", **FAST).fit(q, k[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        DPQTrainer(mode="paired", **FAST).fit(q, np.where(np.eye(len(k), k.shape[1]) > 0, np.nan, k))
    with pytest.raises(ValueError, match="pyramid encoder needs images"):
        DPQTrainer(mode="contrastive", encoder="pyramid", **FAST).fit(q)


def test_paired_command_line_trains_builds_and_searches_with_the_query_tower(pairs, tmp_path, capsys):
    from pyfaiss_dpq import read_index
    from pyfaiss_dpq.cli import main

    q, k = pairs
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "k.npy", k)
    run = lambda *argv: main([str(a) for a in argv])  # noqa: E731
    assert run("train", tmp_path / "q.npy", "--keys", tmp_path / "k.npy", "-o", tmp_path / "p.pt", "--mode", "paired",
               "--query-encoder", "linear", "--code-memory", "64", "--levels", "2", "--nbits", "4",
               "--epochs", "2", "--quiet", "--threads", "1") == 0
    assert run("build", tmp_path / "k.npy", "-o", tmp_path / "p.dpq", "--model", tmp_path / "p.pt") == 0
    assert run("search", tmp_path / "p.dpq", tmp_path / "q.npy", "--model", tmp_path / "p.pt", "-k", "5",
               "--ids", tmp_path / "ids.npy", "--distances", tmp_path / "d.npy") == 0
    model = DPQModel.load(tmp_path / "p.pt")
    index = read_index(tmp_path / "p.dpq")
    np.testing.assert_array_equal(np.load(tmp_path / "ids.npy"), index.search(model.encode_query(q), 5)[1])
    assert run("train", tmp_path / "q.npy", "-o", tmp_path / "x.pt", "--mode", "paired") == 2
    assert "--keys" in capsys.readouterr().err
