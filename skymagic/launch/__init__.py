"""Launching work with ordered failover, and managing it across contexts.

`launch()` plans from the live inventory and tries the allowed contexts in order; `status()`,
`logs()` and `down()` act on launched work in every allowed context.

The module itself is callable, so `skymagic.launch("echo hi", gpus="H100")` works as the issue's
Python entry point while `skymagic.launch.status()` and friends stay reachable under the same
name (a package and a function cannot otherwise share `skymagic.launch`).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import Any

from skymagic.fleet import Settings
from skymagic.launch.lifecycle import Deleted, Status, down, logs, status
from skymagic.launch.plan import Plan
from skymagic.launch.runner import Attempt, LaunchObserver, LaunchResult, launch_task
from skymagic.launch.task import Task, parse_task

__all__ = [
    "Attempt",
    "Deleted",
    "LaunchObserver",
    "LaunchResult",
    "Plan",
    "Status",
    "Task",
    "down",
    "launch",
    "launch_task",
    "logs",
    "parse_task",
    "status",
]


def launch(
    body: str = "",
    *,
    name: str | None = None,
    gpus: str | None = None,
    cpus: str | float | None = None,
    memory: str | float | None = None,
    infra: str | None = None,
    image: str | None = None,
    env: Sequence[str] = (),
    ports: Sequence[int] = (),
    detach: bool = False,
    dry_run: bool = False,
    provision_timeout: float | None = None,
    settings: Settings | None = None,
    observer: LaunchObserver | None = None,
) -> LaunchResult | Plan:
    """Launch a script or SkyPilot task YAML, like `%%sky_launch` (same flags as keywords).

    Progress goes to `observer` (default: plain lines on stdout, as the CLI prints them).
    Returns the LaunchResult, or the Plan with `dry_run`.
    """
    from skymagic._progress import TextProgress

    task = parse_task(
        body,
        name=name,
        gpus=gpus,
        cpus=cpus,
        memory=memory,
        infra=infra,
        image=image,
        env=env,
        ports=ports,
    )
    return launch_task(
        task,
        settings,
        detach=detach,
        dry_run=dry_run,
        observer=observer if observer is not None else TextProgress(),
        provision_timeout=provision_timeout,
    )


class _CallableModule(types.ModuleType):
    """`skymagic.launch(...)` calls `launch()`; attribute access is the package's as usual."""

    def __call__(self, *args: Any, **kwargs: Any) -> LaunchResult | Plan:
        return launch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
