"""What the simulator's per-cluster parts (kubelet, node lifecycle, autoscaler) use of
cluster.py's SimCluster, declared once: its object store and its Event writer.

Each part names the rest it needs in a Protocol of its own that extends this one, so none of
them imports cluster.py (which owns them: that would be a cycle).
"""

from __future__ import annotations

from typing import Any, Protocol

from skymagic.sim.store import Store

__all__ = ["ClusterCore"]


class ClusterCore(Protocol):
    store: Store

    def event(
        self, obj: dict[str, Any], reason: str, message: str, etype: str, component: str
    ) -> None:
        """Write an Event about `obj` (from `component`, e.g. kubelet or cluster-autoscaler)."""
        ...
