"""Watching a new pod until it starts, or until it is clear it will not start in time.

The pod and its events are watched together: Bound goes on; FailedScheduling (the inventory
raced another user), a cluster autoscaler's TriggeredScaleUp (keep waiting) or
NotTriggerScaleUp (fail over now), and provision_timeout are weighed by the one rule a gang's
ranks follow too (scaleup.StartRule).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import SkymagicError
from skymagic.launches.scaleup import StartRule

__all__ = ["pod_events_path", "wait_for_start", "watch_into"]

_WATCH_SECONDS = 5


def _pods_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def pod_events_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/events"


def watch_into(
    client: ContextClient,
    path: str,
    query: dict[str, Any],
    kind: str,
    q: queue.Queue[tuple[str, dict[str, Any]]],
    stop: threading.Event,
    seconds: int,
) -> None:
    """Feed watch events into `q` until `stop` (re-watching when the server ends the watch)."""
    rv = query.get("resourceVersion", "")
    while not stop.is_set():
        try:
            for event in client.watch(
                path, {**query, "resourceVersion": rv}, timeout_seconds=seconds
            ):
                obj = event.get("object") or {}
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                q.put((kind, event))
                if stop.is_set():
                    return
        except SkymagicError as exc:
            q.put(("error", {"message": exc.message}))
            return


def wait_for_start(
    client: ContextClient,
    ns: str,
    name: str,
    rv: str,
    provision_timeout: float,
    obs: Any,
    t0: float,
) -> tuple[str, str, dict[str, Any] | None]:
    """Watch the pod and its events: ('started', '', pod) or (outcome, reason, None)."""
    q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    stop = threading.Event()
    # Short server-side watches, re-opened from the last resourceVersion: a watcher thread
    # can only notice `stop` between events, so this bounds how long a finished attempt's
    # two watch connections linger (a long watch would hold them for the whole timeout).
    seconds = _WATCH_SECONDS
    watches = (
        (_pods_path(ns), {"fieldSelector": f"metadata.name={name}"}, "pod"),
        (pod_events_path(ns), {"fieldSelector": f"involvedObject.name={name}"}, "event"),
    )
    threads = [
        threading.Thread(
            target=watch_into,
            args=(client, path, {**params, "resourceVersion": rv}, kind, q, stop, seconds),
            daemon=True,
        )
        for path, params, kind in watches
    ]
    for t in threads:
        t.start()
    rule = StartRule.starting(provision_timeout, time.monotonic())
    bound = False
    phase = "Pending"
    try:
        while True:
            now = time.monotonic()
            verdict = rule.verdict(now, bound)
            if verdict is not None:
                return verdict[0], verdict[1], None
            obs.on_progress(client.name, phase if bound else "waiting for a node", now - t0)
            try:
                kind, event = q.get(timeout=rule.wait(now, bound))
            except queue.Empty:
                continue
            if kind == "error":
                return "error", str(event.get("message", "watch failed")), None
            obj = event.get("object") or {}
            if kind == "event":
                if not bound:
                    said = rule.event(
                        str(obj.get("reason", "")), str(obj.get("message", "")), time.monotonic()
                    )
                    if said:
                        obs.on_message(f"{client.name}: {said}")
                continue
            if event.get("type") == "DELETED":
                return "error", "the pod was deleted while starting", None
            node = obj.get("spec", {}).get("nodeName")
            if node:
                bound = True
                rule.all_bound()
            phase = str(obj.get("status", {}).get("phase", phase))
            if node and phase == "Pending":
                phase = f"scheduled on {node}, starting the container"
            if phase in ("Running", "Succeeded", "Failed"):
                return "started", "", obj
    finally:
        stop.set()
