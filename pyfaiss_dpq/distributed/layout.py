"""On-disk layout of a sharded index directory, its manifest and its build journal.

::

    out_dir/
      manifest.json        the plan (template, sources, shard and slice bounds) and, once
                           complete, the CRC-32 of every shard file
      template.index       the trained, empty template (pyfaiss_dpq.write_index)
      shard-00000.index    shard s: global rows [start_s, stop_s), local id i is global id start_s + i
      journal.jsonl        during a build: one line per finished slice or shard (with its CRC-32)
      slices/              during a build: the codes of finished slices

Shards are contiguous ranges of the global row numbering, so ids need no
storage: a shard's id offset is its first row. Every file is written
atomically; the journal is appended and fsynced by the build driver alone.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from .._files import write_atomically

__all__ = ["Plan", "Manifest", "Journal", "file_crc32", "MANIFEST", "TEMPLATE", "JOURNAL", "SLICES"]

FORMAT = "pyfaiss-dpq-sharded"
VERSION = 1
MANIFEST = "manifest.json"
TEMPLATE = "template.index"
JOURNAL = "journal.jsonl"
SLICES = "slices"


def shard_file(shard: int) -> str:
    return f"shard-{shard:05d}.index"


def slice_file(shard: int, part: int) -> str:
    return f"{SLICES}/shard-{shard:05d}-slice-{part:05d}.npy"


def file_crc32(path: str | os.PathLike) -> int:
    """CRC-32 of a file's bytes, read in chunks."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


@dataclass(frozen=True)
class Plan:
    """Everything that decides a build's output; a resumed build must have the same plan."""

    template_crc32: int
    sources: tuple
    ntotal: int
    d: int
    metric_type: int
    shard_bounds: tuple  # num_shards + 1 row numbers
    slice_rows: int

    @property
    def num_shards(self) -> int:
        return len(self.shard_bounds) - 1

    def slices(self, shard: int) -> list[tuple[int, int]]:
        """Global row ranges of the slices of one shard."""
        lo, hi = self.shard_bounds[shard], self.shard_bounds[shard + 1]
        return [(a, min(a + self.slice_rows, hi)) for a in range(lo, hi, self.slice_rows)]

    def to_json(self) -> dict:
        return {"template_crc32": self.template_crc32, "sources": list(self.sources), "ntotal": self.ntotal,
                "d": self.d, "metric_type": self.metric_type, "shard_bounds": list(self.shard_bounds),
                "slice_rows": self.slice_rows}

    @classmethod
    def from_json(cls, obj: dict) -> "Plan":
        return cls(template_crc32=int(obj["template_crc32"]), sources=tuple(obj["sources"]),
                   ntotal=int(obj["ntotal"]), d=int(obj["d"]), metric_type=int(obj["metric_type"]),
                   shard_bounds=tuple(int(b) for b in obj["shard_bounds"]), slice_rows=int(obj["slice_rows"]))


@dataclass(frozen=True)
class Manifest:
    """manifest.json: the plan, and the shard checksums once the build is complete."""

    plan: Plan
    shard_crc32: tuple | None = None  # None while the build is incomplete

    @property
    def complete(self) -> bool:
        return self.shard_crc32 is not None

    def write(self, out_dir: Path) -> None:
        body = {"format": FORMAT, "version": VERSION, "plan": self.plan.to_json(),
                "shards": None if self.shard_crc32 is None else [
                    {"file": shard_file(s), "start": self.plan.shard_bounds[s],
                     "stop": self.plan.shard_bounds[s + 1], "crc32": crc}
                    for s, crc in enumerate(self.shard_crc32)]}
        write_atomically(out_dir / MANIFEST, (json.dumps(body, indent=1) + "\n").encode())

    @classmethod
    def read(cls, out_dir: Path) -> "Manifest":
        path = out_dir / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{out_dir} is not a sharded index directory: no {MANIFEST}")
        try:
            body = json.loads(path.read_text())
            if body.get("format") != FORMAT:
                raise ValueError(f"format is {body.get('format')!r}, not {FORMAT!r}")
            if body.get("version") != VERSION:
                raise ValueError(f"version {body.get('version')} is not supported (this reads {VERSION})")
            plan = Plan.from_json(body["plan"])
            shards = body["shards"]
            crcs = None if shards is None else tuple(int(s["crc32"]) for s in shards)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable manifest: {exc}") from exc
        if crcs is not None and len(crcs) != plan.num_shards:
            raise ValueError(f"{path}: {len(crcs)} shard checksums for {plan.num_shards} shards")
        return cls(plan, crcs)


class Journal:
    """Append-only record of finished slices and shards, fsynced line by line.

    A torn last line (a crash mid-append) is ignored on reading.
    """

    def __init__(self, out_dir: Path):
        self.path = out_dir / JOURNAL

    def read(self) -> tuple[dict, dict]:
        """(slices, shards): {(shard, part): crc32} and {shard: crc32} of finished work."""
        slices, shards = {}, {}
        if not self.path.is_file():
            return slices, shards
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
                if rec["kind"] == "slice":
                    slices[(int(rec["shard"]), int(rec["part"]))] = int(rec["crc32"])
                elif rec["kind"] == "shard":
                    shards[int(rec["shard"])] = int(rec["crc32"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash
        return slices, shards

    def append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
