"""Following a started gang: every rank's log, and the first failing rank stopping the others.

Every rank's log streams at once on its own thread; the lines reach the observer from the
caller's thread, each prefixed `(rank=N)` (the rendezvous prologue's own line is dropped). A
rank's run has ended when its log ends (a task pod: the pod's phase and exit code say how), or,
for pods that outlive their run (autostop), at the entrypoint's RUN_DONE line.

The first rank whose run fails fails the launch, and the run on every other rank still going
is stopped at once (gangstop.py: SkyPilot cancels the other nodes' tasks the same way), so no
rank is left hanging in a collective with its GPUs held. The follow then waits for the stopped
ranks to end, showing what they printed meanwhile, and reports the failing rank and its exit
code; the stopped ranks are named as stopped, not as failures. Ctrl-C detaches: the pods keep
running, nothing is stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import NotFoundError, SkymagicError
from skymagic.launches.agent import LAUNCH_RUN, RUN_DONE, STOP_GRACE_S
from skymagic.launches.follow import PodObserver
from skymagic.launches.gangstop import stop_note, stop_ranks
from skymagic.launches.rendezvous import MARKER
from skymagic.launches.task import Task

__all__ = ["GangFollow", "follow_gang", "ranks_named", "stopped_reason"]

_FINAL_PHASES = ("Succeeded", "Failed")
STOP_WAIT_S = 30.0  # after the stop's grace: how long stopped ranks may take to end


@dataclass
class GangFollow:
    """How a followed gang ended: the first failing rank's exit code (else rank 0's), every rank
    that failed on its own, and the ranks whose run was stopped because of it."""

    status: str  # Succeeded | Failed | Running | Detached
    exit_code: int | None = None
    failed: list[tuple[int, int | None]] = field(default_factory=list)  # (rank, exit code)
    stopped: list[int] = field(default_factory=list)
    not_stopped: dict[int, str] = field(default_factory=dict)  # rank -> why it could not be

    def reason(self) -> str:
        parts = [f"rank {r} exited with code {c}" for r, c in self.failed]
        if self.failed:
            parts += stopped_reason(self.stopped, self.not_stopped)
        return "; ".join(parts)


def ranks_named(ranks: list[int]) -> str:
    """'rank 0' or 'ranks 0, 2'."""
    return f"rank{'s' if len(ranks) != 1 else ''} {', '.join(str(r) for r in sorted(ranks))}"


def stopped_reason(stopped: list[int], not_stopped: dict[int, str]) -> list[str]:
    """The words for what stopping the other ranks did."""
    parts = [f"stopped the run on {ranks_named(stopped)}"] if stopped else []
    parts += [f"could not stop rank {r} ({why})" for r, why in sorted(not_stopped.items())]
    return parts


def _exit_code(pod: dict[str, Any]) -> int | None:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return int(term.get("exitCode", 0))
    return None


# What the threads hand the caller's thread: ("line", rank, text), ("end", rank, None) when a
# rank's log ended, ("stopped", -1, {rank: why}) when stopping the other ranks is done.
_Event = tuple[str, int, Any]


def _stream(
    client: ContextClient, path: str, rank: int, q: queue.Queue[_Event], done: threading.Event
) -> None:
    try:
        for line in client.stream_lines(path, {"follow": "true"}):
            if done.is_set():
                return  # the follow is over; closing the generator drops the stream
            q.put(("line", rank, line.decode("utf-8", "replace")))
    except SkymagicError as exc:
        q.put(("line", rank, f"(log stream ended: {exc.message})"))
    finally:
        q.put(("end", rank, None))


def _final(client: ContextClient, ns: str, name: str, wait_s: float = 30.0) -> dict[str, Any]:
    """The pod once its phase is final (its log ended), or as it is after `wait_s`."""
    deadline = time.monotonic() + wait_s
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            pod = client.get_json(f"/api/v1/namespaces/{ns}/pods/{name}")
        except NotFoundError:
            return {"status": {"phase": "Failed"}, "metadata": {"name": name}}
        if pod.get("status", {}).get("phase") in _FINAL_PHASES:
            return pod
        time.sleep(0.05)
    return pod


def _run_done(line: str) -> int:
    try:
        return int(line[len(RUN_DONE) :].strip())
    except ValueError:
        return -1


class _Ends:
    """Each rank's end as it comes, and the stop of the others at the first failure."""

    def __init__(
        self, client: ContextClient, ns: str, names: dict[int, str], annotate: bool
    ) -> None:
        self.client, self.ns, self.names, self.annotate = client, ns, names, annotate
        self.codes: dict[int, int | None] = {}
        self.result = GangFollow("Running")
        self.stopping: set[int] = set()
        self.deadline: float | None = None

    def end(self, rank: int, code: int | None, bad: bool, obs: PodObserver, q: Any) -> None:
        if rank in self.codes:
            return
        self.codes[rank] = code
        if not bad:
            return
        if rank in self.stopping:
            self.result.stopped.append(rank)
            return
        self.result.failed.append((rank, code))
        if len(self.result.failed) > 1:
            return
        others = {r: n for r, n in self.names.items() if r not in self.codes}
        if not others:
            return
        self.stopping = set(others)
        obs.on_message(
            f"{stop_note(rank, code)}: stopping the run on {ranks_named(list(others))} "
            "(the pods stay)"
        )
        note = stop_note(rank, code) if self.annotate else None

        def stop() -> None:
            try:
                why = stop_ranks(self.client, self.ns, others, LAUNCH_RUN, note=note)
            except Exception as exc:  # never leave the follow waiting for this answer
                why = dict.fromkeys(others, f"{type(exc).__name__}: {exc}")
            q.put(("stopped", -1, why))

        threading.Thread(target=stop, name="skymagic-stop-ranks", daemon=True).start()
        self.deadline = time.monotonic() + STOP_GRACE_S + STOP_WAIT_S

    def stopped(self, why: dict[int, str]) -> None:
        for rank, text in why.items():
            if rank not in self.codes:  # it keeps running: do not wait for it
                self.result.not_stopped[rank] = text
                self.codes[rank] = None


