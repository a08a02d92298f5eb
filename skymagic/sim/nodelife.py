"""Nodes going away as they do on real clusters, and the controllers that clean up after them.

What a managed job must survive, modelled on what Kubernetes does (kubelet's graceful node
shutdown, kube-controller-manager's node lifecycle, taint eviction and pod GC controllers):

- **Spot preemption** (`preempt`): the VM gets its shutdown notice and the kubelet's graceful
  node shutdown runs. The node reports NotReady ("node is shutting down"); every container on
  it gets SIGTERM, then SIGKILL after `shutdown_grace_s`; each pod ends Failed with reason
  `Terminated` and the kubelet's message "Pod was terminated in response to imminent node
  shutdown." (condition DisruptionTarget, reason TerminationByKubelet). `node_removal_s` later
  the cloud's node controller deletes the Node object.
- **A lost node** (`lose`): the kubelet stops posting status. The node lifecycle controller sets
  every condition to Unknown ("Kubelet stopped posting node status."), taints the node
  `node.kubernetes.io/unreachable` with NoSchedule and NoExecute, and marks its pods not Ready.
  The taint eviction controller then deletes each pod that does not tolerate the NoExecute taint
  once its tolerationSeconds have passed (the API server gives every pod a 300 s toleration; the
  fleet spec's `toleration_s` changes that default). The deletion is graceful, and no kubelet
  answers to finish it, so the pod stays Terminating until the node is Ready again (the kubelet
  then kills it) or the node is deleted. The container itself keeps running meanwhile, as it
  may on a partitioned machine (the simulator still reports its end: a simplification).
- **Pod GC** (any node deletion: `preempt`, `remove_node`, an API DELETE): `pod_gc_s` after a
  node is deleted, every pod still bound to it is marked (DisruptionTarget, reason
  DeletionByPodGC) and force-deleted, as the pod GC controller does with orphaned pods.

`set_ready(node, True)` on a lost node brings it back: the unreachable taints go, pods waiting
for their kubelet finish terminating.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any, Protocol

from skymagic.sim.clusterparts import ClusterCore
from skymagic.sim.scheduler import TERMINAL
from skymagic.sim.spec import ClusterSpec
from skymagic.sim.store import Store, now_rfc3339, object_key

__all__ = [
    "SHUTDOWN_MESSAGE",
    "SHUTDOWN_REASON",
    "UNREACHABLE_TAINT",
    "NodeLifecycle",
]

SHUTDOWN_REASON = "Terminated"
SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
_LOST_MESSAGE = "Kubelet stopped posting node status."
_GC_MESSAGE = "PodGC: node no longer exists"


class SimCluster(ClusterCore, Protocol):
    """What this module uses of cluster.py's SimCluster (which owns a NodeLifecycle)."""

    spec: ClusterSpec
    store: Store
    tasks: dict[str, asyncio.Task[None]]
    procs: dict[str, asyncio.subprocess.Process]
    logs: dict[str, Any]  # pod key -> PodLog
    runtime: Any  # PodRuntime: exec'd processes and ports per pod

    def node(self, name: str) -> dict[str, Any]: ...
    def delete_pod(self, namespace: str, name: str, grace: float | None) -> Any: ...
    def _stop_pod(self, key: str, hard: bool) -> None: ...
    def pod_changed(
        self, pod: dict[str, Any], reason: str, message: str, component: str, etype: str = ...
    ) -> None: ...


