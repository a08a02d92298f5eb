"""A cluster autoscaler for one simulated cluster: one node group that grows on demand.

Off until set at run time (`Fleet.set_autoscaler`). It answers like cluster-autoscaler's
scale-up loop: each pod the scheduler has just found Unschedulable is tried on the node
group's template node (an empty node built from the group, through the scheduler's own
filters), and the verdict is written as an Event on the pod, from component
`cluster-autoscaler`, type Normal, with cluster-autoscaler's reasons and message shapes:

- `TriggeredScaleUp`, "pod triggered scale-up: [{GROUP 1->2 (max: 3)}]" (the group's target
  size before and after, and its maximum): the new nodes join after `delay_s`, Ready, and the
  scheduler binds the waiting pods;
- `NotTriggerScaleUp`, "pod didn't trigger scale-up: 1 max node group size reached" when the
  group is at its maximum, or the reasons a new node would refuse the pod, counted per node
  group as cluster-autoscaler's ReasonsMessage does ("... : 1 Insufficient nvidia.com/gpu",
  "... : 1 node(s) didn't match Pod's node affinity/selector").

A pod gets one verdict each time its FailedScheduling message changes (the real autoscaler
re-evaluates every scan interval, ~10 s, and repeats itself). The group's size is its nodes
in the cluster now: named GROUP or GROUP-<i>, as node groups are named in the spec.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Any, Protocol

from skymagic.sim import objects
from skymagic.sim.clusterparts import ClusterCore
from skymagic.sim.scheduler import reasons_on_new_node
from skymagic.sim.spec import ClusterSpec, NodeGroup
from skymagic.sim.store import Store

__all__ = ["Autoscaler"]

COMPONENT = "cluster-autoscaler"


class _Cluster(ClusterCore, Protocol):
    """What the autoscaler uses of its SimCluster (cluster.py, which owns it)."""

    spec: ClusterSpec
    index: int
    store: Store
    offers: dict[str, tuple[str, str]]


class Autoscaler:
    """Scale-up of one node group of a SimCluster, reported in Events on the pods."""

    def __init__(self, cluster: _Cluster) -> None:
        self.cluster = cluster
        self.group: NodeGroup | None = None
        self.max_nodes = 0
        self.delay_s = 1.0
        self.coming = 0  # nodes triggered that have not joined yet
        self._next = 0  # the index the next new node is named with

    def configure(
        self, group: dict[str, Any] | None, max_nodes: int = 1, delay_s: float = 1.0
    ) -> dict[str, Any]:
        """Set the node group it grows (None: off), its maximum size and the join delay."""
        if group is None:
            self.group = None
            return {"enabled": False}
        self.group = replace(NodeGroup(**group), count=1)
        self.max_nodes = int(max_nodes)
        self.delay_s = float(delay_s)
        self._next = self.size()
        return {"enabled": True, "group": asdict(self.group), "max_nodes": self.max_nodes,
                "delay_s": self.delay_s, "size": self.size()}  # fmt: skip

    def size(self) -> int:
        if self.group is None:
            return 0
        name = self.group.name
        return sum(
            1
            for e in self.cluster.store.objects["nodes"].values()
            if e.obj["metadata"]["name"] == name or e.obj["metadata"]["name"].startswith(name + "-")
        )

    def on_unschedulable(self, pods: list[dict[str, Any]]) -> None:
        """Verdicts for pods the scheduler has just failed; a scale-up for those that fit."""
        group = self.group
        if group is None or not pods:
            return
        spec = self.cluster.spec
        template = objects.build_node(group, 0, self.cluster.index, spec.version)
        target = self.size() + self.coming
        triggered: list[dict[str, Any]] = []
        for pod in pods:
            reasons = reasons_on_new_node(pod, template)
            if reasons:
                self._refuse(pod, ", ".join(sorted(f"1 {r}" for r in reasons)))
            elif target + len(triggered) >= self.max_nodes:
                self._refuse(pod, "1 max node group size reached")
            else:
                triggered.append(pod)
        if not triggered:
            return
        new = target + len(triggered)
        message = (
            f"pod triggered scale-up: [{{{group.name} {target}->{new} (max: {self.max_nodes})}}]"
        )
        for pod in triggered:
            self.cluster.event(pod, "TriggeredScaleUp", message, "Normal", COMPONENT)
        self.coming += len(triggered)
        first, self._next = self._next, self._next + len(triggered)
        asyncio.get_running_loop().create_task(self._join(group, first, len(triggered)))

    def _refuse(self, pod: dict[str, Any], why: str) -> None:
        self.cluster.event(
            pod, "NotTriggerScaleUp", f"pod didn't trigger scale-up: {why}", "Normal", COMPONENT
        )

    async def _join(self, group: NodeGroup, first: int, count: int) -> None:
        """The cloud's VMs boot and register: the new nodes appear, Ready."""
        await asyncio.sleep(self.delay_s)
        cluster = self.cluster
        offer = objects.gpu_offer(group)
        named = replace(group, count=2)  # always GROUP-<i>
        for i in range(first, first + count):
            node = objects.build_node(named, i, cluster.index, cluster.spec.version)
            if offer is not None:
                cluster.offers[node["metadata"]["name"]] = offer
            cluster.store.put("nodes", node)
        self.coming -= count
