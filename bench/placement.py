"""Placement measurements for bench/failover.py: gangs past a half-full context, waiting, races.

Two more contexts of the same fleet, `gang-half` and `gang-free`, each with two 8-H100 nodes,
`runtime: local` (every rank is a real process that resolves its peers before its task runs;
pods start after the simulator's default 0.2 s); `gang-half` has one node taken.

- Gang: a 2 x H100:8 launch allowed [gang-half, gang-free]. The plan sees that only one node
  of gang-half has room, so nothing is created there. Measured: call to both ranks Running
  (`detach`), and the pods created in gang-half (the fleet's request log).
- Waiting: every allowed context full, a single-pod H100:8 launch with retry_until_up on a
  thread; once its waiting line shows, the simulator frees a node in gang-free. Measured:
  from freeing (the control call's return) to the launch returning with the pod Running.
- Gang race: the plan reads an inventory taken while gang-half was free; another user takes
  one node before the gang is created, so one rank cannot schedule: every rank is deleted and
  the launch goes on to gang-free. Measured: the attempt in gang-half (goal: provision_timeout
  + 2 s at most) and the skymagic pods left there afterwards (goal: 0).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from skymagic.core.client import ClientSettings, clear_clients
from skymagic.core.targets import Settings
from skymagic.gpus.inventory import show_gpus
from skymagic.launches import LaunchControls, LaunchResult, down, launch_task, parse_task, status
from skymagic.sim import Fleet

HALF, FREE = "gang-half", "gang-free"
_NODE = {"name": "h100", "count": 2, "gpu": "H100", "gpus": 8, "cpu": 192, "memory_gb": 1800}
# `runtime: local`: each rank is a real process that resolves its peers (the rendezvous).
CLUSTERS: list[dict[str, Any]] = [
    {"name": name, "runtime": "local", "nodes": [_NODE]} for name in (HALF, FREE)
]
PROVISION_TIMEOUT_S = 10.0
DETACHED = LaunchControls(detach=True, provision_timeout=PROVISION_TIMEOUT_S)


def _settings() -> Settings:
    return Settings(client=ClientSettings(request_timeout=5.0), allowed_contexts=(HALF, FREE))


def _posts(fleet: Fleet, cluster: str) -> int:
    return sum(
        1
        for r in fleet.requests(cluster)
        if r.get("method") == "POST" and str(r.get("path", "")).endswith("/pods")
    )


def _gone(name: str, settings: Settings) -> None:
    """Delete the launch and wait until no pod of it is left (not timed)."""
    down([name], settings)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if status(settings).frame.empty:
            return
        time.sleep(0.05)
    raise SystemExit(f"launch {name} was not deleted within 30 s")


def _summary(times: list[float], cold: float) -> dict[str, float]:
    return {
        "cold_s": round(cold, 3),
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


def gang(fleet: Fleet, runs: int) -> dict[str, Any]:
    settings = _settings()
    fleet.add_pods(HALF, count=1, gpu="H100", gpus=8, namespace="others")
    times, posts, cold = [], [], 0.0
    for i in range(runs + 1):
        if i == 0:
            clear_clients()
        fleet.clear_requests(HALF)
        task = parse_task("sleep 600", name=f"gang-{i}", gpus="H100:8", num_nodes=2)
        t0 = time.perf_counter()
        result = launch_task(task, settings, DETACHED)
        seconds = time.perf_counter() - t0
        assert isinstance(result, LaunchResult)
        if result.context != FREE or result.status != "Running":
            raise SystemExit(f"unexpected gang result: {result}")
        posts.append(_posts(fleet, HALF))
        if i == 0:
            cold = seconds
        else:
            times.append(seconds)
        _gone(f"gang-{i}", settings)
    fleet.remove_pods(HALF, namespace="others")
    return {"runs": runs, **_summary(times, cold), "pods_created_in_gang_half": posts}


class _Waiting:
    """An observer that notes when the launch shows its waiting-for-capacity line."""

    def __init__(self) -> None:
        self.seen = threading.Event()

    def on_plan(self, plan: Any) -> None: ...
    def on_attempt(self, attempt: Any) -> None: ...
    def on_log(self, line: str) -> None: ...
    def on_message(self, text: str) -> None: ...

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        if phase.startswith("waiting for"):
            self.seen.set()


def _wait_once(fleet: Fleet, settings: Settings, name: str) -> float:
    """Fill every context, launch with retry_until_up, free one node: freed -> Running."""
    for cluster in (HALF, FREE):
        fleet.add_pods(cluster, count=2, gpu="H100", gpus=8, namespace="others")
    observer = _Waiting()
    out: dict[str, Any] = {}

    def run() -> None:
        task = parse_task("sleep 600", name=name, gpus="H100:8")
        controls = LaunchControls(detach=True, retry_until_up=True)
        out["result"] = launch_task(task, settings, controls, observer=observer)
        out["done"] = time.perf_counter()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not observer.seen.wait(30):
        raise SystemExit("the launch never started waiting")
    time.sleep(0.5)  # waiting for real, not at the first look
    fleet.remove_pods(FREE, namespace="others", count=1)
    freed = time.perf_counter()
    thread.join(60)
    result = out.get("result")
    if not isinstance(result, LaunchResult) or result.status != "Running":
        raise SystemExit(f"unexpected waiting result: {result}")
    _gone(name, settings)
    fleet.remove_pods(HALF, namespace="others")
    fleet.remove_pods(FREE, namespace="others")
    return float(out["done"] - freed)


def waiting(fleet: Fleet, runs: int) -> dict[str, Any]:
    settings = _settings()
    times = [_wait_once(fleet, settings, f"wait-{i}") for i in range(runs)]
    return {
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


def race(fleet: Fleet, runs: int) -> dict[str, Any]:
    settings = _settings()
    attempt_s: list[float] = []
    left: list[int] = []
    total: list[float] = []
    for i in range(runs):
        snapshot = show_gpus(settings)  # gang-half has both nodes free here ...
        fleet.add_pods(HALF, count=1, gpu="H100", gpus=8, namespace="others")  # ... not now
        inventory_fn: Callable[..., Any] = lambda _s, _i, inv=snapshot: inv  # noqa: E731
        task = parse_task("sleep 600", name=f"race-{i}", gpus="H100:8", num_nodes=2)
        t0 = time.perf_counter()
        result = launch_task(task, settings, DETACHED, inventory_fn=inventory_fn)
        total.append(time.perf_counter() - t0)
        assert isinstance(result, LaunchResult)
        first = result.attempts[0]
        if (first.context, first.outcome, result.context) != (HALF, "unschedulable", FREE):
            raise SystemExit(f"unexpected race result: {result}")
        attempt_s.append(first.seconds)
        frame = status(settings, ranks=True).frame
        left.append(int((frame["context"] == HALF).sum()))
        _gone(f"race-{i}", settings)
        fleet.remove_pods(HALF, namespace="others")
    return {
        "runs": runs,
        "attempt_in_gang_half_median_s": round(statistics.median(attempt_s), 3),
        "attempt_in_gang_half_max_s": round(max(attempt_s), 3),
        "total_median_s": round(statistics.median(total), 3),
        "pods_left_in_gang_half": left,
        "provision_timeout_s": PROVISION_TIMEOUT_S,
    }
