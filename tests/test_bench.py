import argparse
import json
import sys

import faiss
import h5py
import numpy as np
import pytest

from pyfaiss_dpq.bench import add_bench_arguments, run_bench
from pyfaiss_dpq.bench.baselines import METHODS, PLANNERS, Plan, stored_bytes_per_vector
from pyfaiss_dpq.bench.metrics import mean_average_precision, recall_at

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def clustered(n, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, d)).astype(np.float32) * 4
    return (centers[rng.integers(0, 12, n)] + rng.standard_normal((n, d))).astype(np.float32)


def bench(argv):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    assert run_bench(parser.parse_args(argv)) == 0


def check_outputs(out, n_lengths):
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    lengths = results["config"]["levels"]
    assert len(lengths) == n_lengths
    for m in lengths:
        at_m = [r for r in rows if r["length"] == m]
        # Every method is present at every length, built or with the reason it is not.
        assert sorted(r["method"] for r in at_m) == sorted(["DPQ", *METHODS])
        assert len({r["total_bytes"] for r in at_m}) == 1
        for r in at_m:
            assert r["status"] in ("ok", "skipped", "failed")
            if r["status"] != "ok":
                assert r["note"]
                continue
            assert r["code_bytes"] + r["extra_bytes"] == r["total_bytes"]
            for key in ("recall_1_at_1", "recall_10_at_10", "recall_1_at_100"):
                assert 0.0 <= r[key] <= 1.0
            assert r["recall_1_at_100"] >= r["recall_1_at_1"]
            assert r["qps_1_thread"] > 0 and r["qps_all_threads"] > 0 and r["train_s"] >= 0
    dpq = [r for r in rows if r["method"] == "DPQ"]
    assert len({r["train_s"] for r in dpq}) == 1  # trained once for every length
    flat = [r for r in rows if r["method"] == "Flat"]
    assert len(flat) == 1
    assert flat[0]["recall_1_at_1"] == flat[0]["recall_10_at_10"] == flat[0]["recall_1_at_100"] == 1.0
    md = (out / "results.md").read_text()
    for method in ("DPQ", *METHODS, "Flat"):
        assert f"| {method} |" in md or f"| **{method}** |" in md
    for name in results["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert results["machine"]["faiss"] == faiss.__version__
    return results


def test_bench_end_to_end_l2(tmp_path):
    path = tmp_path / "tiny.npy"
    np.save(path, clustered(660, 16, 0))
    out = tmp_path / "out"
    bench(["--dataset", str(path), "--out", str(out), "--trainer", "kmeans", "--levels", "1,2",
           "--qps-runs", "1", "--lsq-budget", "0"])
    results = check_outputs(out, 2)
    lsq = {r["total_bytes"]: r for r in results["rows"] if r["method"] == "LSQ"}
    # The first LSQ length always trains; any predicted time then breaks a zero budget.
    assert lsq[5]["status"] == "ok"
    assert lsq[10]["status"] == "skipped" and "--lsq-budget" in lsq[10]["note"]
    assert any(n.startswith("LSQ at 10 B skipped") for n in results["notes"])
    assert results["dataset"]["metric"] == "L2" and results["config"]["trainer"] == "kmeans"
    dpq = {r["length"]: r for r in results["rows"] if r["method"] == "DPQ"}
    # L2 DPQ stores a 4-byte norm per level next to its 1-byte codes.
    assert [(dpq[m]["code_bytes"], dpq[m]["extra_bytes"]) for m in (1, 2)] == [(1, 4), (2, 8)]
    # The torch-free base is encoded with the beam Faiss's RQ baseline encodes with.
    assert results["dpq"]["description"].endswith(f"encoded with beam {faiss.ResidualQuantizer(16, 2, 8).max_beam_size}")
    assert all(r["map_at_100"] is None for r in results["rows"] if r["status"] == "ok")
    assert len(results["plots"]) == 2


@pytest.mark.parametrize("trainer", ["kmeans", "deep"])
def test_bench_inner_product_hdf5(tmp_path, trainer):
    rng = np.random.default_rng(1)
    path = tmp_path / "toy-angular.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f["train"] = clustered(600, 24, 2)
        f["test"] = clustered(30, 24, 3) + rng.standard_normal((30, 24)).astype(np.float32)
    out = tmp_path / "ip"
    bench(["--dataset", str(path), "--out", str(out), "--trainer", trainer, "--epochs", "1", "--levels", "3",
           "--methods", "PQ,RQ,RaBitQ", "--qps-runs", "1", "--no-plots"])
    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert results["dataset"]["metric"] == "IP" and results["config"]["trainer"] == trainer
    assert not results["dpq"]["supervised"]
    assert set(rows) == {"DPQ", "PQ", "RQ", "RaBitQ", "Flat"}
    assert rows["DPQ"]["total_bytes"] == rows["DPQ"]["code_bytes"] == 3  # no norms for inner product
    assert rows["RQ"]["extra_bytes"] == 0 and rows["PQ"]["total_bytes"] == 3
    assert rows["Flat"]["recall_1_at_1"] == 1.0
    assert results["plots"] == [] and not list(out.glob("*.png"))


def test_bench_deep_supervised_on_digits(tmp_path):
    out = tmp_path / "digits"
    bench(["--dataset", "digits", "--out", str(out), "--trainer", "deep", "--epochs", "2", "--levels", "2,4",
           "--methods", "PQ,RQ", "--qps-runs", "1", "--no-plots"])
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["trainer"] == "deep" and results["dpq"]["supervised"]
    assert "mode=supervised" in results["dpq"]["description"]
    assert "supervised" in (out / "results.md").read_text()
    for r in results["rows"]:
        assert 0.0 <= r["map_at_100"] <= 1.0
        if r["method"] == "DPQ":  # unit features ranked by inner product: no norm bytes
            assert r["extra_bytes"] == 0 and r["total_bytes"] == r["length"]
    totals = {t["method"]: t for t in results["training_totals"]}
    assert totals["DPQ"]["models_trained"] == 1 and totals["PQ"]["models_trained"] == 2


@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("d", [20, 64, 100])
@pytest.mark.parametrize("total", [3, 6, 12, 40])
def test_baselines_store_exactly_the_planned_bytes(metric, d, total):
    for method in METHODS:
        plan = PLANNERS[method](d, metric, total)
        if isinstance(plan, str):
            assert method in ("RaBitQ", "LSQ"), plan
            continue
        assert isinstance(plan, Plan) and plan.total_bytes == total
        index = plan.build()
        assert index.d == d and index.metric_type == metric
        assert stored_bytes_per_vector(index) == total
        assert index.sa_code_size() == total


def test_recall_matches_a_loop():
    rng = np.random.default_rng(0)
    gt = np.array([rng.permutation(50)[:20] for _ in range(30)])
    ids = np.array([rng.permutation(50)[:20] for _ in range(30)])
    for r, k in [(1, 1), (10, 10), (1, 20), (5, 20)]:
        expected = np.mean([len(set(ids[q, :k]) & set(gt[q, :r])) / r for q in range(30)])
        assert recall_at(ids, gt, r, k) == pytest.approx(expected)
    with pytest.raises(ValueError):
        recall_at(ids, gt, 1, 100)


def test_map_matches_a_loop():
    rng = np.random.default_rng(1)
    labels_base = rng.integers(0, 3, 40)
    labels_queries = rng.integers(0, 3, 8)
    ids = np.array([rng.permutation(40)[:10] for _ in range(8)])
    ids[0, 5:] = -1  # fewer than k results
    aps = []
    for q in range(8):
        hits, precisions = 0, []
        for rank, i in enumerate(ids[q], start=1):
            if i >= 0 and labels_base[i] == labels_queries[q]:
                hits += 1
                precisions.append(hits / rank)
        aps.append(np.mean(precisions) if precisions else 0.0)
    assert mean_average_precision(ids, labels_base, labels_queries, 10) == pytest.approx(np.mean(aps))


def test_bad_arguments_are_refused(tmp_path):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    for argv in (["--methods", "PQ,IVF"], ["--qps-runs", "0"], ["--levels", "0,2"], ["--trainer", "sgd"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    with pytest.raises(ValueError, match="unknown dataset 'nosuch'"):
        run_bench(parser.parse_args(["--dataset", "nosuch", "--out", str(tmp_path)]))


# ---------------------------------------------------------------- issue 14: no bench extra
def test_peak_rss_needs_no_psutil(monkeypatch):
    from pyfaiss_dpq.bench.metrics import PeakRSS

    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` now raises ImportError
    with PeakRSS() as mem:
        # 64 MiB, touched: above glibc's largest mmap threshold (32 MiB), so
        # fresh pages even after earlier tests freed memory into the heap
        block = np.ones(64 * 2**20, dtype=np.uint8)
    assert block.sum() == block.size
    assert mem.start_rss > 0 and mem.delta_mb >= 32


def test_bench_without_its_extra_names_the_extra(monkeypatch, capsys):
    import importlib.util

    from pyfaiss_dpq import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tqdm" else real(name, *a))
    assert cli.main(["bench", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "tqdm" in err and "pip install 'pyfaiss-dpq[bench]'" in err


def test_demo_and_bench_share_one_recall_and_qps():
    from pyfaiss_dpq import demo
    from pyfaiss_dpq.bench import metrics

    assert demo.recall_at is metrics.recall_at and demo.queries_per_second is metrics.queries_per_second
    assert not hasattr(demo, "recall_at_k") and not hasattr(demo, "_qps") and not hasattr(demo, "label_map")


# ---------------------------------------------------------------- curves (bench/peers.py)
def _curve(method, group, points):
    from pyfaiss_dpq.bench.peers import Curve

    return Curve(method, group, f"{method} config", 8,
                 [{"knobs": {"x": i}, "recall": r, "qps": {"1": q1, "2": q2}} for i, (r, q1, q2) in enumerate(points)])


def test_qps_at_a_target_is_the_fastest_point_reaching_it():
    c = _curve("IndexDPQ 8-bit", "8 B", [(0.4, 9000, 15000), (0.6, 5000, 9000), (0.8, 1000, 1900), (0.75, 800, 1500)])
    assert c.qps_at(0.5, 1) == 5000 and c.qps_at(0.7, 2) == 1900 and c.qps_at(0.9, 1) is None
    assert c.max_recall == 0.8


def test_meter_times_every_configuration_in_rounds_taking_turns():
    from pyfaiss_dpq.bench.peers import Meter

    calls = []

    def searcher(name):
        def search(q, threads):
            calls.append((name, threads))
            return np.zeros((len(q), 10), np.int64)
        return search

    meter = Meter(np.zeros((5, 2), np.float32), np.zeros((5, 10), np.int64), [1, 2], 3, lambda s: None)
    a, b = _curve("IndexDPQ 4-bit", "8 B", []), _curve("PQFastScan", "8 B", [])
    meter.point(a, {"m": 4}, searcher("a"))
    meter.point(b, {}, searcher("b"))
    assert calls == [("a", 2), ("b", 2)] and a.points[0]["recall"] == 1.0 and a.points[0]["qps"] == {}
    meter.time_points()
    # every round: each configuration, each thread count, one untimed and one timed search
    assert calls[2:] == [("a", 1), ("a", 1), ("a", 2), ("a", 2), ("b", 1), ("b", 1), ("b", 2), ("b", 2)] * 3
    assert set(a.points[0]["qps"]) == set(b.points[0]["qps"]) == {"1", "2"} and meter.pending == []


def test_plotted_line_joins_the_points_no_other_beats():
    from pyfaiss_dpq.bench.peers import pareto_front

    pts = [(0.3, 100.0), (0.5, 50.0), (0.4, 20.0), (0.5, 60.0), (0.2, 90.0), (0.6, 10.0)]
    assert pareto_front(pts) == [(0.3, 100.0), (0.5, 60.0), (0.6, 10.0)]
    assert pareto_front([]) == []


def test_goal_rows_compare_dpq_with_the_best_named_peer():
    from pyfaiss_dpq.bench.peers import goal_rows, markdown

    curves = [_curve("IndexDPQ 8-bit", "8 B", [(0.55, 4000, 7000), (0.72, 2000, 3500)]),
              _curve("IndexDPQ 4-bit", "8 B", [(0.52, 6000, 9000)]),
              _curve("ScaNN AH", "8 B", [(0.51, 3000, 5000)]),
              _curve("PQFastScan", "8 B", [(0.6, 5000, 4000)]),
              _curve("HNSWFlat", "floats", [(0.99, 99999, 99999)]),  # not a goal peer
              _curve("ScaNN AH+reorder", "8 B + floats", [(0.95, 99999, 99999)])]  # other group
    rows = goal_rows(curves, [8], [1, 2])
    r = {(x["threads"], x["target"]): x for x in rows if "target" in x}
    assert r[(1, 0.5)]["dpq_qps"] == 6000 and r[(1, 0.5)]["dpq_method"] == "IndexDPQ 4-bit"
    assert r[(1, 0.5)]["peer_qps"] == 5000 and r[(1, 0.5)]["peer_method"] == "PQFastScan"
    assert r[(1, 0.5)]["ratio"] == pytest.approx(1.2)
    assert r[(2, 0.5)]["peer_qps"] == 5000 and r[(2, 0.5)]["peer_method"] == "ScaNN AH"
    assert r[(1, 0.7)]["peer_qps"] is None and r[(1, 0.7)]["ratio"] is None
    assert rows[-1] == {"budget": 8, "max_recall_dpq": 0.72, "max_recall_peers": 0.6}
    results = {"date": "d", "command": "c", "machine": "m", "data": "x", "notes": ["ScaNN skipped: why"],
               "config": {"threads": [1, 2], "qps_runs": 3, "n_queries": 10},
               "curves": [vars(c) for c in curves], "goal": rows}
    md = markdown(results)
    assert "ScaNN skipped: why" in md and "| PQFastScan | PQFastScan config | 8 |" in md
    assert "| 8 | 1 | 0.5 | 6000 (IndexDPQ 4-bit) | 5000 (PQFastScan) | 1.20 |" in md


def test_minilm_loader_adds_distinct_sentences_only(tmp_path):
    import importlib.resources as resources

    from pyfaiss_dpq.bench.peers import load_minilm
    from pyfaiss_dpq.data import load_text_embeddings

    shipped = load_text_embeddings()
    with np.load(resources.files("pyfaiss_dpq") / "datasets" / "minilm_text.npz") as z:
        hashes = z["sentence_hash"]
    rng = np.random.default_rng(0)
    new = rng.standard_normal((30, shipped.shape[1])).astype(np.float16)
    extra = tmp_path / "extra.npz"
    # 30 new sentences and 5 already shipped (same hash): only the 30 are added
    np.savez(extra, embeddings=np.concatenate([new, shipped[:5].astype(np.float16)]),
             sentence_hash=np.concatenate([np.arange(30, dtype=np.uint64) + 1, hashes[:5]]))
    base, queries, desc = load_minilm([extra], 100)
    assert len(base) + len(queries) == len(shipped) + 30
    assert np.allclose(np.linalg.norm(base, axis=1), 1, atol=1e-5)
    assert "extra.npz (35)" in desc
