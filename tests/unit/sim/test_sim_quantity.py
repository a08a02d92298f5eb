"""The simulator's request rule against the product's: two implementations that must agree.

skymagic.sim.quantity was written from the Kubernetes sources so that the simulated scheduler
does not count with the code it tests. Each table row carries the value Kubernetes gives
(worked out by hand from the rules in the sim module's docstring); the sim must produce it, and
the product's `skymagic.gpus.quantity` must agree with the sim.
"""

from __future__ import annotations

from typing import Any

import pytest

from skymagic.gpus.quantity import effective_requests as product_requests
from skymagic.gpus.quantity import parse_quantity as product_parse
from skymagic.sim.quantity import effective_requests, format_cpu, format_memory, parse_quantity

GI = 2**30
MI = 2**20
GPU = "nvidia.com/gpu"

QUANTITIES: list[tuple[str | int | float, float]] = [
    ("500m", 0.5),
    ("1", 1.0),
    ("1.5", 1.5),
    (".5", 0.5),
    ("+2", 2.0),
    ("100n", 100e-9),
    ("250u", 250e-6),
    ("2k", 2e3),
    ("129M", 129e6),
    ("129e6", 129e6),
    ("2e3", 2e3),
    ("1E", 1e18),
    ("1E3", 1e3),
    ("123Mi", 123 * MI),
    ("16Gi", 16 * GI),
    ("1.5Gi", 1.5 * GI),
    ("203056560Ki", 203056560 * 1024),
    ("2Ti", 2 * 2**40),
    ("187136925387", 187136925387.0),
    (8, 8.0),
    (0.25, 0.25),
]
NOT_QUANTITIES = ["", "abc", "1ki", "Gi", "1.2.3", "m"]


@pytest.mark.parametrize(("text", "value"), QUANTITIES)
def test_parse_quantity(text: str | int | float, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)
    assert product_parse(text) == pytest.approx(parse_quantity(text))


@pytest.mark.parametrize("text", NOT_QUANTITIES)
def test_not_a_quantity_is_refused_by_both(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)
    with pytest.raises(ValueError):
        product_parse(text)


def test_none_is_zero() -> None:
    assert parse_quantity(None) == 0.0 == product_parse(None)


@pytest.mark.parametrize(
    ("cores", "text"), [(8, "8"), (7.9, "7900m"), (0.5, "500m"), (0.1, "100m"), (192, "192")]
)
def test_format_cpu(cores: float, text: str) -> None:
    assert format_cpu(cores) == text
    assert parse_quantity(text) == pytest.approx(cores)


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [(32 * GI, "32Gi"), (1.5 * GI, "1536Mi"), (2**40, "1Ti"), (1536, "1536"), (1000, "1000")],
)
def test_format_memory(num_bytes: float, text: str) -> None:
    assert format_memory(num_bytes) == text
    assert parse_quantity(text) == num_bytes


def _c(name: str, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None,
       sidecar: bool = False) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": name, "image": "busybox", "resources": {}}
    if requests:
        container["resources"]["requests"] = requests
    if limits:
        container["resources"]["limits"] = limits
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


