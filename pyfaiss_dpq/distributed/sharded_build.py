"""Sharded build on Ray: slices encoded by parallel tasks, shards assembled from their slices.

The database (all sources, in order) is cut into ``num_shards`` contiguous
row ranges and each range into slices of at most ``slice_rows`` rows.

1. A *slice task* reads its rows, encodes them with a copy of the template
   (``sa_encode``) and writes the codes to ``slices/`` atomically.
2. When every slice of a shard is done, a *shard task* appends the slices'
   codes to a fresh copy of the template and writes the shard file atomically.

Both tasks are idempotent: they write deterministic content to a fixed path,
so a retried or repeated task leaves the same file. The driver alone records
finished work in the journal (with each file's CRC-32); a build started again
on the same directory re-verifies what the journal lists and does only the
rest. Codes are appended exactly as ``add`` appends them (checked on the
template before anything runs), so shard s is byte for byte the index that
``add`` of rows [start_s, stop_s) gives — the split of one index over all rows.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import ray

import pyfaiss_dpq

from .._files import write_atomically
from .._validate import as_count
from ..persist import file_bytes
from . import layout
from .cluster import ensure_ray
from .codec import append_codes, check_template, clone_empty, encode
from .layout import Journal, Manifest, Plan, file_crc32
from .sources import VectorSource, as_sources, read_rows

__all__ = ["build", "BuildReport"]

DEFAULT_SLICE_ROWS = 65536


@dataclass(frozen=True)
class BuildReport:
    """What a :func:`build` call did.

    Attributes
    ----------
    out_dir : pathlib.Path
    ntotal, num_shards : int
    slices_encoded : int
        Slices encoded by this call.
    slices_reused : int
        Slices found finished (journal and checksum) from an earlier, interrupted call.
    shards_written, shards_reused : int
        The same for shard files.
    encode_cpu_s : float
        CPU seconds the slice tasks of this call spent (reading and encoding):
        vectors per CPU second is the build's speed per core, whatever else
        the machines run.
    """

    out_dir: Path
    ntotal: int
    num_shards: int
    slices_encoded: int
    slices_reused: int
    shards_written: int
    shards_reused: int
    encode_cpu_s: float


# ---------------------------------------------------------------- Ray tasks
def _resolve(sources: list[VectorSource]) -> list[VectorSource]:
    """Array sources travel as object refs (one copy in the object store); fetch them zero-copy."""
    return [dataclasses.replace(s, array=ray.get(s.array)) if isinstance(s.array, ray.ObjectRef) else s
            for s in sources]


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@ray.remote(max_retries=3)
def _encode_slice(template_bytes: bytes, sources: list, start: int, stop: int, path: str,
                  threads: int) -> tuple[int, float]:
    """Encode global rows [start, stop) into the codes file `path`; returns (its CRC-32, CPU seconds)."""
    cpu = time.process_time()
    faiss.omp_set_num_threads(threads)
    index = clone_empty(template_bytes)
    data = _npy_bytes(encode(index, read_rows(_resolve(sources), start, stop)))
    write_atomically(path, data)
    return zlib.crc32(data), time.process_time() - cpu


@ray.remote(max_retries=3)
def _assemble_shard(template_bytes: bytes, slices: list[tuple[str, int]], path: str, threads: int) -> int:
    """Append the codes of `slices` (path, CRC-32) to a copy of the template; write the shard file."""
    faiss.omp_set_num_threads(threads)
    index = clone_empty(template_bytes)
    for slice_path, crc in slices:
        raw = Path(slice_path).read_bytes()
        if zlib.crc32(raw) != crc:
            raise ValueError(f"{slice_path}: checksum mismatch, the slice file is corrupt")
        append_codes(index, np.load(io.BytesIO(raw), allow_pickle=False))
    data = file_bytes(index)  # as write_index writes it: an IndexIVFDPQ shard can be memory-mapped
    write_atomically(path, data)
    return zlib.crc32(data)


# ---------------------------------------------------------------- driver
def _make_plan(template_bytes: bytes, template, sources: list[VectorSource], num_shards: int,
               slice_rows: int) -> Plan:
    ntotal = sum(s.rows for s in sources)
    if num_shards > ntotal:
        raise ValueError(f"num_shards={num_shards} exceeds the number of vectors ({ntotal})")
    bounds = tuple(s * ntotal // num_shards for s in range(num_shards + 1))
    return Plan(template_crc32=zlib.crc32(template_bytes), sources=tuple(s.fingerprint for s in sources),
                ntotal=ntotal, d=template.d, metric_type=int(template.metric_type), shard_bounds=bounds,
                slice_rows=slice_rows)


def _start_or_resume(out_dir: Path, plan: Plan, template_bytes: bytes) -> None:
    if (out_dir / layout.MANIFEST).exists():
        old = Manifest.read(out_dir).plan
        if old != plan:
            diff = [k for k, v in plan.to_json().items() if old.to_json()[k] != v]
            raise ValueError(f"{out_dir} holds a build with a different {', '.join(diff)}; "
                             "use a new directory (or delete this one) to build these inputs")
    else:
        write_atomically(out_dir / layout.TEMPLATE, template_bytes)
        Manifest(plan).write(out_dir)
    if file_crc32(out_dir / layout.TEMPLATE) != plan.template_crc32:
        write_atomically(out_dir / layout.TEMPLATE, template_bytes)
    for stray in out_dir.glob(".tmp-*"):  # writes cut short by a crash
        stray.unlink()
    for stray in (out_dir / layout.SLICES).glob(".tmp-*"):
        stray.unlink()


def _verified(path: Path, crc: int | None) -> bool:
    return crc is not None and path.is_file() and file_crc32(path) == crc


def build(template, sources: Any, out_dir: str | os.PathLike, num_shards: int = 1, *,
          slice_rows: int = DEFAULT_SLICE_ROWS, max_workers: int | None = None, threads_per_task: int = 1,
          progress: bool = True, address: str | None = None) -> BuildReport:
    """Encode `sources` with `template` on Ray into `num_shards` shard files under `out_dir`.

    Parameters
    ----------
    template : faiss.Index
        A trained, empty index: an ``IndexDPQ``, an ``IndexPreTransform``
        around one, or any Faiss index with a standalone codec that
        :func:`pyfaiss_dpq.write_index` saves.
    sources : path, array, or a list of them
        ``.npy`` / ``.fvecs`` / ``.bvecs`` files or (n, d) arrays; their rows,
        in order, are the database and a vector's id is its row number. On a
        cluster, file paths must be readable from every node.
    out_dir : str or os.PathLike
        Created if missing. A directory holding an interrupted build of the
        same inputs is resumed; one holding other inputs is refused.
    num_shards : int
        Shards: contiguous row ranges of (almost) equal size.
    slice_rows : int
        Rows per encoding task: the unit of parallelism and of resumption.
    max_workers : int, optional
        Tasks in flight at once (default: the cluster's CPUs / threads_per_task).
    threads_per_task : int
        Faiss threads (and Ray CPUs) per task.
    progress : bool
        Show a tqdm progress bar (vectors encoded).
    address : str, optional
        Ray cluster to join when Ray is not initialized yet (``"auto"``: the
        running cluster); default starts a local Ray.

    Returns
    -------
    BuildReport

    Notes
    -----
    Shard s holds global rows [s * n // num_shards, (s + 1) * n // num_shards)
    and is byte for byte the index ``add`` of those rows gives. The build is
    resumable and its tasks idempotent, but two builds must not write to one
    directory at the same time.
    """
    num_shards = as_count(num_shards, "num_shards", 1)
    slice_rows = as_count(slice_rows, "slice_rows", 1)
    threads_per_task = as_count(threads_per_task, "threads_per_task", 1)
    srcs = as_sources(sources)
    if srcs[0].d != template.d:
        raise ValueError(f"sources have dimension {srcs[0].d} but the template takes {template.d}")
    template_bytes = check_template(template, read_rows(srcs, 0, min(16, sum(s.rows for s in srcs))))
    plan = _make_plan(template_bytes, template, srcs, num_shards, slice_rows)
    out = Path(out_dir).resolve()
    (out / layout.SLICES).mkdir(parents=True, exist_ok=True)
    _start_or_resume(out, plan, template_bytes)
    ensure_ray(address)
    if max_workers is None:
        max_workers = max(1, int(ray.cluster_resources().get("CPU", 1) // threads_per_task))
    max_workers = as_count(max_workers, "max_workers", 1)

    journal = Journal(out)
    slice_crc, shard_crc = journal.read()
    finished = Manifest.read(out).shard_crc32  # a complete earlier build
    shard_crc.update(enumerate(finished or ()))
    done_shards = {s: c for s, c in shard_crc.items() if _verified(out / layout.shard_file(s), c)}
    done_slices = {key: c for key, c in slice_crc.items()
                   if key[0] not in done_shards and _verified(out / layout.slice_file(*key), c)}
    counts = {"encoded": 0, "written": 0, "cpu_s": 0.0}
    todo = [(s, p, a, b) for s in range(num_shards) if s not in done_shards
            for p, (a, b) in enumerate(plan.slices(s)) if (s, p) not in done_slices]

    template_ref = ray.put(template_bytes)
    sources_ref = [dataclasses.replace(s, array=ray.put(s.array)) if s.array is not None else s for s in srcs]
    task_opts = {"num_cpus": threads_per_task}
    pending: dict = {}  # ObjectRef -> ("slice", shard, part, rows) | ("shard", shard)

    def submit_shard(s: int) -> None:
        parts = [(str(out / layout.slice_file(s, p)), done_slices[(s, p)]) for p in range(len(plan.slices(s)))]
        ref = _assemble_shard.options(**task_opts).remote(template_ref, parts, str(out / layout.shard_file(s)),
                                                           threads_per_task)
        pending[ref] = ("shard", s)

    bar = _progress_bar(plan.ntotal, progress)
    bar.update(sum(plan.shard_bounds[s + 1] - plan.shard_bounds[s] for s in done_shards)
               + sum(b - a for s, p in done_slices for a, b in [plan.slices(s)[p]]))
    try:
        for s in range(num_shards):
            if s not in done_shards and all((s, p) in done_slices for p in range(len(plan.slices(s)))):
                submit_shard(s)
        queue = iter(todo)
        while True:
            while len(pending) < max_workers and (job := next(queue, None)) is not None:
                s, p, a, b = job
                ref = _encode_slice.options(**task_opts).remote(
                    template_ref, sources_ref, a, b, str(out / layout.slice_file(s, p)), threads_per_task)
                pending[ref] = ("slice", s, p, b - a)
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            result = ray.get(ready[0])
            if job[0] == "slice":
                _, s, p, rows = job
                crc, cpu_s = result
                counts["cpu_s"] += cpu_s
                _record(journal, {"kind": "slice", "shard": s, "part": p, "crc32": crc})
                done_slices[(s, p)] = crc
                counts["encoded"] += 1
                bar.update(rows)
                if all((s, q) in done_slices for q in range(len(plan.slices(s)))):
                    submit_shard(s)
            else:
                s, crc = job[1], result
                _record(journal, {"kind": "shard", "shard": s, "crc32": crc})
                done_shards[s] = crc
                counts["written"] += 1
                for q in range(len(plan.slices(s))):
                    (out / layout.slice_file(s, q)).unlink(missing_ok=True)
    except BaseException:
        for ref in pending:  # finished slices stay journaled; a new call resumes from them
            ray.cancel(ref)
        raise
    finally:
        bar.close()
    Manifest(plan, tuple(done_shards[s] for s in range(num_shards))).write(out)
    journal.remove()
    shutil.rmtree(out / layout.SLICES)
    reused_slices = sum(len(plan.slices(s)) for s in range(num_shards)) - counts["encoded"]
    return BuildReport(out, plan.ntotal, num_shards, counts["encoded"], reused_slices, counts["written"],
                       num_shards - counts["written"], counts["cpu_s"])


def _record(journal: Journal, record: dict) -> None:
    """Journal one finished slice or shard (a seam the crash tests cut at)."""
    journal.append(record)


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="vec", unit_scale=True, desc="dpq build", disable=not enabled)
