"""The kubelet of a simulated cluster: runs a bound pod's container and reports its life.

A pod bound to a node waits `pod_start_s`, then runs: `runtime: simulate` answers from the
pod's annotations (log lines, duration, exit code); `runtime: local` runs the container's
command as a local process in the pod's directory (podexec.py), its output the pod's log; the
container ends when that process exits, and every process left in it with it
(containerprocs.py).
Status, conditions and events follow what a real kubelet reports at each step.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from skymagic.sim import objects
from skymagic.sim.clusterparts import ClusterCore
from skymagic.sim.netnames import local_pod_ip
from skymagic.sim.podexec import PodRuntime
from skymagic.sim.spec import ClusterSpec
from skymagic.sim.store import Store, now_rfc3339

__all__ = ["ANN_DURATION", "ANN_EXIT", "ANN_LOGS", "Kubelet", "PodLog"]

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


class SimCluster(ClusterCore, Protocol):
    """What this module uses of cluster.py's SimCluster (which owns a Kubelet)."""

    spec: ClusterSpec
    index: int
    store: Store
    tasks: dict[str, asyncio.Task[None]]
    procs: dict[str, asyncio.subprocess.Process]
    logs: dict[str, PodLog]
    runtime: PodRuntime


class Kubelet:
    """Runs the pods bound to one simulated cluster's nodes (on the fleet's event loop)."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self._ips = itertools.count(2)

    async def run(self, key: str) -> None:
        """Start the bound pod `key`, run its container, record how it ended."""
        cluster = self.cluster
        spec = cluster.spec
        await asyncio.sleep(spec.pod_start_s)
        entry = cluster.store.objects["pods"].get(key)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            return
        pod = entry.obj
        container = pod["spec"]["containers"][0]
        node = cluster.store.get("nodes", None, pod["spec"]["nodeName"])
        host_ip = node.obj["status"]["addresses"][0]["address"] if node else "10.0.0.1"
        if spec.runtime == "local":  # a loopback address of its own (netnames.py)
            ip = local_pod_ip(cluster.index, next(self._ips))
        else:
            ip = f"10.{100 + cluster.index % 100}.250.{next(self._ips) % 250 + 1}"
        started = now_rfc3339()
        image = container.get("image", "")
        for reason, message in (
            ("Pulled", f'Container image "{image}" already present on machine'),
            ("Created", f"Created container {container['name']}"),
            ("Started", f"Started container {container['name']}"),
        ):
            cluster.event(pod, reason, message, "Normal", "kubelet")
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
        cluster.store.touch("pods", pod)
        log = cluster.logs.setdefault(key, PodLog())
        if spec.runtime == "local":
            code = await self._run_local(key, pod, log)
        else:
            code = await self._run_simulated(pod, log)
        if code is None:
            return
        entry = cluster.store.objects["pods"].get(key)
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
        cluster.tasks.pop(key, None)
        cluster.procs.pop(key, None)
        cluster.runtime.forget(key)  # the container's other processes die with it
        cluster.store.touch("pods", pod)

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
            duration = self.cluster.spec.default_duration_s
        if duration == float("inf"):
            await asyncio.Event().wait()
        await asyncio.sleep(duration)
        return int(ann.get(ANN_EXIT, 0))

    async def _run_local(self, key: str, pod: dict[str, Any], log: PodLog) -> int | None:
        container = pod["spec"]["containers"][0]
        argv = _argv(container) or ["sleep", "infinity"]
        try:  # stdin kept open for attach with `stdin: true` (podexec.py)
            proc = await self.cluster.runtime.start_main(key, pod, container, argv)
        except OSError as exc:
            log.append(f"exec {shlex.join(argv)}: {exc.strerror}\n".encode())
            return 127
        self.cluster.procs[key] = proc
        assert proc.stdout is not None
        # The container ends when its main process exits, with every process left in it: one
        # left in the background must not keep the pod (and its log pipe) open.
        ender = asyncio.create_task(self._end_with_main(key, proc))
        try:
            while line := await proc.stdout.readline():
                log.append(line)
            code = await proc.wait()
            # A main process ended by a signal: the runtime reports 128 + signal (137 for
            # SIGKILL), as a shell does, never Python's negative return code.
            return 128 - code if code < 0 else code
        finally:
            ender.cancel()

    async def _end_with_main(self, key: str, proc: asyncio.subprocess.Process) -> None:
        """Once the main process exited, kill what is left in its container (the log's EOF
        follows); a pipe still held after that (a process that escaped the mark,
        containerprocs.py) is closed on our side after a few seconds.

        Polled: Process.wait() answers only once the pipe is closed. The log is read by the
        kubelet's own task alone (a node's shutdown drains it once that task is cancelled)."""
        while proc.returncode is None:
            await asyncio.sleep(0.05)
        self.cluster.runtime.end_processes(key)
        await asyncio.sleep(5.0)
        transport = getattr(proc, "_transport", None)  # asyncio has no public way to the pipe
        pipe = transport.get_pipe_transport(1) if transport is not None else None
        if pipe is not None:
            pipe.close()


def _argv(container: dict[str, Any]) -> list[str]:
    return [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]


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
