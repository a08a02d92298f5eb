"""From a submission to what each attempt launches: the job's Task and Settings as stored, the
job_recovery section, and the per-attempt Task (its pod name, environment and setup wrapper).

A job outlives the kernel that submitted it, so everything that decided where and how it runs
is written down at submission: the parsed Task (as the launch parser and flags made it), and
the Settings with the kubeconfig paths and config file the submitter saw then (a controller
started from another shell must not read another KUBECONFIG).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from typing import Any

import yaml

from skymagic.core.client import ClientSettings
from skymagic.core.config import config_path
from skymagic.core.kubeconfig import kubeconfig_paths
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError
from skymagic.jobs.model import (
    ENV_ATTEMPT,
    ENV_JOB_ID,
    ENV_JOB_NAME,
    ENV_PREVIOUS_CONTEXT,
    ENV_RECOVERIES,
    ENV_TASK_ID,
    SETUP_FAILED_MARKER,
)
from skymagic.launches.task import Choice, Task

__all__ = [
    "attempt_task",
    "pod_name",
    "provision_timeout_from_json",
    "settings_from_json",
    "settings_to_json",
    "split_job_recovery",
    "task_from_json",
    "task_id",
    "task_to_json",
]

_MAX_NAME = 52  # launches/task.py: a launch name is at most 52 characters


def split_job_recovery(body: str) -> tuple[str, Any]:
    """Take `resources.job_recovery` out of a task YAML; (the body without it, its value).

    The launch parser knows nothing of managed jobs; the body is only rewritten when the key
    is there, so scripts and other YAML reach it untouched.
    """
    if "job_recovery" not in body and "spot_recovery" not in body:
        return body, None
    try:
        doc = yaml.safe_load(body)
    except yaml.YAMLError:
        return body, None
    res = doc.get("resources") if isinstance(doc, dict) else None
    key = next((k for k in ("job_recovery", "spot_recovery") if k in (res or {})), None)
    if not isinstance(res, dict) or key is None:
        return body, None
    value = res.pop(key)  # (spot_recovery: SkyPilot's older name for it)
    if not res:
        doc.pop("resources")
    return yaml.safe_dump(doc, sort_keys=False), value


def task_to_json(task: Task) -> str:
    return json.dumps(asdict(task))


def task_from_json(text: str) -> Task:
    """The stored Task (fields a newer or older skymagic does not know are left out)."""
    data = json.loads(text)
    known = {f.name for f in fields(Task)}
    kwargs: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known
    }
    if "choices" in kwargs:  # resource candidates: dataclasses of their own
        choice_fields = {f.name for f in fields(Choice)}
        kwargs["choices"] = tuple(
            Choice(**{k: v for k, v in c.items() if k in choice_fields}) for c in kwargs["choices"]
        )
    return Task(**kwargs)


def settings_to_json(settings: Settings, provision_timeout: float | None = None) -> str:
    """The Settings with the kubeconfig paths and config file resolved now, as absolute paths.

    `provision_timeout` (seconds per context to schedule the pod; None: the config's) rides
    along: it is how the job is launched, every time.
    """
    paths = settings.kubeconfig or tuple(kubeconfig_paths())
    allowed = settings.allowed_contexts
    return json.dumps(
        {
            "client": asdict(settings.client),
            "kubeconfig": [os.path.abspath(p) for p in paths],
            "config_file": os.path.abspath(settings.config_file or config_path()),
            "allowed_contexts": list(allowed) if isinstance(allowed, tuple) else allowed,
            "provision_timeout": provision_timeout,
        }
    )


def provision_timeout_from_json(text: str) -> float | None:
    value = json.loads(text).get("provision_timeout")
    return float(value) if value is not None else None


def settings_from_json(text: str) -> Settings:
    data = json.loads(text)
    known = {f.name for f in fields(ClientSettings)}
    client = ClientSettings(**{k: v for k, v in (data.get("client") or {}).items() if k in known})
    allowed = data.get("allowed_contexts")
    return Settings(
        client=client,
        kubeconfig=tuple(data["kubeconfig"]) if data.get("kubeconfig") else None,
        config_file=data.get("config_file"),
        allowed_contexts=tuple(allowed) if isinstance(allowed, list) else allowed,
    )


def pod_name(name: str, job_id: int) -> str:
    """The launch (pod) name of job `job_id`: NAME-ID, within the launch name's 52 characters."""
    suffix = f"-{job_id}"
    return name[: _MAX_NAME - len(suffix)].rstrip("-") + suffix


def task_id(name: str, job_id: int, submitted: float) -> str:
    """SKYPILOT_TASK_ID as SkyPilot writes it for a managed job's (only) task."""
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(submitted))
    micros = int((submitted % 1) * 1_000_000)
    return f"sky-managed-{stamp}-{micros:06d}_{name}_{job_id}-0"


def attempt_task(
    task: Task,
    *,
    job_id: int,
    job_name: str,
    launch_name: str,
    task_id: str,
    attempt: int,
    recoveries: int,
    previous_context: str,
    labels: Mapping[str, str] | None = None,
) -> Task:
    """The Task one attempt launches: the job's pod name, labels and environment, setup wrapped.

    The setup runs in a subshell (as SkyPilot runs setup and run as separate processes) and a
    failure prints SETUP_FAILED_MARKER, so the controller can tell FAILED_SETUP from FAILED.
    """
    if task.is_dev_pod:
        raise ConfigError("a managed job needs a run command (an empty cell is a dev pod)")
    envs = {
        **task.envs,
        ENV_TASK_ID: task_id,
        ENV_JOB_ID: str(job_id),
        ENV_JOB_NAME: job_name,
        ENV_ATTEMPT: str(attempt),
        ENV_RECOVERIES: str(recoveries),
        ENV_PREVIOUS_CONTEXT: previous_context,
    }
    run = (task.run or "").rstrip() + "\n"
    if task.setup and task.setup.strip():
        run = (
            f'(\n{task.setup.rstrip()}\n) || {{ rc=$?; echo "{SETUP_FAILED_MARKER} $rc"; '
            f"exit $rc; }}\n{run}"
        )
    return replace(
        task,
        name=launch_name,
        envs=envs,
        setup=None,
        run=run,
        labels={**task.labels, **(labels or {})},
    )