# (id, pod spec, Kubernetes' effective request)
PODS: list[tuple[str, dict[str, Any], dict[str, float]]] = [
    ("empty", {"containers": [_c("main")]}, {}),
    ("no containers", {}, {}),
    ("one container", {"containers": [_c("main", {"cpu": "500m", "memory": "1Gi"})]},
     {"cpu": 0.5, "memory": GI}),
    ("gpu as a limit only", {"containers": [_c("main", {"cpu": "1"}, {GPU: "2"})]},
     {"cpu": 1.0, GPU: 2.0}),
    ("request below its limit", {"containers": [_c("main", {"cpu": "1"}, {"cpu": "2"})]},
     {"cpu": 1.0}),
    ("two containers add up",
     {"containers": [_c("a", {"cpu": "1", GPU: "1"}), _c("b", {"cpu": "250m", GPU: "1"})]},
     {"cpu": 1.25, GPU: 2.0}),
    ("init container larger than the app",
     {"containers": [_c("main", {GPU: "1"}, {GPU: "1"})],
      "initContainers": [_c("warmup", {GPU: "4"}, {GPU: "4"})]},
     {GPU: 4.0}),
    ("init containers run one at a time",
     {"containers": [_c("main", {"cpu": "2"})],
      "initContainers": [_c("i1", {"cpu": "1", "memory": "4Gi"}), _c("i2", {"memory": "1Gi"})]},
     {"cpu": 2.0, "memory": 4 * GI}),
    ("pod overhead is added",
     {"containers": [_c("main", {"cpu": "1"})], "overhead": {"cpu": "250m", "memory": "120Mi"}},
     {"cpu": 1.25, "memory": 120 * MI}),
    ("overhead on top of an init peak",
     {"containers": [_c("main", {GPU: "1"})], "initContainers": [_c("i", {GPU: "4"})],
      "overhead": {"cpu": "100m"}},
     {GPU: 4.0, "cpu": 0.1}),
    ("sidecar runs beside the app",
     {"containers": [_c("main", {"cpu": "1", GPU: "1"})],
      "initContainers": [_c("proxy", {"cpu": "500m"}, sidecar=True)]},
     {"cpu": 1.5, GPU: 1.0}),
    ("sidecar's gpu given as a limit",
     {"containers": [_c("main", {GPU: "2"})],
      "initContainers": [_c("gpu-sidecar", None, {GPU: "1"}, sidecar=True)]},
     {GPU: 3.0}),
    ("init after a sidecar runs next to it",
     {"containers": [_c("main", {"cpu": "1"})],
      "initContainers": [_c("proxy", {"cpu": "1"}, sidecar=True), _c("migrate", {"cpu": "2"})]},
     {"cpu": 3.0}),
    ("init before a sidecar runs alone",
     {"containers": [_c("main", {"cpu": "1"})],
      "initContainers": [_c("migrate", {"cpu": "2"}), _c("proxy", {"cpu": "1"}, sidecar=True)]},
     {"cpu": 2.0}),
    ("two sidecars, then an init",
     {"containers": [_c("main", {"memory": "1Gi"})],
      "initContainers": [_c("s1", {"memory": "1Gi"}, sidecar=True),
                         _c("s2", {"memory": "2Gi"}, sidecar=True),
                         _c("load", {"memory": "4Gi"})]},
     {"memory": 7 * GI}),
    ("sidecars, init and overhead together",
     {"containers": [_c("main", {"cpu": "2", GPU: "8"}, {GPU: "8"})],
      "initContainers": [_c("log", {"cpu": "100m"}, sidecar=True), _c("fetch", {"cpu": "4"})],
      "overhead": {"cpu": "50m"}},
     {"cpu": 4.15, GPU: 8.0}),
    ("restartPolicy other than Always is a plain init container",
     {"containers": [_c("main", {"cpu": "1"})],
      "initContainers": [{**_c("i", {"cpu": "3"}), "restartPolicy": "Never"}]},
     {"cpu": 3.0}),
]  # fmt: skip


def _approx(requests: dict[str, float]) -> dict[str, Any]:
    return {res: pytest.approx(qty) for res, qty in requests.items()}


@pytest.mark.parametrize(
    ("spec", "expected"), [pytest.param(spec, want, id=name) for name, spec, want in PODS]
)
def test_sim_rule_is_kubernetes_rule(spec: dict[str, Any], expected: dict[str, float]) -> None:
    assert effective_requests(spec) == _approx(expected)


@pytest.mark.parametrize("spec", [pytest.param(spec, id=name) for name, spec, _ in PODS])
def test_product_rule_agrees_with_the_sim(spec: dict[str, Any]) -> None:
    assert product_requests(spec) == _approx(effective_requests(spec))
