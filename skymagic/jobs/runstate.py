"""One active job as the controller sees it (`Run`), and the facts derived from it alone.

The supervisor's collaborators (`lifecycle.py`, `attempts.py`, `disruption.py`,
`adoption.py`) all read and write the same `Run` of a job; keeping it in a module of its own
lets each of them take it without importing the others. They all run on the supervisor's one
loop thread, so a `Run` has one writer and needs no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.targets import Settings
from skymagic.jobs.classify import PodVerdict
from skymagic.jobs.logfiles import LogFollower
from skymagic.jobs.model import JobRecovery, JobStatus
from skymagic.jobs.store import JobRecord, JobStore
from skymagic.launches.podspec import selector_for
from skymagic.launches.task import Task

__all__ = ["Run", "launch_selector", "record_status"]


@dataclass
class Run:
    """The controller's view of one active job."""

    rec: JobRecord
    task: Task
    settings: Settings
    recovery: JobRecovery
    # new|discovering|launching|waiting|running|finishing|clearing|retry_wait|done
    phase: str = "new"
    attempt: int = 0
    context: str = ""
    namespace: str = ""
    pod: str = ""
    uid: str = ""
    node: str = ""
    client: ContextClient | None = None
    verdict: PodVerdict | None = None  # a finished pod's, while its log completes
    finish_by: float = 0.0
    after_clear: str = "relaunch"  # relaunch | cancel
    cancel_seen: bool = False  # the cancel request was acted on
    cancel_after_launch: bool = False
    delete_sent: bool = False
    force_sent: bool = False
    confirming: bool = False
    gone: bool = False  # the current attempt's pod is confirmed gone
    node_bad_since: float | None = None
    retry_s: float = 1.0
    follower: LogFollower | None = None
    follower_attempt: int = 0
    log_done: bool = True

    @property
    def id(self) -> int:
        return self.rec.id


def record_status(
    store: JobStore, run: Run, status: JobStatus, message: str = "", **fields: Any
) -> None:
    """Write the job's status (and `fields`) to the database and refresh `run.rec` from it."""
    store.set_status(run.id, status, message, **fields)
    refreshed = store.job(run.id)
    if refreshed is not None:
        run.rec = refreshed


def launch_selector(run: Run) -> str:
    """Everything one job's launches made (pod, Service, Secrets) carries its launch labels."""
    return selector_for(run.rec.launch_name, run.task.user)
