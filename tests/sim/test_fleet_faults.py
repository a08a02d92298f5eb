"""Faults and run-time changes of the simulated fleet, as a client sees them (issue #2: down,
blackhole, latency_ms, error_rate, token_ttl_s; cordon, NotReady, add/remove nodes and pods)."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from simkit import ApiException, api_client, wait_for

from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "flaky",
            "nodes": [
                {"count": 2, "name": "gpu", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512},
                {"count": 1, "name": "cpu", "cpu": 8, "memory_gb": 32},
            ],
            "pods": [{"count": 2, "name": "load", "gpu": "H100", "gpus": 4, "namespace": "team-a"}],
        },
        {
            "name": "starts-down",
            "faults": {"down": True},
            "nodes": [{"count": 1, "name": "n", "cpu": 8, "memory_gb": 32}],
        },
    ]
}  # fmt: skip
CLEAN = {"down": False, "blackhole": False, "latency_ms": 0, "error_rate": 0.0}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture
def flaky(fleet: Fleet) -> Iterator[str]:
    """The 'flaky' cluster, with its faults cleared again after the test."""
    yield "flaky"
    fleet.set_faults("flaky", **CLEAN)


def v1_for(fleet: Fleet, cluster: str, retries: int = 0) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, cluster, retries=retries))


def refused(fleet: Fleet, cluster: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", fleet.port(cluster)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_down_refuses_connections_and_comes_back(fleet: Fleet, flaky: str) -> None:
    v1 = v1_for(fleet, flaky)
    assert len(v1.list_node().items) == 3
    fleet.set_faults(flaky, down=True)
    assert refused(fleet, flaky)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        v1_for(fleet, flaky).list_node(_request_timeout=5)
    assert isinstance(err.value.reason, urllib3.exceptions.NewConnectionError)
    assert fleet.status()[flaky]["listening"] is False
    fleet.set_faults(flaky, down=False)
    assert not refused(fleet, flaky)
    assert len(v1_for(fleet, flaky).list_node().items) == 3  # same port, same kubeconfig


def test_down_in_the_spec_and_brought_up(fleet: Fleet) -> None:
    assert refused(fleet, "starts-down")
    fleet.set_faults("starts-down", down=False)
    try:
        assert [n.metadata.name for n in v1_for(fleet, "starts-down").list_node().items] == ["n"]
    finally:
        fleet.set_faults("starts-down", down=True)
    assert refused(fleet, "starts-down")


def test_blackhole_accepts_and_never_answers(fleet: Fleet, flaky: str) -> None:
    fleet.set_faults(flaky, blackhole=True)
    sock = socket.create_connection(("127.0.0.1", fleet.port(flaky)), timeout=2)
    sock.close()  # the connection is accepted: not a refusal
    v1 = v1_for(fleet, flaky)
    start = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        v1.list_node(_request_timeout=(2, 0.5))
    elapsed = time.monotonic() - start
    assert isinstance(err.value.reason, urllib3.exceptions.ReadTimeoutError)
    assert 0.4 <= elapsed < 2.0
    fleet.set_faults(flaky, blackhole=False)
    assert len(v1_for(fleet, flaky).list_node(_request_timeout=5).items) == 3


def _median_latency(v1: client.CoreV1Api, n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.monotonic()
        v1.get_api_resources()
        times.append(time.monotonic() - start)
    return statistics.median(times)


def test_latency_adds_a_measurable_delay(fleet: Fleet, flaky: str) -> None:
    """The added latency is there while set and gone after (bounds generous under load)."""
    v1 = v1_for(fleet, flaky)
    base = _median_latency(v1)
    fleet.set_faults(flaky, latency_ms=600)
    slow = _median_latency(v1, 3)
    assert slow - base >= 0.59  # a sleep on the server: never shorter
    assert slow < base + 3.0
    fleet.set_faults(flaky, latency_ms=0)
    assert _median_latency(v1) < base + 0.4  # well under the 0.6 s it added


def test_error_rate_one_fails_every_request_with_500(fleet: Fleet, flaky: str) -> None:
    v1 = v1_for(fleet, flaky)
    fleet.set_faults(flaky, error_rate=1.0)
    for call in (v1.list_node, v1.list_pod_for_all_namespaces, v1.get_api_resources) * 3:
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 500
        assert '"reason":"InternalError"' in err.value.body
    fleet.set_faults(flaky, error_rate=0.0)
    assert len(v1.list_node().items) == 3


def test_error_rate_half_fails_some_requests(fleet: Fleet, flaky: str) -> None:
    v1 = v1_for(fleet, flaky)
    fleet.set_faults(flaky, error_rate=0.5)
    codes = []
    for _ in range(40):
        try:
            v1.list_node()
            codes.append(200)
        except ApiException as exc:
            codes.append(exc.status)
    assert set(codes) == {200, 500}
    assert 5 <= codes.count(500) <= 35


# -- run-time changes ---------------------------------------------------------------------------


def test_cordon_and_uncordon_are_visible_and_watched(fleet: Fleet) -> None:
    v1 = v1_for(fleet, "flaky")
    rv = v1.list_node().metadata.resource_version
    fleet.cordon("flaky", "gpu-1")
    node = v1.read_node("gpu-1")
    assert node.spec.unschedulable is True
    assert any(t.key == "node.kubernetes.io/unschedulable" for t in node.spec.taints or [])
    assert [
        n.metadata.name for n in v1.list_node(field_selector="spec.unschedulable=true").items
    ] == ["gpu-1"]
    w = watch.Watch()
    events = []
    for ev in w.stream(v1.list_node, resource_version=rv, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].spec.unschedulable))
        w.stop()
    assert events == [("MODIFIED", "gpu-1", True)]
    fleet.uncordon("flaky", "gpu-1")
    node = v1.read_node("gpu-1")
    assert not node.spec.unschedulable
    assert not any(t.key == "node.kubernetes.io/unschedulable" for t in node.spec.taints or [])


def test_not_ready_is_visible(fleet: Fleet) -> None:
    v1 = v1_for(fleet, "flaky")

    def ready(name: str) -> str:
        conds = v1.read_node(name).status.conditions
        return str(next(c.status for c in conds if c.type == "Ready"))

    fleet.set_ready("flaky", "cpu", False)
    try:
        assert ready("cpu") == "False"
        taints = v1.read_node("cpu").spec.taints or []
        assert [t.key for t in taints] == ["node.kubernetes.io/not-ready"]
    finally:
        fleet.set_ready("flaky", "cpu", True)
    assert ready("cpu") == "True"
    assert not v1.read_node("cpu").spec.taints


def test_add_and_remove_nodes(fleet: Fleet) -> None:
    v1 = v1_for(fleet, "flaky")
    names = fleet.add_nodes("flaky", name="extra", count=2, gpu="A100", gpus=4, labels="gke")
    assert names == ["extra-0", "extra-1"]
    listed = {n.metadata.name: n for n in v1.list_node().items}
    assert set(listed) == {"gpu-0", "gpu-1", "cpu", "extra-0", "extra-1"}
    labels = listed["extra-0"].metadata.labels
    assert labels["cloud.google.com/gke-accelerator"] == "nvidia-tesla-a100"
    assert listed["extra-0"].status.allocatable["nvidia.com/gpu"] == "4"
    fleet.remove_node("flaky", "extra-1")
    with pytest.raises(ApiException) as err:
        v1.read_node("extra-1")
    assert err.value.status == 404
    fleet.remove_node("flaky", "extra-0")
    assert len(v1.list_node().items) == 3


def test_add_and_remove_pods(fleet: Fleet) -> None:
    v1 = v1_for(fleet, "flaky")
    added = fleet.add_pods("flaky", count=3, name="burst", gpu="H100", gpus=2, namespace="team-z")
    assert len(added) == 3
    pods = v1.list_namespaced_pod("team-z").items
    assert sorted(p.metadata.name for p in pods) == sorted(added)
    assert all(p.status.phase == "Running" and p.spec.node_name.startswith("gpu-") for p in pods)
    assert all(p.spec.containers[0].resources.requests["nvidia.com/gpu"] == "2" for p in pods)
    assert "team-z" in {n.metadata.name for n in v1.list_namespace().items}
    removed = fleet.remove_pods("flaky", namespace="team-z", count=2)
    assert len(removed) == 2
    left = [p.metadata.name for p in v1.list_namespaced_pod("team-z").items]
    assert left == sorted(set(added) - set(removed))
    fleet.remove_pods("flaky", prefix="burst")
    assert v1.list_namespaced_pod("team-z").items == []
    # The freed capacity is real: with the burst, no node had 4 GPUs free; now one has.
    body = {
        "metadata": {"name": "big"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "x",
                    "command": ["sleep", "infinity"],
                    "resources": {"limits": {"nvidia.com/gpu": "4"}},
                }
            ],
        },
    }
    v1.create_namespaced_pod("team-a", body)
    pod = wait_for(lambda: v1.read_namespaced_pod("big", "team-a").spec.node_name)
    assert pod.startswith("gpu-")
    v1.delete_namespaced_pod("big", "team-a", grace_period_seconds=0)


def test_unknown_fault_and_node_are_clear_errors(fleet: Fleet) -> None:
    from skymagic.errors import SimError

    with pytest.raises(SimError, match="unknown fault 'flood'"):
        fleet.set_faults("flaky", flood=True)
    with pytest.raises(SimError, match="no node named 'ghost'"):
        fleet.cordon("flaky", "ghost")
    with pytest.raises(SimError, match="no cluster named 'nope'"):
        fleet.set_faults("nope", down=True)
