"""Credentials as kubectl's, and the exec-plugin budget, against the simulated fleet over HTTPS.

- impersonation (``as``, ``as-groups``) is honoured by the fleet exactly as kubectl's is;
- access reviews are retried like GETs, and a 500 is a server error, not "unreachable";
- every operation carries the warning for an allowed context the kubeconfig lacks;
- a plugin that hangs: ``check``, ``gpus list`` and ``launch`` (CLI subprocesses with
  ``--timeout 2``) end within the operation's budget plus a margin, say which plugin did not
  answer, and leave no thread or plugin process behind.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    BOB,
    EXEC,
    MIXED_SPEC,
    TOK,
    entry,
    fresh_clients,
    fresh_session,  # noqa: F401  (autouse)
    load_doc,
    python_script,
    user_key,
    write_doc,
)
from conftest import write_sky_config

from skymagic.core.client import ClientSettings
from skymagic.core.targets import Settings
from skymagic.gpus.inventory import show_gpus
from skymagic.health import check
from skymagic.launches import launch, status
from skymagic.sim import Fleet

GHOST = "ghost-context"


@pytest.fixture(scope="module")
def mixed() -> Iterator[Fleet]:
    with Fleet(json.loads(json.dumps(MIXED_SPEC))) as fleet:
        yield fleet


def settings(timeout: float = 2.0, **kw: Any) -> Settings:
    return Settings(client=ClientSettings(request_timeout=timeout), **kw)


# --------------------------------------------------------------------------- impersonation


def test_impersonation_acts_as_the_user(
    mixed: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's kubeconfig user with ``as: alice`` gets alice's RBAC (kubectl --as alice);
    bob may not impersonate; groups without a user break only their own context."""
    doc = load_doc(mixed.kubeconfig)
    admin = entry(doc, "users", user_key(TOK, "token"))["user"]
    bob = entry(
        doc, "users", next(c["context"]["user"] for c in doc["contexts"] if c["name"] == BOB)
    )
    doc["users"] += [
        {"name": "as-alice", "user": {**admin, "as": "alice"}},
        {"name": "as-bob", "user": {**admin, "as": "bob", "as-groups": ["team"]}},
        {"name": "bob-as-alice", "user": {**bob["user"], "as": "alice"}},
        {"name": "groups-only", "user": {**admin, "as-groups": ["system:masters"]}},
    ]
    names = ["as-alice", "as-bob", "bob-as-alice", "groups-only"]
    doc["contexts"] += [{"name": n, "context": {"cluster": TOK, "user": n}} for n in names]
    monkeypatch.setenv("KUBECONFIG", str(write_doc(tmp_path / "kubeconfig", doc)))
    mixed.clear_requests()

    report = check(settings(allowed_contexts=(TOK, *names)))
    by = {c.context: c for c in report.contexts}
    assert by[TOK].enabled and by[TOK].permissions["list pods (all namespaces)"]
    # alice: may create pods in default, may not list pods across namespaces (her RBAC)
    assert by["as-alice"].enabled
    assert by["as-alice"].permissions["list pods (all namespaces)"] is False
    # bob: may not create pods -> disabled, as bob's own context is
    assert not by["as-bob"].enabled and by["as-bob"].error_kind == "forbidden"
    # bob has no right to impersonate: the server says so
    assert not by["bob-as-alice"].enabled
    assert 'cannot impersonate resource "users"' in by["bob-as-alice"].reason
    # as-groups without as: a config error for that context alone, nothing sent for it
    assert by["groups-only"].error_kind == "config" and "`as`" in by["groups-only"].reason
    acting = {(r.get("impersonator"), r["user"]) for r in mixed.requests(TOK)}
    assert ("token-admin", "alice") in acting and ("token-admin", "bob") in acting
    assert not any(r["user"] == "system:masters" for r in mixed.requests(TOK))


# --------------------------------------------------------------------------- 5xx and retries


