"""Sharded build and search on Ray, checked against one index holding every vector.

One local Ray (2 CPUs) serves the whole module. Data: the shipped MiniLM
sentence embeddings, with 400 rows repeated so that exact ties cross shards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq.data import load_text_embeddings, write_fvecs

try:
    import ray
except ImportError:
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason='Ray is not installed: pip install "pyfaiss-dpq[distributed]"')

LEVELS = 4


def test_import_without_ray_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "try:\n    import pyfaiss_dpq.distributed\nexcept ImportError as e:\n    print(e)\n")
    # cwd: never the repository root, whose source tree would shadow the install.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert 'pip install "pyfaiss-dpq[distributed]"' in out


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if ray is None:
        pytest.skip('Ray is not installed: pip install "pyfaiss-dpq[distributed]"')
    # Ray puts the driver's working directory on its workers' path: never the
    # repository root, whose source tree would shadow the install.
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray-driver"))
    try:
        ctx = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20)
        yield ctx
        ray.shutdown()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def dd(cluster):
    from pyfaiss_dpq import distributed

    return distributed


@pytest.fixture(scope="module")
def emb():
    return load_text_embeddings()


@pytest.fixture(scope="module")
def base(emb):
    """2400 rows: 2000 embeddings, then the first 400 again (ties across shards)."""
    return np.concatenate([emb[:2000], emb[:400]])


@pytest.fixture(scope="module")
def queries(emb):
    return emb[5000:5030]


def _empty_copy(index):
    return pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))


@pytest.fixture(scope="module")
def templates(emb):
    """Trained, empty templates: IndexDPQ (L2, IP), IndexPreTransform around one, a Faiss IndexPQ, an IndexIVFDPQ."""
    xt = emb[2000:4000]
    out = {}
    for name, metric in (("dpq-l2", faiss.METRIC_L2), ("dpq-ip", faiss.METRIC_INNER_PRODUCT)):
        index = pyfaiss_dpq.IndexDPQ(xt.shape[1], LEVELS, 4, metric)
        index.train(xt)
        out[name] = index
    pca = faiss.PCAMatrix(xt.shape[1], 64)
    inner = pyfaiss_dpq.IndexDPQ(64, LEVELS, 4)
    out["pretransform"] = faiss.IndexPreTransform(pca, inner)
    out["pretransform"].train(xt)
    out["pq"] = faiss.IndexPQ(xt.shape[1], 16, 4)
    out["pq"].train(xt)
    out["ivf"] = pyfaiss_dpq.IndexIVFDPQ(faiss.IndexFlatL2(xt.shape[1]), xt.shape[1], 16, LEVELS, 4)
    out["ivf"].train(xt)
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory, base):
    """The base split over a .npy file, an .fvecs file and an array."""
    folder = tmp_path_factory.mktemp("sources")
    np.save(folder / "a.npy", base[:700])
    write_fvecs(folder / "b.fvecs", base[700:1500])
    return [str(folder / "a.npy"), str(folder / "b.fvecs"), base[1500:]]


@pytest.fixture(scope="module")
def built(dd, templates, sources, tmp_path_factory):
    """name -> (out_dir, report): each template built into 3 shards of 300-row slices."""
    out = {}
    for name, template in templates.items():
        folder = tmp_path_factory.mktemp(name)
        out[name] = (folder, dd.build(template, sources, folder, num_shards=3, slice_rows=300, progress=False))
    return out


def _single(template, x):
    index = _empty_copy(template)
    index.add(x)
    return index


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------- build
@needs_ray
@pytest.mark.parametrize("name", ["dpq-l2", "dpq-ip", "pretransform", "pq", "ivf"])
def test_shards_are_the_split_of_one_index(built, templates, base, name):
    out_dir, report = built[name]
    assert (report.ntotal, report.num_shards, report.slices_encoded, report.slices_reused) == (2400, 3, 9, 0)
    bounds = [0, 800, 1600, 2400]
    single = _single(templates[name], base)
    codes = []
    for s in range(3):
        shard = pyfaiss_dpq.read_index(out_dir / f"shard-{s:05d}.index")
        expected = _single(templates[name], base[bounds[s]:bounds[s + 1]])
        assert pyfaiss_dpq.serialize(shard) == pyfaiss_dpq.serialize(expected)
        codes.append(shard.sa_encode(base[bounds[s]:bounds[s + 1]]))
    assert _same_bits(np.concatenate(codes), single.sa_encode(base))
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "manifest.json", "shard-00000.index", "shard-00001.index", "shard-00002.index", "template.index"]


@needs_ray
def test_building_again_reuses_everything(dd, built, templates, sources):
    out_dir, _ = built["dpq-l2"]
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    report = dd.build(templates["dpq-l2"], sources, out_dir, num_shards=3, slice_rows=300, progress=False)
    assert (report.slices_encoded, report.shards_written, report.shards_reused) == (0, 0, 3)
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


# ---------------------------------------------------------------- search
PARAMS = [
    None,
    SearchParametersDPQ(levels=2),
    SearchParametersDPQ(levels=2, rerank_levels=LEVELS, rerank_k=40),
    SearchParametersDPQ(levels=1, rerank_levels=3, rerank_k=5),  # rerank_k < k: k candidates
]
IVF_PARAMS = [
    None,
    pyfaiss_dpq.SearchParametersIVFDPQ(nprobe=3),
    pyfaiss_dpq.SearchParametersIVFDPQ(nprobe=16, levels=2),
]


@needs_ray
@pytest.mark.parametrize("name", ["dpq-l2", "dpq-ip", "pretransform", "pq", "ivf"])
def test_search_equals_one_index_bit_for_bit(dd, built, templates, base, queries, name):
    single = _single(templates[name], base)
    params = {"pq": [None], "ivf": IVF_PARAMS}.get(name, PARAMS)
    with dd.ShardedIndex.open(built[name][0]) as ix:
        assert (ix.ntotal, ix.d, ix.num_shards) == (2400, base.shape[1], 3)
        for p in params:
            for k in (1, 10, 900):  # 900 > 800 rows per shard: shards pad with -1
                res = ix.search(queries, k, params=p, timeout=None)
                D, I = single.search(queries, k, params=p)
                assert res.missing_shards == ()
                assert _same_bits(res.I, I), (p, k)
                assert _same_bits(res.D, D), (p, k)


@needs_ray
def test_ivf_shards_are_memory_mapped(built):
    from pyfaiss_dpq.distributed.codec import open_shard

    out_dir, _ = built["ivf"]
    assert open_shard(str(out_dir / "shard-00000.index")).read_only
    assert isinstance(open_shard(str(built["dpq-l2"][0] / "shard-00000.index")), pyfaiss_dpq.IndexDPQ)  # read into memory


@needs_ray
def test_sharded_ivf_refuses_reranking(dd, built, queries):
    with dd.ShardedIndex.open(built["ivf"][0]) as ix:
        with pytest.raises(ValueError, match="re-ranking is not supported"):
            ix.search(queries, 10, params=pyfaiss_dpq.SearchParametersIVFDPQ(levels=1, rerank_levels=2, rerank_k=20))
        with pytest.raises(TypeError, match="does not apply"):
            ix.search(queries, 10, params=SearchParametersDPQ(levels=1))


@needs_ray
def test_exact_ties_across_shards_order_by_id(dd, built, templates, base):
    with dd.ShardedIndex.open(built["dpq-l2"][0]) as ix:
        res = ix.search(base[:50], 10, timeout=None)
    D, I = _single(templates["dpq-l2"], base).search(base[:50], 10)
    assert _same_bits(res.I, I) and _same_bits(res.D, D)
    ties = (res.D[:, 1:] == res.D[:, :-1])
    assert ties.sum() >= 50  # every row 0..49 has its twin 2000..2049
    assert (res.I[:, 1:][ties] > res.I[:, :-1][ties]).all()


@needs_ray
def test_search_rejects_bad_input(dd, built, queries):
    with dd.ShardedIndex.open(built["dpq-l2"][0]) as ix:
        with pytest.raises(ValueError, match="shape"):
            ix.search(queries[:, :10], 5)
        with pytest.raises(ValueError, match="k must be"):
            ix.search(queries, 0)
        with pytest.raises(ValueError, match="sel"):
            ix.search(queries, 5, params=SearchParametersDPQ(sel=faiss.IDSelectorRange(0, 10)))
        with pytest.raises(ValueError, match="levels"):
            ix.search(queries, 5, params=SearchParametersDPQ(levels=LEVELS + 1))
        with pytest.raises(ValueError, match="timeout"):
            ix.search(queries, 5, timeout=0)


# ---------------------------------------------------------------- failures
@pytest.fixture(scope="module")
def slow(dd, emb, tmp_path_factory):
    """A 2-shard index whose queries cost ~1 ms each (8 levels x 8 bits, d=384): (dir, single, queries)."""
    rng = np.random.default_rng(0)
    x = emb[:2000]
    template = pyfaiss_dpq.IndexDPQ(x.shape[1], 8, 8)
    # codebooks without training: scaled data rows (the kernel's cost is what matters here)
    template.codebooks = np.stack([x[rng.choice(len(x), 256, replace=False)] * 0.5**lv for lv in range(8)])
    folder = tmp_path_factory.mktemp("slow")
    dd.build(template, x, folder, num_shards=2, progress=False)
    big = np.ascontiguousarray(np.tile(emb[5000:6000], (4, 1)))
    return folder, _single(template, x), big


def _search_in_thread(ix, xq, k, **kw):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("res", ix.search(xq, k, **kw)))
    thread.start()
    return thread, box


@needs_ray
def test_sigkilled_shard_mid_query_still_gives_the_full_answer(dd, slow):
    folder, single, big = slow
    D, I = single.search(big, 5)
    with dd.ShardedIndex.open(folder) as ix:
        t0 = time.monotonic()
        ix.search(big, 5, timeout=None)
        took = time.monotonic() - t0
        pid = ray.get(ix.actors[1].pid.remote())
        thread, box = _search_in_thread(ix, big, 5, timeout=None)
        time.sleep(took / 3)
        os.kill(pid, signal.SIGKILL)
        thread.join(120)
        res = box["res"]
        assert res.missing_shards == ()
        assert _same_bits(res.I, I) and _same_bits(res.D, D)
        assert ray.get(ix.actors[1].pid.remote()) != pid  # restarted, file re-opened


@needs_ray
def test_shard_lost_for_good_is_flagged(dd, slow):
    folder, single, big = slow
    xq = big[:20]
    with dd.ShardedIndex.open(folder, max_restarts=0, max_task_retries=0) as ix:
        os.kill(ray.get(ix.actors[0].pid.remote()), signal.SIGKILL)
        res = ix.search(xq, 10, timeout=30)
        assert res.missing_shards == (0,)
        D, I = single.search(xq, 10, params=SearchParametersDPQ(sel=faiss.IDSelectorRange(1000, 2000)))
        assert _same_bits(res.I, I) and _same_bits(res.D, D)
        with pytest.raises(dd.ShardsUnavailableError, match=r"\[0\]"):
            ix.search(xq, 10, timeout=30, allow_partial=False)


@needs_ray
def test_delayed_shard_gives_a_flagged_partial_answer(dd, slow):
    folder, single, big = slow
    xq = big[:20]
    sel = faiss.IDSelectorRange(1000, 2000)  # shard 1's rows
    D, I = single.search(xq, 10, params=SearchParametersDPQ(sel=sel))
    with dd.ShardedIndex.open(folder) as ix:
        ray.get([a.pid.remote() for a in ix.actors])
        busy = [ix.actors[0].search.remote(big, 5, None) for _ in range(16)]  # shard 0 is behind on work
        res = ix.search(xq, 10, timeout=1.0)
        assert res.missing_shards == (0,) and not res.complete
        assert _same_bits(res.I, I) and _same_bits(res.D, D)
        ray.get(busy)
        busy = [ix.actors[0].search.remote(big, 5, None) for _ in range(16)]
        with pytest.raises(dd.ShardsUnavailableError):
            ix.search(xq, 10, timeout=1.0, allow_partial=False)
        ray.get(busy)
        full = ix.search(xq, 10, timeout=None)
        assert full.complete and _same_bits(full.I, single.search(xq, 10)[1])


# ---------------------------------------------------------------- crash and resume
_KILLED_BUILD = """
import os, signal, sys
import ray
import pyfaiss_dpq
from pyfaiss_dpq import distributed as dd
from pyfaiss_dpq.distributed import sharded_build as build_module

