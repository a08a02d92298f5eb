"""The simulated API server over real HTTPS with the official client: discovery, resources,
selectors, list and watch semantics, and Status errors (issue #2, "API served faithfully")."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from kubernetes import client, watch
from simkit import ApiException, api_client, pod_manifest, raw, stream_lines, wait_for

from skymagic.sim import Fleet

CLUSTER = "api"
SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": CLUSTER,
            "version": "v1.30.4",
            "runtime": "simulate",
            "pod_start_s": 0.05,
            "default_duration_s": 0.3,
            "nodes": [
                {
                    "count": 3,
                    "name": "gpu",
                    "gpu": "H100",
                    "gpus": 8,
                    "labels": "gfd",
                    "cpu": 64,
                    "memory_gb": 512,
                    "taint_gpu": True,
                    "extra_labels": {"pool": "gpu"},
                },
                {"count": 2, "name": "cpu", "cpu": 8, "memory_gb": 32, "extra_labels": {"pool": "cpu"}},
            ],
            "pods": [
                {"count": 6, "name": "train", "gpu": "H100", "gpus": 2, "namespace": "team-a",
                 "labels": {"tier": "gpu"}},
                {"count": 4, "name": "web", "namespace": "team-b", "labels": {"tier": "web"}},
                {"count": 3, "name": "done", "namespace": "team-b", "phase": "Succeeded"},
                {"count": 2, "name": "broke", "namespace": "team-a", "phase": "Failed"},
            ],
        }
    ]
}  # fmt: skip
STATIC_NAMESPACES = ("team-a", "team-b")
STATIC_PODS = 15


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture(scope="module")
def api(fleet: Fleet) -> client.ApiClient:
    return api_client(fleet, CLUSTER)


@pytest.fixture(scope="module")
def v1(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def ns(v1: client.CoreV1Api) -> str:
    """A fresh namespace for a test that creates objects."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    v1.create_namespace({"metadata": {"name": name}})
    return name


