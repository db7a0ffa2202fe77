"""Index files get the permissions every other tool gives: the umask's, or the replaced file's."""

import os
import stat

import faiss
import numpy as np
import pytest

import pyfaiss_dpq
from pyfaiss_dpq._files import write_atomically


@pytest.fixture
def umask():
    """Set the process umask for one test; restored afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_new_index_file_has_the_same_mode_as_faiss_gives(make_index, tmp_path, umask, mask):
    umask(mask)
    flat = faiss.IndexFlatL2(24)
    faiss.write_index(flat, str(tmp_path / "flat.index"))  # Faiss's own writer: the reference
    pyfaiss_dpq.write_index(make_index(), tmp_path / "dpq.index")
    faiss.write_index(make_index(), str(tmp_path / "hooked.index"))
    assert mode(tmp_path / "dpq.index") == mode(tmp_path / "flat.index") == 0o666 & ~mask
    assert mode(tmp_path / "hooked.index") == 0o666 & ~mask


@pytest.mark.parametrize("existing", [0o640, 0o600, 0o644, 0o660])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, existing):
    umask(0o022)
    path = tmp_path / "index.dpq"
    path.write_bytes(b"old")
    os.chmod(path, existing)
    inode = os.stat(path).st_ino
    write_atomically(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert mode(path) == existing
    assert os.stat(path).st_ino != inode  # replaced by rename, not rewritten in place
    assert os.listdir(tmp_path) == ["index.dpq"]


def test_replacing_an_index_keeps_its_mode_and_reads_back(make_index, data, tmp_path, umask):
    umask(0o077)
    path = tmp_path / "index.dpq"
    pyfaiss_dpq.write_index(make_index(fill=False), path)
    os.chmod(path, 0o644)
    index = make_index()
    pyfaiss_dpq.write_index(index, path)
    assert mode(path) == 0o644
    back = pyfaiss_dpq.read_index(path)
    np.testing.assert_array_equal(back.search(data[2], 5)[1], index.search(data[2], 5)[1])


def test_failed_write_leaves_no_temporary_and_the_old_file(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "index.dpq"
    path.write_bytes(b"old")

    with pytest.raises(TypeError):
        write_atomically(path, object())  # f.write raises after the temporary exists
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["index.dpq"]
