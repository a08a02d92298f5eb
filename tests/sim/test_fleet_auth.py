"""Authentication and RBAC of the simulated fleet (issue #2: bearer tokens, client
certificates, exec plugin, expired tokens, unauthenticated 401, per-user rules, 403, SSAR)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml
from kubernetes import client
from simkit import api_client, raw, wait_for

from skymagic.sim import Fleet

RBAC = [
    {
        "user": "alice",
        "rules": [
            {"verbs": ["get", "list", "watch"], "resources": ["nodes"]},
            {"verbs": ["*"], "resources": ["pods", "pods/log"], "namespaces": ["team-a"]},
        ],
    }
]
NODES = [{"count": 2, "name": "n", "cpu": 8, "memory_gb": 32}]
PODS = [
    {"count": 2, "name": "a", "namespace": "team-a"},
    {"count": 1, "name": "b", "namespace": "team-b"},
]
SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "tok",
            "auth": "token",
            "nodes": NODES,
            "pods": PODS,
            "users": [
                {"name": "alice", "context": "tok-alice", "auth": "token"},
                {"name": "alice", "context": "tok-alice-cert", "auth": "client-cert"},
                {"name": "alice", "context": "tok-alice-exec", "auth": "exec"},
            ],
            "rbac": RBAC,
        },
        {"name": "cert", "auth": "client-cert", "nodes": NODES, "pods": PODS},
        {"name": "ex", "auth": "exec", "nodes": NODES, "pods": PODS},
    ]
}  # fmt: skip
ADMIN_CONTEXTS = {"tok": "token-admin", "cert": "client-cert-admin", "ex": "exec-admin"}
ALICE_CONTEXTS = ("tok-alice", "tok-alice-cert", "tok-alice-exec")


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture(scope="module")
def kubeconfig(fleet: Fleet) -> dict[str, Any]:
    with open(fleet.kubeconfig) as fh:
        doc: dict[str, Any] = yaml.safe_load(fh)
    return doc


def user_entry(kubeconfig: dict[str, Any], context: str) -> dict[str, Any]:
    ctx = next(c for c in kubeconfig["contexts"] if c["name"] == context)["context"]
    user: dict[str, Any] = next(u for u in kubeconfig["users"] if u["name"] == ctx["user"])["user"]
    return user


def ca_context(fleet: Fleet) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(fleet.state_dir / "ca.crt"))


def anonymous_get(fleet: Fleet, cluster: str, path: str, token: str | None = None) -> Any:
    """A request with no client certificate, and a bearer token only if given."""
    req = urllib.request.Request(fleet.server(cluster) + path)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ca_context(fleet), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def run_exec_plugin(stanza: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {
            "apiVersion": stanza["apiVersion"],
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
    )
    out = subprocess.run(
        [stanza["command"], *stanza["args"]], env=env, capture_output=True, check=True, timeout=30
    )
    cred: dict[str, Any] = json.loads(out.stdout)
    return cred


@pytest.mark.parametrize("context", sorted(ADMIN_CONTEXTS))
def test_each_auth_kind_authenticates_its_user(
    fleet: Fleet, kubeconfig: dict[str, Any], context: str
) -> None:
    entry = user_entry(kubeconfig, context)
    kind = {"tok": "token", "cert": "client-certificate-data", "ex": "exec"}[context]
    assert kind in entry
    if context == "ex":
        assert entry["exec"]["args"][:2] == ["-m", "skymagic.sim.exec_plugin"]
        assert entry["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    fleet.clear_requests(context)
    v1 = client.CoreV1Api(api_client(fleet, context))
    assert len(v1.list_node().items) == 2
    assert len(v1.list_pod_for_all_namespaces().items) == 3
    users = {r["user"] for r in fleet.requests(context)}
    assert users == {ADMIN_CONTEXTS[context]}


def test_exec_plugin_prints_an_expiring_exec_credential(
    fleet: Fleet, kubeconfig: dict[str, Any]
) -> None:
    stanza = user_entry(kubeconfig, "ex")["exec"]
    cred = run_exec_plugin(stanza)
    assert cred["apiVersion"] == stanza["apiVersion"] and cred["kind"] == "ExecCredential"
    expiry = datetime.fromisoformat(cred["status"]["expirationTimestamp"].replace("Z", "+00:00"))
    assert 3500 < expiry.timestamp() - time.time() <= 3601  # token_ttl_s default 3600
    status, body = anonymous_get(fleet, "ex", "/api/v1/nodes", token=cred["status"]["token"])
    assert status == 200 and len(body["items"]) == 2


def test_unauthenticated_and_bad_tokens_get_401(fleet: Fleet) -> None:
    for token in (None, "garbage", "simtok.e30.AAAA"):
        status, body = anonymous_get(fleet, "tok", "/api/v1/nodes", token=token)
        assert status == 401, token
        assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
        assert body["code"] == 401 and body["message"] == "Unauthorized"
    # A token from another fleet (another secret) is no good either.
    status, _ = anonymous_get(fleet, "tok", "/api/v1/nodes", token=_foreign_token())
    assert status == 401


def _foreign_token() -> str:
    from skymagic.sim.tokens import TokenMinter

    return TokenMinter(b"some other fleet").mint("token-admin", ["system:masters"])


def test_expired_minted_token_gets_401(fleet: Fleet) -> None:
    token = fleet.mint_token("tok", "token-admin", ["system:masters"], ttl_s=1.0)
    status, _ = anonymous_get(fleet, "tok", "/api/v1/nodes", token=token)
    assert status == 200
    wait_for(
        lambda: anonymous_get(fleet, "tok", "/api/v1/nodes", token=token)[0] == 401,
        timeout=5,
        what="minted token to expire",
        interval=0.1,
    )


def test_token_ttl_fault_is_read_by_the_exec_plugin_at_each_run(
    fleet: Fleet, kubeconfig: dict[str, Any]
) -> None:
    stanza = user_entry(kubeconfig, "ex")["exec"]
    fleet.set_faults("ex", token_ttl_s=1.0)
    try:
        cred = run_exec_plugin(stanza)
        expiry = datetime.fromisoformat(
            cred["status"]["expirationTimestamp"].replace("Z", "+00:00")
        )
        assert expiry.timestamp() - time.time() <= 1.5
        token = cred["status"]["token"]
        assert anonymous_get(fleet, "ex", "/api/v1/nodes", token=token)[0] == 200
        wait_for(
            lambda: anonymous_get(fleet, "ex", "/api/v1/nodes", token=token)[0] == 401,
            timeout=5,
            what="exec token to expire",
            interval=0.1,
        )
    finally:
        fleet.set_faults("ex", token_ttl_s=3600)
    fresh = run_exec_plugin(stanza)["status"]["token"]
    assert anonymous_get(fleet, "ex", "/api/v1/nodes", token=fresh)[0] == 200


def test_mint_token_acts_as_another_user(fleet: Fleet) -> None:
    token = fleet.mint_token("tok", "alice")
    v1 = client.CoreV1Api(api_client(fleet, "tok", token=token))
    assert len(v1.list_namespaced_pod("team-a").items) == 2
    with pytest.raises(client.ApiException) as err:
        v1.list_namespaced_pod("team-b")
    assert err.value.status == 403


@pytest.mark.parametrize("context", ALICE_CONTEXTS)
def test_rbac_restricted_user(fleet: Fleet, context: str) -> None:
    api = api_client(fleet, context)
    status, body, _ = raw(api, "GET", "/api/v1/pods")
    assert status == 403
    assert body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
        "at the cluster scope"
    )
    assert body["details"] == {"kind": "pods"}
    status, body, _ = raw(api, "GET", "/api/v1/namespaces/team-b/pods")
    assert status == 403
    assert (
        'cannot list resource "pods" in API group "" in the namespace "team-b"' in body["message"]
    )
    status, body, _ = raw(api, "GET", "/api/v1/namespaces/team-a/pods")
    assert status == 200 and len(body["items"]) == 2
    name = body["items"][0]["metadata"]["name"]
    status, _, _ = raw(api, "GET", f"/api/v1/namespaces/team-a/pods/{name}/log")
    assert status == 200
    status, body, _ = raw(api, "GET", "/api/v1/nodes")
    assert status == 200 and len(body["items"]) == 2
    status, body, _ = raw(api, "DELETE", "/api/v1/nodes/n-0")
    assert status == 403 and 'cannot delete resource "nodes"' in body["message"]
    status, body, _ = raw(api, "GET", "/api/v1/namespaces/team-a/secrets")
    assert status == 403
    # Discovery stays open to every authenticated user, as system:discovery grants.
    assert raw(api, "GET", "/api")[0] == 200 and raw(api, "GET", "/version")[0] == 200


def _ssar(api: client.ApiClient, **attrs: str) -> bool:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attrs}}
    )
    assert review.kind == "SelfSubjectAccessReview"
    return bool(review.status.allowed)


def test_self_subject_access_review_answers_by_the_same_rules(fleet: Fleet) -> None:
    admin = api_client(fleet, "tok")
    alice = api_client(fleet, "tok-alice")
    assert _ssar(admin, verb="list", resource="pods") is True
    assert _ssar(alice, verb="list", resource="pods") is False
    assert _ssar(alice, verb="list", resource="pods", namespace="team-a") is True
    assert _ssar(alice, verb="delete", resource="pods", namespace="team-a") is True
    assert _ssar(alice, verb="list", resource="pods", namespace="team-b") is False
    assert _ssar(alice, verb="get", resource="pods", subresource="log", namespace="team-a") is True
    assert _ssar(alice, verb="list", resource="nodes") is True
    assert _ssar(alice, verb="delete", resource="nodes") is False
    assert _ssar(alice, verb="list", resource="secrets", namespace="team-a") is False
    # Protobuf is what kubectl sends; its SSAR answers the same (tests/sim/data fixtures).
    from pathlib import Path

    data = Path(__file__).parent / "data" / "ssar_list_pods_all_namespaces.bin"
    for api, allowed in ((admin, True), (alice, False)):
        status, body, _ = raw(
            api,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=data.read_bytes(),
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        assert status == 201 and body["status"]["allowed"] is allowed


def test_python_exe_of_the_exec_stanza_is_this_interpreter(kubeconfig: dict[str, Any]) -> None:
    # The stanza runs the plugin with the interpreter that started the fleet, so it works from
    # any venv without `skymagic` on PATH.
    assert user_entry(kubeconfig, "ex")["exec"]["command"] == sys.executable
