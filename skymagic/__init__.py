"""skymagic: one pane of glass over GPUs in many Kubernetes clusters, from a notebook.

`%load_ext skymagic` registers the magics. The same operations are this package's functions:

    import skymagic
    report = skymagic.check()                 # which allowed contexts are usable, and why not
    inv = skymagic.show_gpus()                # Inventory: .nodes .by_context .summary .errors
    skymagic.launch("echo hi", gpus="H100")   # ordered failover across the allowed contexts
    skymagic.status(); skymagic.logs("NAME"); skymagic.down(["NAME"])
    skymagic.exec("NAME", "nvidia-smi")      # in the launch's running pod, output streamed
    dash = skymagic.dashboard()               # a live widget; dash.close() stops it
    skymagic.jobs.launch(...); skymagic.jobs.queue()   # managed jobs, recovered across contexts

Importing this package is cheap: kubernetes, pandas and the widgets are imported only when an
operation first needs them (`__getattr__` below). The names in `__all__` are the public API;
everything under `skymagic.core`, `skymagic.gpus`, `skymagic.launches` and `skymagic.ui` is
internal and may move.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from skymagic.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ExecPluginError,
    ForbiddenError,
    KubeconfigError,
    LaunchError,
    PolicyError,
    ProvisionFailedError,
    RequestTimeoutError,
    SimError,
    SkymagicError,
    TransportError,
    UnauthorizedError,
)

if TYPE_CHECKING:
    from skymagic import jobs
    from skymagic.core.targets import Settings
    from skymagic.gpus.inventory import Inventory, show_gpus
    from skymagic.gpus.watcher import InventoryWatcher
    from skymagic.health import CheckReport, check
    from skymagic.launches import LaunchResult, Plan, Task, down, logs, status
    from skymagic.ui.dashboard import Dashboard, dashboard

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "CheckReport",
    "ConfigError",
    "Dashboard",
    "ExecPluginError",
    "ForbiddenError",
    "Inventory",
    "InventoryWatcher",
    "KubeconfigError",
    "LaunchError",
    "LaunchResult",
    "Plan",
    "PolicyError",
    "ProvisionFailedError",
    "RequestTimeoutError",
    "Settings",
    "SimError",
    "SkymagicError",
    "Task",
    "TransportError",
    "UnauthorizedError",
    "__version__",
    "check",
    "dashboard",
    "down",
    "exec",
    "jobs",
    "launch",
    "load_ipython_extension",
    "logs",
    "show_gpus",
    "status",
    "unload_ipython_extension",
]


# name -> (module, attribute): loaded on first use, so `import skymagic` stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "check": ("skymagic.health", "check"),
    "CheckReport": ("skymagic.health", "CheckReport"),
    "show_gpus": ("skymagic.gpus.inventory", "show_gpus"),
    "Inventory": ("skymagic.gpus.inventory", "Inventory"),
    "InventoryWatcher": ("skymagic.gpus.watcher", "InventoryWatcher"),
    "LaunchResult": ("skymagic.launches", "LaunchResult"),
    "Plan": ("skymagic.launches", "Plan"),
    "Task": ("skymagic.launches", "Task"),
    "status": ("skymagic.launches", "status"),
    "logs": ("skymagic.launches", "logs"),
    "down": ("skymagic.launches", "down"),
    "dashboard": ("skymagic.ui.dashboard", "dashboard"),
    "Dashboard": ("skymagic.ui.dashboard", "Dashboard"),
    "Settings": ("skymagic.core.targets", "Settings"),
    "jobs": ("skymagic.jobs", ""),  # the namespace itself: skymagic.jobs.launch/queue/logs/cancel
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'skymagic' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = getattr(module, target[1]) if target[1] else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def launch(body: str = "", **options: Any) -> LaunchResult | Plan:
    """Launch a script or SkyPilot task YAML like `%%sky_launch`, printing progress as it goes.

    The keywords are `skymagic.launches.launch`'s (name, gpus, cpus, memory, infra, image, env,
    ports, num_nodes, detach, dry_run, provision_timeout, retry_until_up, timeout_minutes,
    settings, observer). Progress goes to stdout as
    plain lines unless an `observer` is given. Returns the LaunchResult, or the Plan with dry_run.
    """
    from skymagic.launches import launch as launch_operation
    from skymagic.ui.progress import TextProgress

    options.setdefault("observer", TextProgress())
    return launch_operation(body, **options)


def exec(
    name: str,
    script: str,
    *,
    settings: Settings | None = None,
    check: bool = True,
    rank: int | str = 0,
) -> Any:
    """Run `script` in launch `name`'s running pod like `%%sky_exec`, output printed live.

    A multi-node launch runs it on `rank` (default 0), or on every rank with `rank="all"`.
    Returns the ExecResult (`.exit_code`); with `check` (the default) a non-zero exit code
    raises CommandFailedError instead, naming the rank.
    """
    import sys

    from skymagic.launches.exec import print_to
    from skymagic.launches.rankexec import exec_ranks

    out, err = print_to(sys.stdout), print_to(sys.stderr)
    return exec_ranks(name, script, settings, rank=rank, on_stdout=out, on_stderr=err, check=check)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext skymagic`: register the magics (imported lazily to keep import cheap) and
    the compact HTML view of an Inventory's node frame (`skymagic/ui/frames.py`)."""
    from skymagic.ui import frames
    from skymagic.ui.magics import load

    load(ipython)
    frames.register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext skymagic`: remove the magics and the node frame view again."""
    from skymagic.ui import frames
    from skymagic.ui.magics import unload

    unload(ipython)
    frames.unregister(ipython)
