"""What the controller knows of the clusters: its job pods and their nodes, kept by watches.

The watches (`core/watch.WatchDriver`, one thread each) only post events to the supervisor's
loop; the loop applies them here (through `disruption.py`), so the caches have one writer and
need no lock:

- `PodCache`: one namespace's job pods (this database's label) as the watch last said, plus
  the uids seen DELETED (a pod seen gone stays gone, whatever a later list or a late
  MODIFIED says);
- `NodeCache`: one cluster's nodes, name -> (Ready status, since when); a node absent after a
  sync is gone. Only a change of a node's Ready status or its deletion reaches the loop:
  heartbeats and label edits are dropped on the watch thread. A 403 on nodes marks the cache
  forbidden: pod signals (eviction, preemption, pod GC) still reach the controller, node
  NotReady and deletion do not.

Watches start when a job first runs in a namespace or cluster and stop when no job is left
there (`drop_unused`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.watch import Changed, Failed, Listed, WatchDriver
from skymagic.errors import ForbiddenError
from skymagic.jobs.classify import node_ready

__all__ = ["ALL_NODES", "ClusterCaches", "NodeCache", "PodCache", "describe", "uid_of"]

log = logging.getLogger("skymagic.jobs")

ALL_NODES = "*"  # apply_nodes: a re-list, every node may have changed

PodKey = tuple[str, str]  # (API server, namespace)


@dataclass
class PodCache:
    """One namespace's job pods as the watch last said, plus the uids seen deleted."""

    loop: WatchDriver[list[dict[str, Any]]]
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    synced: bool = False


@dataclass
class NodeCache:
    """One cluster's nodes: name -> (Ready status, since when); absent after a sync = gone."""

    loop: WatchDriver[list[dict[str, Any]]]
    nodes: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    synced: bool = False
    forbidden: bool = False


