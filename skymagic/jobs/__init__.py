"""Managed jobs: work that survives preemptions and lost nodes, recovered across contexts.

    import skymagic.jobs as jobs
    job = jobs.launch("python train.py", gpus="H100:8", name="train")
    jobs.queue()                      # DataFrame: id, name, status, context, recoveries, ...
    for line in jobs.logs("train", follow=True): print(line)
    jobs.cancel(["train"])

How it works: a job is written to a SQLite database under the state directory
(`~/.skymagic/jobs`, or `$SKYMAGIC_JOBS_DIR`) and handed to a local controller process
(`python -m skymagic.jobs.controller`), started on demand and detached, so it outlives the
kernel. The controller launches the job through the usual placement (plan, failover), watches
its pod and node, and when the pod is preempted, evicted, deleted by someone else or its node
is deleted or NotReady past a grace time, it confirms the old pod is gone and relaunches, the
same context first when it has room; when no allowed context has room, the job waits for
capacity (watching, creating nothing) and starts the moment one has. Every job pod is
labelled with the database and job, so a restarted controller re-adopts running jobs from the
clusters themselves. States are
SkyPilot's (`JobStatus`); `resources.job_recovery` takes SkyPilot's keys.

What the local controller cannot do: it recovers jobs only while the machine it runs on is up
and can reach the clusters. While it is down (a laptop asleep, the machine off) nothing is
watched; jobs keep running in their clusters, and the next `skymagic jobs` command (or
`controller start`) starts a controller that re-adopts them and catches up on what it missed
(a pod that vanished meanwhile is recovered then). A controller running as a pod in one of
the clusters could replace it behind `JobsController` (api.py): the labels and the states are
the contract, the database and logs would move with it.
"""

from __future__ import annotations

from skymagic.jobs.api import (
    QUEUE_COLUMNS,
    Job,
    JobsController,
    LocalController,
    cancel,
    controller,
    launch,
    logs,
    queue,
)
from skymagic.jobs.model import ACTIVE, TERMINAL, JobRecovery, JobStatus
from skymagic.jobs.process import ControllerStatus

__all__ = [
    "ACTIVE",
    "QUEUE_COLUMNS",
    "TERMINAL",
    "ControllerStatus",
    "Job",
    "JobRecovery",
    "JobStatus",
    "JobsController",
    "LocalController",
    "cancel",
    "controller",
    "controller_start",
    "controller_status",
    "controller_stop",
    "launch",
    "logs",
    "queue",
]


def controller_start() -> ControllerStatus:
    """Start the local controller (if it is not running)."""
    from skymagic.jobs import process

    return process.start()


def controller_stop() -> bool:
    """Stop the local controller; jobs keep running and are re-adopted by the next one."""
    from skymagic.jobs import process

    return process.stop()


def controller_status() -> ControllerStatus:
    from skymagic.jobs import process

    return process.status()
