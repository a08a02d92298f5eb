"""The pane of glass over managed jobs: launch, queue, logs, cancel, and the controller seam.

Clients never run a job themselves: they write it down and hand it to a controller, which
launches it, watches it and recovers it while no kernel is running. `JobsController` is that
seam. `LocalController` (the only one today) keeps the jobs in a SQLite database and their
logs in files under the state directory, and runs `python -m skymagic.jobs.controller` on this
machine, started on demand. A controller running as a pod in one of the clusters could
implement the same protocol (its database in the cluster, reached through the API server); the
labels on every job pod (`model.py`) already let any controller find a job's pods again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from skymagic.core.targets import Settings, pin_targets, resolve_targets
from skymagic.errors import ConfigError
from skymagic.jobs import process
from skymagic.jobs.jobspec import (
    pod_name,
    settings_to_json,
    split_job_recovery,
    task_id,
    task_to_json,
)
from skymagic.jobs.logfiles import read_job_logs
from skymagic.jobs.model import TERMINAL, JobRecovery, JobStatus
from skymagic.jobs.process import ControllerStatus
from skymagic.jobs.store import AttemptRecord, EventRecord, JobRecord, JobStore
from skymagic.launches.task import Task, TaskOptions, parse_task

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "QUEUE_COLUMNS",
    "Job",
    "JobsController",
    "LocalController",
    "cancel",
    "controller",
    "launch",
    "logs",
    "queue",
]

QUEUE_COLUMNS = [
    "id",
    "name",
    "status",
    "context",
    "recoveries",
    "submitted",
    "started",
    "duration",
    "resources",
    "last_failure",
    "details",
]


class JobsController(Protocol):
    """What the pane of glass needs from whatever controls the jobs."""

    def submit(
        self,
        task: Task,
        settings: Settings,
        recovery: JobRecovery,
        provision_timeout: float | None = None,
    ) -> int: ...
    def request_cancel(self, job_ids: Sequence[int]) -> None: ...
    def jobs(self) -> list[JobRecord]: ...
    def attempts(self, job_id: int) -> list[AttemptRecord]: ...
    def events(self, job_id: int) -> list[EventRecord]: ...
    def read_logs(self, job_id: int, *, follow: bool) -> Iterator[str]: ...
    def ensure_running(self) -> ControllerStatus: ...


class LocalController:
    """Jobs in a SQLite database under `directory`, run by a local controller process."""

    def __init__(self, directory: Any = None) -> None:
        self.store = JobStore(directory)

    def submit(
        self,
        task: Task,
        settings: Settings,
        recovery: JobRecovery,
        provision_timeout: float | None = None,
    ) -> int:
        job_id = self.store.submit(
            name=task.name,
            launch_name=lambda i: pod_name(task.name, i),
            task=task_to_json(task),
            settings=settings_to_json(settings, provision_timeout),
            recovery=json.dumps(asdict(recovery)),
            task_id=lambda i, t: task_id(task.name, i, t),
            resources=_resources(task),
        )
        self.ensure_running()
        return job_id

    def request_cancel(self, job_ids: Sequence[int]) -> None:
        self.store.request_cancel(list(job_ids))
        self.ensure_running()

    def jobs(self) -> list[JobRecord]:
        return self.store.jobs()

    def attempts(self, job_id: int) -> list[AttemptRecord]:
        return self.store.attempts(job_id)

    def events(self, job_id: int) -> list[EventRecord]:
        return self.store.events(job_id)

    def read_logs(self, job_id: int, *, follow: bool) -> Iterator[str]:
        return read_job_logs(self.store, job_id, follow=follow)

    def ensure_running(self) -> ControllerStatus:
        return process.ensure_running(self.store.dir)


def controller() -> LocalController:
    """The controller for this machine's state directory ($SKYMAGIC_JOBS_DIR, ~/.skymagic/jobs)."""
    return LocalController()


def _resources(task: Task) -> str:
    """SkyPilot's INSTANCE text, e.g. 32CPU--128GB--8H100."""
    return task.instance()


