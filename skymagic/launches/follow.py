"""Following a started pod's log to its end, through outages, without ever running it twice.

Once a pod has started, failover is over: whatever goes wrong with the log stream (an API
server outage, a 500, a black-holed or stalled connection), the pod keeps running where it
is. So this module never deletes anything. It reads the log with `timestamps=true` and a
bounded read timeout; when the stream ends or fails it re-reads the pod: a finished pod ends
the follow with its exit code, a running one is followed again from where the log stood
(`sinceTime`, lines already shown skipped). If the context stays unreachable for
`reconnect_for` seconds, the follow ends with a line saying the pod keeps running there and
how to follow it.

`follow_lines` is that one mechanism as a generator of log lines (its return value is the
FollowOutcome): the launch's own follow (`follow_pod`, which hands each line to an observer;
with `run_done` it ends at the entrypoint's RUN_DONE line, for a pod that outlives its run),
each rank of a multi-node launch (gangfollow.py, one thread per rank) and
`%sky_logs NAME --follow` (`lifecycle.logs`) all run it, so a stalled stream is detected,
resumed and bounded the same way in each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from urllib3.exceptions import HTTPError

from skymagic.core.client import ContextClient
from skymagic.errors import NotFoundError, SkymagicError
from skymagic.launches.agent import run_done_code

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

__all__ = [
    "FOLLOW_READ_TIMEOUT_S",
    "RECONNECT_FOR_S",
    "FollowOutcome",
    "FollowReporter",
    "PodObserver",
    "follow_lines",
    "follow_pod",
    "pod_exit",
]

FOLLOW_READ_TIMEOUT_S = 30.0  # longest silence on the log stream before the pod is re-read
RECONNECT_FOR_S = 60.0  # how long a started pod's unreachable context is retried

_TERMINAL = ("Succeeded", "Failed")


class FollowReporter(Protocol):
    """What following a pod reports besides its log lines (lost contact, reconnects)."""

    def on_progress(self, context: str, phase: str, elapsed: float) -> None: ...
    def on_message(self, text: str) -> None: ...


class PodObserver(FollowReporter, Protocol):
    """What following a pod reports (runner.LaunchObserver is one; rerun.py and gang.py report
    the same)."""

    def on_log(self, line: str) -> None: ...


@dataclass
class FollowOutcome:
    """How a follow ended: `phase` Succeeded/Failed (with `exit_code`), or why it stopped."""

    phase: str  # Succeeded | Failed | Running (unreachable) | Deleted | Stopped (by `stop`)
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

    def query(self, tail: int | None) -> dict[str, Any]:
        """Where to read from: after the newest line shown, or (nothing shown yet) the tail."""
        query: dict[str, Any] = {"timestamps": "true"}
        if self.text is not None:
            query["sinceTime"] = self.since()
        elif tail is not None:
            query["tailLines"] = tail
        return query

    def skips(self) -> dict[tuple[str, int], int]:
        return {self.key: self.at_key} if self.key is not None else {}

    def take(self, raw: bytes, skip: dict[tuple[str, int], int]) -> str | None:
        """The line to show without its timestamp, or None when it was shown already."""
        line = raw.decode("utf-8", "replace")
        stamp, sep, rest = line.partition(" ")
        key = _ts_key(stamp) if sep else None
        if key is None:
            return line
        if self.key is not None and key <= self.key:
            if key < self.key:
                return None
            if skip.get(key, 0) > 0:
                skip[key] -= 1
                return None
        if key == self.key:
            self.at_key += 1
        else:
            self.key, self.text, self.at_key = key, stamp, 1
        return rest


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
    run_done: bool = False,
) -> FollowOutcome:
    """Stream the pod's log to `obs` until the container ends; never raises for the context's
    faults.

    With `run_done` (a pod that outlives its run: autostop) the follow ends at the
    entrypoint's RUN_DONE line instead, with the run's exit code; the pod keeps running.
    KeyboardInterrupt propagates to the caller (who detaches and says so).
    """
    lines = follow_lines(
        client, ns, name, obs, started, read_timeout=read_timeout, reconnect_for=reconnect_for
    )
    try:
        while True:
            try:
                line = next(lines)
            except StopIteration as done:
                outcome: FollowOutcome = done.value  # the pod ended (or was lost) first
                return outcome
            code = run_done_code(line) if run_done else None
            if code is not None:
                return FollowOutcome("Succeeded" if code == 0 else "Failed", code)
            obs.on_log(line)
    finally:
        lines.close()  # an interrupted follow closes its open stream now, not at collection


def follow_lines(
    client: ContextClient,
    ns: str,
    name: str,
    obs: FollowReporter,
    started: float,
    *,
    read_timeout: float,
    reconnect_for: float,
    tail: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> Generator[str, None, FollowOutcome]:
    """Yield the pod's log lines until the container ends, then return how it ended.

    Never raises for the context's faults: each read waits at most `read_timeout` (a stalled
    stream is a timeout like any other failure), after which the pod is re-read; a running pod
    is followed again from where the log stood (`sinceTime`, no line twice); a context that
    stays unreachable for `reconnect_for` seconds ends the follow with phase "Running".
    `tail` limits the first read to the last lines (as `tailLines`). `stop()` is asked each
    time the stream ended or failed (so within `read_timeout` of being set): True ends the
    follow with phase "Stopped" (a follower on a thread of its own whose caller is done).
    """
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    cursor = _Cursor()
    reconnects = 0
    last_contact = time.monotonic()
    lost = ""
    backoff = 0.2
    while True:
        query = {"follow": "true", **cursor.query(tail)}
        skip = cursor.skips()
        try:
            for raw in client.stream_lines(path + "/log", query, read_timeout=read_timeout):
                line = cursor.take(raw, skip)
                last_contact = time.monotonic()
                if line is not None:
                    yield line
            last_contact = time.monotonic()
        except (SkymagicError, HTTPError, OSError) as exc:
            lost = exc.message if isinstance(exc, SkymagicError) else _describe(exc)
        if stop is not None and stop():
            return FollowOutcome("Stopped", lost=lost, reconnects=reconnects)
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
            yield from _drain(client, path, cursor, tail)
            return FollowOutcome(phase, pod_exit(pod), reconnects=reconnects)
        if lost:
            obs.on_message(f"{client.name}: the log stream broke ({lost}); following it again")
            lost = ""
        reconnects += 1
        obs.on_progress(client.name, phase, _age(started))
        time.sleep(0.1)


def _drain(
    client: ContextClient, path: str, cursor: _Cursor, tail: int | None
) -> Generator[str, None, None]:
    """The lines written after the stream broke and before the container ended."""
    skip = cursor.skips()
    try:
        resp = client.request("GET", path + "/log", query=cursor.query(tail))
    except SkymagicError:
        return
    for raw in resp.data.splitlines():
        if raw.strip():
            line = cursor.take(raw, skip)
            if line is not None:
                yield line


def _describe(exc: BaseException) -> str:
    text = str(exc).split(":")[-1].strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def _age(started: float) -> float:
    return time.monotonic() - started
