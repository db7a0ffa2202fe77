"""Distributed build and search on Ray (``pip install "pyfaiss-dpq[distributed]"``).

    from pyfaiss_dpq import distributed as dd
    dd.build(template, sources, out_dir, num_shards=8)    # Ray tasks encode slices; resumable
    ix = dd.ShardedIndex.open(out_dir)                    # one actor per shard file
    res = ix.search(xq, 10, timeout=2.0, allow_partial=True)
    res.D, res.I, res.missing_shards

Works with the flat ``IndexDPQ`` (and ``IndexPreTransform`` around it, and
Faiss indexes with a standalone codec); the shard abstractions (``codec``,
``layout``) are where an inverted-file index slots in.
"""

try:
    import ray  # noqa: F401
except ImportError as exc:
    raise ImportError(
        'pyfaiss_dpq.distributed needs Ray: pip install "pyfaiss-dpq[distributed]"') from exc

from .sharded_build import BuildReport, build
from .sharded_search import SearchResult, ShardActor, ShardedIndex, ShardsUnavailableError

__all__ = ["build", "BuildReport", "ShardedIndex", "SearchResult", "ShardsUnavailableError", "ShardActor"]
