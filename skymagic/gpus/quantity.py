"""Kubernetes resource quantities ("500m", "16Gi", "1.5", "2e3") as floats.

Used by the inventory (free = allocatable - requests): `effective_requests` is the product's
one rule for what a pod holds on its node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from skymagic.gpus.wire import Container, PodSpec, decode_resources, to_pod_spec

__all__ = [
    "effective_requests",
    "format_cpu",
    "format_memory",
    "parse_quantity",
    "resource_requests",
]

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
    pod_spec: PodSpec | Mapping[str, Any],
    *,
    keep: Callable[[str], bool] | None = None,
    parse: Callable[[Any], float] = parse_quantity,
    container_requests: Callable[[Container], Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """A pod's effective resource request per resource, as kube-scheduler counts it.

    The one rule of the product (the inventory's `counting.pod_requests` is this rule with a
    faster `parse`, only the resources it shows, and each container's requests memoised),
    after k8s.io/component-helpers `resource.PodRequests` and KEP-753 (sidecar containers):

    * the app containers' requests are summed;
    * an init container with `restartPolicy: Always` (a native sidecar, Kubernetes 1.29+)
      keeps running beside everything started after it: its request is added to that sum,
      and to every later init container's;
    * the pod needs at least the peak of its init phase: the largest of (each init container
      + the sidecars started before it) and (each sidecar + the sidecars before it);
    * the pod overhead (RuntimeClass) is added last.

    A limit stands in for a missing request, as the API server's defaulting fills it in (GPUs
    are often given as limits only). `pod_spec` is the typed spec the inventory decodes
    (`skymagic.gpus.wire.PodSpec`) or a plain dict (converted). `keep` restricts the result to
    some resources; `parse` turns quantity text into a number (default: `parse_quantity`,
    which raises on bad text); `container_requests` replaces the per-container step (a cache).
    """
    spec = to_pod_spec(pod_spec)
    requests_of = container_requests or (lambda c: resource_requests(c.resources, keep, parse))
    totals: dict[str, float] = {}
    for c in spec.containers or ():
        for res, qty in requests_of(c).items():
            totals[res] = totals.get(res, 0.0) + qty
    sidecars: dict[str, float] = {}
    init_peak: dict[str, float] = {}
    for c in spec.initContainers or ():
        req = requests_of(c)
        if c.restartPolicy == "Always":
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
    for res, text in (spec.overhead or {}).items():
        if keep is None or keep(res):
            totals[res] = totals.get(res, 0.0) + parse(text)
    return totals


def resource_requests(
    raw: bytes | memoryview,
    keep: Callable[[str], bool] | None = None,
    parse: Callable[[Any], float] = parse_quantity,
) -> dict[str, float]:
    """One container's requests from its undecoded `resources` (limits fill missing requests).

    Raises `skymagic.gpus.wire.WireError` when the text is not a resources object.
    """
    resources = decode_resources(raw)
    out: dict[str, float] = {}
    for source in (resources.limits, resources.requests):  # requests win
        if source:
            for res, qty in source.items():
                if keep is None or keep(res):
                    out[res] = parse(qty)
    return out
