"""The real kubectl against the simulated fleet (issue #2): every context of the demo fleet
(token, exec and client-cert users), pagination, run/describe/logs -f/delete, auth can-i."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from conftest import needs_kubectl
from simkit import kubectl, wait_for

from skymagic.sim import Fleet

pytestmark = [needs_kubectl, pytest.mark.kubectl]

DEMO_CONTEXTS = (
    "my-h100-cluster",
    "gke_my-project_us-central2-b_my-tpu-cluster",
    "my-a100-cluster",
)


@pytest.fixture(scope="module")
def demo() -> Iterator[Fleet]:
    """A demo fleet of this module's own: these tests create and delete pods."""
    with Fleet("demo") as fleet:
        yield fleet


def test_demo_fleet_contexts_cover_every_auth_kind(demo_fleet: Fleet) -> None:
    assert demo_fleet.contexts == list(DEMO_CONTEXTS)
    kinds = {c.name: c.auth for c in demo_fleet.spec.clusters}
    assert sorted(kinds.values()) == ["client-cert", "exec", "token"]


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_get_nodes(demo_fleet: Fleet, context: str) -> None:
    out = kubectl(demo_fleet, context, "get", "nodes", "--no-headers").stdout
    rows = [line.split() for line in out.splitlines()]
    expected = sum(g.count for g in demo_fleet.spec.cluster(context).nodes)
    assert len(rows) == expected
    assert all(row[1] == "Ready" for row in rows)
    data = json.loads(kubectl(demo_fleet, context, "get", "nodes", "-o", "json").stdout)
    assert data["kind"] == "List" and len(data["items"]) == expected


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_get_pods_all_namespaces(demo_fleet: Fleet, context: str) -> None:
    out = kubectl(demo_fleet, context, "get", "pods", "-A").stdout.splitlines()
    assert out[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    expected = sum(g.count for g in demo_fleet.spec.cluster(context).pods)
    assert len(out) - 1 >= expected


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_auth_can_i_as_admin(demo_fleet: Fleet, context: str) -> None:
    proc = kubectl(demo_fleet, context, "auth", "can-i", "list", "pods", "--all-namespaces")
    assert proc.stdout.strip() == "yes"


def test_chunked_listing_really_paginates(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(
        {
            "clusters": [
                {
                    "name": "many",
                    "nodes": [{"count": 3, "name": "n", "cpu": 64, "memory_gb": 256}],
                    "pods": [
                        {"count": 150, "name": "a", "namespace": "team-a"},
                        {"count": 100, "name": "b", "namespace": "team-b"},
                    ],
                }
            ]
        }
    )
    fleet.clear_requests("many")
    out = kubectl(fleet, "many", "get", "pods", "-A", "--chunk-size=100", "--no-headers").stdout
    assert len(out.splitlines()) == 250
    lists = [
        r for r in fleet.requests("many") if r["method"] == "GET" and r["path"] == "/api/v1/pods"
    ]
    assert len(lists) == 3
    assert all(r["query"].get("limit") == "100" for r in lists)
    assert "continue" not in lists[0]["query"]
    assert all(r["query"].get("continue") for r in lists[1:])
    # Without --chunk-size kubectl still pages, with its default of 500.
    fleet.clear_requests("many")
    kubectl(fleet, "many", "get", "pods", "-A", "--no-headers")
    queries = [r["query"] for r in fleet.requests("many") if r["path"] == "/api/v1/pods"]
    assert [q.get("limit") for q in queries] == ["500"]


def _phase(fleet: Fleet, context: str, name: str) -> str:
    proc = kubectl(fleet, context, "get", "pod", name, "-o", "jsonpath={.status.phase}")
    return proc.stdout.strip()


def _has_untainted_node(fleet: Fleet, context: str) -> bool:
    return any(not g.taint_gpu and not g.taints for g in fleet.spec.cluster(context).nodes)


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_run_then_scheduled_or_pending_then_delete(demo: Fleet, context: str) -> None:
    proc = kubectl(
        demo, context, "run", "hello", "--image=busybox", "--restart=Never", "--",
        "echo", "Hello World",
    )  # fmt: skip
    assert proc.stdout.strip() == "pod/hello created"
    if _has_untainted_node(demo, context):
        wait_for(lambda: _phase(demo, context, "hello") == "Succeeded", timeout=20, interval=0.1)
        node = kubectl(demo, context, "get", "pod", "hello", "-o", "jsonpath={.spec.nodeName}")
        untainted = [g.name for g in demo.spec.cluster(context).nodes if not g.taint_gpu]
        assert node.stdout.strip() in untainted
        logs = kubectl(demo, context, "logs", "-f", "hello", timeout=20)
        assert logs.stdout == "Hello World\n"
        described = kubectl(demo, context, "describe", "pod", "hello").stdout
        assert f"Successfully assigned default/hello to {node.stdout.strip()}" in described
        assert "Started container hello" in described
    else:
        # Every node of this cluster carries the GPU taint: a plain pod stays Pending.
        def described() -> str:
            text = kubectl(demo, context, "describe", "pod", "hello").stdout
            return text if "FailedScheduling" in text else ""

        text = wait_for(described, timeout=20, interval=0.1, what="FailedScheduling event")
        nodes = sum(g.count for g in demo.spec.cluster(context).nodes)
        assert (
            f"0/{nodes} nodes are available: {nodes} node(s) had untolerated taint "
            "{nvidia.com/gpu: present}." in text
        )
        assert _phase(demo, context, "hello") == "Pending"
    deleted = kubectl(demo, context, "delete", "pod", "hello", timeout=30)
    assert deleted.stdout.strip() == 'pod "hello" deleted'
    gone = kubectl(demo, context, "get", "pod", "hello", check=False)
    assert gone.returncode == 1 and 'pods "hello" not found' in gone.stderr


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_logs_follow_streams_a_running_pod(demo: Fleet, context: str) -> None:
    script = "for i in 1 2 3; do echo tick $i; sleep 0.2; done"
    tolerate_all = json.dumps({"spec": {"tolerations": [{"operator": "Exists"}]}})
    kubectl(demo, context, "run", "ticker", "--image=busybox", "--restart=Never",
            f"--overrides={tolerate_all}", "--", "sh", "-c", script)  # fmt: skip
    wait_for(lambda: _phase(demo, context, "ticker") in ("Running", "Succeeded"), timeout=20)
    logs = kubectl(demo, context, "logs", "-f", "ticker", timeout=20)
    assert logs.stdout == "tick 1\ntick 2\ntick 3\n"
    tail = kubectl(demo, context, "logs", "ticker", "--tail=1")
    assert tail.stdout == "tick 3\n"
    deleted = kubectl(demo, context, "delete", "pod", "ticker", timeout=30)
    assert deleted.stdout.strip() == 'pod "ticker" deleted'


@pytest.mark.parametrize("context", DEMO_CONTEXTS)
def test_unschedulable_run_shows_failed_scheduling_in_describe(demo: Fleet, context: str) -> None:
    resource = "google.com/tpu" if "tpu" in context else "nvidia.com/gpu"
    overrides = {
        "spec": {
            "containers": [
                {
                    "name": "greedy",
                    "image": "busybox",
                    "command": ["sleep", "infinity"],
                    "resources": {"limits": {resource: "64"}},
                }
            ]
        }
    }
    kubectl(demo, context, "run", "greedy", "--image=busybox", "--restart=Never",
            f"--overrides={json.dumps(overrides)}")  # fmt: skip

    def described() -> str:
        text = kubectl(demo, context, "describe", "pod", "greedy").stdout
        return text if "FailedScheduling" in text else ""

    text = wait_for(described, timeout=20, interval=0.1, what="FailedScheduling in describe")
    nodes = sum(g.count for g in demo.spec.cluster(context).nodes)
    assert f"0/{nodes} nodes are available:" in text
    assert "Status:           Pending" in text
    assert _phase(demo, context, "greedy") == "Pending"
    kubectl(demo, context, "delete", "pod", "greedy")


def test_auth_can_i_for_a_restricted_user(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(
        {
            "clusters": [
                {
                    "name": "shared",
                    "nodes": [{"count": 1, "name": "n"}],
                    "pods": [{"count": 2, "name": "a", "namespace": "team-a"}],
                    "users": [
                        {"name": "alice", "context": "shared-alice", "auth": "token"},
                        {"name": "alice", "context": "shared-alice-exec", "auth": "exec"},
                    ],
                    "rbac": [
                        {
                            "user": "alice",
                            "rules": [
                                {"verbs": ["list"], "resources": ["pods"], "namespaces": ["team-a"]}
                            ],
                        }
                    ],
                }
            ]
        }
    )

    def can_i(context: str, *args: str) -> str:
        proc = kubectl(fleet, context, "auth", "can-i", *args, check=False)
        return proc.stdout.strip()

    assert can_i("shared", "list", "pods", "--all-namespaces") == "yes"
    for context in ("shared-alice", "shared-alice-exec"):
        assert can_i(context, "list", "pods", "--all-namespaces") == "no"
        assert can_i(context, "list", "pods", "-n", "team-a") == "yes"
        assert can_i(context, "delete", "pods", "-n", "team-a") == "no"
        denied = kubectl(fleet, context, "get", "pods", "-A", check=False)
        assert denied.returncode == 1
        assert 'User "alice" cannot list resource "pods"' in denied.stderr
        allowed = kubectl(fleet, context, "get", "pods", "-n", "team-a", "--no-headers")
        assert len(allowed.stdout.splitlines()) == 2
    ssar = [r for r in fleet.requests("shared") if r["path"].endswith("selfsubjectaccessreviews")]
    assert ssar and all(r["code"] == 201 for r in ssar)
