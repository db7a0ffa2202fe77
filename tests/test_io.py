"""Persistence: round trips, Faiss I/O hooks, corrupt data and atomic writes."""

import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import zlib

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyfaiss_dpq
from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq import persist as dpq_io


def same_search(a, b, xq, levels=None):
    params = SearchParametersDPQ(levels=levels) if levels else None
    Da, Ia = a.search(xq, 10, params=params)
    Db, Ib = b.search(xq, 10, params=params)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_round_trip_keeps_everything(make_index, data, tmp_path, nbits, metric):
    index = make_index(nbits, metric)
    index.search_levels = 4
    index.beam_size = 3
    path = tmp_path / "a.dpq"
    pyfaiss_dpq.write_index(index, path)
    back = pyfaiss_dpq.read_index(path)
    assert isinstance(back, pyfaiss_dpq.IndexDPQ)
    assert (back.levels, back.nbits, back.metric_type, back.search_levels, back.beam_size) == (
        6, nbits, metric, 4, 3)
    np.testing.assert_array_equal(back.codebooks, index.codebooks)
    np.testing.assert_array_equal(back.get_codes(), index.get_codes())
    same_search(index, back, data[2])
    same_search(index, back, data[2], levels=2)


def test_untrained_and_empty_indexes_round_trip(tmp_path):
    index = pyfaiss_dpq.IndexDPQ(8, 3, 4)
    back = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))
    assert not back.is_trained and back.ntotal == 0 and back.d == 8


def test_faiss_functions_handle_wrappers(make_index, data, tmp_path):
    idmap = faiss.IndexIDMap2(make_index(fill=False))
    idmap.add_with_ids(data[1], np.arange(1500, dtype=np.int64) * 3)
    rot = faiss.RandomRotationMatrix(24, 24)
    rot.init(3)
    pre = faiss.IndexPreTransform(rot, make_index(fill=False))
    pre.add(data[1])
    refine = faiss.IndexRefineFlat(make_index(fill=False))
    refine.add(data[1])
    shards = faiss.IndexShards(24, False, True)
    for chunk in np.array_split(data[1], 2):
        part = make_index(fill=False)
        part.add(chunk)
        shards.add_shard(part)
    for i, index in enumerate([idmap, pre, refine, shards]):
        path = str(tmp_path / f"w{i}.index")
        faiss.write_index(index, path)
        back = faiss.read_index(path)
        assert type(back) is type(index)
        same_search(index, back, data[2])
        same_search(index, faiss.deserialize_index(faiss.serialize_index(index)), data[2])
    assert faiss.downcast_index(faiss.read_index(str(tmp_path / "w0.index"))).id_map.size() == 1500


def test_hooks_leave_plain_faiss_indexes_alone(tmp_path, data):
    flat = faiss.IndexFlatL2(24)
    flat.add(data[1])
    path = str(tmp_path / "flat.index")
    faiss.write_index(flat, path)
    with open(path, "rb") as f:
        assert not pyfaiss_dpq.persist.is_dpq_data(f.read(8))
    assert faiss.read_index(path).ntotal == 1500


def test_hooks_can_be_turned_off(make_index, tmp_path):
    pyfaiss_dpq.uninstall_faiss_io_hooks()
    try:
        with pytest.raises(RuntimeError):
            faiss.write_index(make_index(), str(tmp_path / "x"))
    finally:
        pyfaiss_dpq.install_faiss_io_hooks()
    faiss.write_index(make_index(), str(tmp_path / "x"))


def test_pickle(make_index, data):
    index = make_index(4, faiss.METRIC_INNER_PRODUCT)
    back = pickle.loads(pickle.dumps(index))
    assert isinstance(back, pyfaiss_dpq.IndexDPQ)
    same_search(index, back, data[2])
    idmap = faiss.IndexIDMap2(make_index(fill=False))
    idmap.add_with_ids(data[1][:100], np.arange(100, dtype=np.int64) + 7)
    same_search(idmap, pickle.loads(pickle.dumps(idmap)), data[2])


# ---------------------------------------------------------------- corrupt data

@pytest.fixture
def blob(make_index):
    return pyfaiss_dpq.serialize(make_index(4, levels=6))


def test_wrong_magic(blob):
    with pytest.raises(pyfaiss_dpq.WrongMagicError):
        pyfaiss_dpq.deserialize(b"NOTDPQ!!" + blob[8:])


