"""Guarantees for long-running services: ABI guard, threads, leaks, 64-bit sizes."""

import resource
import subprocess
import sys
import textwrap
import threading

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ
from pyfaiss_dpq._native import core


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    # cwd: never the repository root, whose source tree would shadow the install.
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd)


# ---------------------------------------------------------------- ABI guard

def test_other_faiss_version_is_a_clean_import_error(tmp_path):
    proc = run_python("""
        import faiss
        faiss.__version__ = "1.16.0"
        try:
            import pyfaiss_dpq
        except ImportError as e:
            print("IMPORT-ERROR", e)
    """, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORT-ERROR" in proc.stdout and "faiss-cpu 1.14 and 1.15" in proc.stdout and "1.16.0" in proc.stdout


def test_abi_mismatch_found_by_the_check_is_a_clean_import_error(monkeypatch):
    # Stands in for a Faiss whose faiss::Index layout moved: the check reports
    # it and loading fails with the supported version named.
    from pyfaiss_dpq import _core, _native

    monkeypatch.setattr(_core, "abi_check", lambda *args: "search is not at slot 9; ")
    with pytest.raises(ImportError, match=r"faiss-cpu>=1\.14\.2,<1\.16.*slot 9"):
        _native._load()


def test_abi_check_reads_the_live_object_and_notices_wrong_values():
    live = faiss.IndexFlat(13, faiss.METRIC_L2)
    live.add(np.zeros((5, 13), np.float32))
    assert core.abi_check(live, 13, 5, False, True, faiss.METRIC_L2, 0.0) == ""
    problems = core.abi_check(live, 14, 6, True, True, faiss.METRIC_INNER_PRODUCT, 1.0)
    for field in ("d reads 13", "ntotal reads 5", "verbose", "metric_type", "metric_arg"):
        assert field in problems


# ---------------------------------------------------------------- threads

def test_faiss_thread_setting_governs_our_threads():
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        assert core.omp_max_threads() == 1
        faiss.omp_set_num_threads(3)
        assert core.omp_max_threads() == 3
    finally:
        faiss.omp_set_num_threads(before)


def test_concurrent_searches_equal_serial(make_index, data):
    index = make_index()
    queries = [np.ascontiguousarray(data[1][i::8][:40]) for i in range(8)]
    params = [SearchParametersDPQ(levels=1 + i % 6) for i in range(8)]
    serial = [index.search(q, 10, params=p) for q, p in zip(queries, params)]
    results = [None] * 8

    def work(i):
        for _ in range(5):
            results[i] = index.search(queries[i], 10, params=params[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (D, I), (Ds, Is) in zip(results, serial):
        np.testing.assert_array_equal(I, Is)
        np.testing.assert_array_equal(D, Ds)


def test_add_and_remove_concurrent_with_search_are_safe(make_index, data):
    """Writers take an exclusive lock, searches a shared one: every search sees
    a consistent index (ids valid for some state), nothing crashes."""
    index = make_index(fill=False)
    index.add(data[1][:500])
    errors = []
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            D, I = index.search(data[2], 5)
            if not ((I >= 0) & (I < 1500)).all():
                errors.append(I)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(500, 1500, 100):
        index.add(data[1][start:start + 100])
        index.remove_ids(faiss.IDSelectorRange(0, 10))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert index.ntotal == 1500 - 100


def test_search_releases_the_gil(make_index, data):
    """A search running in C++ lets another Python thread run meanwhile."""
    index = make_index()
    xq = np.repeat(data[1], 4, axis=0)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    index.search(xq, 10)
    done.set()
    t.join()
    assert len(ticks) > 3


# ---------------------------------------------------------------- memory

def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


@pytest.mark.rss
def test_no_leak_over_10000_build_search_destroy_cycles():
    rng = np.random.default_rng(0)
    codebooks = rng.standard_normal((3, 16, 8)).astype(np.float32)
    xb = rng.standard_normal((40, 8)).astype(np.float32)

    def cycle():
        index = IndexDPQ(8, 3, 4)
        index.codebooks = codebooks
        wrapped = faiss.IndexIDMap2(index)
        wrapped.add_with_ids(xb, np.arange(40, dtype=np.int64))
        wrapped.search(xb[:2], 3, params=SearchParametersDPQ(levels=2))
        pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))
        del wrapped, index

    for _ in range(500):
        cycle()
    before = rss_kib()
    for _ in range(10_000):
        cycle()
    growth = rss_kib() - before
    # A leak of even one small allocation per cycle would exceed this.
    assert growth < 8 * 1024, f"RSS grew by {growth} KiB over 10,000 cycles"


# ---------------------------------------------------------------- 64-bit sizes

@pytest.mark.parametrize("i", [2**31 - 1, 2**31 + 7, 2**32 + 33, 2**40 + 5])
@pytest.mark.parametrize("levels, nbits", [(8, 8), (64, 4), (255, 8)])
def test_storage_offsets_use_64_bit_arithmetic(i, levels, nbits):
    assert core.layout_offsets(i, levels, nbits) == (i // 32) * 32 * levels * nbits // 8


def test_file_claiming_2_to_the_40_vectors_is_refused_without_allocating(make_index):
    body = core.serialize(make_index(fill=False))
    huge = body[:-8] + (2**40).to_bytes(8, "little")
    with pytest.raises(ValueError, match="ntotal"):
        core.deserialize(huge)