@pytest.fixture
def flaky(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Fleet:
    spec = {
        "clusters": [
            {
                "name": "flaky",
                "auth": "token",
                "nodes": [{"count": 1, "name": "h100", "gpu": "H100", "gpus": 8}],
                "faults": {"error_rate": 0.5},
            }
        ]
    }
    fleet = make_fleet(spec)
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    return fleet


def test_access_reviews_are_retried_like_gets(flaky: Fleet) -> None:
    """With half of all requests answered 500, check mostly succeeds: the reviews (POSTs that
    create nothing) are retried, and only "may create pods" decides the verdict."""
    runs = 20
    enabled = 0
    retried = False
    for _ in range(runs):
        flaky.clear_requests()
        fresh_clients()
        report = check(settings(allowed_contexts=("flaky",)))
        enabled += report.contexts[0].enabled
        reviews = [r for r in flaky.requests("flaky") if r["path"].endswith("accessreviews")]
        retried = retried or (len(reviews) > 3 and any(r["code"] == 500 for r in reviews))
        if not report.contexts[0].enabled:
            assert report.contexts[0].error_kind == "server-error", report.contexts[0].reason
    assert retried
    assert enabled > runs // 2, f"check enabled the flaky context in {enabled} of {runs} runs"


def test_a_500_is_a_server_error_not_unreachable(flaky: Fleet) -> None:
    flaky.set_faults("flaky", error_rate=1.0)
    report = check(settings(allowed_contexts=("flaky",)))
    c = report.contexts[0]
    assert not c.enabled and c.error_kind == "server-error"
    assert "Internal error" in c.reason
    inv = show_gpus(settings(allowed_contexts=("flaky",)))
    assert inv.errors.iloc[0]["kind"] == "server-error"


# --------------------------------------------------------------------------- missing context


def test_every_operation_warns_about_a_missing_allowed_context(
    mixed: Fleet, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", mixed.kubeconfig)
    write_sky_config(isolated_env, f"kubernetes:\n  allowed_contexts: ['{TOK}', '{GHOST}']\n")
    want = f"allowed context '{GHOST}' is not in the kubeconfig."
    s = settings()

    rep = check(s)
    assert rep.missing_contexts == [GHOST] and want in str(rep)
    inv = show_gpus(s)
    assert inv.warnings == [want]
    assert f"Warning: {want}" in str(inv) and html.escape(want) in inv._repr_html_()
    assert inv.to_dict()["warnings"] == [want]
    st = status(s)
    assert st.warnings == [want] and want in str(st) and html.escape(want) in st._repr_html_()
    plan = launch("echo hi", gpus="H100:1", dry_run=True, settings=s)
    assert want in str(plan) and html.escape(want) in plan._repr_html_()  # type: ignore[union-attr]

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for args, where in [
        (["gpus", "list"], "stdout"),
        (["gpus", "list", "-o", "json"], "json"),
        (["status"], "stdout"),
        (["status", "-o", "json"], "stderr"),
        (["launch", "--gpus", "H100:1", "--dry-run"], "stdout"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "skymagic", *args],
            capture_output=True, text=True, env=env, timeout=120, check=False, input="echo hi\n",
        )  # fmt: skip
        assert proc.returncode == 0, (args, proc.stderr)
        if where == "json":
            assert json.loads(proc.stdout)["warnings"] == [want]
        else:
            assert want in getattr(proc, where), (args, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------- a hung plugin

HANG = """import os, sys, time
open(os.path.join({here!r}, "pids"), "a").write(str(os.getpid()) + "\\n")
time.sleep(300)
"""


@pytest.fixture
def hung(mixed: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """KUBECONFIG where EXEC's user runs a `gke-gcloud-auth-plugin` that never answers."""
    bindir = tmp_path / "bin"
    python_script(bindir / "gke-gcloud-auth-plugin", HANG.format(here=str(tmp_path)))
    doc = load_doc(mixed.kubeconfig)
    user = entry(doc, "users", user_key(EXEC, "exec"))["user"]
    user["exec"] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "gke-gcloud-auth-plugin",
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    monkeypatch.setenv("KUBECONFIG", str(write_doc(tmp_path / "kubeconfig", doc)))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    write_sky_config(isolated_env, f"kubernetes:\n  allowed_contexts: ['{TOK}', '{EXEC}']\n")
    return tmp_path


def _plugin_pids(root: Path) -> list[int]:
    f = root / "pids"
    return [int(p) for p in f.read_text().split()] if f.exists() else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


TIMEOUT = 2.0
BUDGET = TIMEOUT * 3 + 1  # the fan-out's budget for --timeout 2 (core/fanout.py)
MARGIN = 5.0  # interpreter start-up and imports on a busy machine: a bound, not a speed claim
HUNG_RUNS = [
    ("check", ["check"], "did not answer within"),
    ("gpus list", ["gpus", "list"], "did not answer within"),
    ("launch", ["launch", "--gpus", "L4:1"], "did not answer within"),
]


@pytest.mark.parametrize(("name", "args", "needle"), HUNG_RUNS, ids=[r[0] for r in HUNG_RUNS])
def test_hung_plugin_cli_ends_within_the_budget(
    name: str, args: list[str], needle: str, hung: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "skymagic", *args, "--timeout", str(TIMEOUT)],
        capture_output=True, text=True, env=env, timeout=120, check=False, input="echo hi\n",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    print(f"\n{name}: exit {proc.returncode} after {elapsed:.1f} s")  # the figure for the note
    assert elapsed < BUDGET + MARGIN, out
    assert "the exec plugin `gke-gcloud-auth-plugin` did not answer within" in out, out
    assert needle in out
    assert TOK in out  # the healthy context still answered (or was planned)
    pids = _plugin_pids(hung)
    assert len(pids) == 1, pids  # one operation, one run of the failing plugin
    assert not _alive(pids[0])


def test_hung_plugin_in_process_leaves_no_thread(hung: Path) -> None:
    """check() returns within its budget, the plugin is killed, and every thread the
    operation started is gone soon after (nothing would block interpreter exit)."""
    before = set(threading.enumerate())
    started = time.monotonic()
    report = check(settings(TIMEOUT))
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET + 2
    assert report[TOK].enabled
    exec_ctx = report[EXEC]
    assert exec_ctx.error_kind == "exec"
    assert "`gke-gcloud-auth-plugin` did not answer within" in exec_ctx.reason
    deadline = time.monotonic() + 3
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(threading.enumerate()) - before
    assert [p for p in _plugin_pids(hung) if _alive(p)] == []
    # A second operation within a few seconds does not run the failing plugin again.
    check(settings(TIMEOUT))
    assert len(_plugin_pids(hung)) == 1


# --------------------------------------------------------------------------- plain http


@pytest.mark.parametrize("scheme", ["http://", ""])
def test_check_warns_that_plain_http_gets_no_credentials(
    scheme: str, mixed: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`server: http://...` or a schemeless `server: 127.0.0.1:PORT` (kubectl: http): the
    token is not sent, check says why, and the other contexts are not affected."""
    doc = load_doc(mixed.kubeconfig)
    cluster = entry(doc, "clusters", TOK)["cluster"]
    cluster["server"] = scheme + cluster["server"].removeprefix("https://")
    monkeypatch.setenv("KUBECONFIG", str(write_doc(tmp_path / "kubeconfig", doc)))
    report = check(settings(allowed_contexts=(TOK, EXEC)))
    tok = report[TOK]
    assert not tok.enabled and tok.auth == "none"
    assert any("plain http" in w and "sends it no credentials" in w for w in tok.warnings)
    assert report[EXEC].enabled
