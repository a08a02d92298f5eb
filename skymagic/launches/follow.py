"""Following a started pod's log to its end, through outages, without ever running it twice.

Once a pod has started, failover is over: whatever goes wrong with the log stream (an API
server outage, a 500, a black-holed or stalled connection), the pod keeps running where it
is. So this module never deletes anything. It reads the log with `timestamps=true` and a
bounded read timeout; when the stream ends or fails it re-reads the pod: a finished pod ends
the follow with its exit code, a running one is followed again from where the log stood
(`sinceTime`, lines already shown skipped). If the context stays unreachable for
`reconnect_for` seconds, the follow ends with a line saying the pod keeps running there and
how to follow it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from urllib3.exceptions import HTTPError

from skymagic.core.client import ContextClient
from skymagic.errors import NotFoundError, SkymagicError

__all__ = ["FollowOutcome", "PodObserver", "follow_pod", "pod_exit"]

_TERMINAL = ("Succeeded", "Failed")


class PodObserver(Protocol):
    """What following a pod reports (runner.LaunchObserver is one; rerun.py and gang.py report
    the same)."""

    def on_progress(self, context: str, phase: str, elapsed: float) -> None: ...
    def on_log(self, line: str) -> None: ...
    def on_message(self, text: str) -> None: ...


@dataclass
class FollowOutcome:
    """How a follow ended: `phase` Succeeded/Failed (with `exit_code`), or why it stopped."""

    phase: str  # Succeeded | Failed | Running (unreachable) | Deleted | Interrupted
    exit_code: int | None = None
    lost: str = ""  # the last error, when the context became unreachable
    reconnects: int = 0


@dataclass
class _Cursor:
    """Where the log stood: the newest timestamp shown, and how many lines carried it."""

    key: tuple[str, int] | None = None
    text: str | None = None
    at_key: int = 0

    def since(self) -> str | None:
        # Whole seconds: the server returns a superset; lines already shown are skipped.
        return None if self.text is None else self.text[:19] + "Z"

    def take(self, raw: bytes, obs: PodObserver, skip: dict[tuple[str, int], int]) -> None:
        line = raw.decode("utf-8", "replace")
        stamp, sep, rest = line.partition(" ")
        key = _ts_key(stamp) if sep else None
        if key is None:
            obs.on_log(line)
            return
        if self.key is not None and key <= self.key:
            if key < self.key:
                return
            if skip.get(key, 0) > 0:
                skip[key] -= 1
                return
        if key == self.key:
            self.at_key += 1
        else:
            self.key, self.text, self.at_key = key, stamp, 1
        obs.on_log(rest)


def _ts_key(stamp: str) -> tuple[str, int] | None:
    """RFC3339(Nano) -> a sortable key (Go trims trailing zeros, so text order is wrong)."""
    if len(stamp) < 20 or stamp[4] != "-" or stamp[10] != "T" or not stamp.endswith("Z"):
        return None
    whole, _, frac = stamp[:-1].partition(".")
    try:
        datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        nanos = int((frac or "0").ljust(9, "0")[:9])
    except ValueError:
        return None
    return whole, nanos


def pod_exit(pod: dict[str, Any]) -> int | None:
    """The main container's exit code of a finished pod."""
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return int(term.get("exitCode", 0))
    return None


def follow_pod(
    client: ContextClient,
    ns: str,
    name: str,
    obs: PodObserver,
    started: float,
    *,
    read_timeout: float,
    reconnect_for: float,
) -> FollowOutcome:
    """Stream the pod's log until the container ends; never raises for the context's faults.

    KeyboardInterrupt propagates to the caller (who detaches and says so).
    """
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    cursor = _Cursor()
    reconnects = 0
    last_contact = time.monotonic()
    lost = ""
    backoff = 0.2
    while True:
        query: dict[str, Any] = {"follow": "true", "timestamps": "true"}
        since = cursor.since()
        if since:
            query["sinceTime"] = since
        skip = {cursor.key: cursor.at_key} if cursor.key is not None else {}
        try:
            for raw in client.stream_lines(path + "/log", query, read_timeout=read_timeout):
                cursor.take(raw, obs, skip)
                last_contact = time.monotonic()
            last_contact = time.monotonic()
        except (SkymagicError, HTTPError, OSError) as exc:
            lost = exc.message if isinstance(exc, SkymagicError) else _describe(exc)
        # The stream ended or failed: the pod's own state says what happened.
        try:
            pod = client.get_json(path)
            last_contact = time.monotonic()
        except NotFoundError:
            return FollowOutcome("Deleted", reconnects=reconnects)
        except SkymagicError as exc:
            lost = exc.message
            if time.monotonic() - last_contact >= reconnect_for:
                return FollowOutcome("Running", lost=lost, reconnects=reconnects)
            obs.on_progress(client.name, f"lost contact ({lost}); retrying", _age(started))
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            continue
        backoff = 0.2
        phase = str(pod.get("status", {}).get("phase", "Unknown"))
        if phase in _TERMINAL:
            _drain(client, path, cursor, obs)
            return FollowOutcome(phase, pod_exit(pod), reconnects=reconnects)
        if lost:
            obs.on_message(f"{client.name}: the log stream broke ({lost}); following it again")
            lost = ""
        reconnects += 1
        obs.on_progress(client.name, phase, _age(started))
        time.sleep(0.1)


def _drain(client: ContextClient, path: str, cursor: _Cursor, obs: PodObserver) -> None:
    """The lines written after the stream broke and before the container ended."""
    query: dict[str, Any] = {"timestamps": "true"}
    since = cursor.since()
    if since:
        query["sinceTime"] = since
    skip = {cursor.key: cursor.at_key} if cursor.key is not None else {}
    try:
        resp = client.request("GET", path + "/log", query=query)
    except SkymagicError:
        return
    for raw in resp.data.splitlines():
        if raw.strip():
            cursor.take(raw, obs, skip)


def _describe(exc: BaseException) -> str:
    text = str(exc).split(":")[-1].strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def _age(started: float) -> float:
    return time.monotonic() - started
