"""skymagic: one pane of glass over GPUs in many Kubernetes clusters, from a notebook.

`%load_ext skymagic` registers the magics. Importing this package is cheap: kubernetes,
pandas and the widgets are imported only when an operation first needs them.
"""

from __future__ import annotations

from typing import Any

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

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "ExecPluginError",
    "ForbiddenError",
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
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext skymagic`: register the magics (imported lazily to keep import cheap)."""
    from skymagic.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext skymagic`: remove the magics again."""
    from skymagic.magics import unload

    unload(ipython)
