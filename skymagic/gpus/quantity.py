"""Kubernetes resource quantities ("500m", "16Gi", "1.5", "2e3") as floats.

Used by the inventory (free = allocatable - requests): `effective_requests` is the product's
one rule for what a pod holds on its node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["effective_requests", "format_cpu", "format_memory", "parse_quantity"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def parse_quantity(value: str | int | float | None) -> float:
    """Parse a Kubernetes quantity into a float in base units (cores, bytes, devices).

    Raises ValueError naming the text when it is not a quantity.
    """
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if not text:
        raise ValueError("empty quantity")
    suffix2 = text[-2:]
    if suffix2 in _BINARY:
        return float(text[:-2]) * _BINARY[suffix2]
    if "e" in text.lower() and not text.endswith(("e", "E")):
        try:
            return float(text)
        except ValueError:
            pass
    suffix = text[-1]
    if suffix in _DECIMAL and not suffix.isdigit():
        try:
            return float(text[:-1]) * _DECIMAL[suffix]
        except ValueError:
            raise ValueError(f"not a Kubernetes quantity: {text!r}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from None


def format_cpu(cores: float) -> str:
    """Cores as Kubernetes writes them: whole numbers plain, fractions in millicores."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_memory(num_bytes: float) -> str:
    """Bytes as Kubernetes writes them: the largest binary unit that keeps an integer."""
    n = round(num_bytes)
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        size = _BINARY[unit]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def effective_requests(
    pod_spec: Mapping[str, Any],
    *,
    keep: Callable[[str], bool] | None = None,
    parse: Callable[[Any], float] = parse_quantity,
) -> dict[str, float]:
    """A pod's effective resource request per resource, as kube-scheduler counts it.

    The one rule of the product (the inventory's `counting.pod_requests` is this rule with a
    faster `parse` and only the resources it shows), after k8s.io/component-helpers
    `resource.PodRequests` and KEP-753 (sidecar containers):

    * the app containers' requests are summed;
    * an init container with `restartPolicy: Always` (a native sidecar, Kubernetes 1.29+)
      keeps running beside everything started after it: its request is added to that sum,
      and to every later init container's;
    * the pod needs at least the peak of its init phase: the largest of (each init container
      + the sidecars started before it) and (each sidecar + the sidecars before it);
    * the pod overhead (RuntimeClass) is added last.

    A limit stands in for a missing request, as the API server's defaulting fills it in (GPUs
    are often given as limits only). `keep` restricts the result to some resources; `parse`
    turns quantity text into a number (default: `parse_quantity`, which raises on bad text).
    """
    totals: dict[str, float] = {}
    for c in _containers(pod_spec, "containers"):
        for res, qty in _container_requests(c, keep, parse).items():
            totals[res] = totals.get(res, 0.0) + qty
    sidecars: dict[str, float] = {}
    init_peak: dict[str, float] = {}
    for c in _containers(pod_spec, "initContainers"):
        req = _container_requests(c, keep, parse)
        if c.get("restartPolicy") == "Always":
            for res, qty in req.items():
                sidecars[res] = sidecars.get(res, 0.0) + qty
                totals[res] = totals.get(res, 0.0) + qty
            running = sidecars
        else:
            running = {**sidecars}
            for res, qty in req.items():
                running[res] = running.get(res, 0.0) + qty
        for res, qty in running.items():
            if qty > init_peak.get(res, 0.0):
                init_peak[res] = qty
    for res, qty in init_peak.items():
        if qty > totals.get(res, 0.0):
            totals[res] = qty
    overhead = pod_spec.get("overhead")
    if isinstance(overhead, dict):
        for res, qty in overhead.items():
            if keep is None or keep(res):
                totals[res] = totals.get(res, 0.0) + parse(qty)
    return totals


def _containers(pod_spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = pod_spec.get(key)
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def _container_requests(
    container: Mapping[str, Any],
    keep: Callable[[str], bool] | None,
    parse: Callable[[Any], float],
) -> dict[str, float]:
    resources = container.get("resources")
    if not isinstance(resources, dict):
        return {}
    out: dict[str, float] = {}
    for source in (resources.get("limits"), resources.get("requests")):  # requests win
        if isinstance(source, dict):
            for res, qty in source.items():
                if keep is None or keep(res):
                    out[res] = parse(qty)
    return out
