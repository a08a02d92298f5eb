"""One simulated cluster's behaviour: start-up load, scheduler loop, kubelet-like pod runtime.

The API layer (apiserver.py) turns HTTP into calls on this class; the fleet process's control
channel (serve.py, driven by `Fleet` in fleet.py) changes it at run time (cordon, NotReady,
add/remove nodes and pods, faults).

Which GPU a node has comes from the spec (the node group's profile in labels.py), never from
detecting it in the node's labels with the product's code: the simulator is what the product's
GPU detection is tested against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import random
import shlex
import signal
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skymagic.sim import objects
from skymagic.sim.labels import gpu_name
from skymagic.sim.netnames import NameTable, local_pod_ip
from skymagic.sim.nodelife import NodeLifecycle
from skymagic.sim.podexec import PodRuntime
from skymagic.sim.rbac import Authorizer
from skymagic.sim.scheduler import TERMINAL, NodeUsage, fits
from skymagic.sim.spec import ClusterSpec, NodeGroup, PodGroup
from skymagic.sim.store import Store, now_rfc3339, object_key

__all__ = ["PodLog", "SimCluster"]

ANN_DURATION = objects.SIM_ANNOTATION + "duration"
ANN_LOGS = objects.SIM_ANNOTATION + "logs"
ANN_EXIT = objects.SIM_ANNOTATION + "exit-code"


@dataclass
class PodLog:
    """A container's output so far; followers wait on `changed`."""

    lines: list[bytes] = field(default_factory=list)
    closed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    times: list[float] = field(default_factory=list)  # when each line was written (epoch s)

    def append(self, data: bytes) -> None:
        self.lines.append(data)
        self.times.append(time.time())
        self.changed.set()

    def stamped(self, index: int) -> tuple[float, bytes]:
        """Line `index` with the time it was written (lines given at creation: time 0)."""
        at = self.times[index] if index < len(self.times) else 0.0
        return at, self.lines[index]

    def close(self) -> None:
        self.closed = True
        self.changed.set()


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
        self._ips = itertools.count(2)
        self._sched_wakeup: asyncio.Event | None = None
        self._sched_task: asyncio.Task[None] | None = None
        self._fail_messages: dict[str, str] = {}
        # node name -> (GPU name, device resource) its node group offers (objects.gpu_offer)
        self.offers: dict[str, tuple[str, str]] = {}
        self.store.listeners.append(self._on_change)
        # Preemption, lost nodes, taint eviction and pod GC (nodelife.py).
        self.nodelife = NodeLifecycle(self)
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
            self._ensure_namespace(ns, record=False)
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
        pods = list(self._place_load(nodes))
        self.store.bulk_load("pods", pods)
        self.usage.bulk_add(("pods/" + object_key("pods", p), p) for p in pods)

    def _ensure_namespace(self, ns: str, record: bool = True) -> None:
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

    def _place_load(self, nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Spread the spec's pods over matching nodes without running the scheduler per pod."""
        free: dict[str, dict[str, float]] = {}
        by_gpu: dict[str | None, list[tuple[dict[str, Any], str | None]]] = {}
        for candidate in nodes:
            name = candidate["metadata"]["name"]
            free[name] = {
                "cpu": 1e9,
                **{r: float(q) for r, q in objects.node_gpu_resources(candidate).items()},
            }
            by_gpu.setdefault(None, []).append((candidate, None))
            offer = self.offers.get(name)
            if offer is not None:
                by_gpu.setdefault(offer[0], []).append((candidate, offer[1]))
        counter = 0
        for group in self.spec.pods:
            candidates = by_gpu.get(gpu_name(group.gpu) if group.gpu else None, [])
            if group.gpu and not candidates:
                raise ValueError(
                    f"cluster '{self.spec.name}': pods want gpu {group.gpu!r} but no node has it"
                )
            terminal = group.phase in TERMINAL
            bound = group.phase != "Pending" and bool(candidates)
            resource = candidates[0][1] if candidates else None
            stamper = objects.PodStamper(group, resource, candidates[0][0] if bound else None)
            need = group.gpus if resource else 0
            cursor = 0
            for i in range(group.count):
                counter += 1
                node: dict[str, Any] | None = None
                if bound:
                    for step in range(len(candidates)):
                        cand = candidates[(cursor + step) % len(candidates)][0]
                        name = cand["metadata"]["name"]
                        if not need or terminal or free[name].get(resource or "", 0) >= need:
                            node = cand
                            if need and not terminal:
                                free[name][resource or ""] -= need
                            cursor = (cursor + step + 1) % len(candidates)
                            break
                    if node is None:
                        raise ValueError(
                            f"cluster '{self.spec.name}': not enough {group.gpu} for the spec's "
                            f"pods (group {group.name!r}, pod {i})"
                        )
                ip = f"10.{100 + self.index % 100}.{(counter // 250) % 250}.{counter % 250 + 1}"
                yield stamper.make(i + counter * 7919, node, ip)

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
        for pod in pending:
            node_name, message = fits(pod, nodes, self.usage)
            key = object_key("pods", pod)
            if node_name is None:
                if self._fail_messages.get(key) != message:
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
                    self.store.touch("pods", pod)
                    self._event(pod, "FailedScheduling", message, "Warning", "default-scheduler")
                continue
            self._fail_messages.pop(key, None)
            self._bind(pod, node_name)

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
        self.store.touch("pods", pod)
        meta = pod["metadata"]
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
            "Normal",
            "default-scheduler",
        )
        key = object_key("pods", pod)
        self.tasks[key] = asyncio.create_task(self._kubelet(key))

    def _event(
        self, obj: dict[str, Any], reason: str, message: str, etype: str, component: str
    ) -> None:
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
        meta = pod["metadata"]
        spec = pod["spec"]
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        spec.setdefault("priority", 0)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("securityContext", {})
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tolerations):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": self.spec.toleration_s,
                    }
                )
        for c in spec["containers"] + spec.get("initContainers", []):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault(
                "imagePullPolicy",
                "Always" if c.get("image", "").endswith(":latest") else "IfNotPresent",
            )
            c.setdefault("resources", {})
            res = c["resources"]
            if res.get("limits") and not res.get("requests"):
                res["requests"] = dict(res["limits"])
            elif res.get("limits"):
                for k, v in res["limits"].items():
                    res["requests"].setdefault(k, v)
        pod["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("resourceVersion", None)
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
            self.store.touch("pods", pod)
            self._event(pod, "Killing", "Stopping container main", "Normal", "kubelet")
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

    # -- the kubelet -------------------------------------------------------------------------
    async def _kubelet(self, key: str) -> None:
        await asyncio.sleep(self.spec.pod_start_s)
        entry = self.store.objects["pods"].get(key)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            return
        pod = entry.obj
        container = pod["spec"]["containers"][0]
        node = self.store.get("nodes", None, pod["spec"]["nodeName"])
        host_ip = node.obj["status"]["addresses"][0]["address"] if node else "10.0.0.1"
        if self.spec.runtime == "local":  # a loopback address of its own (netnames.py)
            ip = local_pod_ip(self.index, next(self._ips))
        else:
            ip = f"10.{100 + self.index % 100}.250.{next(self._ips) % 250 + 1}"
        started = now_rfc3339()
        image = container.get("image", "")
        self._event(
            pod,
            "Pulled",
            f'Container image "{image}" already present on machine',
            "Normal",
            "kubelet",
        )
        self._event(pod, "Created", f"Created container {container['name']}", "Normal", "kubelet")
        self._event(pod, "Started", f"Started container {container['name']}", "Normal", "kubelet")
        pod["status"].update(
            phase="Running",
            hostIP=host_ip,
            hostIPs=[{"ip": host_ip}],
            podIP=ip,
            podIPs=[{"ip": ip}],
            startTime=started,
            conditions=_conditions(ready=True),
            containerStatuses=[
                _container_status(c, {"running": {"startedAt": started}}, ready=True)
                for c in pod["spec"]["containers"]
            ],
        )
        self.store.touch("pods", pod)
        log = self.logs.setdefault(key, PodLog())
        if self.spec.runtime == "local":
            code = await self._run_local(key, pod, log)
        else:
            code = await self._run_simulated(pod, log)
        if code is None:
            return
        entry = self.store.objects["pods"].get(key)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            log.close()
            return
        pod = entry.obj
        finished = now_rfc3339()
        pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        pod["status"]["conditions"] = _conditions(ready=False)
        pod["status"]["containerStatuses"] = [
            _container_status(
                c,
                {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": started,
                        "finishedAt": finished,
                    }
                },
                ready=False,
            )
            for c in pod["spec"]["containers"]
        ]
        log.close()
        self.tasks.pop(key, None)
        self.procs.pop(key, None)
        self.runtime.forget(key)  # the container's other processes die with it
        self.store.touch("pods", pod)

    async def _run_simulated(self, pod: dict[str, Any], log: PodLog) -> int | None:
        ann = pod["metadata"].get("annotations") or {}
        for line in str(ann.get(ANN_LOGS, "")).splitlines():
            log.append(line.encode() + b"\n")
        command = " ".join(_argv(pod["spec"]["containers"][0]))
        if ANN_DURATION in ann:
            duration = float(ann[ANN_DURATION])
        elif "sleep infinity" in command or not command:
            duration = float("inf")
        else:
            duration = self.spec.default_duration_s
        if duration == float("inf"):
            await asyncio.Event().wait()
        await asyncio.sleep(duration)
        return int(ann.get(ANN_EXIT, 0))

    async def _run_local(self, key: str, pod: dict[str, Any], log: PodLog) -> int | None:
        container = pod["spec"]["containers"][0]
        argv = _argv(container) or ["sleep", "infinity"]
        try:  # stdin kept open for attach with `stdin: true` (podexec.py)
            proc = await self.runtime.start_main(key, pod, container, argv)
        except OSError as exc:
            log.append(f"exec {shlex.join(argv)}: {exc.strerror}\n".encode())
            return 127
        self.procs[key] = proc
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            log.append(line)
        return await proc.wait()

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
        self._ensure_namespace(group.namespace)
        nodes = [e.obj for e in self.store.objects["nodes"].values()]
        names = []
        base = int(time.time() * 1000) % 10_000_000
        for i, pod in enumerate(self._place_load_live(group, nodes, base)):
            self.store.put("pods", pod)
            key = object_key("pods", pod)
            self.logs[key] = PodLog(lines=[b"simulated load started\n"])
            names.append(pod["metadata"]["name"])
            del i
        return names

    def _place_load_live(
        self, group: PodGroup, nodes: list[dict[str, Any]], base: int
    ) -> Iterator[dict[str, Any]]:
        want = gpu_name(group.gpu) if group.gpu else None
        for i in range(group.count):
            placed = None
            for node in nodes:
                offer = self.offers.get(node["metadata"]["name"])
                if want is not None and (offer is None or offer[0] != want):
                    continue
                res = offer[1] if want is not None and offer is not None else None
                if res:
                    alloc = float(node["status"]["allocatable"].get(res, 0))
                    used = self.usage.by_node.get(node["metadata"]["name"], {}).get(res, 0.0)
                    if group.phase not in TERMINAL and alloc - used < group.gpus:
                        continue
                placed = (node, res)
                break
            if placed is None:
                raise ValueError(
                    f"no node in '{self.spec.name}' has room for {group.gpus} x {group.gpu}"
                )
            ip = f"10.{100 + self.index % 100}.200.{(base + i) % 250 + 1}"
            yield objects.build_pod(
                group, base + i, node=placed[0], gpu_resource=placed[1], pod_ip=ip
            )

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


def _argv(container: dict[str, Any]) -> list[str]:
    return [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]


def _qos(spec: dict[str, Any]) -> str:
    reqs = [c.get("resources", {}) for c in spec["containers"]]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        r.get("limits", {}).get(k) is not None
        and r.get("requests", {}).get(k) == r.get("limits", {}).get(k)
        for r in reqs
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _conditions(ready: bool) -> list[dict[str, Any]]:
    ts = now_rfc3339()
    flag = "True" if ready else "False"
    return [
        {
            "type": "PodReadyToStartContainers",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": ts,
        },
        {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts},
        {"type": "Ready", "status": flag, "lastProbeTime": None, "lastTransitionTime": ts},
        {
            "type": "ContainersReady",
            "status": flag,
            "lastProbeTime": None,
            "lastTransitionTime": ts,
        },
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts},
    ]


def _container_status(
    container: dict[str, Any], state: dict[str, Any], ready: bool
) -> dict[str, Any]:
    image = container.get("image", "")
    digest = uuid.uuid5(uuid.NAMESPACE_URL, image).hex
    return {
        "name": container["name"],
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{digest}{digest}",
        "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "started": ready,
    }
