"""Quantities and the one effective-request rule (kube-scheduler's, with native sidecars).

The rule is checked two ways: hand-computed cases, and random pods against an oracle written
differently from the product (a walk through the pod's start-up timeline, taking each
resource's peak), after KEP-753 "Exposing Pod Resource Requirements".
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from skymagic.gpus.quantity import effective_requests, parse_quantity

GIB = 2**30
GPU = "nvidia.com/gpu"


def c(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Any:
    res: dict[str, Any] = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    return {"name": "c", "image": "x", "resources": res}


def sidecar(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Any:
    return {**c(requests, limits), "restartPolicy": "Always"}


def spec(
    containers: list[Any], init: list[Any] | None = None, overhead: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"containers": containers}
    if init is not None:
        out["initContainers"] = init
    if overhead is not None:
        out["overhead"] = overhead
    return out


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("16Gi", 16 * GIB), ("1.5", 1.5), ("2e3", 2000.0), ("1k", 1000.0), (3, 3.0)],
)
def test_parse_quantity(text: Any, value: float) -> None:
    assert parse_quantity(text) == value


def test_parse_quantity_names_bad_text() -> None:
    with pytest.raises(ValueError, match="'12x'"):
        parse_quantity("12x")


CASES: list[tuple[str, dict[str, Any], dict[str, float]]] = [
    ("app containers add up", spec([c({"cpu": "1"}), c({"cpu": "500m"})]), {"cpu": 1.5}),
    ("a limit stands in for a request", spec([c(limits={GPU: "4"})]), {GPU: 4.0}),
    ("the request wins over the limit", spec([c({"cpu": "1"}, {"cpu": "2"})]), {"cpu": 1.0}),
    (
        "a big init container sets the floor",
        spec([c({"cpu": "2"})], init=[c({"cpu": "8"})]),
        {"cpu": 8.0},
    ),
    (
        "a sidecar runs beside the app",
        spec([c({GPU: "2"})], init=[sidecar({GPU: "1"})]),
        {GPU: 3.0},
    ),
    (
        "an init container after a sidecar runs beside it",
        spec([c({"cpu": "2"})], init=[sidecar({"cpu": "1"}), c({"cpu": "5"})]),
        {"cpu": 6.0},
    ),
    (
        "an init container before a sidecar does not",
        spec([c({"cpu": "2"})], init=[c({"cpu": "5"}), sidecar({"cpu": "1"})]),
        {"cpu": 5.0},
    ),
    (
        "sidecars add up with each other",
        spec(
            [c({"memory": "1Gi"})],
            init=[sidecar({"memory": "1Gi"}), sidecar({"memory": "2Gi"}), c({"memory": "1Gi"})],
        ),
        {"memory": 4.0 * GIB},
    ),
    (
        "each resource peaks on its own",
        spec(
            [c({"cpu": "1", GPU: "1"})],
            init=[c({"cpu": "4"}), sidecar({GPU: "1"}), c({GPU: "3"})],
        ),
        {"cpu": 4.0, GPU: 4.0},
    ),
    (
        "overhead comes on top of the peak",
        spec([c({"cpu": "1"})], init=[c({"cpu": "8"})], overhead={"cpu": "250m"}),
        {"cpu": 8.25},
    ),
    (
        "a sidecar with limits only",
        spec([c({GPU: "1"})], init=[sidecar(limits={GPU: "2"})]),
        {GPU: 3.0},
    ),
]


@pytest.mark.parametrize(("why", "pod_spec", "expected"), CASES, ids=[w for w, _, _ in CASES])
def test_effective_requests(why: str, pod_spec: dict[str, Any], expected: dict[str, float]) -> None:
    assert effective_requests(pod_spec) == pytest.approx(expected), why


def test_keep_restricts_the_resources() -> None:
    s = spec([c({"cpu": "1", "ephemeral-storage": "1Gi"})], overhead={"ephemeral-storage": "1"})
    assert effective_requests(s, keep=lambda r: r == "cpu") == {"cpu": 1.0}


# --- the oracle: the pod's start-up timeline ---------------------------------------------------


def _requests(container: dict[str, Any]) -> dict[str, float]:
    res = container.get("resources") or {}
    out = {r: parse_quantity(q) for r, q in (res.get("limits") or {}).items()}
    out.update({r: parse_quantity(q) for r, q in (res.get("requests") or {}).items()})
    return out


def _timeline_peak(pod_spec: dict[str, Any]) -> dict[str, float]:
    """Walk the start-up: each moment's running containers; per resource the largest moment.

    Init containers run one at a time, in order; a sidecar starts in its turn and keeps
    running; then the app containers start beside every sidecar. Overhead is paid throughout.
    """
    moments: list[list[dict[str, Any]]] = []
    started_sidecars: list[dict[str, Any]] = []
    for init in pod_spec.get("initContainers") or []:
        if init.get("restartPolicy") == "Always":
            started_sidecars.append(init)
            moments.append(list(started_sidecars))
        else:
            moments.append([*started_sidecars, init])
    moments.append([*started_sidecars, *pod_spec["containers"]])
    peak: dict[str, float] = {}
    for running in moments:
        used: dict[str, float] = {}
        for container in running:
            for r, q in _requests(container).items():
                used[r] = used.get(r, 0.0) + q
        for r, q in used.items():
            peak[r] = max(peak.get(r, 0.0), q)
    for r, q in (pod_spec.get("overhead") or {}).items():
        peak[r] = peak.get(r, 0.0) + parse_quantity(q)
    return peak


def _random_pod(rng: random.Random) -> dict[str, Any]:
    resources = ["cpu", "memory", GPU, "amd.com/gpu"]
    values = {"cpu": ["100m", "1", "2.5"], "memory": ["512Mi", "1Gi", "3G"]}

    def random_container(init: bool) -> Any:
        req = {r: rng.choice(values.get(r, ["1", "2", "4"])) for r in rng.sample(resources, 2)}
        lim = {r: rng.choice(values.get(r, ["1", "2"])) for r in rng.sample(resources, 1)}
        made = c(req if rng.random() < 0.8 else None, lim if rng.random() < 0.5 else None)
        if init and rng.random() < 0.5:
            made["restartPolicy"] = "Always"
        return made

    return spec(
        [random_container(False) for _ in range(rng.randint(1, 3))],
        init=[random_container(True) for _ in range(rng.randint(0, 4))],
        overhead={"cpu": "100m", "memory": "64Mi"} if rng.random() < 0.3 else None,
    )


def _without_sidecars(pod_spec: dict[str, Any]) -> dict[str, Any]:
    inits = [
        {k: v for k, v in i.items() if k != "restartPolicy"} for i in pod_spec["initContainers"]
    ]
    return {**pod_spec, "initContainers": inits}


def test_matches_the_timeline_oracle_on_random_pods() -> None:
    sidecars_mattered = 0
    for seed in range(400):
        pod_spec = _random_pod(random.Random(seed))
        got = effective_requests(pod_spec)
        assert got == pytest.approx(_timeline_peak(pod_spec)), (seed, pod_spec)
        if got != pytest.approx(effective_requests(_without_sidecars(pod_spec))):
            sidecars_mattered += 1
    # The pods must exercise the sidecar rule, or this test would prove little.
    assert sidecars_mattered >= 50, sidecars_mattered
