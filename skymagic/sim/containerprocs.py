"""Every process of a `runtime: local` container, found and ended as a container runtime would.

On a real node a container's processes live in its own PID namespace and cgroup: when the
main process (PID 1 there) exits, or the pod is deleted, the runtime kills every process left
in the container, however it was started (in the background, under `setsid` or `nohup`,
double-forked, or exec'd into the container). Local pods here are plain processes of this
machine, so a leftover would outlive its pod and keep the pod's log pipe open.

The simulator's stand-in for the cgroup is an environment mark: every process of a local
container (the main one and every exec'd one) starts with `SKYMAGIC_SIM_CONTAINER=<id>` (one
id per pod object), and its descendants inherit it. Ending a container kills its known process
groups, then every process whose environment (/proc/PID/environ) carries the mark, pass after
pass until none is left (a process forking meanwhile is caught by the next pass). A process
that drops its environment (`env -i`) escapes, as nothing would escape a cgroup; without /proc
(not Linux) only the process groups are ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CONTAINER_ENV", "end_container", "marked_pids"]

CONTAINER_ENV = "SKYMAGIC_SIM_CONTAINER"
_PASSES = 20  # a fork bomb could outrun any bound; real workloads are gone after one or two


def marked_pids(container: str, proc: Path = Path("/proc")) -> list[int]:
    """The live processes whose environment carries `container`'s mark."""
    mark = f"{CONTAINER_ENV}={container}".encode()
    found = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:  # gone, a zombie's, or another user's
            continue
        if mark in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def end_container(container: str | None, groups: Iterable[int] = ()) -> int:
    """SIGKILL the process groups `groups` and every process marked as `container`'s; how
    many marked processes were found (0 when the container had ended already)."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if not container:
        return 0
    killed: set[int] = set()
    for _ in range(_PASSES):
        pids = [p for p in marked_pids(container) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.update(pids)
    return len(killed)