class NodeLifecycle:
    """Preemption, lost nodes, taint-based eviction and pod GC for one simulated cluster.

    Runs on the fleet's event loop, like everything in the cluster. It learns about node
    deletions and recoveries from the store (a listener), so nodes deleted through the API are
    garbage-collected too.
    """

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self._lost: dict[str, asyncio.Event] = {}  # set when the node's kubelet answers again
        self._evictions: dict[str, asyncio.TimerHandle] = {}  # pod key -> taint eviction
        cluster.store.listeners.append(self._on_change)

    # -- queries used by the cluster ------------------------------------------------------
    async def kubelet_answers(self, pod_key: str) -> None:
        """Return once the kubelet of the pod's node can act on it (at once if it never left)."""
        entry = self.cluster.store.objects["pods"].get(pod_key)
        node = (entry.obj.get("spec") or {}).get("nodeName") if entry is not None else None
        waiter = self._lost.get(node) if node else None
        if waiter is not None:
            await waiter.wait()

    def _pods_on(self, node: str) -> list[dict[str, Any]]:
        return [
            e.obj
            for e in list(self.cluster.store.objects["pods"].values())
            if (e.obj.get("spec") or {}).get("nodeName") == node
        ]

    # -- spot preemption ------------------------------------------------------------------
    async def preempt(self, name: str) -> list[str]:
        """Graceful node shutdown, then the node's deletion; returns the pods it terminated."""
        cluster = self.cluster
        node = cluster.node(name)
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond.update(
                    status="False",
                    reason="KubeletNotReady",
                    message="node is shutting down",
                    lastHeartbeatTime=now_rfc3339(),
                    lastTransitionTime=now_rfc3339(),
                )
        _set_taint(node, "node.kubernetes.io/not-ready", "NoSchedule", True)
        cluster.store.touch("nodes", node)
        victims = [p for p in self._pods_on(name) if p["status"].get("phase") not in TERMINAL]
        codes = await asyncio.gather(*(self._shut_down(p) for p in victims))
        done = []
        for pod, code in zip(victims, codes, strict=False):
            key = object_key("pods", pod)
            entry = cluster.store.objects["pods"].get(key)
            if entry is None:
                continue
            self._mark_terminated(entry.obj, code)
            done.append(pod["metadata"]["name"])
        loop = asyncio.get_running_loop()
        loop.call_later(cluster.spec.node_removal_s, self._delete_node, name)
        return done

    async def _shut_down(self, pod: dict[str, Any]) -> int:
        """SIGTERM the container, SIGKILL after the shutdown grace; its exit code."""
        cluster = self.cluster
        key = object_key("pods", pod)
        task = cluster.tasks.pop(key, None)
        if task is not None:
            task.cancel()  # the kubelet's own run of the container must not report its end
        cluster.event(pod, "Killing", "Stopping container main", "Normal", "kubelet")
        proc = cluster.procs.pop(key, None)
        log = cluster.logs.get(key)
        if proc is None:
            return 143  # a simulated container stops on SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

        async def drain() -> None:  # what the container says while it stops is in its log
            if proc.stdout is None:
                return
            while line := await proc.stdout.readline():
                if log is not None:
                    log.append(line)

        try:
            await asyncio.wait_for(
                asyncio.gather(drain(), proc.wait()), timeout=cluster.spec.shutdown_grace_s
            )
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        return 128 - code if code < 0 else code  # (killed by signal N: 128 + N, as a shell says)

    def _mark_terminated(self, pod: dict[str, Any], code: int) -> None:
        ts = now_rfc3339()
        status = pod["status"]
        started = status.get("startTime") or ts
        status.update(phase="Failed", reason=SHUTDOWN_REASON, message=SHUTDOWN_MESSAGE)
        conditions = [
            c
            for c in status.get("conditions") or []
            if c.get("type") not in ("Ready", "ContainersReady", "DisruptionTarget")
        ]
        conditions += [
            _condition("DisruptionTarget", "True", "TerminationByKubelet", SHUTDOWN_MESSAGE),
            _condition("Ready", "False", "PodFailed", ""),
            _condition("ContainersReady", "False", "PodFailed", ""),
        ]
        status["conditions"] = conditions
        for cs in status.get("containerStatuses") or []:
            running = (cs.get("state") or {}).get("running") or {}
            cs["state"] = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Error",
                    "startedAt": running.get("startedAt", started),
                    "finishedAt": ts,
                }
            }
            cs["ready"] = False
            cs["started"] = False
        key = object_key("pods", pod)
        log = self.cluster.logs.get(key)
        if log is not None:
            log.close()
        self.cluster.runtime.forget(key)  # the container's exec'd processes die with it
        self.cluster.store.touch("pods", pod)

    def _delete_node(self, name: str) -> None:
        if self.cluster.store.get("nodes", None, name) is not None:
            self.cluster.store.delete("nodes", None, name)

    # -- lost nodes and taint eviction --------------------------------------------------------
    def lose(self, name: str) -> None:
        """The node's kubelet stops posting status (see the module docstring)."""
        cluster = self.cluster
        node = cluster.node(name)
        ts = now_rfc3339()
        for cond in node["status"]["conditions"]:
            cond.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message=_LOST_MESSAGE,
                lastTransitionTime=ts,
            )
        _set_taint(node, "node.kubernetes.io/not-ready", "NoSchedule", False)
        _set_taint(node, UNREACHABLE_TAINT, "NoSchedule", True)
        _set_taint(node, UNREACHABLE_TAINT, "NoExecute", True)
        self._lost.setdefault(name, asyncio.Event())
        cluster.store.touch("nodes", node)
        loop = asyncio.get_running_loop()
        for pod in self._pods_on(name):
            if pod["status"].get("phase") in TERMINAL:
                continue
            status = pod["status"]
            status["conditions"] = [
                c if c.get("type") != "Ready" else _condition("Ready", "False", "NodeLost", "")
                for c in status.get("conditions") or []
            ]
            cluster.store.touch("pods", pod)
            seconds = _toleration_seconds(pod, UNREACHABLE_TAINT, "NoExecute")
            if seconds is None:
                continue  # tolerated for ever
            key = object_key("pods", pod)
            self._evictions[key] = loop.call_later(max(seconds, 0.0), self._evict, key, name)

    def _evict(self, key: str, node: str) -> None:
        self._evictions.pop(key, None)
        cluster = self.cluster
        entry = cluster.store.objects["pods"].get(key)
        if entry is None or node not in self._lost:
            return
        pod = entry.obj
        if pod["metadata"].get("deletionTimestamp") or pod["spec"].get("nodeName") != node:
            return
        message = "Taint manager: deleting due to NoExecute taint"
        pod["status"]["conditions"] = [
            *(c for c in pod["status"].get("conditions") or [] if c["type"] != "DisruptionTarget"),
            _condition("DisruptionTarget", "True", "DeletionByTaintManager", message),
        ]
        meta = pod["metadata"]
        what = f"Pod {meta['namespace']}/{meta['name']}"
        cluster.pod_changed(
            pod, "TaintManagerEviction", f"Marking for deletion {what}", "taint-eviction-controller"
        )
        cluster.delete_pod(meta["namespace"], meta["name"], None)

    def _recovered(self, name: str) -> None:
        """A lost node posts Ready again: its taints go, waiting terminations finish."""
        waiter = self._lost.pop(name, None)
        entry = self.cluster.store.get("nodes", None, name)
        if entry is not None:
            node = entry.obj
            _set_taint(node, UNREACHABLE_TAINT, "NoSchedule", False)
            _set_taint(node, UNREACHABLE_TAINT, "NoExecute", False)
            for cond in node["status"]["conditions"]:
                if cond["type"] != "Ready" and cond["status"] == "Unknown":
                    cond.update(status="False", reason="KubeletHasSufficientResources", message="")
            self.cluster.store.touch("nodes", node)
        for key, handle in list(self._evictions.items()):
            pod = self.cluster.store.objects["pods"].get(key)
            if pod is None or pod.obj["spec"].get("nodeName") == name:
                handle.cancel()
                self._evictions.pop(key, None)
        if waiter is not None:
            waiter.set()

    # -- pod GC -----------------------------------------------------------------------------
    def _on_change(self, resource: str, etype: str, obj: dict[str, Any]) -> None:
        if resource != "nodes":
            return
        name = obj["metadata"]["name"]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (a cluster built outside the fleet process: nothing runs)
            return
        if etype == "DELETED":
            loop.call_later(self.cluster.spec.pod_gc_s, self._collect, name)
        elif name in self._lost and _ready(obj) == "True":
            loop.call_soon(self._recovered, name)

    def _collect(self, node: str) -> None:
        """Force-delete the pods still bound to a node that no longer exists."""
        cluster = self.cluster
        if cluster.store.get("nodes", None, node) is not None:
            return  # a node of that name is back
        self._lost.pop(node, None)  # (its waiters are cancelled with their pods below)
        for pod in self._pods_on(node):
            key = object_key("pods", pod)
            handle = self._evictions.pop(key, None)
            if handle is not None:
                handle.cancel()
            if pod["status"].get("phase") not in TERMINAL:
                pod["status"]["conditions"] = [
                    *(c for c in pod["status"].get("conditions") or [] if c["type"] != "Ready"),
                    _condition("Ready", "False", "PodCompleted", ""),
                    _condition("DisruptionTarget", "True", "DeletionByPodGC", _GC_MESSAGE),
                ]
                cluster.store.touch("pods", pod)
            pending = cluster.tasks.pop(key + "#delete", None)
            if pending is not None:
                pending.cancel()
            cluster._stop_pod(key, hard=True)
            meta = pod["metadata"]
            cluster.store.delete("pods", meta["namespace"], meta["name"])


def _ready(node: dict[str, Any]) -> str:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return "Unknown"


def _condition(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _set_taint(node: dict[str, Any], key: str, effect: str, present: bool) -> None:
    taints = [
        t
        for t in node["spec"].get("taints", [])
        if not (t.get("key") == key and t.get("effect") == effect)
    ]
    if present:
        taints.append({"key": key, "effect": effect, "timeAdded": now_rfc3339()})
    if taints:
        node["spec"]["taints"] = taints
    else:
        node["spec"].pop("taints", None)


def _toleration_seconds(pod: dict[str, Any], key: str, effect: str) -> float | None:
    """How long the pod tolerates taint key:effect: 0 if not at all, None if for ever."""
    best: float | None = 0.0
    found = False
    for tol in pod["spec"].get("tolerations") or []:
        if tol.get("effect") not in (None, "", effect):
            continue
        if tol.get("operator") == "Exists" and not tol.get("key"):
            pass  # tolerates every taint
        elif tol.get("key") != key:
            continue
        seconds = tol.get("tolerationSeconds")
        if seconds is None:
            return None
        best = max(best or 0.0, float(seconds)) if found else float(seconds)
        found = True
    return best if found else 0.0
