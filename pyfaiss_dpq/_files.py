"""Atomic file writes shared by every writer in the package."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a crash at any point leaves the old file intact.

    The bytes go to a temporary file in the same folder, are fsynced, and the
    file is renamed over `path`; the folder is fsynced so the rename persists.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
