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
from skymagic.launches.agent import LAUNCH_RUN, RUN_DONE
from skymagic.launches.follow import PodObserver, pod_exit
from skymagic.launches.gangstop import FirstFailure, RankEnds
from skymagic.launches.rendezvous import MARKER
from skymagic.launches.task import Task

__all__ = ["GangFollow", "follow_gang"]

_FINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class GangFollow:
    """How a followed gang ended: its status, the exit code (the first failing rank's, else
    rank 0's) and each rank's end (gangstop.RankEnds)."""

    status: str  # Succeeded | Failed | Running | Detached
    exit_code: int | None = None
    ends: RankEnds = field(default_factory=RankEnds)

    @property
    def failed(self) -> list[tuple[int, int | None]]:
        return self.ends.failed

    def reason(self) -> str:
        return self.ends.reason()


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
    rule = FirstFailure(
        client,
        ns,
        names,
        LAUNCH_RUN,
        annotate=not outlives,  # a task pod ends with its run: its status says why
        post=lambda why: q.put(("stopped", -1, why)),
    )
    result = GangFollow("Running", ends=rule.ends)
    try:
        while not rule.done:
            try:
                kind, rank, item = q.get(timeout=rule.wait_s())
            except queue.Empty:
                rule.give_up()  # a stopped rank did not end in time: report without it
                break
            if kind == "stopped":
                rule.stopped(item)
            elif kind == "line":
                if rank in rule.ends.codes and outlives:
                    continue  # the idle pod after its run
                if outlives and item.startswith(RUN_DONE):
                    code = _run_done(item)
                    rule.end(rank, code, code != 0, obs)
                elif not item.startswith(MARKER):  # the rendezvous prologue's own line
                    obs.on_log(f"(rank={rank}) {item}")
            elif rank not in rule.ends.codes:
                pod = _final(client, ns, names[rank])
                ended = pod_exit(pod)
                failed = pod.get("status", {}).get("phase") == "Failed" or bool(ended)
                rule.end(rank, ended, failed, obs)
    except KeyboardInterrupt:
        result.status = "Detached"
        return result
    finally:
        done.set()
    if rule.ends.failed:
        result.status, result.exit_code = "Failed", rule.ends.exit_code
    elif rule.done:
        result.status, result.exit_code = "Succeeded", rule.ends.exit_code
    return result
