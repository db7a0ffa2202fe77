"""The pyfaiss-dpq command line, run end to end through its real parser on tiny files."""

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq.cli import build_parser, main
from pyfaiss_dpq.data import write_fvecs


@pytest.fixture
def files(tmp_path):
    """Clustered base vectors (.fvecs), queries (.npy) and labels (.npy) in tmp_path."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 12)).astype(np.float32) * 4
    labels = rng.integers(0, 4, 300)
    base = (centers[labels] + rng.standard_normal((300, 12))).astype(np.float32)
    write_fvecs(tmp_path / "base.fvecs", base)
    np.save(tmp_path / "queries.npy", base[:7] + 0.01)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path, base


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def test_build_and_search_without_torch(files, capsys):
    tmp, base = files
    assert _run("build", tmp / "base.fvecs", "-o", tmp / "idx.dpq", "--levels", "3", "--nbits", "4") == 0
    assert "300 vectors" in capsys.readouterr().out
    assert _run("search", tmp / "idx.dpq", tmp / "queries.npy", "-k", "5", "--levels", "2",
                "--ids", tmp / "ids.npy", "--distances", tmp / "d.npy") == 0
    index = pyfaiss_dpq.read_index(tmp / "idx.dpq")
    D, I = index.search(np.load(tmp / "queries.npy"), 5, params=pyfaiss_dpq.SearchParametersDPQ(levels=2))
    np.testing.assert_array_equal(np.load(tmp / "ids.npy"), I)
    np.testing.assert_allclose(np.load(tmp / "d.npy"), D)
    # the same codebooks as IndexDPQ.train gives in Python
    direct = pyfaiss_dpq.IndexDPQ(12, 3, 4)
    direct.train(base)
    np.testing.assert_array_equal(index.codebooks, direct.codebooks)


def test_build_cosine_index(files):
    tmp, base = files
    assert _run("build", tmp / "base.fvecs", "-o", tmp / "cos.dpq", "--levels", "3", "--nbits", "4",
                "--metric", "cosine") == 0
    index = pyfaiss_dpq.read_index(tmp / "cos.dpq")
    assert index.cosine and index.metric_type == faiss.METRIC_INNER_PRODUCT
    direct = pyfaiss_dpq.IndexDPQ(12, 3, 4, faiss.METRIC_INNER_PRODUCT, cosine=True)
    direct.train(base)
    direct.add(base)
    np.testing.assert_array_equal(index.get_codes(), direct.get_codes())


def test_unsupervised_train_build_search(files, capsys):
    pytest.importorskip("torch")
    from pyfaiss_dpq.train import DPQModel

    tmp, base = files
    assert _run("train", tmp / "base.fvecs", "-o", tmp / "m.pt", "--levels", "3", "--nbits", "4",
                "--epochs", "2", "--quiet", "--threads", "1") == 0
    assert "reconstruction error" in capsys.readouterr().out
    assert _run("build", tmp / "base.fvecs", "-o", tmp / "idx.dpq", "--model", tmp / "m.pt") == 0
    assert _run("search", tmp / "idx.dpq", tmp / "queries.npy", "-k", "4", "--ids", tmp / "ids.npy",
                "--distances", tmp / "d.npy") == 0
    model = DPQModel.load(tmp / "m.pt")
    index = model.to_index()
    index.add(base)
    np.testing.assert_array_equal(pyfaiss_dpq.read_index(tmp / "idx.dpq").get_codes(), index.get_codes())
    np.testing.assert_array_equal(np.load(tmp / "ids.npy"), index.search(np.load(tmp / "queries.npy"), 4)[1])


def test_supervised_model_encodes_queries(files, capsys):
    pytest.importorskip("torch")
    from pyfaiss_dpq.train import DPQModel

    tmp, base = files
    assert _run("train", tmp / "base.fvecs", "-o", tmp / "s.pt", "--mode", "supervised", "--labels",
                tmp / "labels.npy", "--levels", "2", "--nbits", "4", "--epochs", "2", "--quiet", "--threads", "1") == 0
    assert _run("build", tmp / "base.fvecs", "-o", tmp / "s.dpq", "--model", tmp / "s.pt") == 0
    # without the model the queries have the wrong dimension: a clear error, exit code 2
    assert _run("search", tmp / "s.dpq", tmp / "queries.npy") == 2
    assert "needs --model" in capsys.readouterr().err
    assert _run("search", tmp / "s.dpq", tmp / "queries.npy", "--model", tmp / "s.pt", "-k", "3",
                "--ids", tmp / "ids.npy", "--distances", tmp / "d.npy") == 0
    model = DPQModel.load(tmp / "s.pt")
    index = model.to_index()
    index.add(model.encode(base))
    np.testing.assert_array_equal(np.load(tmp / "ids.npy"), index.search(model.encode(np.load(tmp / "queries.npy")), 3)[1])
    assert pyfaiss_dpq.read_index(tmp / "s.dpq").metric_type == faiss.METRIC_INNER_PRODUCT


def test_user_errors_exit_2_with_a_message(files, capsys):
    tmp, _ = files
    assert _run("search", tmp / "missing.dpq", tmp / "queries.npy") == 2
    assert "error" in capsys.readouterr().err
    np.save(tmp / "small.npy", np.zeros((100, 12), np.float32))
    assert _run("build", tmp / "small.npy", "-o", tmp / "x.dpq", "--levels", "2", "--nbits", "8") == 2
    assert "at least 256" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("build", tmp / "base.fvecs", "-o", tmp / "x.dpq", "--nbits", "5")


def test_train_supervised_needs_labels(files, capsys):
    pytest.importorskip("torch")
    tmp, _ = files
    assert _run("train", tmp / "base.fvecs", "-o", tmp / "m.pt", "--mode", "supervised") == 2
    assert "--labels" in capsys.readouterr().err


def test_parser_lists_every_subcommand():
    parser = build_parser()
    text = parser.format_help()
    for command in ("train", "build", "search", "bench", "demo"):
        assert command in text
    args = parser.parse_args(["demo", "--out", "x.png", "--levels", "2"])
    assert (args.out, args.levels, args.command) == ("x.png", 2, "demo")


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo.png"
    argv = ["demo", "--levels", "2", "--epochs", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "recall@10" in text and "IndexPQ" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "pip install" in text
    else:
        assert "mAP" in text and out.stat().st_size > 1000 and str(out) in text
