"""Model checkpoints: one torch file holding a plain config dict and a state dict."""

from __future__ import annotations

import io
import os

import torch

from .._files import write_atomically

FORMAT = "pyfaiss-dpq-model"
VERSION = 2  # 2: codebooks stored as unit_codebooks x per-level scale


def save_checkpoint(path: str | os.PathLike, config: dict, state: dict) -> None:
    """Write atomically (temporary file, fsync, rename): a crash never leaves a torn checkpoint."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "config": config, "state_dict": state}, buf)
    write_atomically(path, buf.getvalue())


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
    version = payload.get("version")
    if version not in (1, VERSION):
        raise ValueError(f"checkpoint version {version} is not supported (expected 1 or {VERSION})")
    state = payload["state_dict"]
    if version == 1:  # plain codebooks: unit scale
        codebooks = state.pop("quantizer.codebooks")
        state["quantizer.unit_codebooks"] = codebooks
        state["quantizer.scale"] = torch.ones(codebooks.shape[0], 1, 1)
    return payload["config"], state
