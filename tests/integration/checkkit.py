"""Helpers for the check/magics/notebook integration tests: a mixed fleet and kubeconfig edits.

The mixed fleet has every situation `%sky_check` must tell apart, each as its own cluster (so
the request logs show exactly which context was contacted): healthy token, client-cert and
exec contexts; one that is down; one black-holed; restricted RBAC users; and one cluster that
is never allowed. A bad-token context is added by writing a kubeconfig copy.
"""

from __future__ import annotations

import base64
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.auth import clear_credential_cache
from skymagic.core.client import clear_clients
from skymagic.sim import Fleet

TOK = "tok"
# An EKS-style ARN: ':' and '/' in one context name (pinning must keep everything after k8s/).
CERT = "arn:aws:eks:us-west-2:123456789012:cluster/gpu-west"
EXEC = "gke_my-project_us-central1-a_l4"
DOWN = "down"
BLACK = "black"
OFF = "off-limits"
ALICE = "tok-alice"  # may not list pods across all namespaces
BOB = "tok-bob"  # may not create pods
BAD = "tok-bad-token"  # added by bad_token_kubeconfig()
BAD_TOKEN = "sim-v1.bm90LWEtdmFsaWQtdG9rZW4.c2lnbmF0dXJlLXRoYXQtd2lsbC1mYWls"

MIXED_SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": TOK,
            "auth": "token",
            "nodes": [{"count": 2, "name": "h100", "gpu": "H100", "gpus": 8, "labels": "gfd"}],
            "users": [
                {"name": "alice", "context": ALICE, "auth": "token", "groups": []},
                {"name": "bob", "context": BOB, "auth": "token", "groups": []},
            ],
            "rbac": [
                {
                    "user": "alice",
                    "rules": [
                        {"verbs": ["get", "list", "watch"], "resources": ["nodes"]},
                        {"verbs": ["*"], "resources": ["pods"], "namespaces": ["default"]},
                    ],
                },
                {
                    "user": "bob",
                    "rules": [{"verbs": ["get", "list", "watch"], "resources": ["nodes", "pods"]}],
                },
            ],
        },
        {
            "name": CERT,
            "auth": "client-cert",
            "nodes": [
                {"count": 1, "name": "a100", "gpu": "A100-80GB", "gpus": 4, "labels": "karpenter"}
            ],
        },
        {
            "name": EXEC,
            "auth": "exec",
            "nodes": [{"count": 2, "name": "l4", "gpu": "L4", "gpus": 1, "labels": "gke"}],
        },
        {"name": DOWN, "auth": "token", "faults": {"down": True}},
        {"name": BLACK, "auth": "token", "faults": {"blackhole": True}},
        {"name": OFF, "auth": "token", "nodes": [{"count": 1, "name": "cpu"}]},
    ]
}


def fresh_clients() -> None:
    """Forget cached API clients and exec credentials (each test's fleet is a new one)."""
    clear_clients()
    clear_credential_cache()


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    """Each test starts and ends with no cached client or credential (import it to use it)."""
    fresh_clients()
    yield
    fresh_clients()


def load_doc(path: str | Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(Path(path).read_text())
    return doc


def write_doc(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def user_key(context: str, auth: str) -> str:
    """The sim's kubeconfig user entry name for a cluster's own context."""
    return f"{context}-{auth}-admin"


def entry(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for item in doc[kind]:
        if item["name"] == name:
            found: dict[str, Any] = item
            return found
    raise KeyError(name)


def bad_token_kubeconfig(fleet: Fleet, dest: Path) -> Path:
    """A copy of the fleet's kubeconfig plus context BAD: TOK's cluster, a wrong token."""
    doc = load_doc(fleet.kubeconfig)
    doc["users"].append({"name": "bad-user", "user": {"token": BAD_TOKEN}})
    doc["contexts"].append(
        {"name": BAD, "context": {"cluster": TOK, "user": "bad-user", "namespace": "default"}}
    )
    return write_doc(dest, doc)


def secrets_in(kubeconfig: str | Path) -> list[str]:
    """Every token and key/cert blob in a kubeconfig: none may ever appear in output."""
    doc = load_doc(kubeconfig)
    out: list[str] = []
    for u in doc.get("users") or []:
        user = u.get("user") or {}
        for k in ("token", "client-key-data", "client-certificate-data"):
            if user.get(k):
                out.append(str(user[k]))
                if k != "token":
                    # the decoded PEM body too (a line of it is enough to leak a key)
                    pem = base64.b64decode(user[k]).decode()
                    out.extend(line for line in pem.splitlines() if len(line) > 40)
    return out


def assert_no_secrets(text: str, secrets: list[str]) -> None:
    for s in secrets:
        assert s not in text, "a credential leaked into user-visible output"


def python_script(path: Path, body: str) -> Path:
    """An executable Python script (a fake CLI at the process boundary)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def status_with_token(fleet: Fleet, cluster: str, token: str, path: str = "/version") -> int:
    """The HTTP status the cluster gives a raw request with this bearer token."""
    doc = load_doc(fleet.kubeconfig)
    ca = base64.b64decode(entry(doc, "clusters", cluster)["cluster"]["certificate-authority-data"])
    ctx = ssl.create_default_context(cadata=ca.decode())
    req = urllib.request.Request(
        fleet.server(cluster) + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds saying what never happened."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