@dataclass(frozen=True)
class Job:
    """A submitted managed job: its id and name; everything else is read live."""

    id: int
    name: str
    ctl: JobsController

    def record(self) -> JobRecord:
        for rec in self.ctl.jobs():
            if rec.id == self.id:
                return rec
        raise ConfigError(f"managed job {self.id} is no longer in the jobs database")

    @property
    def status(self) -> JobStatus:
        return self.record().status

    def history(self) -> list[EventRecord]:
        """Every status change, in order, with its time and why, as the controller recorded
        it: a state shorter than a poll of `status` (a quick recovery's RECOVERING) is in it."""
        return self.ctl.events(self.id)

    def logs(self, follow: bool = False) -> Iterator[str]:
        return self.ctl.read_logs(self.id, follow=follow)

    def cancel(self) -> None:
        self.ctl.request_cancel([self.id])

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.2) -> JobStatus:
        """Block until the job ends (or `timeout_s` passes); its status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.status
            if status in TERMINAL or (deadline is not None and time.monotonic() > deadline):
                return status
            time.sleep(poll_s)

    def __str__(self) -> str:
        return f"Managed job {self.id} ({self.name}): {self.status}"

    def __repr__(self) -> str:
        return str(self)


def launch(
    body: str = "",
    options: TaskOptions | None = None,
    *,
    settings: Settings | None = None,
    max_restarts_on_errors: int | None = None,
    provision_timeout: float | None = None,
    ctl: JobsController | None = None,
    **flags: Any,
) -> Job:
    """Submit a managed job (a script or SkyPilot task YAML, the flags of `%%sky_launch`).

    The controller launches it through the usual placement and recovers it from preemptions
    and lost nodes while this process is gone; `resources.job_recovery` in the YAML (or
    `max_restarts_on_errors`) also restarts it after its own non-zero exits. When nothing
    has room, it waits for capacity (PENDING or RECOVERING; the queue's details say for what)
    and starts the moment something has; a request that can never fit in any allowed context
    ends FAILED_NO_RESOURCE at once, with what would fit. Returns at once.
    """
    settings = settings or Settings()
    body, recovery_value = split_job_recovery(body)
    recovery = JobRecovery.parse(recovery_value).with_restarts(max_restarts_on_errors)
    task = parse_task(body, options, **flags)
    if task.is_dev_pod:
        raise ConfigError(
            "a managed job needs a run command (an empty cell is a dev pod: use %%sky_launch)"
        )
    # What would fail in the controller anyway fails here, at once: the kubeconfig, the
    # config, the admin policy, an --infra that names no allowed context.
    pin_targets(resolve_targets(settings, None, operation="jobs", task=task), task.infra)
    ctl = ctl or controller()
    return Job(ctl.submit(task, settings, recovery, provision_timeout), task.name, ctl)


def _resolve(ctl: JobsController, names: Sequence[str], *, active: bool) -> list[JobRecord]:
    """Jobs named by id or name; a name means its latest job (every active one with `active`)."""
    jobs = ctl.jobs()
    out: list[JobRecord] = []
    for name in names:
        if name.isdigit():
            hit = [j for j in jobs if j.id == int(name)]
        else:
            named = [j for j in jobs if j.name == name]
            live = [j for j in named if j.status not in TERMINAL] if active else []
            hit = live or named[-1:]
        if not hit:
            raise ConfigError(f"no managed job named {name!r}; see %sky_jobs_queue")
        out.extend(j for j in hit if j not in out)
    return out


def queue(*, ctl: JobsController | None = None) -> pd.DataFrame:
    """Every managed job, newest first: id, name, status, context, recoveries, submitted,
    started, duration (seconds), resources, last_failure, and details (its latest status
    message, e.g. what a PENDING or RECOVERING job waits for)."""
    import pandas as pd

    ctl = ctl or controller()
    jobs = ctl.jobs()
    if any(j.status not in TERMINAL for j in jobs):
        ctl.ensure_running()  # active jobs need a controller; a killed one restarts here
    rows = []
    now = time.time()
    for job in reversed(jobs):
        attempts = ctl.attempts(job.id)
        end = job.ended_at or now
        rows.append(
            {
                "id": job.id,
                "name": job.name,
                "status": job.status.value,
                "context": attempts[-1].context if attempts else "",
                "recoveries": job.recoveries,
                "submitted": datetime.fromtimestamp(job.submitted_at),
                "started": datetime.fromtimestamp(job.started_at) if job.started_at else None,
                "duration": round(end - job.started_at, 1) if job.started_at else None,
                "resources": job.resources,
                "last_failure": job.last_failure,
                "details": job.details,
            }
        )
    frame: pd.DataFrame = pd.DataFrame(rows, columns=QUEUE_COLUMNS)
    return frame


def logs(name: str, *, follow: bool = False, ctl: JobsController | None = None) -> Iterator[str]:
    """Every attempt's log of job `name` (or id), in order, each headed by its context."""
    ctl = ctl or controller()
    (job,) = _resolve(ctl, [name], active=False)
    if follow and job.status not in TERMINAL:
        ctl.ensure_running()
    return ctl.read_logs(job.id, follow=follow)


def cancel(
    names: Sequence[str] = (),
    *,
    all: bool = False,  # (named as the flag users type: --all)
    wait_s: float | None = None,
    ctl: JobsController | None = None,
) -> list[Job]:
    """Cancel jobs by name or id (a name: every active job of that name), or all active ones.

    The controller removes their pods (gracefully) and marks them CANCELLED; with `wait_s`,
    this returns once they are (or the time is up).
    """
    ctl = ctl or controller()
    if not names and not all:
        raise ConfigError("name the jobs to cancel (names or ids), or use --all")
    targets = (
        [j for j in ctl.jobs() if j.status not in TERMINAL]
        if all
        else _resolve(ctl, names, active=True)
    )
    active = [j for j in targets if j.status not in TERMINAL]
    if active:
        ctl.request_cancel([j.id for j in active])
    handles = [Job(j.id, j.name, ctl) for j in active]
    if wait_s is not None:
        for h in handles:
            h.wait(wait_s)
    return handles
