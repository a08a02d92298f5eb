"""skymagic.sim: a simulated fleet of Kubernetes API servers for demos, notebooks, tests and benches.

One process serves one HTTPS API server per simulated cluster (127.0.0.1, one CA per fleet) and
writes a kubeconfig with one context per cluster. `kubectl` and the official Python client work
against it unchanged. The product never imports this package outside `skymagic sim` and the demo.
"""

from __future__ import annotations

from skymagic.sim.fleet import DEMO_SPEC, Fleet, default_state_dir, demo_spec_path
from skymagic.sim.spec import ClusterSpec, Faults, FleetSpec, NodeGroup, PodGroup, load_fleet_spec

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
