"""Authorizer: spec parsing, RBAC-like matching, the real 403 messages."""

from __future__ import annotations

import pytest

from skymagic.sim.rbac import Attributes, Authorizer, Rule, forbidden_message

SPEC = [
    {
        "user": "alice",
        "rules": [
            {"verbs": ["get", "list", "watch"], "resources": ["nodes"]},
            {"verbs": ["*"], "resources": ["pods", "pods/log"], "namespaces": ["team-a"]},
        ],
    },
    {"user": "viewer", "rules": [{"verbs": ["list"], "resources": ["*"], "apiGroups": [""]}]},
]


@pytest.fixture
def authz() -> Authorizer:
    return Authorizer.from_spec(SPEC)


def test_alice(authz: Authorizer) -> None:
    a = authz.allowed
    assert a("alice", [], "list", "nodes", None)
    assert not a("alice", [], "delete", "nodes", None)
    assert a("alice", [], "create", "pods", "team-a")
    assert a("alice", [], "get", "pods", "team-a", subresource="log")
    assert a("alice", [], "get", "pods/log", "team-a")
    assert not a("alice", [], "create", "pods", "default")
    assert not a("alice", [], "list", "pods", None)  # all namespaces needs "*"
    assert not a("alice", [], "create", "pods", "team-a", subresource="exec")
    assert not a("alice", [], "list", "secrets", "team-a")


def test_groups_defaults_and_masters(authz: Authorizer) -> None:
    assert authz.allowed("someone-else", [], "delete", "nodes", None)  # default admin
    assert authz.allowed("alice", ["system:masters"], "delete", "nodes", None)
    strict = Authorizer({"alice": []}, default_admin=False)
    assert not strict.allowed("bob", [], "get", "pods", "default")
    assert strict.allowed("bob", ["system:masters"], "get", "pods", "default")
    assert Authorizer.from_spec(None).allowed("x", [], "delete", "pods", "a")


def test_api_groups(authz: Authorizer) -> None:
    assert authz.allowed("viewer", [], "list", "pods", None)
    assert not authz.allowed("viewer", [], "list", "deployments", "x", api_group="apps")
    r = Rule(verbs=("get",), resources=("pods/*",))
    assert Authorizer({"u": [r]}).allowed("u", [], "get", "pods", "n", subresource="log")
    assert not Authorizer({"u": [r]}).allowed("u", [], "get", "pods", "n")


def test_paths(authz: Authorizer) -> None:
    assert authz.allowed_path("alice", [], "get", "/api/v1")
    assert authz.allowed_path("alice", [], "get", "/version")
    assert not authz.allowed_path("alice", [], "get", "/metrics")
    assert authz.allowed_path("admin", [], "get", "/metrics")


def test_messages() -> None:
    assert forbidden_message("alice", Attributes("list", "pods")) == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert forbidden_message("alice", Attributes("list", "pods", "team-b")) == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team-b"'
    )
    assert forbidden_message(
        "alice", Attributes("get", "pods", "d", subresource="log", name="web")
    ) == (
        'pods "web" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "d"'
    )
    assert forbidden_message(
        "a", Attributes("list", "deployments", "x", api_group="apps")
    ).startswith(
        'deployments.apps is forbidden: User "a" cannot list resource "deployments" in API group "apps"'
    )


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"rules": []}, "rbac[0].user"),
        ({"user": "a", "rules": [{"verbs": ["get"]}]}, "rbac[0].rules[0].resources"),
        (
            {"user": "a", "rules": [{"verbs": "get", "resources": ["pods"], "namespace": ["x"]}]},
            "rbac[0].rules[0].namespace",
        ),
        ({"user": "a", "rules": [{"verbs": [], "resources": ["pods"]}]}, "rbac[0].rules[0].verbs"),
        (
            {"user": "a", "rules": [{"verbs": ["get"], "resources": [1]}]},
            "rbac[0].rules[0].resources",
        ),
        ({"user": "a", "rules": {}}, "rbac[0].rules"),
        ({"user": "a", "role": "x"}, "rbac[0].role"),
    ],
)
def test_bad_spec(spec: dict, field: str) -> None:
    with pytest.raises(ValueError) as e:
        Authorizer.from_spec([spec])
    assert field in str(e.value) and "\n" not in str(e.value)
