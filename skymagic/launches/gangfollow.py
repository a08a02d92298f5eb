"""Following a started gang: every rank's log, and the first failing rank stopping the others.

Every rank's log is followed at once, each on its own thread, with the launch's own bounded
follow (follow.follow_lines): each read waits at most `read_timeout`, a stalled or broken
stream is followed again from where it stood (`sinceTime`, no line twice), and a context that
stays unreachable for `reconnect_for` seconds ends that rank's follow. The lines reach the
observer from the caller's thread, each prefixed `(rank=N)` (the rendezvous prologue's own line
is dropped). A rank's run has ended when its pod ended (its phase and exit code say how), or,
for pods that outlive their run (autostop), at the entrypoint's RUN_DONE line.

The first rank whose run fails fails the launch, and the run on every other rank still going
is stopped at once (gangstop.py: SkyPilot cancels the other nodes' tasks the same way), so no
rank is left hanging in a collective with its GPUs held. The follow then waits for the stopped
ranks to end, showing what they printed meanwhile, and reports the failing rank and its exit
code; the stopped ranks are named as stopped, not as failures. A rank whose context stopped
answering ends the follow as Unreachable (its pod keeps running; nothing is stopped). Ctrl-C
detaches: the pods keep running, nothing is stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.launches.agent import LAUNCH_RUN, run_done_code
from skymagic.launches.follow import (
    FOLLOW_READ_TIMEOUT_S,
    RECONNECT_FOR_S,
    FollowOutcome,
    PodObserver,
    follow_lines,
)
from skymagic.launches.gangstop import FirstFailure, RankEnds, RankEvent
from skymagic.launches.rendezvous import MARKER
from skymagic.launches.task import Task

__all__ = ["GangFollow", "follow_gang"]


@dataclass
class GangFollow:
    """How a followed gang ended: its status, the exit code (the first failing rank's, else
    rank 0's), each rank's end (gangstop.RankEnds) and, per rank whose context stopped
    answering, the last error."""

    status: str  # Succeeded | Failed | Running | Detached | Unreachable
    exit_code: int | None = None
    ends: RankEnds = field(default_factory=RankEnds)
    lost: dict[int, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[tuple[int, int | None]]:
        return self.ends.failed

    def reason(self) -> str:
        return self.ends.reason()


# The ranks' events (gangstop.RankEvent): (rank, "line", text); (rank, "end", FollowOutcome or
# None) when a rank's follow ended (None: at its RUN_DONE line, or told to stop); (rank,
# "progress", (context, phase)) and (rank, "message", text) from the follow.
_Event = RankEvent


class _RankReport:
    """A rank's follow reports through the queue: the observer is the caller's thread's."""

    def __init__(self, rank: int, q: queue.Queue[_Event]) -> None:
        self.rank, self.q = rank, q

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        self.q.put((self.rank, "progress", (context, phase)))

    def on_message(self, text: str) -> None:
        self.q.put((self.rank, "message", text))


def _follow_rank(
    client: ContextClient,
    ns: str,
    name: str,
    rank: int,
    q: queue.Queue[_Event],
    done: threading.Event,
    outlives: bool,
    timeouts: tuple[float, float],
) -> None:
    """One rank's follow, on its own thread; always ends with a (rank, "end", ...) event."""
    end: FollowOutcome | None = None
    lines = follow_lines(
        client,
        ns,
        name,
        _RankReport(rank, q),
        time.monotonic(),
        read_timeout=timeouts[0],
        reconnect_for=timeouts[1],
        stop=done.is_set,
    )
    try:
        while not done.is_set():
            try:
                line = next(lines)
            except StopIteration as finished:
                end = finished.value
                break
            q.put((rank, "line", line))
            if outlives and run_done_code(line) is not None:
                break  # the run ended; the pod idles on (autostop)
    except Exception as exc:  # never leave the caller waiting for this rank
        end = FollowOutcome("Running", lost=f"{type(exc).__name__}: {exc}")
    finally:
        lines.close()  # drops the open stream now
        q.put((rank, "end", end))


def follow_gang(
    client: ContextClient,
    ns: str,
    task: Task,
    pods: dict[int, dict[str, Any]],
    obs: PodObserver,
    *,
    read_timeout: float = FOLLOW_READ_TIMEOUT_S,
    reconnect_for: float = RECONNECT_FOR_S,
) -> GangFollow:
    """Follow every rank's log, prefixed `(rank=N)`, until every rank's run ended.

    The first failing rank stops the run on the others (the module docstring); a rank whose
    context stays unreachable for `reconnect_for` seconds ends as lost (status Unreachable,
    unless a rank failed); Ctrl-C detaches (the pods keep running).
    """
    done = threading.Event()
    names = {r: str(p["metadata"]["name"]) for r, p in pods.items()}
    outlives = task.idle_minutes is not None  # RUN_DONE ends a rank's run, not its log
    started = time.monotonic()
    rule = FirstFailure(
        client,
        ns,
        names,
        LAUNCH_RUN,
        annotate=not outlives,  # a task pod ends with its run: its status says why
    )
    for rank, name in sorted(names.items()):
        threading.Thread(
            target=_follow_rank,
            args=(
                client,
                ns,
                name,
                rank,
                rule.queue,
                done,
                outlives,
                (read_timeout, reconnect_for),
            ),
            name=f"skymagic-rank-{rank}",
            daemon=True,
        ).start()
    result = GangFollow("Running", ends=rule.ends)
    try:
        for rank, kind, item in rule.events():
            if kind == "progress":
                obs.on_progress(item[0], f"{item[1]} (rank {rank})", time.monotonic() - started)
            elif kind == "message":
                obs.on_message(f"rank {rank}: {item}")
            elif kind == "line":
                _line(rule, rank, item, outlives, obs)
            elif rank not in rule.ends.codes:
                _end(rule, rank, item, result, obs)
    except KeyboardInterrupt:
        result.status = "Detached"
        return result
    finally:
        done.set()
    if rule.ends.failed:
        result.status, result.exit_code = "Failed", rule.ends.exit_code
    elif result.lost:
        result.status = "Unreachable"
    elif rule.done:
        result.status, result.exit_code = "Succeeded", rule.ends.exit_code
    return result


def _line(rule: FirstFailure, rank: int, line: str, outlives: bool, obs: PodObserver) -> None:
    if rank in rule.ends.codes and outlives:
        return  # the idle pod after its run
    code = run_done_code(line) if outlives else None
    if code is not None:
        rule.end(rank, code, code != 0, obs)
    elif not line.startswith(MARKER):  # the rendezvous prologue's own line
        obs.on_log(f"(rank={rank}) {line}")


def _end(
    rule: FirstFailure, rank: int, end: FollowOutcome | None, result: GangFollow, obs: PodObserver
) -> None:
    """Rank `rank`'s follow ended (before its RUN_DONE line, when its pod outlives its run)."""
    if end is None or end.phase == "Stopped":
        return  # told to stop: the caller is done
    if end.phase == "Running":  # its context stopped answering: the pod keeps running
        result.lost[rank] = end.lost
        rule.end(rank, None, False, obs)
    else:  # Succeeded | Failed | Deleted (a deleted pod's run did not succeed)
        rule.end(rank, end.exit_code, end.phase != "Succeeded" or bool(end.exit_code), obs)
