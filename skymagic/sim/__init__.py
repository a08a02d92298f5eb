"""skymagic.sim: a simulated fleet of Kubernetes API servers (demos, notebooks, tests, benches).

One process serves one HTTPS API server per simulated cluster (127.0.0.1, one CA per fleet) and
writes a kubeconfig with one context per cluster. `kubectl` and the official Python client work
against it unchanged, exec, attach, cp and port-forward included (streams.py). The product
never imports this package outside `skymagic sim` and the demo.

Names are imported lazily: the fleet's exec plugin (`python -m skymagic.sim.exec_plugin`) runs
on every credential refresh and must not pay for importing the fleet machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEMO_SPEC",
    "ClusterSpec",
    "Faults",
    "Fleet",
    "FleetSpec",
    "NodeGroup",
    "PodGroup",
    "default_state_dir",
    "demo_spec_path",
    "load_fleet_spec",
]

_WHERE = {
    "DEMO_SPEC": "skymagic.sim.fleet",
    "Fleet": "skymagic.sim.fleet",
    "default_state_dir": "skymagic.sim.fleet",
    "demo_spec_path": "skymagic.sim.fleet",
    "ClusterSpec": "skymagic.sim.spec",
    "Faults": "skymagic.sim.spec",
    "FleetSpec": "skymagic.sim.spec",
    "NodeGroup": "skymagic.sim.spec",
    "PodGroup": "skymagic.sim.spec",
    "load_fleet_spec": "skymagic.sim.spec",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'skymagic.sim' has no attribute {name!r}")
