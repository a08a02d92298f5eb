"""One simulated cluster's state and behaviour: start-up load, the scheduler loop, pod creation
and graceful deletion, run-time changes.

The API layer (apiserver.py and its handlers) turns HTTP into calls on this class; the fleet
process's control channel (serve.py, driven by `Fleet` in fleet.py) changes it at run time
(cordon, NotReady, add/remove nodes and pods, faults). Bound pods are run by its Kubelet
(kubelet.py); nodes going away by its NodeLifecycle (nodelife.py).

Which GPU a node has comes from the spec (the node group's profile in labels.py), never from
detecting it in the node's labels with the product's code: the simulator is what the product's
GPU detection is tested against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from skymagic.sim import objects
from skymagic.sim.autoscaler import Autoscaler
from skymagic.sim.defaults import default_pod
from skymagic.sim.kubelet import Kubelet, PodLog
from skymagic.sim.netnames import NameTable
from skymagic.sim.nodelife import NodeLifecycle
from skymagic.sim.placement import place_live, place_startup
from skymagic.sim.podexec import PodRuntime
from skymagic.sim.rbac import Authorizer
from skymagic.sim.scheduler import TERMINAL, NodeUsage, fits
from skymagic.sim.spec import ClusterSpec, NodeGroup, PodGroup
from skymagic.sim.store import Store, now_rfc3339, object_key

__all__ = ["SimCluster"]


class SimCluster:
    """State and behaviour of one simulated cluster (all on the fleet process's event loop)."""

    def __init__(self, spec: ClusterSpec, index: int, workdir: Path) -> None:
        self.spec = spec
        self.index = index
        self.workdir = workdir
        self.store = Store(history=spec.history)
        self.usage = NodeUsage()
        self.authorizer = Authorizer.from_spec(spec.rbac)
        self.faults = spec.faults
        self.requests: deque[dict[str, Any]] = deque(maxlen=200_000)
        self.logs: dict[str, PodLog] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        # Exec'd processes and per-pod loopback ports (exec, attach, port-forward: streams.py).
        self.runtime = PodRuntime(spec, workdir)
        self.rng = random.Random(index)
        self._sched_wakeup: asyncio.Event | None = None
        self._sched_task: asyncio.Task[None] | None = None
        self._fail_messages: dict[str, str] = {}
        # node name -> (GPU name, device resource) its node group offers (objects.gpu_offer)
        self.offers: dict[str, tuple[str, str]] = {}
        self.store.listeners.append(self._on_change)
        # Preemption, lost nodes, taint eviction and pod GC (nodelife.py).
        self.nodelife = NodeLifecycle(self)
        self.kubelet = Kubelet(self)  # runs bound pods (kubelet.py)
        self.autoscaler = Autoscaler(self)  # off until set at run time (autoscaler.py)
        if spec.runtime == "local":  # headless-Service names for local pods (netnames.py)
            self.store.listeners.append(NameTable(workdir).on_change)

    # -- start-up ------------------------------------------------------------------------
    def load(self) -> None:
        """Build nodes, namespaces and the start-up pod load (placed in bulk, first fit).

        The cyclic GC is paused meanwhile and the result frozen: the load allocates millions of
        small containers, and every generation-2 pass over them would rescan all of them.
        """
        gc.disable()
        try:
            self._load()
        finally:
            gc.freeze()
            gc.enable()

    def _load(self) -> None:
        nodes = []
        for group in self.spec.nodes:
            offer = objects.gpu_offer(group)
            for i in range(group.count):
                node = objects.build_node(group, i, self.index, self.spec.version)
                if offer is not None:
                    self.offers[node["metadata"]["name"]] = offer
                nodes.append(node)
        self.store.bulk_load("nodes", nodes)
        namespaces = {"default", "kube-system", "kube-public", self.spec.namespace}
        namespaces.update(p.namespace for p in self.spec.pods)
        for ns in sorted(namespaces):
            self.ensure_namespace(ns, record=False)
        service = {
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        }
        self.store.put("services", service, record=False)
        pods = list(place_startup(self.spec, self.index, nodes, self.offers))
        self.store.bulk_load("pods", pods)
        self.usage.bulk_add(("pods/" + object_key("pods", p), p) for p in pods)

    def ensure_namespace(self, ns: str, record: bool = True) -> None:
        if self.store.get("namespaces", None, ns) is None:
            self.store.put(
                "namespaces",
                {
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                record=record,
            )
            self.store.put(
                "serviceaccounts",
                {"metadata": {"name": "default", "namespace": ns}},
                record=record,
            )

    async def start(self) -> None:
        self._sched_wakeup = asyncio.Event()
        self._sched_task = asyncio.create_task(self._scheduler_loop())
        # Pods the spec left Pending get scheduled (or explained) right away.
        self._sched_wakeup.set()

    async def stop(self) -> None:
        if self._sched_task:
            self._sched_task.cancel()
        for task in list(self.tasks.values()):
            task.cancel()
        for proc in list(self.procs.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.runtime.stop_all()

    # -- change hooks --------------------------------------------------------------------
    def _on_change(self, resource: str, etype: str, obj: dict[str, Any]) -> None:
        if resource == "pods":
            key = object_key("pods", obj)
            self.usage.update("pods/" + key, None if etype == "DELETED" else obj)
            if (
                etype == "DELETED"
                or obj["status"].get("phase") in TERMINAL
                or not obj["spec"].get("nodeName")
            ):
                self.wake_scheduler()
        elif resource == "nodes":
            self.wake_scheduler()

    def wake_scheduler(self) -> None:
        if self._sched_wakeup is not None:
            self._sched_wakeup.set()

    async def _scheduler_loop(self) -> None:
        assert self._sched_wakeup is not None
        while True:
            await self._sched_wakeup.wait()
            self._sched_wakeup.clear()
            await asyncio.sleep(0.01)  # batch bursts of changes
            try:
                self.schedule_pending()
            except Exception as exc:  # keep the loop alive; surface in the request log
                self.requests.append({"t": time.time(), "scheduler_error": repr(exc)})

    def schedule_pending(self) -> None:
        pending = [
            e.obj
            for e in list(self.store.objects["pods"].values())
            if not e.obj["spec"].get("nodeName")
            and e.obj["status"].get("phase") == "Pending"
            and not e.obj["metadata"].get("deletionTimestamp")
        ]
        if not pending:
            return
        pending.sort(key=lambda p: p["metadata"]["resourceVersion"])
        nodes = [e.obj for e in self.store.objects["nodes"].values()]
        failed: list[dict[str, Any]] = []
        for pod in pending:
            node_name, message = fits(pod, nodes, self.usage)
            key = object_key("pods", pod)
            if node_name is None:
                if self._fail_messages.get(key) != message:
                    failed.append(pod)
                    self._fail_messages[key] = message
                    pod["status"]["conditions"] = [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "lastProbeTime": None,
                            "lastTransitionTime": now_rfc3339(),
                            "reason": "Unschedulable",
                            "message": message,
                        }
                    ]
                    self.pod_changed(
                        pod, "FailedScheduling", message, "default-scheduler", "Warning"
                    )
                continue
            self._fail_messages.pop(key, None)
            self._bind(pod, node_name)
        self.autoscaler.on_unschedulable(failed)

    def _bind(self, pod: dict[str, Any], node_name: str) -> None:
        pod["spec"]["nodeName"] = node_name
        pod["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
            }
        ]
        meta = pod["metadata"]
        where = f"{meta['namespace']}/{meta['name']} to {node_name}"
        self.pod_changed(pod, "Scheduled", f"Successfully assigned {where}", "default-scheduler")
        key = object_key("pods", pod)
        self.tasks[key] = asyncio.create_task(self.kubelet.run(key))

    def pod_changed(
        self, pod: dict[str, Any], reason: str, message: str, component: str, etype: str = "Normal"
    ) -> None:
        """Store a pod's change, and the event its `component` writes about it."""
        self.store.touch("pods", pod)
        self.event(pod, reason, message, etype, component)

    def event(
        self, obj: dict[str, Any], reason: str, message: str, etype: str, component: str
    ) -> None:
        """Record an Event about `obj` from `component` (on its node, if bound to one)."""
        host = obj.get("spec", {}).get("nodeName")
        self.store.put(
            "events",
            objects.event_for(
                obj, reason=reason, message=message, etype=etype, component=component, host=host
            ),
        )

    # -- pod creation / deletion (called by the API layer) ----------------------------------
    def create_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Default a validated pod like the API server does and store it (Pending)."""
        default_pod(pod, self.spec.toleration_s)
        spec = pod["spec"]
        entry = self.store.put("pods", pod)
        self.logs[object_key("pods", pod)] = PodLog()
        if spec.get("nodeName"):
            node = self.store.get("nodes", None, spec["nodeName"])
            if node is not None:
                self._bind(pod, spec["nodeName"])
        return entry.obj

    def delete_pod(self, namespace: str, name: str, grace: float | None) -> dict[str, Any] | None:
        entry = self.store.get("pods", namespace, name)
        if entry is None:
            return None
        pod = entry.obj
        key = object_key("pods", pod)
        phase = pod["status"].get("phase")
        if grace is None:
            grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        running = pod["spec"].get("nodeName") and phase not in TERMINAL
        if not running or grace <= 0:
            self._stop_pod(key, hard=True)
            deleted = self.store.delete("pods", namespace, name)
            return deleted.obj if deleted else None
        if not pod["metadata"].get("deletionTimestamp"):
            pod["metadata"]["deletionTimestamp"] = now_rfc3339(time.time() + grace)
            pod["metadata"]["deletionGracePeriodSeconds"] = int(grace)
            self.pod_changed(pod, "Killing", "Stopping container main", "kubelet")
            self.tasks[key + "#delete"] = asyncio.create_task(
                self._finish_deletion(key, namespace, name, grace)
            )
        return pod

    async def _finish_deletion(self, key: str, namespace: str, name: str, grace: float) -> None:
        await self.nodelife.kubelet_answers(key)  # a lost node's pods stay Terminating
        proc = self.procs.get(key)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=min(grace, 10.0))
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        else:
            await asyncio.sleep(0.05)
        self._stop_pod(key, hard=True)
        self.store.delete("pods", namespace, name)

    def _stop_pod(self, key: str, hard: bool) -> None:
        task = self.tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        proc = self.procs.pop(key, None)
        if proc is not None and proc.returncode is None and hard:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        log = self.logs.get(key)
        if log is not None:
            log.close()
        self._fail_messages.pop(key, None)
        self.runtime.forget(key)

    # -- run-time changes (control channel) ------------------------------------------------------
    def node(self, name: str) -> dict[str, Any]:
        entry = self.store.get("nodes", None, name)
        if entry is None:
            raise KeyError(f"no node named '{name}' in cluster '{self.spec.name}'")
        return entry.obj

    def set_node(
        self, name: str, *, ready: bool | None = None, cordoned: bool | None = None
    ) -> None:
        node = self.node(name)
        if ready is not None:
            objects.set_node_ready(node, ready)
        if cordoned is not None:
            objects.set_node_unschedulable(node, cordoned)
        self.store.touch("nodes", node)

    def add_nodes(self, group: NodeGroup) -> list[str]:
        names = []
        offer = objects.gpu_offer(group)
        for i in range(group.count):
            node = objects.build_node(group, i, self.index, self.spec.version)
            name = node["metadata"]["name"]
            if offer is not None:
                self.offers[name] = offer
            else:
                self.offers.pop(name, None)
            self.store.put("nodes", node)
            names.append(name)
        return names

    def remove_node(self, name: str) -> None:
        self.node(name)
        self.store.delete("nodes", None, name)
        self.offers.pop(name, None)

    def add_pods(self, group: PodGroup) -> list[str]:
        """Add already-running load (bound straight to nodes with room), e.g. to fill a cluster."""
        self.ensure_namespace(group.namespace)
        nodes = [e.obj for e in self.store.objects["nodes"].values()]
        names = []
        base = int(time.time() * 1000) % 10_000_000
        placed = place_live(self.spec, self.index, group, nodes, self.offers, self.usage, base)
        for pod in placed:
            self.store.put("pods", pod)
            key = object_key("pods", pod)
            self.logs[key] = PodLog(lines=[b"simulated load started\n"])
            names.append(pod["metadata"]["name"])
        return names

    def remove_pods(
        self,
        namespace: str | None = None,
        label_prefix: str | None = None,
        count: int | None = None,
    ) -> list[str]:
        removed = []
        for key, entry in list(self.store.objects["pods"].items()):
            meta = entry.obj["metadata"]
            if namespace and meta.get("namespace") != namespace:
                continue
            if label_prefix and not meta["name"].startswith(label_prefix):
                continue
            self._stop_pod(key, hard=True)
            self.store.delete("pods", meta["namespace"], meta["name"])
            removed.append(meta["name"])
            if count is not None and len(removed) >= count:
                break
        return removed

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        for k, v in changes.items():
            if not hasattr(self.faults, k):
                raise KeyError(f"unknown fault {k!r}; valid: {', '.join(asdict(self.faults))}")
            setattr(self.faults, k, type(getattr(self.faults, k))(v))
        return asdict(self.faults)