def test_truncated(blob):
    for cut in (4, 20, len(blob) // 2, len(blob) - 1):
        with pytest.raises(pyfaiss_dpq.TruncatedFileError if cut >= 8 else pyfaiss_dpq.WrongMagicError):
            pyfaiss_dpq.deserialize(blob[:cut])


def test_future_version(blob):
    data = bytearray(blob)
    struct.pack_into("<I", data, 8, 99)
    with pytest.raises(pyfaiss_dpq.UnsupportedVersionError, match="99"):
        pyfaiss_dpq.deserialize(bytes(data))


def test_bit_flip_is_a_checksum_error(blob):
    data = bytearray(blob)
    data[len(data) // 2] ^= 0x10
    with pytest.raises(pyfaiss_dpq.ChecksumError):
        pyfaiss_dpq.deserialize(bytes(data))


def test_wrong_checksum(blob):
    data = bytearray(blob)
    struct.pack_into("<I", data, 20, (struct.unpack_from("<I", data, 20)[0] + 1) & 0xFFFFFFFF)
    with pytest.raises(pyfaiss_dpq.ChecksumError):
        pyfaiss_dpq.deserialize(bytes(data))


def reseal(payload: bytes) -> bytes:
    """A payload wrapped in a valid envelope: gets past the checksum to the parsers."""
    return struct.pack("<8sIQI", b"PFDPQIDX", 1, len(payload), zlib.crc32(payload)) + payload


def test_huge_declared_sizes_do_not_allocate(blob):
    # A body that claims 2**40 vectors must be refused before any allocation.
    payload = bytearray(blob[24:])
    hlen = struct.unpack_from("<I", payload)[0]
    body_start = 4 + hlen
    ntotal_pos = len(payload) - (1500 * 3) - 8
    struct.pack_into("<q", payload, ntotal_pos, 2**40)
    assert body_start < ntotal_pos
    with pytest.raises(pyfaiss_dpq.CorruptIndexError):
        pyfaiss_dpq.deserialize(reseal(bytes(payload)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_mutated_payloads_raise_cleanly(blob, fuzz):
    """Mutations behind a valid checksum reach the JSON and C++ parsers: they
    must load or raise IndexFileError, never crash or hang."""
    payload = bytearray(blob[24:])
    for _ in range(fuzz.draw(st.integers(1, 8))):
        op = fuzz.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = fuzz.draw(st.integers(0, max(len(payload) - 1, 0)))
        if op == "flip" and payload:
            payload[pos] ^= 1 << fuzz.draw(st.integers(0, 7))
        elif op == "cut":
            del payload[pos:pos + fuzz.draw(st.integers(1, 64))]
        else:
            payload[pos:pos] = fuzz.draw(st.binary(min_size=1, max_size=16))
    try:
        index = pyfaiss_dpq.deserialize(reseal(bytes(payload)))
    except pyfaiss_dpq.IndexFileError:
        return
    assert isinstance(index, faiss.Index)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_arbitrary_bytes(data):
    with pytest.raises(pyfaiss_dpq.IndexFileError):
        pyfaiss_dpq.deserialize(b"PFDPQIDX" + data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_cpp_body_parser(body):
    from pyfaiss_dpq._native import core
    try:
        core.deserialize(body)
    except ValueError:
        pass


# ---------------------------------------------------------------- atomic writes

def test_killed_writer_leaves_old_file_intact(make_index, tmp_path):
    path = tmp_path / "index.dpq"
    old = make_index()
    pyfaiss_dpq.write_index(old, path)
    before = path.read_bytes()
    # A child process starts overwriting the file with a large index and is
    # killed while it writes (it stops itself inside the write).
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, faiss, pyfaiss_dpq
        from pyfaiss_dpq import persist
        index = pyfaiss_dpq.IndexDPQ(32, 8, 8, faiss.METRIC_INNER_PRODUCT)
        index.codebooks = np.random.default_rng(0).standard_normal((8, 256, 32)).astype('float32')
        index.add_codes(np.random.default_rng(1).integers(0, 256, (400_000, 8)))
        real_fsync = os.fsync
        def die(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        os.fsync = die
        persist.write_index(index, {str(path)!r})
    """)
    # cwd: never the repository root, whose source tree would shadow the install.
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    same_search(old, pyfaiss_dpq.read_index(path), np.zeros((1, 24), np.float32))
    leftovers = [p for p in os.listdir(tmp_path) if p != "index.dpq"]
    assert all(p.startswith(".tmp-") for p in leftovers)


# ---------------------------------------------------------------- format versions and norm storage

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_one_format_version_number():
    from pyfaiss_dpq._native import core

    assert dpq_io.FORMAT_VERSION == core.FORMAT_VERSION == 5
    assert core.OLDEST_FORMAT_VERSION == 1


@pytest.mark.parametrize("name, norms", [("l2_4bit", "float32"), ("ip_8bit", "none")])
def test_files_written_by_0_1_0_still_read(name, norms):
    """Files written by pyfaiss-dpq 0.1.0 (format 1) search as they did then."""
    expected = np.load(os.path.join(FIXTURES, "v0.1.0_expected.npz"))
    path = os.path.join(FIXTURES, f"v0.1.0_{name}.dpq")
    with open(path, "rb") as f:
        assert struct.unpack_from("<I", f.read(12), 8)[0] == 1
    index = pyfaiss_dpq.read_index(path)
    assert index.norms == norms
    np.testing.assert_array_equal(index.get_codes(), expected[f"{name}_codes"])
    D, I = index.search(expected[f"{name}_queries"], 5)
    np.testing.assert_array_equal(I, expected[f"{name}_I"])
    # The same distances up to float32 rounding: the lookup-table kernel has
    # summed in another order since (codebooks transposed in panels).
    np.testing.assert_allclose(D, expected[f"{name}_D"], rtol=1e-5)
    # Written again, it is a current-version file that reads back the same.
    back = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))
    same_search(index, back, expected[f"{name}_queries"])


def test_files_written_in_format_2_still_read():
    """Format 2 (before the cosine flag): an inner-product index reads as plain inner product."""
    expected = np.load(os.path.join(FIXTURES, "v2_expected.npz"))
    path = os.path.join(FIXTURES, "v2_ip_4bit.dpq")
    with open(path, "rb") as f:
        assert struct.unpack_from("<I", f.read(12), 8)[0] == 2
    index = pyfaiss_dpq.read_index(path)
    assert (index.metric_type, index.cosine, index.norms) == (faiss.METRIC_INNER_PRODUCT, False, "none")
    np.testing.assert_array_equal(index.get_codes(), expected["ip_4bit_codes"])
    D, I = index.search(expected["ip_4bit_queries"], 5)
    np.testing.assert_array_equal(I, expected["ip_4bit_I"])
    np.testing.assert_array_equal(D, expected["ip_4bit_D"])


@pytest.mark.parametrize("mmap", [False, True])
def test_ivf_files_written_in_format_2_still_read(mmap):
    """An IndexIVFDPQ file of format 2 (written by commit a888500) searches as it did then."""
    expected = np.load(os.path.join(FIXTURES, "v2_ivf_expected.npz"))
    path = os.path.join(FIXTURES, "v2_ivf_l2_4bit.dpq")
    with open(path, "rb") as f:
        assert struct.unpack_from("<I", f.read(12), 8)[0] == 2
    index = pyfaiss_dpq.read_index(path, mmap=mmap)
    assert (index.metric_type, index.cosine, index.nlist) == (faiss.METRIC_L2, False, 4)
    np.testing.assert_array_equal(np.concatenate([index.list_ids(l) for l in range(4)]), expected["ids"])
    np.testing.assert_array_equal(np.concatenate([index.list_codes(l) for l in range(4)]), expected["codes"])
    D, I = index.search(expected["queries"], 5, params=pyfaiss_dpq.SearchParametersIVFDPQ(nprobe=2))
    np.testing.assert_array_equal(I, expected["I"])
    np.testing.assert_array_equal(D, expected["D"])
    assert not index.relative_norms  # its norms are ||c + r_m||^2


def test_ivf_format_2_norms_stay_what_they_were(tmp_path):
    """A format-2 IndexIVFDPQ (norms ||c + r_m||^2) keeps them through a re-write, and does not merge with
    an index of relative norms."""
    expected = np.load(os.path.join(FIXTURES, "v2_ivf_expected.npz"))
    index = pyfaiss_dpq.read_index(os.path.join(FIXTURES, "v2_ivf_l2_4bit.dpq"))
    path = str(tmp_path / "again.dpq")
    pyfaiss_dpq.write_index(index, path)
    back = pyfaiss_dpq.read_index(path, mmap=True)
    assert not back.relative_norms
    D, I = back.search(expected["queries"], 5, params=pyfaiss_dpq.SearchParametersIVFDPQ(nprobe=2))
    np.testing.assert_array_equal(I, expected["I"])
    np.testing.assert_array_equal(D, expected["D"])
    quantizer = faiss.IndexFlatL2(index.d)
    quantizer.add(index.centroids)
    fresh = pyfaiss_dpq.IndexIVFDPQ(quantizer, index.d, index.nlist, index.levels, index.nbits)
    fresh.codebooks = index.codebooks
    fresh.relative_norms = True
    fresh.train(index.centroids)
    with pytest.raises(ValueError, match="relative"):
        fresh.merge_from(index)


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("norms, prefixes", [("none", None), ("8bit", None), ("4bit", [2, 6]), ("float32", [3])])
def test_round_trip_keeps_norm_storage(trained, data, nbits, norms, prefixes):
    index = pyfaiss_dpq.IndexDPQ(24, 6, nbits, faiss.METRIC_L2, norms=norms, norm_prefixes=prefixes)
    index.codebooks = trained(nbits)
    index.add(data[1])
    back = pyfaiss_dpq.deserialize(pyfaiss_dpq.serialize(index))
    assert (back.norms, back.norm_prefixes, back.bytes_per_vector) == (
        index.norms, index.norm_prefixes, index.bytes_per_vector)
    np.testing.assert_array_equal(back.norm_centroids, index.norm_centroids)
    for m in (2, 3, 6):
        same_search(index, back, data[2], levels=m)
