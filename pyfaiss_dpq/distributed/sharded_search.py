"""Sharded search on Ray: one actor per shard file, fan-out, exact merge, partial answers.

Each :class:`ShardActor` opens its shard file (through ``codec.open_shard``)
and answers with global ids (local id + the shard's first row). Actors are
created with ``max_restarts`` and called with ``max_task_retries``: an actor
process that dies is restarted by Ray, re-opens its file, and the call in
flight is retried, so one crash costs latency, not the answer.

A search with progressive re-ranking (``rerank_levels`` > ``levels``) runs in
two rounds so it equals one index: the shards' short-prefix candidates are
merged into the global ``rerank_k`` best, and only those are re-scored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import faiss
import numpy as np
import ray

from .._validate import as_count, as_vectors
from ..index import SearchParametersDPQ
from ..ivf import IndexIVFDPQ, SearchParametersIVFDPQ
from . import layout
from .cluster import ensure_ray
from .codec import clone_empty, inner_dpq, open_shard, split_transforms
from .layout import Manifest
from .merge import empty_result, merge_topk

__all__ = ["ShardedIndex", "SearchResult", "ShardsUnavailableError", "ShardActor"]


class ShardsUnavailableError(TimeoutError):
    """Some shards did not answer in time (or are gone) and a partial answer was not allowed."""

    def __init__(self, missing: tuple[int, ...], timeout: Optional[float]):
        self.missing_shards = missing
        super().__init__(f"shards {list(missing)} did not answer within {timeout} s "
                         "(pass allow_partial=True to accept an answer from the others)")


@dataclass(frozen=True)
class SearchResult:
    """Answer of :meth:`ShardedIndex.search`.

    Attributes
    ----------
    D : numpy.ndarray, (nq, k) float32
        Distances, best first (L2 ascending, inner product descending).
    I : numpy.ndarray, (nq, k) int64
        Global ids (row numbers of the build's sources); -1 where fewer than k qualify.
    missing_shards : tuple of int
        Shards whose vectors are not in the answer (timed out or lost); empty
        when the answer is the complete one.
    """

    D: np.ndarray
    I: np.ndarray
    missing_shards: tuple

    @property
    def complete(self) -> bool:
        """True when every shard answered."""
        return not self.missing_shards


def _params_spec(params) -> Optional[dict]:
    """Search parameters as plain data (SWIG objects do not travel to actors)."""
    if params is None:
        return None
    if not isinstance(params, (SearchParametersDPQ, SearchParametersIVFDPQ)):
        raise TypeError("params must be a pyfaiss_dpq.SearchParametersDPQ or SearchParametersIVFDPQ, "
                        f"got {type(params).__name__}")
    if params.sel is not None:
        raise ValueError("params.sel (an IDSelector) is not supported by a sharded search")
    spec = {"levels": params.levels, "rerank_levels": params.rerank_levels, "rerank_k": params.rerank_k}
    if isinstance(params, SearchParametersIVFDPQ):
        spec.update(nprobe=params.nprobe, max_codes=params.max_codes)
    return spec


def _params(spec: Optional[dict]):
    if spec is None:
        return None
    return SearchParametersIVFDPQ(**spec) if "nprobe" in spec else SearchParametersDPQ(**spec)


@ray.remote
class ShardActor:
    """Serves one shard file: searches it and answers with global ids."""

    def __init__(self, path: str, template_path: str, offset: int, rows: int, threads: int):
        faiss.omp_set_num_threads(threads)
        self.file = open_shard(path)  # owns what `index` points into
        self.index = split_transforms(self.file)[1]  # queries arrive transformed
        if self.index.ntotal != rows:
            raise ValueError(f"{path} holds {self.index.ntotal} vectors, the manifest says {rows}")
        self.template_bytes = Path(template_path).read_bytes()
        self.offset = offset

    def pid(self) -> int:
        """Process id of the actor (for operators, and for the crash tests)."""
        return os.getpid()

    def _global(self, I: np.ndarray) -> np.ndarray:
        return np.where(I >= 0, I + self.offset, -1)

    def search(self, xq: np.ndarray, k: int, spec: Optional[dict]) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of this shard: (D, global ids)."""
        D, I = self.index.search(xq, k, params=_params(spec))
        return D, self._global(I)

    def rescore(self, xq: np.ndarray, candidates: np.ndarray, k: int, levels: int):
        """Top-k of this shard's vectors among `candidates` (global ids), scored with `levels` levels.

        The candidates' codes go into an empty copy of the template, in id
        order, and are searched there: the same kernel, so the same distances
        and tie order as the re-ranking inside one index.
        """
        codes_of = inner_dpq(self.index)
        n = self.index.ntotal
        D, I = empty_result(len(xq), k, self.index.metric_type)
        params = SearchParametersDPQ(levels=levels)
        for q in range(len(xq)):
            local = candidates[q] - self.offset
            local = np.sort(local[(candidates[q] >= 0) & (local >= 0) & (local < n)])
            if not local.size:
                continue
            tmp = clone_empty(self.template_bytes)
            dpq = inner_dpq(tmp)
            dpq.add_codes(np.concatenate([codes_of.get_codes(int(i), 1) for i in local]))
            d, i = dpq.search(xq[q:q + 1], k, params=params)
            D[q] = d[0]
            I[q] = np.where(i[0] >= 0, local[np.maximum(i[0], 0)] + self.offset, -1)
        return D, I


class ShardedIndex:
    """A sharded index directory served by one Ray actor per shard.

    Open with :meth:`open`; search with :meth:`search`; :meth:`close` (or a
    ``with`` block) stops the actors.

    Attributes
    ----------
    out_dir : pathlib.Path
    d, ntotal, metric_type, num_shards : int
    shard_bounds : tuple of int
        Shard s holds global ids [shard_bounds[s], shard_bounds[s + 1]).
    actors : tuple of ray.actor.ActorHandle
        One per shard, in shard order.
    """

    def __init__(self, out_dir: Path, manifest: Manifest, actors: list, template):
        plan = manifest.plan
        self.out_dir = out_dir
        self.d, self.ntotal, self.metric_type = plan.d, plan.ntotal, plan.metric_type
        self.shard_bounds = plan.shard_bounds
        self.num_shards = plan.num_shards
        self.actors = tuple(actors)
        self._template = template  # owns the transforms
        self._transforms, _ = split_transforms(template)
        self._inner = split_transforms(template)[1]
        self._dpq = inner_dpq(template)
        self._ivf = self._inner if isinstance(self._inner, IndexIVFDPQ) else None

    @classmethod
    def open(cls, out_dir, *, address: Optional[str] = None, threads_per_shard: int = 1, max_restarts: int = -1,
             max_task_retries: int = 3, actor_options: Optional[dict] = None,
             open_timeout: float = 300.0) -> "ShardedIndex":
        """Start one actor per shard of a completed build and wait until all have opened their files.

        Parameters
        ----------
        out_dir : str or os.PathLike
            Directory written by :func:`pyfaiss_dpq.distributed.build`; on a
            cluster it must be readable from every node.
        address : str, optional
            Ray to join when not initialized (``"auto"``: the running cluster).
        threads_per_shard : int
            Faiss threads of each actor.
        max_restarts : int
            Restarts of a crashed actor (-1: unlimited).
        max_task_retries : int
            Retries of a call whose actor crashed during it.
        actor_options : dict, optional
            Extra ``ray.remote`` options of the actors (default ``num_cpus=0``
            and ``scheduling_strategy="SPREAD"``), e.g. ``{"num_cpus": 4}``.
        open_timeout : float
            Seconds to wait for every actor to open its file.
        """
        out = Path(out_dir).resolve()
        manifest = Manifest.read(out)
        if not manifest.complete:
            raise ValueError(f"{out}: the build is not complete; run build() again on it to finish")
        threads_per_shard = as_count(threads_per_shard, "threads_per_shard", 1)
        ensure_ray(address)
        options = {"num_cpus": 0, "scheduling_strategy": "SPREAD", **(actor_options or {}),
                   "max_restarts": max_restarts, "max_task_retries": max_task_retries}
        plan = manifest.plan
        actors = [ShardActor.options(**options).remote(
            str(out / layout.shard_file(s)), str(out / layout.TEMPLATE), plan.shard_bounds[s],
            plan.shard_bounds[s + 1] - plan.shard_bounds[s], threads_per_shard) for s in range(plan.num_shards)]
        try:
            ray.get([a.pid.remote() for a in actors], timeout=open_timeout)
        except BaseException:
            for a in actors:
                ray.kill(a)
            raise
        template = clone_empty((out / layout.TEMPLATE).read_bytes())
        return cls(out, manifest, actors, template)

    # ------------------------------------------------------------ search
    def search(self, xq, k: int, params=None, *, timeout: Optional[float] = 2.0,
               allow_partial: bool = True) -> SearchResult:
        """k nearest neighbours of each query over all shards.

        Parameters
        ----------
        xq : array, (nq, d)
        k : int
        params : SearchParametersDPQ or SearchParametersIVFDPQ, optional
            As for the shards' index's ``search`` (no ``sel``; for IndexIVFDPQ
            shards no re-ranking).
        timeout : float or None
            Seconds for the whole call; None waits for every shard.
        allow_partial : bool
            Past the timeout (or when a shard is gone for good), answer from
            the shards that replied and list the others in ``missing_shards``;
            if False raise :class:`ShardsUnavailableError` instead.

        Returns
        -------
        SearchResult
            With every shard answering, ``D`` and ``I`` equal bit for bit
            what one index holding all vectors returns.
        """
        xq = as_vectors(xq, self.d, "xq")
        k = as_count(k, "k", 1)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, got {timeout}")
        spec = _params_spec(params)
        if spec is not None:
            target = self._ivf if "nprobe" in spec else self._dpq
            if target is None:
                raise TypeError(f"{type(params).__name__} does not apply to these shards "
                                f"({type(self._inner).__name__})")
            if target is self._ivf and spec["rerank_levels"]:
                raise ValueError("re-ranking is not supported by a sharded IndexIVFDPQ search: "
                                 "each shard would re-rank its own candidates, not the global ones")
            # The index's own rules (C++), checked once here rather than by every shard.
            target.search(np.empty((0, target.d), np.float32), k, params=params)
        deadline = None if timeout is None else time.monotonic() + timeout
        for transform in self._transforms:
            xq = transform.apply(xq)
        query = ray.put(xq)
        levels = (spec or {}).get("levels") or (self._dpq.search_levels if self._dpq else 0)
        rerank_levels = (spec or {}).get("rerank_levels", 0)
        if rerank_levels <= levels:  # one round
            replies, missing = self._gather(
                {s: a.search.remote(query, k, spec) for s, a in enumerate(self.actors)}, deadline)
            return self._result(replies, missing, k, len(xq), timeout, allow_partial)

        first_k = max(spec["rerank_k"], k)
        replies, missing = self._gather(
            {s: a.search.remote(query, first_k, {"levels": levels, "rerank_levels": 0, "rerank_k": 0})
             for s, a in enumerate(self.actors)}, deadline)
        _, candidates = merge_topk(list(replies.values()), first_k, self.metric_type, len(xq))
        cand_ref = ray.put(candidates)
        asked = {s: self.actors[s].rescore.remote(query, cand_ref, k, rerank_levels)
                 for s in replies if self._holds_any(s, candidates)}
        rescored, missing_2 = self._gather(asked, deadline)
        return self._result(rescored, missing | missing_2, k, len(xq), timeout, allow_partial)

    def _holds_any(self, shard: int, ids: np.ndarray) -> bool:
        lo, hi = self.shard_bounds[shard], self.shard_bounds[shard + 1]
        return bool(((ids >= lo) & (ids < hi)).any())

    def _gather(self, calls: dict, deadline: Optional[float]) -> tuple[dict, set]:
        """Replies {shard: (D, I)} that came before the deadline, and the shards that did not answer."""
        if not calls:
            return {}, set()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _ = ray.wait(list(calls.values()), num_returns=len(calls), timeout=remaining)
        ready = set(ready)
        replies, missing = {}, set()
        for shard, ref in calls.items():
            if ref not in ready:
                missing.add(shard)
                _cancel(ref)
                continue
            try:
                replies[shard] = ray.get(ref)
            except ray.exceptions.RayActorError:  # gone for good (restarts or retries used up)
                missing.add(shard)
        return replies, missing

    def _result(self, replies: dict, missing: set, k: int, nq: int, timeout, allow_partial: bool) -> SearchResult:
        missing = tuple(sorted(missing))
        if missing and not allow_partial:
            raise ShardsUnavailableError(missing, timeout)
        D, I = merge_topk([replies[s] for s in sorted(replies)], k, self.metric_type, nq)
        return SearchResult(D, I, missing)

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the shard actors."""
        for a in self.actors:
            ray.kill(a)
        self.actors = ()

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        metric = "L2" if self.metric_type == faiss.METRIC_L2 else "IP"
        return (f"ShardedIndex({str(self.out_dir)!r}, d={self.d}, ntotal={self.ntotal}, metric={metric}, "
                f"shards={self.num_shards})")


def _cancel(ref) -> None:
    """Drop a late call if Ray still holds it in the actor's queue (best effort)."""
    try:
        ray.cancel(ref)
    except Exception:  # noqa: BLE001 - a call already running or finished cannot be cancelled
        pass