def follow_gang(
    client: ContextClient, ns: str, task: Task, pods: dict[int, dict[str, Any]], obs: PodObserver
) -> GangFollow:
    """Stream every rank's log, prefixed `(rank=N)`, until every rank's run ended.

    The first failing rank stops the run on the others (the module docstring); Ctrl-C
    detaches (the pods keep running).
    """
    q: queue.Queue[_Event] = queue.Queue()
    done = threading.Event()
    names = {r: str(p["metadata"]["name"]) for r, p in pods.items()}
    outlives = task.idle_minutes is not None  # RUN_DONE ends a rank's run, not its log
    for rank, name in sorted(names.items()):
        path = f"/api/v1/namespaces/{ns}/pods/{name}/log"
        threading.Thread(
            target=_stream,
            args=(client, path, rank, q, done),
            name=f"skymagic-rank-{rank}",
            daemon=True,
        ).start()
    ends = _Ends(client, ns, names, annotate=not outlives)
    result = ends.result
    try:
        while len(ends.codes) < len(names):
            wait = None if ends.deadline is None else max(0.0, ends.deadline - time.monotonic())
            try:
                kind, rank, item = q.get(timeout=wait)
            except queue.Empty:
                break  # a stopped rank did not end in time: report without it
            if kind == "stopped":
                ends.stopped(item)
            elif kind == "line":
                if rank in ends.codes and outlives:
                    continue  # the idle pod after its run
                if outlives and item.startswith(RUN_DONE):
                    code = _run_done(item)
                    ends.end(rank, code, code != 0, obs, q)
                elif not item.startswith(MARKER):  # the rendezvous prologue's own line
                    obs.on_log(f"(rank={rank}) {item}")
            elif rank not in ends.codes:
                pod = _final(client, ns, names[rank])
                phase = pod.get("status", {}).get("phase")
                code = _exit_code(pod)
                ends.end(rank, code, phase == "Failed" or bool(code), obs, q)
    except KeyboardInterrupt:
        result.status = "Detached"
        return result
    finally:
        done.set()
    for rank in sorted(ends.stopping):
        if rank not in ends.codes and rank not in result.stopped:
            result.not_stopped.setdefault(rank, "it had not ended when the follow gave up")
    if result.failed:
        result.status, result.exit_code = "Failed", result.failed[0][1]
    elif len(ends.codes) == len(names):
        result.status, result.exit_code = "Succeeded", ends.codes.get(0)
    return result
