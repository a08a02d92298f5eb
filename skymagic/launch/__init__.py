"""Launching work with ordered failover, and managing it across contexts.

`launch()` plans from the live inventory and tries the allowed contexts in order; `status()`,
`logs()` and `down()` act on launched work in every allowed context.
"""

from __future__ import annotations

from skymagic.launch.lifecycle import Status, down, logs, status
from skymagic.launch.plan import Plan
from skymagic.launch.runner import Attempt, LaunchObserver, LaunchResult, launch_task
from skymagic.launch.task import Task, parse_task

__all__ = [
    "Attempt",
    "LaunchObserver",
    "LaunchResult",
    "Plan",
    "Status",
    "Task",
    "down",
    "launch_task",
    "logs",
    "parse_task",
    "status",
]
