"""Watching a new pod until it starts, or until it is clear it will not start in time.

The pod and its events are watched together: Bound goes on; FailedScheduling (the inventory
raced another user) fails the attempt after a short grace for a cluster autoscaler; no
binding within provision_timeout (extended by a TriggeredScaleUp event) is a timeout.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import SkymagicError

__all__ = ["wait_for_start"]

_FAILED_SCHEDULING_GRACE_S = 1.5  # time for a cluster-autoscaler to answer a FailedScheduling
_WATCH_SECONDS = 5


def _pods_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def _watch_into(
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
    threads = [
        threading.Thread(
            target=_watch_into,
            args=(
                client,
                _pods_path(ns),
                {"fieldSelector": f"metadata.name={name}", "resourceVersion": rv},
                "pod",
                q,
                stop,
                seconds,
            ),
            daemon=True,
        ),
        threading.Thread(
            target=_watch_into,
            args=(
                client,
                f"/api/v1/namespaces/{ns}/events",
                {"fieldSelector": f"involvedObject.name={name}", "resourceVersion": rv},
                "event",
                q,
                stop,
                seconds,
            ),
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + provision_timeout
    bound = False
    failed_at: float | None = None
    failed_msg = ""
    phase = "Pending"
    try:
        while True:
            now = time.monotonic()
            if failed_at is not None and now >= failed_at:
                return "unschedulable", failed_msg, None
            if not bound and now >= deadline:
                return (
                    "timeout",
                    f"not scheduled within provision_timeout ({provision_timeout:g} s)",
                    None,
                )
            wait = 0.25
            if not bound:
                wait = min(wait, max(0.0, deadline - now))
            if failed_at is not None:
                wait = min(wait, max(0.0, failed_at - now))
            obs.on_progress(client.name, phase if bound else "waiting for a node", now - t0)
            try:
                kind, event = q.get(timeout=max(wait, 0.01))
            except queue.Empty:
                continue
            if kind == "error":
                return "error", str(event.get("message", "watch failed")), None
            obj = event.get("object") or {}
            if kind == "event":
                reason = obj.get("reason")
                if reason == "FailedScheduling" and not bound:
                    failed_msg = str(obj.get("message", "FailedScheduling"))
                    failed_at = time.monotonic() + min(
                        _FAILED_SCHEDULING_GRACE_S, provision_timeout
                    )
                elif reason == "TriggeredScaleUp":
                    failed_at = None
                    deadline = max(deadline, time.monotonic() + provision_timeout)
                    obs.on_message(f"{client.name}: the cluster autoscaler is adding a node")
                continue
            if event.get("type") == "DELETED":
                return "error", "the pod was deleted while starting", None
            node = obj.get("spec", {}).get("nodeName")
            if node:
                bound = True
                failed_at = None
            phase = str(obj.get("status", {}).get("phase", phase))
            if node and phase == "Pending":
                phase = f"scheduled on {node}, starting the container"
            if phase in ("Running", "Succeeded", "Failed"):
                return "started", "", obj
    finally:
        stop.set()
