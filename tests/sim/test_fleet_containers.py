"""A `runtime: local` container ends as a whole, as on a real node.

Kubernetes ends every process in a container when its main process exits (and when the pod is
deleted): what the main process left in the background, under `setsid`, double-forked, or
what an exec started there, dies with it. Each test records the pids of such leftovers in the
pod's home and asserts they are gone once the pod ended, through the official client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream
from simkit import api_client, pod_manifest, wait_for

from skymagic.sim import Fleet
from skymagic.sim.containerprocs import CONTAINER_ENV, marked_pids

SPEC: dict[str, Any] = {
    "clusters": [
        {"name": "local", "runtime": "local", "pod_start_s": 0.05,
         "nodes": [{"count": 1, "name": "box", "cpu": 16, "memory_gb": 64}]},
    ]
}  # fmt: skip

# Leftovers of every kind, each writing its pid to ~/<what>.pid: a plain background job (it
# holds the log pipe open), one in a session of its own, and a double fork under setsid.
LEFTOVERS = (
    "sleep 300 & echo $! > ~/bg.pid; "
    "setsid sh -c 'echo $$ > ~/sid.pid; exec sleep 300' > /dev/null 2>&1 & "
    "( setsid sh -c 'echo $$ > ~/dbl.pid; exec sleep 300' > /dev/null 2>&1 & ); "
    "while [ ! -s ~/sid.pid ] || [ ! -s ~/dbl.pid ]; do sleep 0.05; done"
)
# An exec leaving a process behind in a session of its own.
EXEC_LEFTOVER = "setsid sh -c 'echo $$ > ~/exec.pid; exec sleep 300' > /dev/null 2>&1 &"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture(scope="module")
def v1(fleet: Fleet) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, "local"))


def home(fleet: Fleet, name: str) -> Path:
    return Path(fleet.state_dir) / "clusters" / "0" / "pods" / f"default_{name}"


def alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def pids(fleet: Fleet, name: str, *whats: str) -> dict[str, int]:
    found = {w: home(fleet, name) / f"{w}.pid" for w in whats}
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in found.values()), 10)
    return {w: int(p.read_text()) for w, p in found.items()}


def phase(v1: client.CoreV1Api, name: str) -> str:
    return str(v1.read_namespaced_pod(name, "default").status.phase)


def start(v1: client.CoreV1Api, name: str, script: str) -> None:
    v1.create_namespaced_pod("default", pod_manifest(name, command=["sh", "-c", script]))
    wait_for(lambda: phase(v1, name) != "Pending", 10, f"{name} started")


def exec_in(v1: client.CoreV1Api, name: str, script: str) -> None:
    stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        "default",
        command=["sh", "-c", script],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )


def test_a_local_pods_leftover_processes_die_when_its_main_process_exits(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    # The main process waits for the exec, leaves its own leftovers, then exits 0.
    start(v1, "ends", f"while [ ! -e ~/go ]; do sleep 0.05; done; {LEFTOVERS}; echo done")
    exec_in(v1, "ends", EXEC_LEFTOVER)
    left = pids(fleet, "ends", "exec")
    (home(fleet, "ends") / "go").touch()
    left |= pids(fleet, "ends", "bg", "sid", "dbl")

    # The pod ends with its main process, though a background job still held its log pipe.
    wait_for(lambda: phase(v1, "ends") == "Succeeded", 15, "the pod to end with its main process")
    pod = v1.read_namespaced_pod("ends", "default")
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert v1.read_namespaced_pod_log("ends", "default") == "done\n"
    # Every process the container held is gone, whatever session it had made.
    wait_for(lambda: not any(alive(p) for p in left.values()), 10, f"leftovers gone: {left}")


def test_deleting_a_local_pod_ends_every_process_in_it(fleet: Fleet, v1: client.CoreV1Api) -> None:
    start(v1, "gone", f"{LEFTOVERS}; echo up; exec sleep 300")
    wait_for(lambda: phase(v1, "gone") == "Running", 10)
    exec_in(v1, "gone", EXEC_LEFTOVER)
    left = pids(fleet, "gone", "bg", "sid", "dbl", "exec")
    assert all(alive(p) for p in left.values())

    v1.delete_namespaced_pod("gone", "default", grace_period_seconds=1)

    def deleted() -> bool:
        try:
            v1.read_namespaced_pod("gone", "default")
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(deleted, 15, "the pod deleted")
    wait_for(lambda: not any(alive(p) for p in left.values()), 10, f"leftovers gone: {left}")


def test_a_process_that_escaped_the_mark_does_not_keep_the_pod_running(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    """`env -i` drops the mark and `setsid` leaves the group (nothing escapes a real cgroup):
    the pod still ends with its main process, its log closed on the simulator's side a few
    seconds later."""
    # The main process waits for the escape to complete: exiting sooner would end the
    # container while the child still carried the mark, and it would rightly be killed.
    start(
        v1,
        "escape",
        "env -i setsid sh -c 'echo $$ > esc.pid; exec sleep 60' & "
        "while [ ! -s esc.pid ]; do sleep 0.05; done; echo bye",
    )
    escaped = pids(fleet, "escape", "esc")["esc"]
    try:
        wait_for(lambda: phase(v1, "escape") == "Succeeded", 20, "the pod to end")
        assert v1.read_namespaced_pod_log("escape", "default") == "bye\n"
        assert alive(escaped)  # it did escape
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(escaped, signal.SIGKILL)  # this test's own leftover, by its pid


def test_the_mark_finds_a_containers_processes_only() -> None:
    """The cgroup stand-in: the mark in a process's environment, exactly."""

    mine = "test/one/uid-1"
    procs = [
        subprocess.Popen(["sleep", "30"], env={**os.environ, CONTAINER_ENV: name})
        for name in (mine, mine + "0", "other")
    ]
    try:
        assert marked_pids(mine) == [procs[0].pid]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert marked_pids(mine) == []


def test_a_main_process_killed_by_a_signal_exits_128_plus_the_signal(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    # As a container runtime reports it (137 for SIGKILL), never Python's negative code.
    start(v1, "killed", "echo $$ > ~/main.pid; exec sleep 300")
    main = pids(fleet, "killed", "main")["main"]
    os.kill(main, signal.SIGKILL)
    wait_for(lambda: phase(v1, "killed") == "Failed", 15, "the pod to fail")
    terminated = v1.read_namespaced_pod("killed", "default").status.container_statuses[0]
    assert terminated.state.terminated.exit_code == 137
    assert terminated.state.terminated.reason == "Error"
