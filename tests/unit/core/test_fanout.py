"""fan_out: every target context at once, one result each, in target order, within a budget.

No fleet: the kubeconfig points at a closed port (refused), a socket that accepts and never
answers (black hole), and an entry that cannot be resolved; an operation that never returns
stands for a server that dribbles bytes forever.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.fanout import fan_out
from skymagic.core.targets import Settings, Targets, resolve_targets
from skymagic.errors import SkymagicError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose listener accepts connections into its backlog and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def _kubeconfig(tmp_path: Path, servers: dict[str, str], extra: list[dict[str, Any]]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": url, "insecure-skip-tls-verify": True}}
            for n, url in servers.items()
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in servers] + extra,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def _targets(path: Path, order: tuple[str, ...], timeout: float = 0.5) -> tuple[Targets, Settings]:
    settings = Settings(
        client=ClientSettings(request_timeout=timeout, retries=0),
        kubeconfig=(str(path),),
        allowed_contexts=order,
    )
    return resolve_targets(settings), settings


def test_each_context_fails_alone_with_its_own_kind_in_target_order(
    tmp_path: Path, isolated_env: Path, blackhole: int
) -> None:
    path = _kubeconfig(
        tmp_path,
        {
            "refused": f"https://127.0.0.1:{_closed_port()}",
            "blackhole": f"https://127.0.0.1:{blackhole}",
            "local": f"https://127.0.0.1:{_closed_port()}",
        },
        [{"name": "broken", "context": {"cluster": "nowhere", "user": "u"}}],
    )
    order = ("blackhole", "broken", "local", "refused")
    targets, settings = _targets(path, order)

    def op(client: ContextClient) -> str:
        if client.name == "local":
            return client.namespace  # no request: the value path
        return str(client.version())

    results = fan_out(targets, op, settings)
    assert [r.context for r in results] == list(order)
    by = {r.context: r for r in results}
    assert by["local"].ok and by["local"].value == "default" and by["local"].error is None
    assert by["refused"].error_kind == "unreachable"
    assert by["blackhole"].error_kind == "timeout"
    assert by["broken"].error_kind == "config"
    assert "nowhere" in str(by["broken"].error)
    for r in results:
        assert r.ok == (r.error is None)
        if r.error is not None:
            assert r.error.context == r.context and r.value is None


def test_a_context_that_never_answers_is_cut_at_the_budget(
    tmp_path: Path, isolated_env: Path
) -> None:
    path = _kubeconfig(tmp_path, dict.fromkeys(("fast", "stuck"), "https://127.0.0.1:1"), [])
    targets, settings = _targets(path, ("stuck", "fast"))
    release = threading.Event()

    def op(client: ContextClient) -> str:
        if client.name == "stuck":
            release.wait(30)
        return client.name

    try:
        started = time.monotonic()
        results = fan_out(targets, op, settings, budget_s=0.3)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed >= 0.3 and elapsed < 10  # the budget, with a generous margin
    stuck, fast = results
    assert (stuck.context, stuck.error_kind) == ("stuck", "timeout")
    assert "0.3 s" in str(stuck.error)
    assert (fast.context, fast.value) == ("fast", "fast")


def test_every_context_runs_at_once_and_a_bug_sinks_only_its_own(
    tmp_path: Path, isolated_env: Path
) -> None:
    names = tuple(f"ctx-{i:02d}" for i in range(40))
    path = _kubeconfig(tmp_path, dict.fromkeys(names, "https://127.0.0.1:1"), [])
    targets, settings = _targets(path, names)
    # All 40 must be inside the operation at the same moment: a pool capped below 40 threads
    # would break the barrier.
    barrier = threading.Barrier(len(names), timeout=20)

    def op(client: ContextClient) -> str:
        barrier.wait()
        if client.name == "ctx-07":
            raise ValueError("a bug in one operation")
        return client.name

    results = fan_out(targets, op, settings, budget_s=30)
    assert [r.context for r in results] == list(names)
    bad = [r for r in results if not r.ok]
    assert [r.context for r in bad] == ["ctx-07"]
    assert isinstance(bad[0].error, SkymagicError)
    assert "internal error: ValueError: a bug in one operation" in str(bad[0].error)
    assert all(r.value == r.context for r in results if r.ok)


def test_only_the_named_contexts_are_run(tmp_path: Path, isolated_env: Path) -> None:
    path = _kubeconfig(tmp_path, dict.fromkeys(("a", "b", "c"), "https://127.0.0.1:1"), [])
    targets, settings = _targets(path, ("a", "b", "c"))
    seen: list[str] = []
    results = fan_out(targets, lambda c: seen.append(c.name), settings, contexts=["c", "a"])
    assert [r.context for r in results] == ["c", "a"] and sorted(seen) == ["a", "c"]
    assert fan_out(targets, lambda c: None, settings, contexts=[]) == []
