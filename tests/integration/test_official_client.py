"""ContextClient.official(): the official kubernetes client, built from skymagic's own TLS and
credentials, works against a simulated client-certificate cluster and leaves no key behind."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skymagic.core.client import ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.sim import Fleet

SPEC = {
    "clusters": [
        {"name": "certs", "auth": "client-cert", "nodes": [{"count": 2, "name": "n"}]},
        {"name": "tokens", "auth": "token", "nodes": [{"count": 1, "name": "n"}]},
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
