"""ContextClient.official(): the official kubernetes client, built from skymagic's own TLS and
credentials, works against a simulated client-certificate cluster and leaves no key behind, and
impersonates with several groups as kubectl does (one Impersonate-Group header per group)."""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.client import ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.sim import Fleet

SPEC = {
    "clusters": [
        {"name": "certs", "auth": "client-cert", "nodes": [{"count": 2, "name": "n"}]},
        {
            "name": "tokens",
            "auth": "token",
            "nodes": [{"count": 1, "name": "n"}],
            # alice alone may only read nodes; as a member of system:masters, anything.
            "users": [{"name": "alice", "context": "tokens-alice", "auth": "token"}],
            "rbac": [
                {"user": "alice", "rules": [{"verbs": ["get", "list"], "resources": ["nodes"]}]}
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


def client(fleet: Fleet, name: str) -> ContextClient:
    return ContextClient(load_kubeconfig([fleet.kubeconfig]).resolve(name))


def node_names(api: object) -> list[str]:
    from kubernetes import client as k8s

    return sorted(n.metadata.name for n in k8s.CoreV1Api(api).list_node().items)


def test_the_key_lives_while_the_client_is_open_and_goes_with_close(fleet: Fleet) -> None:
    api = client(fleet, "certs").official()
    key = Path(api.configuration.key_file)
    assert key.is_file() and key.stat().st_mode & 0o077 == 0
    assert len(node_names(api)) == 2  # the certificate really authenticates
    assert len(node_names(api)) == 2  # ... on every new connection too
    api.close()
    assert not key.exists() and not key.parent.exists()


def test_a_with_block_and_a_dropped_client_clean_up_too(fleet: Fleet) -> None:
    from kubernetes import client as k8s

    with client(fleet, "certs").official() as api:
        key = Path(api.configuration.key_file)
        assert isinstance(api, k8s.ApiClient) and len(node_names(api)) == 2
    assert not key.parent.exists()
    dropped = client(fleet, "certs").official()
    key = Path(dropped.configuration.key_file)
    del dropped
    gc.collect()
    assert not key.parent.exists()


def test_a_token_context_writes_no_client_key(fleet: Fleet) -> None:
    api = client(fleet, "tokens").official()
    try:
        assert api.configuration.key_file is None
        assert len(node_names(api)) == 1
        ca = api.configuration.ssl_ca_cert
        assert ca and os.path.isfile(ca)
    finally:
        api.close()
    assert not os.path.exists(ca)


def test_no_temp_dir_is_left_by_many_clients(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # only this test's temp dirs
    for _ in range(5):
        api = client(fleet, "certs").official()
        assert len(list(tmp_path.glob("skymagic-*"))) == 1
        api.close()
    assert list(tmp_path.iterdir()) == []


def impersonating(fleet: Fleet, tmp_path: Path, **fields: Any) -> ContextClient:
    """The `tokens` admin's kubeconfig user with impersonation `fields` (as, as-groups, ...)."""
    doc = yaml.safe_load(Path(fleet.kubeconfig).read_text())
    ctx = next(c for c in doc["contexts"] if c["name"] == "tokens")["context"]
    user = next(u for u in doc["users"] if u["name"] == ctx["user"])
    user["user"].update(fields)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return ContextClient(load_kubeconfig([str(path)]).resolve("tokens"))


def acted(fleet: Fleet) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(method, path, acting user, impersonated groups) of the impersonated requests."""
    return [
        (r["method"], r["path"], r["user"], tuple(r["groups"]))
        for r in fleet.requests("tokens")
        if r.get("impersonator")
    ]


def test_several_impersonated_groups_reach_the_server_each_as_its_own_header(
    fleet: Fleet, tmp_path: Path
) -> None:
    from kubernetes import client as k8s

    groups = ["team-a", "team-b", "system:masters"]
    with impersonating(fleet, tmp_path, **{"as": "alice", "as-groups": groups}).official() as api:
        fleet.clear_requests("tokens")
        # alice alone may not list pods; as a member of system:masters she may (the 3rd group)
        k8s.CoreV1Api(api).list_pod_for_all_namespaces()
        # a request with a body goes through urllib3's other path (an HTTPHeaderDict)
        review = k8s.V1SelfSubjectAccessReview(
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(verb="create", resource="pods")
            )
        )
        answer = k8s.AuthorizationV1Api(api).create_self_subject_access_review(review)
        assert answer.status.allowed
    assert acted(fleet) == [
        ("GET", "/api/v1/pods", "alice", tuple(groups)),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "alice", tuple(groups)),
    ]


def test_without_the_masters_group_the_impersonated_user_is_refused(
    fleet: Fleet, tmp_path: Path
) -> None:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    user = {"as": "alice", "as-groups": ["team-a", "team-b"]}
    with impersonating(fleet, tmp_path, **user).official() as api:
        fleet.clear_requests("tokens")
        assert len(k8s.CoreV1Api(api).list_node().items) == 1  # what alice may do
        with pytest.raises(ApiException) as refused:
            k8s.CoreV1Api(api).list_pod_for_all_namespaces()
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403 and 'User "alice" cannot list' in message
    assert {g for *_, g in acted(fleet)} == {("team-a", "team-b")}


def test_pod_streams_refuse_an_impersonating_user_instead_of_acting_as_the_real_one(
    fleet: Fleet, tmp_path: Path
) -> None:
    """kubernetes.stream sends only the Authorization header on its WebSocket: an exec or a
    port-forward through it would run as the kubeconfig's real user, not as `as`."""
    from kubernetes import client as k8s

    from skymagic.core.podstreams import exec_stream, open_port_socket
    from skymagic.errors import ConfigError

    with client(fleet, "tokens").official() as admin:
        core = k8s.CoreV1Api(admin)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "box"},
            "spec": {"containers": [{"name": "main", "image": "x", "command": ["sleep", "inf"]}]},
        }
        core.create_namespaced_pod("default", body)
        deadline = time.monotonic() + 20
        while core.read_namespaced_pod("box", "default").status.phase != "Running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert exec_stream(client(fleet, "tokens"), "default", "box", ["true"]).exit_code == 0
    acting = impersonating(fleet, tmp_path, **{"as": "alice"})
    fleet.clear_requests("tokens")
    with pytest.raises(ConfigError, match="impersonates"):
        exec_stream(acting, "default", "box", ["true"])
    with pytest.raises(ConfigError, match="impersonates"):
        open_port_socket(acting, "default", "box", 8080)
    assert not [
        r for r in fleet.requests("tokens") if r["path"].endswith(("/exec", "/portforward"))
    ]
