"""Launching work with ordered failover, and managing it across contexts.

`launch()` plans from the live inventory and tries the allowed contexts in order; `status()`,
`logs()` and `down()` act on launched work in every allowed context.

The facade exports `launch` as `skymagic.launch(...)`; this package is named `launches` so the
two never collide (importing a subpackage binds its name on the parent package).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from skymagic.core.targets import Settings
from skymagic.launches.controls import CONTROL_NAMES, LaunchControls
from skymagic.launches.lifecycle import Deleted, Status, down, logs, status
from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt, LaunchObserver, LaunchResult, launch_task
from skymagic.launches.task import Task, TaskOptions, parse_task

__all__ = [
    "Attempt",
    "Deleted",
    "LaunchControls",
    "LaunchObserver",
    "LaunchResult",
    "Plan",
    "Status",
    "Task",
    "TaskOptions",
    "down",
    "launch",
    "launch_task",
    "logs",
    "parse_task",
    "status",
]


def launch(
    body: str = "",
    options: TaskOptions | None = None,
    controls: LaunchControls | None = None,
    *,
    settings: Settings | None = None,
    observer: LaunchObserver | None = None,
    **flags: Any,
) -> LaunchResult | Plan:
    """Launch a script or SkyPilot task YAML, like `%%sky_launch` (same flags as keywords).

    `flags` are TaskOptions fields (name, gpus, cpus, memory, infra, image, env, secret, ports,
    num_nodes, ...), set over `options`, and LaunchControls fields (detach, dry_run,
    provision_timeout, retry_until_up, timeout_minutes, ...), set over `controls`.
    `retry_until_up` waits for capacity when nothing fits now (at most `timeout_minutes`).
    Progress goes to `observer` (default: none; `skymagic.launch` prints plain lines). Returns
    the LaunchResult, or the Plan with `dry_run`.
    """
    option_names = {f.name for f in fields(TaskOptions)}
    unknown = sorted(flags.keys() - CONTROL_NAMES - option_names)
    if unknown:
        raise TypeError(
            f"unknown launch keyword{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; task options: {', '.join(sorted(option_names))}; "
            f"launch controls: {', '.join(sorted(CONTROL_NAMES))}"
        )
    how = {name: flags.pop(name) for name in CONTROL_NAMES & flags.keys()}
    task = parse_task(body, options, **flags)
    return launch_task(
        task, settings, replace(controls or LaunchControls(), **how), observer=observer
    )
