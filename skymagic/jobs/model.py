"""What a managed job is: its states, its recovery policy, and the labels and environment that
make up the contract between a controller and the clusters.

The states are SkyPilot's managed-job states, with its meanings. The labels are what any
controller (this local process today, a pod in one of the clusters later) needs to find a
job's pods again from the clusters alone: which jobs database made them, which job, which
attempt. The environment tells a training script which attempt it is, so it can resume from
its checkpoint.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skymagic.errors import ConfigError
from skymagic.gpus.wire import JOB_ATTEMPT_LABEL, JOB_ID_LABEL
from skymagic.launches.values import whole_number

__all__ = [
    "ACTIVE",
    "ENV_ATTEMPT",
    "ENV_JOB_ID",
    "ENV_JOB_NAME",
    "ENV_PREVIOUS_CONTEXT",
    "ENV_RECOVERIES",
    "ENV_TASK_ID",
    "LABEL_JOB_ATTEMPT",
    "LABEL_JOB_ID",
    "LABEL_JOBS_DB",
    "SETUP_FAILED_MARKER",
    "STRATEGIES",
    "TERMINAL",
    "JobRecovery",
    "JobStatus",
    "job_selector",
]


class JobStatus(str, enum.Enum):
    """A managed job's state (SkyPilot's names and meanings)."""

    PENDING = "PENDING"  # submitted; the controller has not started it yet
    STARTING = "STARTING"  # the first launch is placing the pod
    RUNNING = "RUNNING"  # the pod runs
    RECOVERING = "RECOVERING"  # the pod or its node went away: clearing it, then relaunching
    SUCCEEDED = "SUCCEEDED"  # the run command exited 0
    FAILED = "FAILED"  # the run command exited non-zero (and no restart was left)
    FAILED_SETUP = "FAILED_SETUP"  # the setup commands exited non-zero
    FAILED_NO_RESOURCE = "FAILED_NO_RESOURCE"  # no allowed context could take it at launch
    FAILED_CONTROLLER = "FAILED_CONTROLLER"  # the controller hit an error of its own
    CANCELLING = "CANCELLING"  # cancel requested; its pod is being removed
    CANCELLED = "CANCELLED"  # cancelled, nothing of it is left in the clusters

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.FAILED_SETUP,
        JobStatus.FAILED_NO_RESOURCE,
        JobStatus.FAILED_CONTROLLER,
        JobStatus.CANCELLED,
    }
)
ACTIVE = frozenset(JobStatus) - TERMINAL

# Labels on every object a job creates (besides the launch labels of launches/podspec.py).
LABEL_JOBS_DB = "skymagic.dev/jobs-db"  # the jobs database (one per controller) that owns it
# The job id and attempt (1 for the first launch, +1 per recovery), named once where the
# inventory's pod decoder reads them (the dashboard marks job pods with them).
LABEL_JOB_ID = JOB_ID_LABEL
LABEL_JOB_ATTEMPT = JOB_ATTEMPT_LABEL

# The job's environment, on every attempt.
ENV_TASK_ID = "SKYPILOT_TASK_ID"  # the same on every attempt (SkyPilot's)
ENV_JOB_ID = "SKYMAGIC_JOB_ID"
ENV_JOB_NAME = "SKYMAGIC_JOB_NAME"
ENV_ATTEMPT = "SKYMAGIC_JOB_ATTEMPT"  # 1, 2, ...
ENV_RECOVERIES = "SKYMAGIC_JOB_RECOVERIES"  # recoveries before this attempt: 0 on the first
ENV_PREVIOUS_CONTEXT = "SKYMAGIC_JOB_PREVIOUS_CONTEXT"  # where the last attempt ran ("" first)

# Printed by the job's wrapper when its setup commands fail (tells FAILED_SETUP from FAILED).
SETUP_FAILED_MARKER = "skymagic-jobs: setup failed with exit code"

STRATEGIES = ("FAILOVER", "EAGER_NEXT_REGION")


def job_selector(db_id: str, job_id: int | None = None) -> str:
    """The label selector for a database's job pods (one job's, with `job_id`)."""
    parts = [f"{LABEL_JOBS_DB}={db_id}"]
    if job_id is not None:
        parts.append(f"{LABEL_JOB_ID}={job_id}")
    return ",".join(parts)


@dataclass(frozen=True)
class JobRecovery:
    """SkyPilot's `resources.job_recovery`: how to relaunch and how often after user errors.

    FAILOVER relaunches in the same context first when it has room, else in failover order;
    EAGER_NEXT_REGION tries the other contexts first and the same one last. Preemptions and
    lost nodes are always recovered; a non-zero exit of the user's own command is restarted
    at most `max_restarts_on_errors` times (default 0: never).
    """

    strategy: str = "FAILOVER"
    max_restarts_on_errors: int = 0

    @classmethod
    def parse(cls, value: Any, where: str = "resources.job_recovery") -> JobRecovery:
        """From the YAML value: a strategy name, or {strategy, max_restarts_on_errors}."""
        if value is None:
            return cls()
        if isinstance(value, str):
            value = {"strategy": value}
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where} must be a strategy name or a mapping with strategy and "
                "max_restarts_on_errors"
            )
        unknown = sorted(set(value) - {"strategy", "max_restarts_on_errors"})
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]} is not supported; use strategy and max_restarts_on_errors"
            )
        strategy = str(value.get("strategy") or "FAILOVER").upper()
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"{where}.strategy {strategy!r} is not one of {', '.join(STRATEGIES)}"
            )
        restarts = value.get("max_restarts_on_errors", 0)
        return cls(strategy, _restarts(restarts, f"{where}.max_restarts_on_errors"))

    def with_restarts(self, restarts: int | None) -> JobRecovery:
        if restarts is None:
            return self
        return JobRecovery(self.strategy, _restarts(restarts, "--max-restarts-on-errors"))


def _restarts(value: Any, where: str) -> int:
    return whole_number(value, where)
