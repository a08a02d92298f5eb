"""Kubernetes quantities and kube-scheduler's effective pod request, the simulator's own copy.

Why a copy: the simulator is the yardstick the product is tested against. If its scheduler
counted requests with the product's own function, a counting bug in the product would look
right in every test against the simulated fleet. So this module is written from the
Kubernetes sources, not from skymagic's code, and tests/unit/sim/test_sim_quantity.py checks that
the two independent implementations agree on a table of pods.

The rules, as in Kubernetes:

* Quantities (k8s.io/apimachinery/pkg/api/resource, `Quantity`): a signed decimal number with
  a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (n u m "" k M G T P E) or a decimal
  exponent (e3, E-2). "1E" is one exa; "1E3" is a thousand.
* Effective request (k8s.io/component-helpers/resource `PodRequests`, used by the scheduler's
  NodeResourcesFit): the sum of the app containers' requests; each restartable init container
  (`restartPolicy: Always`, a native sidecar, Kubernetes 1.29+) runs beside everything started
  after it, so it adds to that sum; a regular init container runs alone next to the sidecars
  started before it, so the pod needs at least (its request + those sidecars'); the larger of
  the two wins per resource; `spec.overhead` (RuntimeClass overhead) is added on top.
  https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/#resource-sharing-within-containers
* A container's limit stands in for a missing request of the same resource: the API server's
  defaulting copies limits into requests (pkg/apis/core/v1/defaults.go, `SetDefaults_Pod`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["effective_requests", "format_cpu", "format_memory", "parse_quantity"]

# As k8s.io/apimachinery's suffix.go builds them: binary suffixes are 2 to the power of 10, 20,
# ... 60; decimal ones 10 to the power of -9, -6, ... 18 (n u m "" k M G T P E).
_SUFFIXES: dict[str, float] = {
    **{f"{prefix}i": 2.0 ** (10 * step) for step, prefix in enumerate("KMGTPE", start=1)},
    **{
        prefix: float(f"1e{3 * step}")
        for step, prefix in enumerate(("n", "u", "m", "", "k", "M", "G", "T", "P", "E"), start=-3)
    },
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?"
)
_PARSED: dict[str, float] = {}


def parse_quantity(value: str | float | None) -> float:
    """A quantity in base units (cores, bytes, devices); None is 0.

    Raises ValueError naming the text when it is not a Kubernetes quantity.
    """
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    cached = _PARSED.get(value)
    if cached is not None:
        return cached
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number = float(match.group("number"))
    suffix = match.group("suffix") or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        result = number * 10.0 ** int(suffix[1:])
    else:
        result = number * _SUFFIXES[suffix]
    if len(_PARSED) < 10_000:  # a cluster repeats a handful of quantity strings
        _PARSED[value] = result
    return result


def format_cpu(cores: float) -> str:
    """Cores the way the API server writes them: whole cores plain, else millicores ("500m")."""
    milli = round(cores * 1000)
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


def format_memory(num_bytes: float) -> str:
    """Bytes with the largest binary suffix that keeps the number whole ("16Gi", "1536Mi")."""
    count = round(num_bytes)
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if count >= unit and count % unit == 0:
            return f"{count // unit}{suffix}"
    return str(count)


def _requests(container: Mapping[str, Any]) -> dict[str, float]:
    """One container's requests, its limits filling in the resources it did not request."""
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return {res: parse_quantity(qty) for res, qty in merged.items()}


def _add(total: dict[str, float], more: Mapping[str, float]) -> None:
    for res, qty in more.items():
        total[res] = total.get(res, 0.0) + qty


def _raise_to(total: dict[str, float], floor: Mapping[str, float]) -> None:
    for res, qty in floor.items():
        if qty > total.get(res, 0.0):
            total[res] = qty


def effective_requests(pod_spec: Mapping[str, Any]) -> dict[str, float]:
    """What the scheduler reserves on a node for this pod, per resource (module docstring)."""
    total: dict[str, float] = {}
    containers: Iterable[Mapping[str, Any]] = pod_spec.get("containers") or ()
    for container in containers:
        _add(total, _requests(container))
    sidecars: dict[str, float] = {}
    init_peak: dict[str, float] = {}
    inits: Iterable[Mapping[str, Any]] = pod_spec.get("initContainers") or ()
    for container in inits:
        own = _requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            _raise_to(init_peak, sidecars)
        else:
            alone = dict(sidecars)
            _add(alone, own)
            _raise_to(init_peak, alone)
    _raise_to(total, init_peak)
    _add(total, {res: parse_quantity(qty) for res, qty in (pod_spec.get("overhead") or {}).items()})
    return total