def static_pods(v1: client.CoreV1Api, **kwargs: Any) -> list[Any]:
    items = v1.list_pod_for_all_namespaces(**kwargs).items
    return [p for p in items if p.metadata.namespace in STATIC_NAMESPACES]


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_endpoints(fleet: Fleet, api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version == "v1.30.4"
    status, version, _ = raw(api, "GET", "/version")
    assert status == 200 and (version["major"], version["minor"]) == ("1", "30")

    status, core_versions, _ = raw(api, "GET", "/api")
    assert status == 200 and core_versions["kind"] == "APIVersions"
    assert core_versions["versions"] == ["v1"]

    resources = client.CoreV1Api(api).get_api_resources()
    names = {r.name for r in resources.resources}
    assert {
        "pods", "pods/log", "pods/status", "nodes", "events", "namespaces", "secrets",
        "serviceaccounts", "services",
    } <= names  # fmt: skip
    by_name = {r.name: r for r in resources.resources}
    assert by_name["pods"].namespaced and not by_name["nodes"].namespaced
    assert {"list", "watch", "create", "delete", "get"} <= set(by_name["pods"].verbs)

    groups = client.ApisApi(api).get_api_versions().groups
    assert [g.name for g in groups] == ["authorization.k8s.io"]
    status, group, _ = raw(api, "GET", "/apis/authorization.k8s.io")
    assert status == 200 and group["preferredVersion"]["version"] == "v1"
    status, authz, _ = raw(api, "GET", "/apis/authorization.k8s.io/v1")
    assert status == 200
    assert [r["name"] for r in authz["resources"]] == ["selfsubjectaccessreviews"]

    status, missing, _ = raw(api, "GET", "/apis/apps/v1")
    assert status == 404 and missing["kind"] == "Status" and missing["reason"] == "NotFound"


# -- nodes ---------------------------------------------------------------------------------------


def test_nodes_list_get_and_label_selectors(v1: client.CoreV1Api) -> None:
    nodes = v1.list_node().items
    assert sorted(n.metadata.name for n in nodes) == [
        "cpu-0", "cpu-1", "gpu-0", "gpu-1", "gpu-2",
    ]  # fmt: skip
    gpu0 = v1.read_node("gpu-0")
    assert gpu0.status.allocatable["nvidia.com/gpu"] == "8"
    assert gpu0.metadata.labels["pool"] == "gpu"
    assert any(t.key == "nvidia.com/gpu" for t in gpu0.spec.taints)

    def names(selector: str) -> list[str]:
        return sorted(n.metadata.name for n in v1.list_node(label_selector=selector).items)

    assert names("pool=gpu") == ["gpu-0", "gpu-1", "gpu-2"]
    assert names("pool==cpu") == ["cpu-0", "cpu-1"]
    assert names("pool!=gpu") == ["cpu-0", "cpu-1"]
    assert names("pool in (cpu, gpu)") == names("")
    assert names("pool notin (gpu)") == ["cpu-0", "cpu-1"]
    assert names("nvidia.com/gpu.product") == ["gpu-0", "gpu-1", "gpu-2"]
    assert names("!nvidia.com/gpu.product") == ["cpu-0", "cpu-1"]
    assert names("pool=gpu,kubernetes.io/hostname=gpu-1") == ["gpu-1"]
    assert names("pool=none") == []
    one = v1.list_node(field_selector="metadata.name=cpu-1").items
    assert [n.metadata.name for n in one] == ["cpu-1"]


def test_node_watch_sees_label_change(fleet: Fleet, v1: client.CoreV1Api) -> None:
    rv = v1.list_node().metadata.resource_version
    v1.patch_node("cpu-1", {"metadata": {"labels": {"team": "blue"}}})
    try:
        w = watch.Watch()
        seen = []
        for ev in w.stream(
            v1.list_node, label_selector="team=blue", resource_version=rv, timeout_seconds=5
        ):
            seen.append((ev["type"], ev["object"].metadata.name))
            w.stop()
        assert seen == [("ADDED", "cpu-1")]
    finally:
        v1.patch_node("cpu-1", {"metadata": {"labels": {"team": None}}})
    assert "team" not in (v1.read_node("cpu-1").metadata.labels or {})


# -- pods: selectors ---------------------------------------------------------------------------


def test_pod_lists_all_namespaces_and_per_namespace(v1: client.CoreV1Api) -> None:
    pods = static_pods(v1)
    assert len(pods) == STATIC_PODS
    team_a = v1.list_namespaced_pod("team-a").items
    assert len(team_a) == 8
    assert {p.metadata.namespace for p in team_a} == {"team-a"}
    team_b = v1.list_namespaced_pod("team-b").items
    assert len(team_b) == 7
    assert v1.list_namespaced_pod("kube-public").items == []


@pytest.mark.parametrize(
    ("selector", "predicate"),
    [
        ("app=train", lambda lb: lb.get("app") == "train"),
        ("app!=train", lambda lb: lb.get("app") != "train"),
        ("app in (web,done)", lambda lb: lb.get("app") in ("web", "done")),
        ("app notin (web,done)", lambda lb: lb.get("app") not in ("web", "done")),
        ("tier", lambda lb: "tier" in lb),
        ("!tier", lambda lb: "tier" not in lb),
        ("tier,app!=web", lambda lb: "tier" in lb and lb.get("app") != "web"),
    ],
)
def test_pod_label_selectors(
    v1: client.CoreV1Api, selector: str, predicate: Callable[[dict[str, str]], bool]
) -> None:
    everything = static_pods(v1)
    expected = sorted(p.metadata.name for p in everything if predicate(p.metadata.labels or {}))
    got = sorted(p.metadata.name for p in static_pods(v1, label_selector=selector))
    assert got == expected
    assert 0 < len(expected) < len(everything)  # the selector really discriminates


@pytest.mark.parametrize(
    ("selector", "predicate"),
    [
        ("spec.nodeName=gpu-0", lambda p: p.spec.node_name == "gpu-0"),
        ("spec.nodeName!=gpu-0", lambda p: p.spec.node_name != "gpu-0"),
        ("status.phase=Running", lambda p: p.status.phase == "Running"),
        (
            "status.phase!=Succeeded,status.phase!=Failed",
            lambda p: p.status.phase not in ("Succeeded", "Failed"),
        ),
        ("metadata.namespace=team-b", lambda p: p.metadata.namespace == "team-b"),
        ("metadata.namespace!=team-b", lambda p: p.metadata.namespace != "team-b"),
        (
            "metadata.namespace=team-b,status.phase=Succeeded",
            lambda p: p.metadata.namespace == "team-b" and p.status.phase == "Succeeded",
        ),
    ],
)
def test_pod_field_selectors(
    v1: client.CoreV1Api, selector: str, predicate: Callable[[Any], bool]
) -> None:
    everything = static_pods(v1)
    expected = sorted(p.metadata.name for p in everything if predicate(p))
    got = sorted(p.metadata.name for p in static_pods(v1, field_selector=selector))
    assert got == expected
    assert 0 < len(expected) < len(everything)


def test_field_selector_metadata_name(v1: client.CoreV1Api) -> None:
    target = v1.list_namespaced_pod("team-b", label_selector="app=web").items[0].metadata.name
    got = v1.list_pod_for_all_namespaces(field_selector=f"metadata.name={target}").items
    assert [p.metadata.name for p in got] == [target]
    rest = v1.list_namespaced_pod("team-b", field_selector=f"metadata.name!={target}").items
    assert len(rest) == 6 and target not in {p.metadata.name for p in rest}


def test_bad_selectors_are_400(api: client.ApiClient) -> None:
    for query in (
        {"labelSelector": "app in train"},
        {"labelSelector": "app=(x"},
        {"fieldSelector": "spec.priority=0"},
        {"fieldSelector": "status.phase"},
    ):
        status, body, _ = raw(api, "GET", "/api/v1/pods", query)
        assert status == 400, query
        assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400
    status, body, _ = raw(api, "GET", "/api/v1/pods", {"fieldSelector": "spec.foo=bar"})
    assert "field label not supported: spec.foo" in body["message"]


# -- pods: create / get / status / delete ----------------------------------------------------------


def test_pod_create_get_status_and_graceful_delete(v1: client.CoreV1Api, ns: str) -> None:
    created = v1.create_namespaced_pod(ns, pod_manifest("sleeper"))
    assert created.status.phase == "Pending"
    assert created.metadata.uid and int(created.metadata.resource_version) > 0
    assert created.spec.service_account_name == "default"  # defaulted like the API server

    pod = wait_for(
        lambda: (p := v1.read_namespaced_pod("sleeper", ns)).status.phase == "Running" and p,
        what="sleeper Running",
    )
    assert pod.spec.node_name in ("cpu-0", "cpu-1")  # no GPU toleration: not the GPU nodes
    assert pod.status.pod_ip and pod.status.container_statuses[0].state.running
    status = v1.read_namespaced_pod_status("sleeper", ns)
    assert status.status.phase == "Running"
    assert "Ready" in [c.type for c in status.status.conditions if c.status == "True"]

    deleted = v1.delete_namespaced_pod("sleeper", ns, grace_period_seconds=1)
    assert deleted.metadata.deletion_timestamp is not None  # graceful: still there, terminating
    terminating = v1.read_namespaced_pod("sleeper", ns)
    assert terminating.metadata.deletion_grace_period_seconds == 1

    def gone() -> bool:
        try:
            v1.read_namespaced_pod("sleeper", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, what="sleeper deleted")


def test_pod_delete_grace_zero_is_immediate(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_pod(ns, pod_manifest("quick"))
    wait_for(lambda: v1.read_namespaced_pod("quick", ns).status.phase == "Running")
    v1.delete_namespaced_pod("quick", ns, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("quick", ns)
    assert err.value.status == 404


def test_generate_name(v1: client.CoreV1Api, ns: str) -> None:
    body = pod_manifest("x")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "job-"
    created = v1.create_namespaced_pod(ns, body)
    assert created.metadata.name.startswith("job-") and len(created.metadata.name) > 4


def test_pod_logs_and_tail_lines(v1: client.CoreV1Api, ns: str) -> None:
    pod = pod_manifest(
        "talker",
        command=["python", "train.py"],
        annotations={
            "sim.skymagic.dev/logs": "epoch 1\nepoch 2\nepoch 3\ndone",
            "sim.skymagic.dev/duration": "0.2",
        },
    )
    v1.create_namespaced_pod(ns, pod)
    wait_for(lambda: v1.read_namespaced_pod("talker", ns).status.phase == "Succeeded")
    assert v1.read_namespaced_pod_log("talker", ns) == "epoch 1\nepoch 2\nepoch 3\ndone\n"
    assert v1.read_namespaced_pod_log("talker", ns, tail_lines=2) == "epoch 3\ndone\n"
    assert v1.read_namespaced_pod_log("talker", ns, container="main", tail_lines=1) == "done\n"


# -- other resources -----------------------------------------------------------------------------


def test_namespaces_secrets_serviceaccounts_services(v1: client.CoreV1Api, ns: str) -> None:
    names = {n.metadata.name for n in v1.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "team-a", "team-b", ns} <= names
    assert v1.read_namespace(ns).status.phase == "Active"

    sas = v1.list_namespaced_service_account(ns).items
    assert [s.metadata.name for s in sas] == ["default"]  # created with the namespace
    all_sas = v1.list_service_account_for_all_namespaces().items
    assert {s.metadata.namespace for s in all_sas} >= {"default", "team-a", ns}

    svc = v1.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1" and svc.spec.ports[0].port == 443
    v1.create_namespaced_service(
        ns, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    )
    created = v1.read_namespaced_service("web", ns)
    assert created.spec.type == "ClusterIP" and created.spec.ports[0].target_port == 80

    v1.create_namespaced_secret(
        ns, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}
    )
    secret = v1.read_namespaced_secret("creds", ns)
    assert secret.type == "Opaque"
    assert base64.b64decode(secret.data["token"]) == b"s3cr3t"
    assert [s.metadata.name for s in v1.list_namespaced_secret(ns).items] == ["creds"]
    v1.delete_namespaced_secret("creds", ns)
    assert v1.list_namespaced_secret(ns).items == []


def test_events_list_and_watch(v1: client.CoreV1Api, ns: str) -> None:
    rv = v1.list_event_for_all_namespaces().metadata.resource_version
    v1.create_namespaced_pod(
        ns, pod_manifest("evented", annotations={"sim.skymagic.dev/duration": "0.1"})
    )
    wait_for(lambda: v1.read_namespaced_pod("evented", ns).status.phase == "Succeeded")

    reasons = [e.reason for e in v1.list_namespaced_event(ns).items]
    # Event names are "<pod>.<hex nanoseconds>" like client-go's recorder, so a list (sorted
    # by name) shows them in the order they happened.
    assert reasons == ["Scheduled", "Pulled", "Created", "Started"]
    everywhere = v1.list_event_for_all_namespaces(
        field_selector=f"involvedObject.name=evented,involvedObject.namespace={ns}"
    ).items
    assert {e.reason for e in everywhere} == set(reasons)
    assert all(e.involved_object.kind == "Pod" for e in everywhere)
    scheduled = next(e for e in everywhere if e.reason == "Scheduled")
    assert scheduled.source.component == "default-scheduler"
    assert scheduled.message.startswith(f"Successfully assigned {ns}/evented to ")

    # Watches from the earlier resourceVersion replay the same events, per namespace and across all.
    for lister, args in ((v1.list_namespaced_event, (ns,)), (v1.list_event_for_all_namespaces, ())):
        w = watch.Watch()
        got = []
        for ev in w.stream(lister, *args, resource_version=rv, timeout_seconds=2):
            if ev["object"].involved_object.name == "evented":
                got.append((ev["type"], ev["object"].reason))
            if len(got) == len(reasons):
                w.stop()
        assert got == [("ADDED", r) for r in reasons]


# -- list semantics -----------------------------------------------------------------------------


def test_resource_version_is_monotonic_per_cluster(v1: client.CoreV1Api, ns: str) -> None:
    seen = [int(v1.list_pod_for_all_namespaces().metadata.resource_version)]
    for i in range(3):
        obj = v1.create_namespaced_config_map(ns, {"metadata": {"name": f"cm{i}"}})
        seen.append(int(obj.metadata.resource_version))
        seen.append(int(v1.list_node().metadata.resource_version))
    assert seen == sorted(seen) and len(set(seen[1::2])) == 3
    listed = v1.list_namespaced_config_map(ns)
    assert max(int(c.metadata.resource_version) for c in listed.items) <= int(
        listed.metadata.resource_version
    )


def test_resource_version_zero_serves_the_same_list(v1: client.CoreV1Api) -> None:
    fresh = sorted(p.metadata.name for p in static_pods(v1))
    cached = sorted(p.metadata.name for p in static_pods(v1, resource_version="0"))
    assert cached == fresh and len(fresh) == STATIC_PODS


def test_limit_and_continue_paginate_the_whole_list(v1: client.CoreV1Api) -> None:
    full = [(p.metadata.namespace, p.metadata.name) for p in v1.list_pod_for_all_namespaces().items]
    pages: list[list[tuple[str, str]]] = []
    token = None
    while True:
        page = v1.list_pod_for_all_namespaces(limit=4, _continue=token)
        pages.append([(p.metadata.namespace, p.metadata.name) for p in page.items])
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count in (None, 0)
            break
        assert len(page.items) == 4
        assert page.metadata.remaining_item_count == len(full) - sum(map(len, pages))
    flat = [x for p in pages for x in p]
    assert flat == full  # same order, no duplicates, nothing missing
    assert len(pages) == -(-len(full) // 4)


def test_expired_continue_token_is_410_with_a_fresh_token(
    fleet: Fleet, api: client.ApiClient
) -> None:
    status, first, _ = raw(api, "GET", "/api/v1/namespaces/team-a/pods", {"limit": "3"})
    assert status == 200
    token = first["metadata"]["continue"]
    fleet.compact(CLUSTER)
    status, gone, _ = raw(
        api, "GET", "/api/v1/namespaces/team-a/pods", {"limit": "3", "continue": token}
    )
    assert status == 410
    assert gone["kind"] == "Status" and gone["reason"] == "Expired" and gone["code"] == 410
    assert "continue parameter is too old" in gone["message"]
    fresh = gone["metadata"]["continue"]
    assert fresh and fresh != token
    # The fresh token continues after the same key (an inconsistent but complete remainder).
    names = [p["metadata"]["name"] for p in first["items"]]
    while fresh:
        status, page, _ = raw(
            api, "GET", "/api/v1/namespaces/team-a/pods", {"limit": "3", "continue": fresh}
        )
        assert status == 200
        names += [p["metadata"]["name"] for p in page["items"]]
        fresh = page["metadata"].get("continue")
    status, whole, _ = raw(api, "GET", "/api/v1/namespaces/team-a/pods")
    assert names == [p["metadata"]["name"] for p in whole["items"]]


def test_garbage_continue_token_is_400(api: client.ApiClient) -> None:
    status, body, _ = raw(api, "GET", "/api/v1/pods", {"limit": "2", "continue": "not-a-token"})
    assert status == 400 and body["reason"] == "BadRequest"


# -- watch semantics ------------------------------------------------------------------------------


def _unschedulable_pod(name: str) -> dict[str, Any]:
    # Matches no node, so it stays Pending and its event sequence is deterministic.
    return pod_manifest(name, node_selector={"pool": "nowhere"})


def _collect(lines: Iterator[bytes], until: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    events: list[dict[str, Any]] = []
    for line in lines:
        if line.strip():
            events.append(msgspec.json.decode(line))
            if until(events):
                break
    return events


def test_watch_is_chunked_and_resumes_with_exactly_the_missed_events(
    api: client.ApiClient, v1: client.CoreV1Api, ns: str
) -> None:
    rv = v1.list_namespaced_pod(ns).metadata.resource_version
    path = f"/api/v1/namespaces/{ns}/pods"
    live = stream_lines(api, path, {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "10"})
    v1.create_namespaced_pod(ns, _unschedulable_pod("w1"))
    wait_for(
        lambda: v1.read_namespaced_pod("w1", ns).status.conditions,
        what="w1 marked unschedulable",
    )
    v1.patch_namespaced_pod("w1", ns, {"metadata": {"labels": {"stage": "two"}}})
    v1.delete_namespaced_pod("w1", ns)
    live_events = _collect(live, lambda evs: evs[-1]["type"] == "DELETED")
    types = [e["type"] for e in live_events]
    assert types[0] == "ADDED" and types[-1] == "DELETED"
    assert set(types[1:-1]) == {"MODIFIED"} and len(types) >= 4
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in live_events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert live_events[-2]["object"]["metadata"]["labels"]["stage"] == "two"

    # A watch resumed from the same resourceVersion afterwards gets exactly those events.
    replay = _collect(
        stream_lines(api, path, {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}),
        lambda evs: False,
    )
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in replay] == [
        (e["type"], e["object"]["metadata"]["resourceVersion"]) for e in live_events
    ]
    # ... and resuming from the middle gets only the rest, as a chunked stream.
    middle = live_events[1]["object"]["metadata"]["resourceVersion"]
    headers: dict[str, str] = {}
    rest = _collect(
        stream_lines(
            api, path, {"watch": "1", "resourceVersion": middle, "timeoutSeconds": "5"},
            headers_out=headers,
        ),
        lambda evs: len(evs) == len(types) - 2,
    )  # fmt: skip
    assert [e["type"] for e in rest] == types[2:]
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "application/json"


def test_watch_without_resource_version_starts_with_synthetic_added(
    api: client.ApiClient,
) -> None:
    events = _collect(
        stream_lines(api, "/api/v1/namespaces/team-b/pods", {"watch": "1", "timeoutSeconds": "1"}),
        lambda evs: False,
    )
    assert [e["type"] for e in events] == ["ADDED"] * 7


def test_watch_timeout_seconds_ends_the_stream(api: client.ApiClient) -> None:
    _, list_body, _ = raw(api, "GET", "/api/v1/nodes")
    rv = list_body["metadata"]["resourceVersion"]
    start = time.monotonic()
    events = _collect(
        stream_lines(
            api, "/api/v1/nodes", {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
        ),
        lambda evs: False,
    )
    elapsed = time.monotonic() - start
    assert events == []
    assert 0.9 <= elapsed < 3.0


def test_watch_from_a_compacted_resource_version_gets_410(
    fleet: Fleet, api: client.ApiClient, v1: client.CoreV1Api, ns: str
) -> None:
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "bump"}})
    fleet.compact(CLUSTER)
    events = _collect(
        stream_lines(
            api, f"/api/v1/namespaces/{ns}/configmaps",
            {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5"},
        ),
        lambda evs: False,
    )  # fmt: skip
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    st = events[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    assert "too old resource version" in st["message"]
    # The official client turns that event into an ApiException(410), as client-go does.
    w = watch.Watch()
    with pytest.raises(ApiException) as err:
        for _ in w.stream(
            v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5
        ):
            pass
    assert err.value.status == 410


def test_object_leaving_a_field_selector_arrives_as_deleted(
    api: client.ApiClient, v1: client.CoreV1Api, ns: str
) -> None:
    rv = v1.list_namespaced_pod(ns).metadata.resource_version
    lines = stream_lines(
        api,
        f"/api/v1/namespaces/{ns}/pods",
        {
            "watch": "1",
            "resourceVersion": rv,
            "timeoutSeconds": "10",
            "fieldSelector": "status.phase!=Succeeded,status.phase!=Failed",
        },
    )
    v1.create_namespaced_pod(
        ns, pod_manifest("brief", annotations={"sim.skymagic.dev/duration": "0.2"})
    )
    events = _collect(lines, lambda evs: evs[-1]["type"] == "DELETED")
    assert events[0]["type"] == "ADDED"
    assert all(e["object"]["status"]["phase"] in ("Pending", "Running") for e in events[:-1])
    # Like the watch cache: the DELETED event carries the last matching content (Running) with
    # the resourceVersion of the change that made it stop matching.
    gone = events[-1]["object"]
    assert gone["status"]["phase"] == "Running"
    assert int(gone["metadata"]["resourceVersion"]) > int(
        events[-2]["object"]["metadata"]["resourceVersion"]
    )
    # The pod itself still exists: it only stopped matching.
    pod = v1.read_namespaced_pod("brief", ns)
    assert pod.status.phase == "Succeeded"
    assert pod.metadata.resource_version == gone["metadata"]["resourceVersion"]


# -- errors --------------------------------------------------------------------------------------


def test_status_errors(api: client.ApiClient, v1: client.CoreV1Api, ns: str) -> None:
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("nope", ns)
    body = msgspec.json.decode(err.value.body)
    assert err.value.status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }

    v1.create_namespaced_pod(ns, _unschedulable_pod("twice"))
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(ns, _unschedulable_pod("twice"))
    body = msgspec.json.decode(err.value.body)
    assert err.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "twice" already exists'

    invalid = {"metadata": {"name": "empty"}, "spec": {"containers": []}}
    status, body, _ = raw(api, "POST", f"/api/v1/namespaces/{ns}/pods", body=invalid)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Pod "empty" is invalid: spec.containers: Required value')
    no_image = {"metadata": {"name": "noimg"}, "spec": {"containers": [{"name": "c"}]}}
    status, body, _ = raw(api, "POST", f"/api/v1/namespaces/{ns}/pods", body=no_image)
    assert status == 422 and "spec.containers[0].image: Required value" in body["message"]

    status, body, _ = raw(
        api, "POST", "/api/v1/namespaces/no-such-ns/pods", body=_unschedulable_pod("x")
    )
    assert status == 404 and body["message"] == 'namespaces "no-such-ns" not found'
    status, body, _ = raw(api, "GET", "/api/v1/widgets")
    assert status == 404 and body["kind"] == "Status"


def test_big_list_stays_current_after_changes(make_fleet: Callable[..., Fleet]) -> None:
    # Lists over 1 MB are served from encoded items kept while the resource is unchanged;
    # every kind of change must show up in the next list.
    fleet = make_fleet(
        {
            "clusters": [
                {
                    "name": "lists",
                    "nodes": [{"count": 8, "name": "n", "cpu": 64, "memory_gb": 256}],
                    "pods": [{"count": 600, "name": "p", "namespace": "bulk"}],
                }
            ]
        }
    )
    api = api_client(fleet, "lists")
    v1 = client.CoreV1Api(api)

    def listed(**kw: Any) -> dict[str, Any]:
        status, body, _ = raw(api, "GET", "/api/v1/namespaces/bulk/pods", kw)
        assert status == 200
        return dict(body)

    first = listed()
    assert len(first["items"]) == 600 and fleet.requests("lists")[-1]["bytes"] > 1 << 20
    again = listed()
    assert again["items"] == first["items"]
    name = first["items"][0]["metadata"]["name"]
    v1.patch_namespaced_pod(name, "bulk", {"metadata": {"labels": {"marked": "yes"}}})
    patched = listed()
    assert patched["items"][0]["metadata"]["labels"]["marked"] == "yes"
    assert int(patched["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert len(listed(labelSelector="marked=yes")["items"]) == 1
    v1.delete_namespaced_pod(name, "bulk", grace_period_seconds=0)
    assert len(listed()["items"]) == 599
    assert listed(labelSelector="marked=yes")["items"] == []
    fleet.add_pods("lists", count=2, name="late", namespace="bulk")
    assert len(listed()["items"]) == 601
    # Another resource changing moves the list's resourceVersion even if pods did not change.
    before = listed()["metadata"]["resourceVersion"]
    v1.create_namespaced_config_map("bulk", {"metadata": {"name": "cm"}})
    assert int(listed()["metadata"]["resourceVersion"]) > int(before)
