"""Pod logs as a follower needs them: `timestamps` and `sinceTime` like the kubelet's, a
black-holed network that stalls an open log stream, and spot node labels by provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from simkit import api_client, pod_manifest, raw, stream_lines, wait_for

from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "logs",
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [
                {"name": "cpu", "cpu": 8, "memory_gb": 32},
                {"name": "spot-k", "cpu": 8, "memory_gb": 32, "spot": "karpenter"},
                {"name": "spot-g", "cpu": 8, "memory_gb": 32, "spot": "gke"},
                {"name": "spot-e", "cpu": 8, "memory_gb": 32, "spot": "eks"},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


def start(fleet: Fleet, name: str, script: str) -> Any:
    api = api_client(fleet, "logs")
    body = pod_manifest(name)
    body["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", script]
    status, _, _ = raw(api, "POST", "/api/v1/namespaces/default/pods", body=body)
    assert status == 201
    wait_for(
        lambda: (
            raw(api, "GET", f"/api/v1/namespaces/default/pods/{name}")[1]["status"]["phase"]
            != "Pending"
        ),
        timeout=20,
    )
    return api


def test_timestamps_and_since_time(fleet: Fleet) -> None:
    api = start(fleet, "stamps", "echo one; sleep 1.2; echo two")
    path = "/api/v1/namespaces/default/pods/stamps"
    wait_for(lambda: raw(api, "GET", path)[1]["status"]["phase"] == "Succeeded", timeout=20)
    _, body, _ = raw(api, "GET", path + "/log", {"timestamps": "true"})
    lines = body.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
    stamp = lines[1].split(" ", 1)[0]
    assert stamp.endswith("Z") and stamp[10] == "T"
    # sinceTime (RFC3339): lines written at or after it; whole seconds include the second.
    _, later, _ = raw(api, "GET", path + "/log", {"sinceTime": stamp[:19] + "Z"})
    assert later.decode().splitlines()[-1] == "two" and b"one" not in later
    status, _, _ = raw(api, "GET", path + "/log", {"sinceTime": "yesterday"})
    assert status == 400


def test_blackhole_stalls_an_open_log_stream(fleet: Fleet) -> None:
    api = start(fleet, "stall", "echo first; sleep 1; echo second")
    lines = stream_lines(
        api, "/api/v1/namespaces/default/pods/stall/log", {"follow": "true"}, timeout=1.5
    )
    assert next(lines) == b"first"
    fleet.set_faults("logs", blackhole=True)
    try:
        t0 = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            next(lines)  # "second" is written, but nothing reaches the client
        assert time.monotonic() - t0 >= 1.0
    finally:
        fleet.set_faults("logs", blackhole=False)


def test_spot_node_groups_carry_their_providers_label(fleet: Fleet) -> None:
    api = api_client(fleet, "logs")
    _, nodes, _ = raw(api, "GET", "/api/v1/nodes")
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes["items"]}
    assert labels["spot-k"]["karpenter.sh/capacity-type"] == "spot"
    assert labels["spot-g"]["cloud.google.com/gke-spot"] == "true"
    assert labels["spot-e"]["eks.amazonaws.com/capacityType"] == "SPOT"
    assert not any("spot" in v.lower() for v in labels["cpu"].values())


def test_an_unknown_spot_provider_is_a_spec_error() -> None:
    from skymagic.errors import SimError
    from skymagic.sim.spec import load_fleet_spec

    with pytest.raises(SimError, match="spot 'aws' is not one of"):
        load_fleet_spec({"clusters": [{"name": "c", "nodes": [{"name": "n", "spot": "aws"}]}]})
