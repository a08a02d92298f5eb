"""Stopping the run on a gang's other ranks once one rank failed.

SkyPilot's multi-node job driver (`get_or_fail` in skypilot-org/skypilot
sky/backends/task_codegen.py) waits on every node's task and, as soon as one returns non-zero,
force-cancels the others (`ray.cancel(force=True)`: their processes are killed, their return
code recorded as 137) and reports the job FAILED, saying a worker failed and the processes on
the other nodes were cleaned up; the nodes stay up. A
torch job whose rank died otherwise hangs in a collective on every other rank, holding its
GPUs until the NCCL timeout, if ever. skymagic does the same through exec: on every other
rank, agent.stop_run's script stops the job (the entrypoint's `launch`, or a re-run's own id)
and everything it started. The pods are not deleted: a task pod ends once its run ends (its
log stays readable), a pod that outlives its run (a dev pod, autostop) stays up.

A task pod's status would otherwise say only Failed; it is annotated first with why it was
stopped, and `%sky_status --ranks` shows `Stopped (rank N failed)`. Stopping runs on worker
threads, all ranks at once. `FirstFailure` is the rule every follower of a gang's run shares
(the launch's own run, gangfollow.py; a re-run on every rank, gangrerun.py; `%%sky_exec NAME
--rank all`, rankexec.run_on_ranks, which gangrerun.py runs too).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.podstreams import exec_stream
from skymagic.errors import NotFoundError, SkymagicError
from skymagic.launches.agent import STOP_GRACE_S, stop_run
from skymagic.launches.follow import PodObserver

__all__ = [
    "ANNOTATION_STOPPED",
    "FirstFailure",
    "RankEnds",
    "RankEvent",
    "ranks_named",
    "stop_note",
    "stop_ranks",
    "stopped_status",
]

STOP_WAIT_S = 30.0  # after the stop's grace: how long stopped ranks may take to end

# Set on a task pod whose run skymagic stopped because another rank failed: "rank N failed
# (exit code C)".
ANNOTATION_STOPPED = "skymagic.dev/stopped"


def stop_note(rank: int, code: int | None) -> str:
    """Why the other ranks were stopped, as the annotation and the messages say it."""
    return f"rank {rank} failed (exit code {code})"


def stopped_status(annotations: dict[str, str]) -> str | None:
    """`Stopped (rank N failed)` for an ended pod annotated as stopped, else None."""
    note = annotations.get(ANNOTATION_STOPPED)
    if not note:
        return None
    return f"Stopped ({note.split(' (', 1)[0]})"


def _ended(client: ContextClient, ns: str, name: str) -> bool:
    """Whether the pod has ended (its run ended with it), so a failed exec stopped nothing."""
    try:
        pod = client.get_json(f"/api/v1/namespaces/{ns}/pods/{name}")
    except NotFoundError:
        return True
    except SkymagicError:
        return False
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def _stop_one(
    client: ContextClient,
    ns: str,
    name: str,
    run_id: str,
    why: str,
    annotate: bool,
    grace_s: float,
) -> str:
    """Stop `run_id` in pod `name`: '' when done (or nothing ran), else what went wrong."""
    if annotate:
        # Annotated before the run is stopped, so no status shows it plainly Failed; a pod
        # that may not be patched is still stopped.
        with contextlib.suppress(SkymagicError):
            client.request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{name}",
                body={"metadata": {"annotations": {ANNOTATION_STOPPED: why}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
    try:
        outcome = exec_stream(client, ns, name, stop_run(run_id, grace_s, why))
    except NotFoundError:
        return ""  # the pod is gone, and its run with it
    except SkymagicError as exc:
        return "" if _ended(client, ns, name) else exc.message
    if outcome.exit_code != 0 and not _ended(client, ns, name):
        return outcome.message or f"the stop command exited with code {outcome.exit_code}"
    return ""


def stop_ranks(
    client: ContextClient,
    ns: str,
    names: dict[int, str],
    run_id: str,
    why: str,
    *,
    annotate: bool = False,
    grace_s: float = STOP_GRACE_S,
) -> dict[int, str]:
    """Stop job `run_id` on every rank of `names` (rank -> pod name) at once.

    `why` (stop_note's words) ends each stopped job's output; with `annotate` it is written on
    each pod first, for a task pod's status. Returns, per rank that could not be stopped, why
    not (a pod already gone, or ended, counts as stopped).
    """
    if not names:
        return {}
    with ThreadPoolExecutor(len(names), thread_name_prefix="skymagic-stop-rank") as pool:
        futures = {
            rank: pool.submit(_stop_one, client, ns, name, run_id, why, annotate, grace_s)
            for rank, name in sorted(names.items())
        }
        results = {rank: fut.result() for rank, fut in futures.items()}
    return {rank: why for rank, why in results.items() if why}


def ranks_named(ranks: list[int]) -> str:
    """'rank 0' or 'ranks 0, 2'."""
    return f"rank{'s' if len(ranks) != 1 else ''} {', '.join(str(r) for r in sorted(ranks))}"


@dataclass
class RankEnds:
    """How a gang's run ended on its ranks: each rank's exit code, the ranks that failed on
    their own (the first first), and the ranks whose run was stopped because of it."""

    codes: dict[int, int | None] = field(default_factory=dict)
    failed: list[tuple[int, int | None]] = field(default_factory=list)  # (rank, exit code)
    stopped: list[int] = field(default_factory=list)
    not_stopped: dict[int, str] = field(default_factory=dict)  # rank -> why it could not be

    def reason(self) -> str:
        """'rank 1 exited with code 3; stopped the run on rank 0' ('' when none failed)."""
        if not self.failed:
            return ""
        parts = [f"rank {r} exited with code {c}" for r, c in self.failed]
        if self.stopped:
            parts.append(f"stopped the run on {ranks_named(self.stopped)}")
        parts += [f"could not stop rank {r} ({why})" for r, why in sorted(self.not_stopped.items())]
        return "; ".join(parts)

    @property
    def exit_code(self) -> int | None:
        """The first failing rank's exit code, else rank 0's."""
        return self.failed[0][1] if self.failed else self.codes.get(0)


# What a rank's thread hands the follower's thread: (rank, kind, item); kinds are the caller's,
# except _STOPPED, the stop's answer ({rank: why}), which FirstFailure.events() takes in.
RankEvent = tuple[int, str, Any]
_STOPPED = "stopped"


class FirstFailure:
    """Records each rank's end; at the first failure, stops the run on every rank still going.

    The ranks' threads put their (rank, kind, item) events on `queue`; the follower reads them
    through `events()` and calls `end()`, all on its own thread. The stop runs on a thread of
    its own and puts its answer on the same queue, which `events()` takes in (`stopped()`), so
    the follower keeps showing the stopped ranks' last lines meanwhile. `deadline` is when to
    stop waiting for stopped ranks to end.
    """

    def __init__(
        self,
        client: ContextClient,
        ns: str,
        names: dict[int, str],
        run_id: str,
        *,
        annotate: bool,
    ) -> None:
        self.client, self.ns, self.names, self.run_id = client, ns, names, run_id
        self.annotate = annotate
        self.queue: queue.Queue[RankEvent] = queue.Queue()
        self.ends = RankEnds()
        self.stopping: set[int] = set()
        self.deadline: float | None = None

    @property
    def done(self) -> bool:
        return len(self.ends.codes) >= len(self.names)

    def wait_s(self) -> float | None:
        """How long the follower may wait for the next event (None: no bound yet)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def end(self, rank: int, code: int | None, failed: bool, obs: PodObserver) -> None:
        """Rank `rank`'s run ended with `code` (`failed`: not successfully)."""
        ends = self.ends
        if rank in ends.codes:
            return
        ends.codes[rank] = code
        if not failed:
            return
        if rank in self.stopping:
            ends.stopped.append(rank)
            return
        ends.failed.append((rank, code))
        others = {r: n for r, n in self.names.items() if r not in ends.codes}
        if len(ends.failed) > 1 or not others:
            return
        self.stopping = set(others)
        obs.on_message(
            f"{stop_note(rank, code)}: stopping the run on {ranks_named(list(others))} "
            "(the pods stay)"
        )
        note = stop_note(rank, code)

        def stop() -> None:
            try:
                why = stop_ranks(
                    self.client, self.ns, others, self.run_id, note, annotate=self.annotate
                )
            except Exception as exc:  # never leave the follower waiting for this answer
                why = dict.fromkeys(others, f"{type(exc).__name__}: {exc}")
            self.queue.put((-1, _STOPPED, why))

        threading.Thread(target=stop, name="skymagic-stop-ranks", daemon=True).start()
        self.deadline = time.monotonic() + STOP_GRACE_S + STOP_WAIT_S

    def events(self) -> Iterator[RankEvent]:
        """The ranks' events until every rank ended, or until the stopped ranks' deadline
        passed (`give_up`); the stop's answer is taken in here, not yielded."""
        while not self.done:
            try:
                rank, kind, item = self.queue.get(timeout=self.wait_s())
            except queue.Empty:
                self.give_up()  # a stopped rank did not end in time: report without it
                return
            if kind == _STOPPED:
                self.stopped(item)
            else:
                yield rank, kind, item

    def stopped(self, why: dict[int, str]) -> None:
        """The stop's answer: a rank that could not be stopped is not waited for."""
        for rank, text in why.items():
            if rank not in self.ends.codes:
                self.ends.not_stopped[rank] = text
                self.ends.codes[rank] = None

    def give_up(self) -> None:
        """The deadline passed: name the stopped ranks that have not ended."""
        for rank in sorted(self.stopping):
            if rank not in self.ends.codes:
                self.ends.not_stopped.setdefault(rank, "it had not ended when the follow gave up")
