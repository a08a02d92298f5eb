"""client_for: one client per (context, settings), replaced (and closed) when the kubeconfig
entry behind a context changes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from skymagic.core.client import ClientSettings, ContextClient, clear_clients, client_for
from skymagic.core.entries import ResolvedContext
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.errors import SkymagicError

FAST = ClientSettings(request_timeout=0.5, retries=0)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    clear_clients()
    yield
    clear_clients()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve(tmp_path: Path, name: str, token: str, port: int) -> ResolvedContext:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return load_kubeconfig([str(path)]).resolve(name)


def used(client: ContextClient) -> ContextClient:
    """Make the client open its connection pool (the request itself is refused)."""
    with pytest.raises(SkymagicError):
        client.version()
    assert client._pool is not None
    return client


def test_the_same_entry_reuses_the_client(tmp_path: Path) -> None:
    port = _closed_port()
    first = client_for(resolve(tmp_path, "a", "t1", port), FAST)
    # Read again from disk: an equal entry, a new object.
    assert client_for(resolve(tmp_path, "a", "t1", port), FAST) is first
    other = client_for(resolve(tmp_path, "a", "t1", port), ClientSettings(request_timeout=9))
    assert other is not first
    assert client_for(resolve(tmp_path, "a", "t1", port), FAST) is first  # both kept


def test_an_edited_entry_closes_and_drops_the_old_clients(tmp_path: Path) -> None:
    port = _closed_port()
    old = used(client_for(resolve(tmp_path, "a", "old-token", port), FAST))
    old_slow = used(
        client_for(resolve(tmp_path, "a", "old-token", port), ClientSettings(0.7, retries=0))
    )
    neighbour = used(client_for(resolve(tmp_path, "b", "old-token", port), FAST))
    new = used(client_for(resolve(tmp_path, "a", "new-token", port), FAST))
    assert new is not old and new.credentials.get().token == "new-token"
    assert old._pool is None and old_slow._pool is None  # closed: no idle connection kept
    assert neighbour._pool is not None  # another context is left alone
    # The old entry does not come back from the cache.
    again = client_for(resolve(tmp_path, "a", "old-token", port), FAST)
    assert again is not old and new._pool is None


def test_clear_clients_closes_everything(tmp_path: Path) -> None:
    client = used(client_for(resolve(tmp_path, "a", "t", _closed_port()), FAST))
    clear_clients()
    assert client._pool is None
    assert client_for(client.resolved, FAST) is not client
