"""Scheduling and pod lifecycle in the simulated fleet, seen through the official client
(issue #2: fit, taints/tolerations, nodeSelector and required node affinity, cordoned and
NotReady nodes, Unschedulable with the real scheduler's wording, runtimes simulate and local,
logs follow/tailLines)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from simkit import api_client, pod_manifest, stream_lines, wait_for

from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "sched",
            "runtime": "simulate",
            "pod_start_s": 0.05,
            "nodes": [
                {"count": 2, "name": "h100", "gpu": "H100", "gpus": 8, "labels": "gfd",
                 "cpu": 64, "memory_gb": 512, "taint_gpu": True, "extra_labels": {"pool": "a"}},
                {"count": 1, "name": "a100", "gpu": "A100-80GB", "gpus": 4, "labels": "karpenter",
                 "cpu": 32, "memory_gb": 256, "taint_gpu": True,
                 "extra_labels": {"pool": "b", "special": "yes"}},
                {"count": 1, "name": "cpu", "cpu": 4, "memory_gb": 16,
                 "extra_labels": {"pool": "c"}},
            ],
        },
        {
            "name": "local",
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [{"count": 1, "name": "box", "cpu": 8, "memory_gb": 32}],
        },
    ]
}  # fmt: skip
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
UNSCHEDULABLE_TAIL = "preemption: 0/{n} nodes are available: {parts}.."


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture(scope="module")
def v1(fleet: Fleet) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, "sched"))


@pytest.fixture(scope="module")
def local(fleet: Fleet) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, "local"))


@pytest.fixture
def ns(v1: client.CoreV1Api) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    v1.create_namespace({"metadata": {"name": name}})
    return name


def scheduled(v1: client.CoreV1Api, ns: str, name: str) -> Callable[[], Any]:
    def check() -> Any:
        pod = v1.read_namespaced_pod(name, ns)
        return pod if pod.spec.node_name else None

    return check


def unschedulable(v1: client.CoreV1Api, ns: str, name: str) -> Callable[[], Any]:
    def check() -> Any:
        pod = v1.read_namespaced_pod(name, ns)
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False":
                return pod
        return None

    return check


def place(v1: client.CoreV1Api, ns: str, body: dict[str, Any]) -> str:
    """Create a pod and return the node it was bound to."""
    v1.create_namespaced_pod(ns, body)
    pod = wait_for(scheduled(v1, ns, body["metadata"]["name"]), what="pod bound")
    return str(pod.spec.node_name)


def pending_message(v1: client.CoreV1Api, ns: str, body: dict[str, Any]) -> str:
    """Create a pod that cannot be placed; check its condition and event; return the message."""
    name = body["metadata"]["name"]
    v1.create_namespaced_pod(ns, body)
    pod = wait_for(unschedulable(v1, ns, name), what=f"{name} Unschedulable")
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    cond = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert cond.reason == "Unschedulable"
    events = v1.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name},reason=FailedScheduling"
    ).items
    assert len(events) == 1
    assert events[0].type == "Warning" and events[0].source.component == "default-scheduler"
    assert events[0].message == cond.message
    return str(cond.message)


# -- placement ---------------------------------------------------------------------------------


def test_gpu_pod_fits_on_a_node_with_free_gpus(v1: client.CoreV1Api, ns: str) -> None:
    node = place(v1, ns, pod_manifest("fit", gpus=8, tolerations=GPU_TOLERATION))
    assert node in ("h100-0", "h100-1")
    pod = wait_for(lambda: (p := v1.read_namespaced_pod("fit", ns)).status.phase == "Running" and p)
    assert pod.status.host_ip and pod.status.container_statuses[0].ready
    v1.delete_namespaced_pod("fit", ns, grace_period_seconds=0)


def test_untolerated_taint_keeps_gpu_nodes_out(v1: client.CoreV1Api, ns: str) -> None:
    msg = pending_message(v1, ns, pod_manifest("notol", gpus=1, tolerations=[]))
    assert msg == (
        "0/4 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "3 node(s) had untolerated taint {nvidia.com/gpu: present}. "
        + UNSCHEDULABLE_TAIL.format(
            n=4,
            parts="1 No preemption victims found for incoming pod, "
            "3 Preemption is not helpful for scheduling",
        )
    )
    # A CPU-only pod without the toleration goes to the only untainted node.
    assert place(v1, ns, pod_manifest("cpu-only")) == "cpu"


def test_node_selector(v1: client.CoreV1Api, ns: str) -> None:
    sel = pod_manifest("sel", gpus=1, node_selector={"pool": "b"}, tolerations=GPU_TOLERATION)
    assert place(v1, ns, sel) == "a100"
    # Filters run in the default profile's order: the taint rejects the GPU nodes first.
    msg = pending_message(v1, ns, pod_manifest("nosel", node_selector={"pool": "zzz"}))
    assert msg == (
        "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "3 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/4 nodes are "
        "available: 4 Preemption is not helpful for scheduling.."
    )


def _affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]
            }
        }
    }


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        ({"key": "pool", "operator": "In", "values": ["b"]}, {"a100"}),
        ({"key": "pool", "operator": "NotIn", "values": ["a", "b"]}, {"cpu"}),
        ({"key": "special", "operator": "Exists"}, {"a100"}),
        ({"key": "special", "operator": "DoesNotExist"}, {"h100-0", "h100-1", "cpu"}),
    ],
)
def test_required_node_affinity(
    v1: client.CoreV1Api, ns: str, expression: dict[str, Any], allowed: set[str]
) -> None:
    body = pod_manifest("aff", affinity=_affinity(expression), tolerations=GPU_TOLERATION)
    assert place(v1, ns, body) in allowed


def test_affinity_matching_no_node_is_unschedulable(v1: client.CoreV1Api, ns: str) -> None:
    body = pod_manifest(
        "noaff",
        affinity=_affinity(
            {"key": "pool", "operator": "In", "values": ["a"]},
            {"key": "special", "operator": "Exists"},
        ),
        tolerations=GPU_TOLERATION,
    )
    msg = pending_message(v1, ns, body)
    assert "4 node(s) didn't match Pod's node affinity/selector." in msg


def test_cordoned_node_is_skipped_until_uncordoned(
    fleet: Fleet, v1: client.CoreV1Api, ns: str
) -> None:
    body = pod_manifest("wants-b", node_selector={"pool": "b"}, tolerations=GPU_TOLERATION)
    fleet.cordon("sched", "a100")
    try:
        msg = pending_message(v1, ns, body)
        assert msg.startswith(
            "0/4 nodes are available: 1 node(s) were unschedulable, "
            "3 node(s) didn't match Pod's node affinity/selector. "
        )
    finally:
        fleet.uncordon("sched", "a100")
    assert wait_for(scheduled(v1, ns, "wants-b"), what="bound after uncordon").spec.node_name == (
        "a100"
    )


def test_not_ready_node_is_skipped_until_ready(fleet: Fleet, v1: client.CoreV1Api, ns: str) -> None:
    body = pod_manifest("wants-b2", node_selector={"pool": "b"}, tolerations=GPU_TOLERATION)
    fleet.set_ready("sched", "a100", False)
    try:
        msg = pending_message(v1, ns, body)
        assert "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }" in msg
    finally:
        fleet.set_ready("sched", "a100", True)
    assert wait_for(scheduled(v1, ns, "wants-b2")).spec.node_name == "a100"


def test_insufficient_gpus_then_schedulable_after_capacity_frees(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet(
        {
            "clusters": [
                {
                    "name": "tight",
                    "pod_start_s": 0.05,
                    "nodes": [{"count": 3, "name": "g", "gpu": "H100", "gpus": 8, "cpu": 64}],
                }
            ]
        }
    )
    v1 = client.CoreV1Api(api_client(fleet, "tight"))
    msg = pending_message(v1, "default", pod_manifest("huge", gpus=9))
    assert msg == (
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod.."
    )
    for i in range(3):
        place(v1, "default", pod_manifest(f"block-{i}", gpus=6))
    msg = pending_message(v1, "default", pod_manifest("waiter", gpus=4))
    assert msg.startswith("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. ")
    v1.delete_namespaced_pod("block-1", "default", grace_period_seconds=0)
    pod = wait_for(scheduled(v1, "default", "waiter"), what="waiter bound after delete")
    blocker_nodes = {
        p.spec.node_name
        for p in v1.list_namespaced_pod("default").items
        if p.metadata.name != "waiter"
    }
    assert pod.spec.node_name not in blocker_nodes
    cond = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert cond.status == "True"
    wait_for(lambda: v1.read_namespaced_pod("waiter", "default").status.phase == "Running")


def test_native_sidecar_counts_beside_the_app_but_an_init_container_does_not(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet(
        {
            "clusters": [
                {
                    "name": "side",
                    "pod_start_s": 0.05,
                    "nodes": [{"name": "g", "gpu": "H100", "gpus": 8, "cpu": 64}],
                }
            ]
        }
    )
    v1 = client.CoreV1Api(api_client(fleet, "side"))

    def with_helper(name: str, sidecar: bool) -> dict[str, Any]:
        body = pod_manifest(name, gpus=7)
        helper: dict[str, Any] = {
            "name": "helper",
            "image": "busybox:1.36",
            "resources": {"limits": {"nvidia.com/gpu": "2"}},
        }
        if sidecar:
            helper["restartPolicy"] = "Always"  # runs for the pod's life: 7 + 2 > 8
        body["spec"]["initContainers"] = [helper]
        return body

    msg = pending_message(v1, "default", with_helper("with-sidecar", sidecar=True))
    assert msg.startswith("0/1 nodes are available: 1 Insufficient nvidia.com/gpu. ")
    v1.delete_namespaced_pod("with-sidecar", "default", grace_period_seconds=0)
    # a plain init container runs before the app: max(7, 2) = 7 fits on 8
    assert place(v1, "default", with_helper("with-init", sidecar=False)) == "g"


# -- lifecycle -----------------------------------------------------------------------------------


def _phases(v1: client.CoreV1Api, ns: str, name: str, rv: str) -> list[str]:
    """The phases a watch saw for one pod, in order, until it ended (Succeeded/Failed)."""
    phases: list[str] = []
    from kubernetes import watch

    w = watch.Watch()
    for ev in w.stream(
        v1.list_namespaced_pod,
        ns,
        field_selector=f"metadata.name={name}",
        resource_version=rv,
        timeout_seconds=10,
    ):
        phase = ev["object"].status.phase
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase in ("Succeeded", "Failed"):
            w.stop()
    return phases


def test_simulate_runtime_succeeds_with_annotated_logs(v1: client.CoreV1Api, ns: str) -> None:
    rv = v1.list_namespaced_pod(ns).metadata.resource_version
    body = pod_manifest(
        "job",
        command=["python", "train.py"],
        annotations={"sim.skymagic.dev/duration": "0.3", "sim.skymagic.dev/logs": "a\nb\nc"},
    )
    v1.create_namespaced_pod(ns, body)
    assert _phases(v1, ns, "job", rv) == ["Pending", "Running", "Succeeded"]
    pod = v1.read_namespaced_pod("job", ns)
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 0 and term.reason == "Completed"
    assert v1.read_namespaced_pod_log("job", ns) == "a\nb\nc\n"
    assert v1.read_namespaced_pod_log("job", ns, tail_lines=2) == "b\nc\n"


def test_simulate_runtime_exit_code_fails_the_pod(v1: client.CoreV1Api, ns: str) -> None:
    rv = v1.list_namespaced_pod(ns).metadata.resource_version
    body = pod_manifest(
        "crash",
        command=["python", "train.py"],
        annotations={"sim.skymagic.dev/duration": "0.1", "sim.skymagic.dev/exit-code": "3"},
    )
    v1.create_namespaced_pod(ns, body)
    assert _phases(v1, ns, "crash", rv) == ["Pending", "Running", "Failed"]
    term = v1.read_namespaced_pod("crash", ns).status.container_statuses[0].state.terminated
    assert term.exit_code == 3 and term.reason == "Error"


def test_local_runtime_runs_the_command(local: client.CoreV1Api) -> None:
    body = pod_manifest("hello", command=["echo", "Hello World"])
    local.create_namespaced_pod("default", body)
    wait_for(lambda: local.read_namespaced_pod("hello", "default").status.phase == "Succeeded")
    assert local.read_namespaced_pod_log("hello", "default") == "Hello World\n"

    local.create_namespaced_pod("default", pod_manifest("fail7", command=["sh", "-c", "exit 7"]))
    pod = wait_for(
        lambda: (p := local.read_namespaced_pod("fail7", "default")).status.phase == "Failed" and p
    )
    assert pod.status.container_statuses[0].state.terminated.exit_code == 7


def test_logs_follow_streams_lines_as_they_come(fleet: Fleet, local: client.CoreV1Api) -> None:
    script = "for i in 1 2 3; do echo line $i; sleep 0.4; done"
    local.create_namespaced_pod("default", pod_manifest("ticker", command=["sh", "-c", script]))
    wait_for(lambda: local.read_namespaced_pod("ticker", "default").status.phase == "Running")
    api = api_client(fleet, "local")
    arrivals: list[tuple[float, bytes]] = []
    for line in stream_lines(
        api, "/api/v1/namespaces/default/pods/ticker/log", {"follow": "true"}, timeout=10
    ):
        arrivals.append((time.monotonic(), line))
    ended = time.monotonic()
    assert [line for _, line in arrivals] == [b"line 1", b"line 2", b"line 3"]
    # Lines arrived one by one while the container ran, not all at the end.
    assert arrivals[2][0] - arrivals[0][0] >= 0.6
    # The stream ended because the container ended.
    assert ended - arrivals[2][0] < 2.0
    wait_for(lambda: local.read_namespaced_pod("ticker", "default").status.phase == "Succeeded")
    # tailLines with follow on a finished container: just the tail.
    tail = list(
        stream_lines(
            api, "/api/v1/namespaces/default/pods/ticker/log", {"follow": "true", "tailLines": "1"}
        )
    )
    assert tail == [b"line 3"]


def test_logs_of_a_pending_pod_are_400(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_pod(ns, pod_manifest("stuck", node_selector={"pool": "zzz"}))
    from simkit import ApiException

    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log("stuck", ns)
    assert err.value.status == 400
    assert "is waiting to start" in err.value.body
