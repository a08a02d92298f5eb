"""Kubernetes resource quantities ("500m", "16Gi", "1.5", "2e3") as floats.

Used by the inventory (free = allocatable - requests) and by the simulator's scheduler, so both
count exactly the same way.
"""

from __future__ import annotations

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


def effective_requests(pod_spec: dict[str, object]) -> dict[str, float]:
    """A pod's effective resource request, as the scheduler counts it.

    max(sum of app containers' requests, largest single init container request), plus the pod
    overhead, per resource (facts.md section 4). Limits stand in for a missing request of an
    extended resource (GPUs are given as limits only in many manifests), like the API server's
    defaulting does.
    """
    totals: dict[str, float] = {}
    for c in _containers(pod_spec, "containers"):
        for res, qty in _container_requests(c).items():
            totals[res] = totals.get(res, 0.0) + qty
    for c in _containers(pod_spec, "initContainers"):
        for res, qty in _container_requests(c).items():
            if qty > totals.get(res, 0.0):
                totals[res] = qty
    overhead = pod_spec.get("overhead")
    if isinstance(overhead, dict):
        for res, qty in overhead.items():
            totals[res] = totals.get(res, 0.0) + parse_quantity(qty)
    return totals


def _containers(pod_spec: dict[str, object], key: str) -> list[dict[str, object]]:
    value = pod_spec.get(key)
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def _container_requests(container: dict[str, object]) -> dict[str, float]:
    resources = container.get("resources")
    if not isinstance(resources, dict):
        return {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    out: dict[str, float] = {}
    if isinstance(limits, dict):
        for res, qty in limits.items():
            out[res] = parse_quantity(qty)
    if isinstance(requests, dict):
        for res, qty in requests.items():
            out[res] = parse_quantity(qty)
    return out
