"""How a launch runs, apart from what it runs.

The Task (shaped by TaskOptions) says what runs; LaunchControls says how the launch goes:
follow or detach, plan only, how long each context gets, whether to wait for capacity, which
context to try first or last, and the syntax of the commands its hints name. One value travels
from the caller to `launch_task`, so the magic, the CLI, `skymagic.launch` and a managed job's
controller set the same fields instead of each passing a row of keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["CONTROL_NAMES", "LaunchControls"]


@dataclass(frozen=True)
class LaunchControls:
    """How one launch runs; the defaults are a plain `%%sky_launch`.

    Attributes:
        detach: return once the pod runs instead of following its log.
        dry_run: plan only and create nothing (`launch_task` returns the Plan).
        provision_timeout: seconds each context gets to schedule the pod before failover
            (default: the task YAML's, else the config's kubernetes.provision_timeout).
        retry_until_up: when no context can take the task now, wait for one (wait.py)
            instead of failing (default: the config's retry_until_up, else off).
        timeout_minutes: with retry_until_up, give up after this many minutes of waiting
            (default: no bound).
        prefer_context / avoid_context: tried first when it can take the task now / last (a
            managed job's recovery: the same context first, or SkyPilot's EAGER_NEXT_REGION);
            the other candidates keep their order.
        hint_style: "magic" or "cli": the syntax of the commands named in hints.
    """

    detach: bool = False
    dry_run: bool = False
    provision_timeout: float | None = None
    retry_until_up: bool | None = None
    timeout_minutes: float | None = None
    prefer_context: str | None = None
    avoid_context: str | None = None
    hint_style: str = "magic"


# The field names: `launch(**flags)` tells the controls from the task's options by them.
CONTROL_NAMES = frozenset(f.name for f in fields(LaunchControls))
