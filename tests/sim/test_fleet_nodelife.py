"""Nodes that go away, as the official client sees them: spot preemption (graceful node
shutdown), a lost node (unreachable taint, taint-based eviction, pods stuck Terminating) and
pod GC after a node's deletion (skymagic/sim/nodelife.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from simkit import ApiException, api_client, wait_for

from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "spot",
            "runtime": "local",
            "pod_start_s": 0.05,
            "toleration_s": 1,
            "pod_gc_s": 0.5,
            "node_removal_s": 0.2,
            "shutdown_grace_s": 2.0,
            "nodes": [
                {"count": 3, "name": "gpu", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512},
            ],
        },
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture(scope="module")
def v1(fleet: Fleet) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, "spot"))


def _pod(name: str, node: str, command: str, tolerations: list[Any] | None = None) -> Any:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": node},
        "containers": [{"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", command]}],
    }
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _running(v1: client.CoreV1Api, name: str) -> None:
    wait_for(
        lambda: v1.read_namespaced_pod(name, "default").status.phase == "Running",
        what=f"{name} Running",
    )


def _gone(v1: client.CoreV1Api, name: str) -> bool:
    try:
        v1.read_namespaced_pod(name, "default")
    except ApiException as exc:
        return exc.status == 404
    return False


def test_preemption_fails_pods_with_the_kubelets_reason_then_removes_node_and_pods(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    # The container traps SIGTERM (a training script saving its checkpoint) and says so.
    script = (
        "trap 'echo saving checkpoint; exit 0' TERM; echo started; while :; do sleep 0.05; done"
    )
    v1.create_namespaced_pod("default", _pod("trainer", "gpu-0", script))
    _running(v1, "trainer")
    wait_for(lambda: "started" in v1.read_namespaced_pod_log("trainer", "default"), what="log")

    terminated = fleet.preempt_node("spot", "gpu-0")
    assert terminated == ["trainer"]
    pod = v1.read_namespaced_pod("trainer", "default")
    assert pod.status.phase == "Failed"
    assert pod.status.reason == "Terminated"
    assert pod.status.message == "Pod was terminated in response to imminent node shutdown."
    disruption = [c for c in pod.status.conditions if c.type == "DisruptionTarget"]
    assert disruption and disruption[0].reason == "TerminationByKubelet"
    term = pod.status.container_statuses[0].state.terminated
    assert term is not None and term.exit_code == 0  # the trap ran: SIGTERM came first
    assert "saving checkpoint" in v1.read_namespaced_pod_log("trainer", "default")
    ready = next(c for c in v1.read_node("gpu-0").status.conditions if c.type == "Ready")
    assert (ready.status, ready.message) == ("False", "node is shutting down")

    # The cloud deletes the node, then pod GC removes its pods.
    wait_for(lambda: "gpu-0" not in [n.metadata.name for n in v1.list_node().items], what="node")
    wait_for(lambda: _gone(v1, "trainer"), what="pod GC")


def test_removing_a_node_garbage_collects_its_pods_after_a_delay(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", _pod("orphan", "gpu-1", "sleep 600"))
    _running(v1, "orphan")
    removed_at = time.monotonic()
    fleet.remove_node("spot", "gpu-1")
    assert not _gone(v1, "orphan")  # not at once: pod GC runs pod_gc_s later
    wait_for(lambda: _gone(v1, "orphan"), what="pod GC")
    assert time.monotonic() - removed_at >= 0.4


def test_lost_node_taints_evicts_after_toleration_and_pods_stay_terminating(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    fleet.add_nodes("spot", name="lost", count=1, gpu="H100", gpus=8, cpu=64, memory_gb=512)
    v1.create_namespaced_pod("default", _pod("evictee", "lost", "sleep 600"))
    forever = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    ]
    v1.create_namespaced_pod("default", _pod("stayer", "lost", "sleep 600", forever))
    _running(v1, "evictee")
    _running(v1, "stayer")
    # The API server's default toleration, with the spec's short toleration_s.
    tol = [
        t
        for t in v1.read_namespaced_pod("evictee", "default").spec.tolerations
        if t.key == "node.kubernetes.io/unreachable"
    ]
    assert tol[0].toleration_seconds == 1

    fleet.lose_node("spot", "lost")
    node = v1.read_node("lost")
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("Unknown", "NodeStatusUnknown")
    assert {(t.key, t.effect) for t in node.spec.taints} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    wait_for(
        lambda: v1.read_namespaced_pod("evictee", "default").metadata.deletion_timestamp,
        timeout=5,
        what="taint eviction",
    )
    pod = v1.read_namespaced_pod("evictee", "default")
    assert any(
        c.type == "DisruptionTarget" and c.reason == "DeletionByTaintManager"
        for c in pod.status.conditions
    )
    events = v1.list_namespaced_event("default", field_selector="involvedObject.name=evictee").items
    assert "TaintManagerEviction" in [e.reason for e in events]
    # Nobody answers for the node: the pod stays Terminating (well past its 10 s grace would
    # be too slow to test; past a second is enough to see it is not being finished).
    time.sleep(1.0)
    assert not _gone(v1, "evictee")
    stayer = v1.read_namespaced_pod("stayer", "default")
    assert stayer.metadata.deletion_timestamp is None  # tolerates the taint for ever

    # The node is deleted: pod GC force-deletes both.
    fleet.remove_node("spot", "lost")
    wait_for(lambda: _gone(v1, "evictee") and _gone(v1, "stayer"), what="pod GC")


def test_lost_node_that_comes_back_finishes_the_evictions(
    fleet: Fleet, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", _pod("patient", "gpu-2", "sleep 600"))
    _running(v1, "patient")
    fleet.lose_node("spot", "gpu-2")
    wait_for(
        lambda: v1.read_namespaced_pod("patient", "default").metadata.deletion_timestamp,
        timeout=5,
        what="taint eviction",
    )
    fleet.set_ready("spot", "gpu-2", True)  # the kubelet answers again and kills the pod
    wait_for(lambda: _gone(v1, "patient"), timeout=15, what="termination")
    node = v1.read_node("gpu-2")
    assert not [t for t in node.spec.taints or [] if t.key == "node.kubernetes.io/unreachable"]
