"""skymagic: one pane of glass over GPUs in many Kubernetes clusters, from a notebook.

`%load_ext skymagic` registers the magics. Importing this package is cheap: kubernetes,
pandas and the widgets are imported only when an operation first needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skymagic._exceptions import (
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
    from skymagic.dashboard import Dashboard, dashboard
    from skymagic.inventory import Inventory, InventoryWatcher, show_gpus

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "Dashboard",
    "ExecPluginError",
    "ForbiddenError",
    "Inventory",
    "InventoryWatcher",
    "KubeconfigError",
    "LaunchError",
    "PolicyError",
    "ProvisionFailedError",
    "RequestTimeoutError",
    "SimError",
    "SkymagicError",
    "TransportError",
    "UnauthorizedError",
    "__version__",
    "dashboard",
    "launch",
    "load_ipython_extension",
    "show_gpus",
    "unload_ipython_extension",
]


# Operations load on first use (`skymagic.show_gpus(...)`), so `import skymagic` stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "show_gpus": ("skymagic.inventory", "show_gpus"),
    "Inventory": ("skymagic.inventory", "Inventory"),
    "InventoryWatcher": ("skymagic.inventory", "InventoryWatcher"),
    "launch": ("skymagic.launch", ""),  # the (callable) subpackage itself: skymagic.launch(...)
    "dashboard": ("skymagic.dashboard", ""),  # the (callable) module: skymagic.dashboard(...)
    "Dashboard": ("skymagic.dashboard", "Dashboard"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'skymagic' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(target[0])
    value = getattr(module, target[1]) if target[1] else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext skymagic`: register the magics (imported lazily to keep import cheap)."""
    from skymagic.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext skymagic`: remove the magics again."""
    from skymagic.magics import unload

    unload(ipython)
