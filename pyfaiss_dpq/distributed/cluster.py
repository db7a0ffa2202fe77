"""Joining Ray: a running cluster, or a local one started for this process."""

from __future__ import annotations

import ray

__all__ = ["ensure_ray"]


def ensure_ray(address: str | None = None) -> None:
    """Initialize Ray unless it already is.

    Parameters
    ----------
    address : str, optional
        ``"auto"`` joins the cluster running on this machine, ``"ray://host:10001"``
        a remote one; None starts a local Ray with this machine's CPUs. Ignored
        when Ray is already initialized (call ``ray.init`` yourself for other settings).
    """
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
