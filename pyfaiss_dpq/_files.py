"""Atomic file writes shared by every writer in the package."""

from __future__ import annotations

import os
import secrets
import stat


def _create_temporary(directory: str) -> tuple[int, str]:
    """Open a new, uniquely named file in `directory` for writing.

    Unlike ``tempfile.mkstemp`` (always 0600) the file is created with mode
    0666 less the process umask, as ``open()`` and ``faiss.write_index`` do.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a crash at any point leaves the old file intact.

    The bytes go to a temporary file in the same folder, are fsynced, and the
    file is renamed over `path`; the folder is fsynced so the rename persists.
    A new file gets the umask's permissions; a replaced file keeps its mode.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        keep_mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        keep_mode = None
    fd, tmp = _create_temporary(directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if keep_mode is not None:
                os.fchmod(f.fileno(), keep_mode)
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
