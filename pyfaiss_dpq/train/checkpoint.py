"""Model checkpoints: one torch file holding a plain config dict and a state dict."""

from __future__ import annotations

import os
import tempfile

import torch

FORMAT = "pyfaiss-dpq-model"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, config: dict, state: dict) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dpq-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, "config": config, "state_dict": state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """(config, state_dict) of a checkpoint; ValueError if the file is not one."""
    try:
        payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a readable pyfaiss-dpq model checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a pyfaiss-dpq model checkpoint")
    if payload.get("version") != VERSION:
        raise ValueError(f"checkpoint version {payload.get('version')} is not supported (expected {VERSION})")
    return payload["config"], payload["state_dict"]
