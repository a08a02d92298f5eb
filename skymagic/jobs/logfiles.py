"""A job's logs live on the controller's machine: one file per attempt, written as the pod runs.

Why copy them: a preempted pod's node, and with it the kubelet that serves its log, is gone
minutes later, and a recovered job's earlier attempts ran in other contexts. So the controller
follows each attempt's log (`LogFollower`: one streamed GET per running pod, appended to
`logs/<job>/<attempt>.log`) and readers (`read_job_logs`) never talk to a cluster: they print
every attempt in order, each headed by its context, and with `follow` keep reading the files
and the job's status changes until the job ends.

A follow that breaks off while the pod still runs is reopened, skipping the bytes already
written (a pod's log only grows, unless the kubelet rotates a very large one).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import NotFoundError, SkymagicError
from skymagic.jobs.model import TERMINAL, JobStatus
from skymagic.jobs.store import AttemptRecord, JobRecord, JobStore

__all__ = ["LogFollower", "attempt_footer", "attempt_header", "read_job_logs"]

_READ_TIMEOUT_S = 300.0  # a silent job: the follow is reopened after this (not an error)


class LogFollower:
    """Streams one pod's log into a file until the container ends; `on_done()` afterwards."""

    def __init__(
        self,
        client: ContextClient,
        namespace: str,
        pod: str,
        path: Path,
        on_done: Callable[[], None],
    ) -> None:
        self.client = client
        self.path = path
        self._pod_path = f"/api/v1/namespaces/{namespace}/pods/{pod}"
        self._on_done = on_done
        self._stop = threading.Event()
        self._resp: Any = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"log-{pod}", daemon=True)

    def start(self) -> LogFollower:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the file keeps what arrived); a blocked read returns at once."""
        self._stop.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def _run(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            delay = 0.2
            while not self._stop.is_set():
                try:
                    self._follow_once()
                    delay = 0.2
                except NotFoundError:
                    return  # the pod is gone: nothing more to read
                except SkymagicError:
                    pass  # not started yet, or the context is not answering: try again
                except Exception:  # (a shutdown() from stop() surfaces as anything)
                    if self._stop.is_set():
                        return
                if self._stop.is_set() or self._finished():
                    return
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        finally:
            self._on_done()

    def _follow_once(self) -> None:
        skip = self.path.stat().st_size if self.path.exists() else 0
        resp = self.client.request(
            "GET",
            self._pod_path + "/log",
            query={"follow": "true"},
            stream=True,
            read_timeout=_READ_TIMEOUT_S,
        )
        with self._lock:
            self._resp = resp
        try:
            with open(self.path, "ab") as fh:
                for chunk in resp.stream(65536, decode_content=True):
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if chunk:
                        fh.write(chunk)
                        fh.flush()
                    if self._stop.is_set():
                        return
        finally:
            with self._lock:
                self._resp = None
            with contextlib.suppress(Exception):
                resp.release_conn()

    def _finished(self) -> bool:
        """Has the container ended (or the pod gone)? Then the log is complete."""
        try:
            pod = self.client.get_json(self._pod_path)
        except NotFoundError:
            return True
        except SkymagicError:
            return False
        return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "-"


def attempt_header(job: JobRecord, a: AttemptRecord) -> str:
    node = f", node {a.node}" if a.node else ""
    return (
        f"=== job {job.id} ({job.name}) attempt {a.attempt} on context {a.context!r} "
        f"(pod {a.namespace}/{a.pod}{node}), started {_clock(a.started_at)} ==="
    )


def attempt_footer(a: AttemptRecord) -> str:
    reason = f": {a.reason}" if a.reason else ""
    return f"=== attempt {a.attempt} ended {_clock(a.ended_at)}: {a.outcome}{reason} ==="


def read_job_logs(
    store: JobStore,
    job_id: int,
    *,
    follow: bool = False,
    poll_s: float = 0.2,
    status_lines: bool = True,
) -> Iterator[str]:
    """Every attempt's log in order, each headed by its context; with `follow`, until the end.

    With `status_lines`, the job's status changes are interleaved as `[job N] STATUS: why`
    lines (when following) and the final status closes the output.
    """
    shown_attempt = 0  # attempts whose footer was printed
    offset = 0
    partial = b""
    header_done = False
    last_event = 0
    while True:
        job = store.job(job_id)
        if job is None:
            return
        if follow and status_lines:
            for ev in store.events(job_id, last_event):
                last_event = ev.id
                if JobStatus(ev.status) not in TERMINAL:  # (the final line says it, last)
                    yield f"[job {job_id}] {ev.status}" + (f": {ev.message}" if ev.message else "")
        attempts = store.attempts(job_id)
        for a in attempts:
            if a.attempt <= shown_attempt:
                continue
            if not header_done:
                yield attempt_header(job, a)
                header_done, offset, partial = True, 0, b""
            path = store.log_path(job_id, a.attempt)
            data = b""
            if path.exists():
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                offset += len(data)
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            for line in lines:
                yield line.decode("utf-8", "replace")
            # (a job that ended has its logs complete, even if a follower could not say so)
            complete = a.log_complete or not follow or job.status in TERMINAL
            if a.ended_at is None or not complete:
                if not follow and partial:
                    yield partial.decode("utf-8", "replace")
                break
            if partial:
                yield partial.decode("utf-8", "replace")
                partial = b""
            yield attempt_footer(a)
            shown_attempt, header_done = a.attempt, False
        finished = job.status in TERMINAL and all(a.attempt <= shown_attempt for a in attempts)
        if not follow or finished:
            if status_lines and (finished or not follow):
                # The last failure explains a failed or recovering job only: a job RUNNING
                # again, or CANCELLED, after a recovery is not in that state because of it
                # (its attempt's footer above already says why that attempt ended).
                explained = job.status in TERMINAL - {JobStatus.SUCCEEDED, JobStatus.CANCELLED}
                explained = explained or job.status == JobStatus.RECOVERING
                why = f": {job.last_failure}" if job.last_failure and explained else ""
                yield f"[job {job_id}] {job.status}{why}"
            return
        time.sleep(poll_s)