class ClusterCaches:
    """Pod caches per (server, namespace) and node caches per server, fed by watches whose
    events go to `post` as ("pods", key, event) and ("nodes", server, event)."""

    def __init__(self, post: Callable[[Any], None], pod_selector: str) -> None:
        self.post = post
        self.pod_selector = pod_selector
        self.pods: dict[PodKey, PodCache] = {}
        self.nodes: dict[str, NodeCache] = {}

    def ensure(self, client: ContextClient, namespace: str) -> None:
        """Watch the job pods of `namespace` and the nodes of `client`'s cluster (once)."""
        pkey = (client.server, namespace)
        if pkey not in self.pods:

            def pod_sink(ev: Any, k: PodKey = pkey) -> None:
                self.post(("pods", k, ev))

            path = f"/api/v1/namespaces/{namespace}/pods"
            query = {"labelSelector": self.pod_selector}
            self.pods[pkey] = PodCache(
                _start(client, path, lambda c: c.list_items(path, query), pod_sink, query)
            )
        if client.server not in self.nodes:
            last: dict[str, str] = {}

            def sink(ev: Any, k: str = client.server) -> None:
                # Only what matters reaches the loop: a node's Ready status changing, or the
                # node going (heartbeats and label edits stay on this thread).
                if isinstance(ev, Changed):
                    ev = Changed(ev.type, _slim_node(ev.object))
                    name = ev.object["metadata"]["name"]
                    ready = node_ready(ev.object)[0]
                    if ev.type != "DELETED" and last.get(name) == ready:
                        return
                    last[name] = ready
                elif isinstance(ev, Listed):
                    last.clear()
                    last.update((n["metadata"]["name"], node_ready(n)[0]) for n in ev.items)
                self.post(("nodes", k, ev))

            self.nodes[client.server] = NodeCache(
                _start(
                    client,
                    "/api/v1/nodes",
                    lambda c: c.list_items("/api/v1/nodes", pick=_slim_node),
                    sink,
                )
            )

    def apply_pods(self, pkey: PodKey, ev: Any) -> PodCache | None:
        """Apply one pod watch event; the cache it changed (None: not watched, or a failure)."""
        cache = self.pods.get(pkey)
        if cache is None:
            return None
        if isinstance(ev, Failed):
            log.warning("pod watch %s: %s", pkey, ev.error)
            return None
        if isinstance(ev, Listed):
            cache.pods = {p["metadata"]["name"]: p for p in ev.items}
            cache.synced = True
            return cache
        obj = ev.object
        name = obj["metadata"]["name"]
        if ev.type == "DELETED":
            cache.deleted.add(uid_of(obj))
            if uid_of(cache.pods.get(name) or {}) == uid_of(obj):
                cache.pods.pop(name, None)
        elif uid_of(obj) not in cache.deleted:
            cache.pods[name] = obj
        return cache

    def apply_nodes(self, server: str, ev: Any) -> str | None:
        """Apply one node watch event; which node changed (ALL_NODES after a list; None:
        nothing for the jobs to look at)."""
        cache = self.nodes.get(server)
        if cache is None:
            return None
        if isinstance(ev, Failed):
            if isinstance(ev.error, ForbiddenError):
                cache.forbidden = True
                cache.loop.stop()
            log.warning("node watch %s: %s", server, ev.error)
            return None
        if isinstance(ev, Listed):
            cache.nodes = {n["metadata"]["name"]: node_ready(n) for n in ev.items}
            cache.synced = True
            return ALL_NODES
        name = str(ev.object["metadata"]["name"])
        if ev.type == "DELETED":
            cache.nodes.pop(name, None)
        else:
            cache.nodes[name] = node_ready(ev.object)
        return name

    def remember(self, client: ContextClient, namespace: str, pod: dict[str, Any]) -> None:
        """A pod the controller just made or found: cached unless the watch saw it go."""
        cache = self.pods.get((client.server, namespace))
        if cache is None:
            return
        uid, name = uid_of(pod), pod["metadata"]["name"]
        if uid not in cache.deleted and uid_of(cache.pods.get(name) or {}) != uid:
            cache.pods[name] = pod

    def pod_state(
        self, client: ContextClient, namespace: str, name: str, uid: str
    ) -> tuple[str, dict[str, Any] | None]:
        """("gone", None) | ("unknown", None) | ("live", pod) for the pod `uid`."""
        cache = self.pods.get((client.server, namespace))
        if cache is None:
            return "unknown", None
        if uid in cache.deleted:
            return "gone", None
        pod = cache.pods.get(name)
        if pod is not None and uid_of(pod) == uid:
            return "live", pod
        return "unknown", None

    def node_state(self, client: ContextClient, node: str) -> tuple[str, float | None]:
        """("gone" | "True" | "False" | "Unknown" | "unknown", since) for one node."""
        cache = self.nodes.get(client.server)
        if cache is None or not cache.synced or cache.forbidden or not node:
            return "unknown", None
        if node not in cache.nodes:
            return "gone", None
        return cache.nodes[node]

    def drop_unused(self, used: set[PodKey]) -> None:
        """Stop the watches no job needs any more."""
        for key in [k for k in self.pods if k not in used]:
            self.pods.pop(key).loop.stop()
        servers = {k[0] for k in used}
        for server in [s for s in self.nodes if s not in servers]:
            self.nodes.pop(server).loop.stop()

    def stop(self) -> None:
        for loop in [c.loop for c in self.pods.values()] + [c.loop for c in self.nodes.values()]:
            loop.stop()


def describe(event: Any) -> str:
    """One line about a loop event, for the debug log."""
    parts = []
    for item in event:
        if isinstance(item, (Listed, Changed, Failed)):
            if isinstance(item, Listed):
                parts.append(f"Listed({len(item.items)} at {item.resource_version})")
            elif isinstance(item, Changed):
                meta = item.object.get("metadata") or {}
                phase = (item.object.get("status") or {}).get("phase", "")
                parts.append(f"{item.type}({meta.get('name')} {phase})")
            else:
                parts.append(f"Failed({item.error})")
        else:
            parts.append(str(item)[:200])
    return " ".join(parts)


def uid_of(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _start(
    client: ContextClient,
    path: str,
    lister: Any,
    sink: Any,
    query: dict[str, str] | None = None,
) -> WatchDriver[list[dict[str, Any]]]:
    """A WatchDriver (list, then watch; core/watch.py) on a thread of its own."""
    driver: WatchDriver[list[dict[str, Any]]] = WatchDriver(
        client, path, lister=lister, sink=sink, query=query, retry_s=1.0
    )
    threading.Thread(target=driver.run, name=f"watch-{client.name}-{path}", daemon=True).start()
    return driver


def _slim_node(node: dict[str, Any]) -> dict[str, Any]:
    """Only what the controller reads of a node: its name and Ready condition."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return {
        "metadata": {
            "name": node["metadata"]["name"],
            "resourceVersion": node["metadata"].get("resourceVersion", ""),
        },
        "status": {"conditions": [c for c in conditions if c.get("type") == "Ready"]},
    }