address, template, source, out = sys.argv[1:]
ray.init(address=address)
record, seen = build_module._record, []

def record_then_die(journal, entry):
    record(journal, entry)
    seen.append(entry)
    if len(seen) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

build_module._record = record_then_die
dd.build(pyfaiss_dpq.read_index(template), source, out, num_shards=2, slice_rows=300, progress=False)
"""


@needs_ray
def test_build_killed_halfway_resumes_to_identical_files(dd, cluster, templates, base, tmp_path):
    template = templates["dpq-l2"]
    pyfaiss_dpq.write_index(template, tmp_path / "template.index")
    np.save(tmp_path / "base.npy", base)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.run([sys.executable, "-c", _KILLED_BUILD, cluster.address_info["address"],
                           str(tmp_path / "template.index"), str(tmp_path / "base.npy"), str(killed)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len((killed / "journal.jsonl").read_text().splitlines()) == 3
    assert not (killed / "shard-00001.index").exists()

    report = dd.build(template, tmp_path / "base.npy", killed, num_shards=2, slice_rows=300, progress=False)
    assert (report.slices_reused, report.slices_encoded) == (3, 5)
    dd.build(template, tmp_path / "base.npy", clean, num_shards=2, slice_rows=300, progress=False)
    files = sorted(p.name for p in clean.iterdir())
    assert files == sorted(p.name for p in killed.iterdir())
    assert all((clean / f).read_bytes() == (killed / f).read_bytes() for f in files)


@needs_ray
def test_build_refuses_other_inputs_in_a_used_directory(dd, built, templates, sources):
    with pytest.raises(ValueError, match="different shard_bounds"):
        dd.build(templates["dpq-l2"], sources, built["dpq-l2"][0], num_shards=2, slice_rows=300, progress=False)


# ---------------------------------------------------------------- bad input
@needs_ray
def test_build_rejects_bad_input(dd, templates, base, tmp_path):
    t = templates["dpq-l2"]
    with pytest.raises(ValueError, match="not trained"):
        dd.build(pyfaiss_dpq.IndexDPQ(base.shape[1], 2, 4), base, tmp_path / "a")
    filled = _single(t, base[:10])
    with pytest.raises(ValueError, match="must be empty"):
        dd.build(filled, base, tmp_path / "b")
    with pytest.raises(ValueError, match="dimension"):
        dd.build(t, base[:, :10], tmp_path / "c")
    with pytest.raises(ValueError, match="num_shards"):
        dd.build(t, base[:5], tmp_path / "d", num_shards=6)
    with pytest.raises(TypeError, match="standalone codec"):
        hnsw = faiss.IndexHNSWFlat(base.shape[1], 8)
        dd.build(hnsw, base, tmp_path / "e")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="x.txt"):
        dd.build(t, str(tmp_path / "x.txt"), tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        dd.ShardedIndex.open(tmp_path)


# ---------------------------------------------------------------- CLI
@needs_ray
def test_cli_builds_and_searches_a_sharded_directory(cluster, base, queries, tmp_path, capsys):
    from pyfaiss_dpq.cli import main

    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "q.npy", queries)
    out = tmp_path / "sharded"
    assert main(["build", str(tmp_path / "base.npy"), "-o", str(out), "--levels", "4", "--nbits", "4",
                 "--shards", "3"]) == 0
    assert "3 shards" in capsys.readouterr().out
    ids, dists = tmp_path / "ids.npy", tmp_path / "d.npy"
    assert main(["search", str(out), str(tmp_path / "q.npy"), "-k", "7", "--levels", "2",
                 "--ids", str(ids), "--distances", str(dists)]) == 0
    single = pyfaiss_dpq.read_index(out / "template.index")
    single.add(base)
    D, I = single.search(queries, 7, params=SearchParametersDPQ(levels=2))
    assert _same_bits(np.load(ids), I) and _same_bits(np.load(dists), D)
