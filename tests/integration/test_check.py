"""`check()` against a simulated fleet over real HTTPS: verdicts, allowed contexts, timing, exec.

Every context's situation is a real server behaviour (connection refused, a black hole, a 401,
an RBAC 403, an expiring exec token), and "never contact a context that is not allowed" is
asserted on the fleet's own request logs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from checkkit import (
    ALICE,
    BAD,
    BLACK,
    BOB,
    CERT,
    DOWN,
    EXEC,
    MIXED_SPEC,
    OFF,
    TOK,
    assert_no_secrets,
    bad_token_kubeconfig,
    entry,
    fresh_session,  # noqa: F401  (autouse)
    load_doc,
    python_script,
    secrets_in,
    status_with_token,
    user_key,
    wait_for,
    write_doc,
)
from conftest import write_sky_config

from skymagic.core import auth
from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError
from skymagic.health import CheckReport, check
from skymagic.sim import Fleet


@pytest.fixture
def mixed(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(json.loads(json.dumps(MIXED_SPEC)))


@pytest.fixture
def env(mixed: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """KUBECONFIG = the fleet's kubeconfig plus the bad-token context; returns the file."""
    kc = bad_token_kubeconfig(mixed, tmp_path / "kube" / "config")
    monkeypatch.setenv("KUBECONFIG", str(kc))
    mixed.clear_requests()
    return kc


def fast(timeout: float = 1.0, **kw: object) -> Settings:
    return Settings(client=ClientSettings(request_timeout=timeout), **kw)  # type: ignore[arg-type]


def contacted(fleet: Fleet, cluster: str) -> bool:
    return bool(fleet.requests(cluster))


ALL_BUT_OFF = [TOK, CERT, EXEC, DOWN, BLACK, ALICE, BOB, BAD]


def test_every_situation_gets_the_right_verdict(mixed: Fleet, env: Path) -> None:
    write_sky_config(
        Path(os.environ["HOME"]),
        "kubernetes:\n  allowed_contexts:\n" + "".join(f"    - '{c}'\n" for c in ALL_BUT_OFF),
    )
    started = time.monotonic()
    report = check(fast(2.0))
    elapsed = time.monotonic() - started

    assert [c.context for c in report.contexts] == ALL_BUT_OFF
    by = {c.context: c for c in report.contexts}
    # three healthy contexts, three auth methods
    for name, auth_kind, gpu in [
        (TOK, "token", "H100"),
        (CERT, "client-cert", "A100-80GB"),
        (EXEC, "exec", "L4"),
    ]:
        c = by[name]
        assert c.enabled, c.reason
        assert c.auth == auth_kind
        assert c.reason == ""
        assert gpu in c.gpus and c.gpu_nodes >= 1
        assert c.version.startswith("v1.")
        assert c.server == mixed.server(name if name not in (ALICE, BOB, BAD) else TOK)
        assert c.permissions and all(c.permissions.values())
    assert by[TOK].gpus == {"H100": 16}
    # the exec context gets SkyPilot's remote_identity advice, as a warning only
    assert any("LOCAL_CREDENTIALS" in w for w in by[EXEC].warnings)
    # down: connection refused, said plainly
    assert not by[DOWN].enabled and by[DOWN].error_kind == "unreachable"
    assert "connection refused" in by[DOWN].reason
    # black hole: a timeout naming the configured timeout
    assert not by[BLACK].enabled and by[BLACK].error_kind == "timeout"
    assert "timed out after 2 s" in by[BLACK].reason
    # wrong token: unauthorized, said so, and the token never shown
    assert not by[BAD].enabled and by[BAD].error_kind == "unauthorized"
    assert "401 Unauthorized" in by[BAD].reason and "token was refused" in by[BAD].reason
    # RBAC: no cluster-wide pod list -> enabled with a warning; no pod creation -> disabled
    assert by[ALICE].enabled
    assert by[ALICE].permissions["list pods (all namespaces)"] is False
    assert any("may not list pods across all namespaces" in w for w in by[ALICE].warnings)
    assert not by[BOB].enabled and by[BOB].error_kind == "forbidden"
    assert "may not create pods in namespace 'default'" in by[BOB].reason
    # the never-allowed cluster was never contacted
    assert not contacted(mixed, OFF)
    # one black hole costs its timeout once, not per context
    assert elapsed < 2.0 + 1.5, elapsed

    text = str(report)
    assert text.splitlines()[1] == "Kubernetes: enabled"
    assert "  Allowed contexts:" in text
    assert f"  ├── {TOK}: enabled." in text
    assert f"  ├── {BOB}: disabled. Reason: user " in text
    assert f"  └── {BAD}: disabled. Reason: 401 Unauthorized" in text
    # every output form is free of credentials
    secrets = secrets_in(env)
    assert any("sim-v1" in s or len(s) > 20 for s in secrets)
    for rendered in (text, report._repr_html_(), json.dumps(report.to_dict())):
        assert_no_secrets(rendered, secrets)
    frame = report.to_frame()
    assert list(frame.columns) == [
        "context", "enabled", "reason", "server", "user", "auth", "namespace",
        "kubeconfig_file", "gpu_nodes", "latency_ms", "warnings",
    ]  # fmt: skip
    assert frame.set_index("context").loc[BOB, "enabled"] == False  # noqa: E712
    assert frame.set_index("context").loc[BAD, "kubeconfig_file"] == str(env)


def test_local_credentials_silences_the_exec_warning(mixed: Fleet, env: Path) -> None:
    write_sky_config(
        Path(os.environ["HOME"]),
        f"kubernetes:\n  allowed_contexts: ['{EXEC}']\n  remote_identity: LOCAL_CREDENTIALS\n",
    )
    report = check(fast())
    assert report[EXEC].enabled and report[EXEC].warnings == []


def test_allowed_list_order_is_failover_order_and_nothing_else_is_contacted(
    mixed: Fleet, env: Path
) -> None:
    write_sky_config(
        Path(os.environ["HOME"]),
        f"kubernetes:\n  allowed_contexts: ['{EXEC}', '{TOK}', '{CERT}']\n",
    )
    report = check(fast())
    assert [c.context for c in report.contexts] == [EXEC, TOK, CERT]
    assert all(c.enabled for c in report.contexts)
    assert report.allowed_source == "config"
    assert "failover order" in str(report)
    for name in (EXEC, TOK, CERT):
        assert contacted(mixed, name)
    for name in (DOWN, BLACK, OFF):
        assert not contacted(mixed, name), name
    # the RBAC users share TOK's server but were not used either
    assert {r["user"] for r in mixed.requests(TOK)} == {"token-admin"}


def test_allowed_all_is_every_context_in_kubeconfig_order(mixed: Fleet, env: Path) -> None:
    write_sky_config(Path(os.environ["HOME"]), "kubernetes:\n  allowed_contexts: all\n")
    report = check(fast())
    kc_order = [c["name"] for c in load_doc(env)["contexts"]]
    assert [c.context for c in report.contexts] == kc_order
    assert report.allowed_source == "all"
    assert report[OFF].enabled and contacted(mixed, OFF)


def test_unset_means_current_context_only(mixed: Fleet, env: Path) -> None:
    report = check(fast())
    assert [c.context for c in report.contexts] == [TOK]
    assert report.allowed_source == "current-context"
    assert f"current-context '{TOK}' from {env}" in str(report)
    for name in (CERT, EXEC, DOWN, BLACK, OFF):
        assert not contacted(mixed, name), name
    # the hint names the other contexts, the file to edit and the session one-liner
    kc_order = [c["name"] for c in load_doc(env)["contexts"]]
    assert report.other_contexts == [c for c in kc_order if c != TOK]
    config = Path(os.environ["HOME"]) / ".sky" / "config.yaml"
    assert report.config_target == str(config)
    text = str(report)
    assert f"To allow them, add to {config}:" in text
    assert "\n      kubernetes:\n        allowed_contexts: all      # or a list" in text
    assert text.endswith("\n      %config SkyMagics.allowed_contexts = 'all'")
    # in a notebook: wrapped between words only, never inside a path or a name
    page = report._repr_html_()
    assert (
        "word-break:normal" in page
        and "%config SkyMagics.allowed_contexts = &#x27;all&#x27;" in (page)
    )
    # once all are allowed, no hint
    write_sky_config(Path(os.environ["HOME"]), "kubernetes:\n  allowed_contexts: all\n")
    assert "To allow" not in str(check(fast(), infra=f"k8s/{TOK}"))


def test_missing_allowed_context_is_reported_not_fatal(mixed: Fleet, env: Path) -> None:
    write_sky_config(
        Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}', 'no-such-ctx']\n"
    )
    report = check(fast())
    assert report.enabled
    assert [c.context for c in report.contexts] == [TOK]
    assert report.missing_contexts == ["no-such-ctx"]
    assert "Warning: allowed context 'no-such-ctx' is not in the kubeconfig." in str(report)
    assert report.to_dict()["missing_contexts"] == ["no-such-ctx"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("kubernetes:\n  allowed_contexts: 3\n", "kubernetes.allowed_contexts"),
        ("kubernetes:\n  allowed_contexts: [tok, 7]\n", "kubernetes.allowed_contexts[1]"),
        ("kubernetes: [tok]\n", "kubernetes"),
        ("kubernetes:\n  remote_identity: 5\n", "kubernetes.remote_identity"),
        ("kubernetes:\n  provision_timeout: soon\n", "kubernetes.provision_timeout"),
        ("kubernetes:\n  allowed_contexts: [tok\n", "not valid YAML at line"),
    ],
)
def test_malformed_config_names_the_key(mixed: Fleet, env: Path, body: str, key: str) -> None:
    path = write_sky_config(Path(os.environ["HOME"]), body)
    with pytest.raises(ConfigError) as info:
        check(fast())
    msg = str(info.value)
    assert str(path) in msg and key in msg
    assert "\n" not in msg
    for name in mixed.clusters:
        assert not contacted(mixed, name)


def test_infra_pins_a_context_whose_name_has_slash_and_colon(mixed: Fleet, env: Path) -> None:
    write_sky_config(Path(os.environ["HOME"]), "kubernetes:\n  allowed_contexts: all\n")
    report = check(fast(), infra=f"k8s/{CERT}")
    assert [c.context for c in report.contexts] == [CERT]
    assert report[CERT].enabled and report[CERT].auth == "client-cert"
    for name in mixed.clusters:
        assert contacted(mixed, name) == (name == CERT), name
    # `kubernetes/` is SkyPilot's long spelling; `k8s` alone means every allowed context
    assert [c.context for c in check(fast(), infra=f"kubernetes/{CERT}").contexts] == [CERT]


def test_pinning_a_context_that_is_not_allowed_says_so(mixed: Fleet, env: Path) -> None:
    write_sky_config(Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}']\n")
    with pytest.raises(ConfigError, match=r"is in the kubeconfig but not allowed") as info:
        check(fast(), infra=f"k8s/{CERT}")
    assert "kubernetes.allowed_contexts" in str(info.value)
    with pytest.raises(ConfigError, match=r"^context 'nope': not in the kubeconfig") as info:
        check(fast(), infra="k8s/nope")
    assert info.value.context == "nope"
    with pytest.raises(ConfigError, match=r"Kubernetes only"):
        check(fast(), infra="aws/us-east-1")
    for name in mixed.clusters:
        assert not contacted(mixed, name), name


def test_settings_override_the_file(mixed: Fleet, env: Path) -> None:
    write_sky_config(Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}']\n")
    report = check(fast(allowed_contexts=(CERT, EXEC)))
    assert [c.context for c in report.contexts] == [CERT, EXEC]
    assert report.allowed_source == "override"
    assert not contacted(mixed, TOK)


def test_three_kubeconfig_files_shadowing_and_current_context(
    mixed: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client-go rules: the first file defining a name wins the whole entry; the first
    non-empty current-context wins (the official Python client would pick the last file's)."""
    cert_user = user_key(CERT, "client-cert")
    f1 = write_doc(
        tmp_path / "a" / "first.yaml",
        {
            "current-context": "",
            "contexts": [
                {"name": "shared", "context": {"cluster": TOK, "user": user_key(TOK, "token")}}
            ],
        },
    )
    f2 = write_doc(
        tmp_path / "b" / "second.yaml",
        {
            "current-context": "shared",
            "contexts": [
                {"name": "shared", "context": {"cluster": CERT, "user": cert_user}},
                {"name": "only-second", "context": {"cluster": CERT, "user": cert_user}},
            ],
        },
    )
    f3 = mixed.kubeconfig  # current-context: tok
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(f1), str(f2), f3]))
    mixed.clear_requests()

    report = check(fast())
    assert [c.context for c in report.contexts] == ["shared"]
    shared = report["shared"]
    assert shared.enabled
    assert shared.kubeconfig_file == str(f1)
    assert shared.shadowed_in == [str(f2)]
    assert shared.server == mixed.server(TOK) and shared.auth == "token"
    assert report.current_context_file == str(f2)
    assert contacted(mixed, TOK) and not contacted(mixed, CERT)
    text = str(report)
    assert f"from {f1} (shadows the same name in {f2})" in text
    assert f"current-context 'shared' from {f2}" in text
    assert report.kubeconfig_files == [str(f1), str(f2), f3]

    write_sky_config(isolated_env, "kubernetes:\n  allowed_contexts: all\n")
    names = [c.context for c in check(fast(), infra=None).contexts]
    assert names[:2] == ["shared", "only-second"]
    assert names.count("shared") == 1
    assert check(fast(), infra="k8s/only-second")["only-second"].kubeconfig_file == str(f2)


# -- timing -----------------------------------------------------------------------------------

SIX = {
    "clusters": [
        {"name": f"ok-{i}", "nodes": [{"count": 1, "name": "g", "gpu": "H100", "gpus": 8}]}
        for i in range(5)
    ]
    + [{"name": "hole", "faults": {"blackhole": True}}]
}


@pytest.mark.parametrize("timeout", [2.0, None])
def test_one_black_hole_among_six_costs_one_timeout(
    make_fleet: Callable[..., Fleet],
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    timeout: float | None,
) -> None:
    fleet = make_fleet(SIX)
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    write_sky_config(isolated_env, "kubernetes:\n  allowed_contexts: all\n")
    settings = Settings() if timeout is None else fast(timeout)
    limit = settings.client.request_timeout
    assert limit == (5.0 if timeout is None else timeout)
    started = time.monotonic()
    report = check(settings)
    elapsed = time.monotonic() - started
    assert elapsed <= limit + 1.5, f"{elapsed:.2f} s for a {limit} s timeout"
    assert elapsed >= limit - 0.1  # the black hole really was waited for, once
    assert [c.context for c in report.contexts if c.enabled] == [f"ok-{i}" for i in range(5)]
    assert report["hole"].error_kind == "timeout"


# -- exec credentials against the fleet ---------------------------------------------------------

EXEC_ONLY = {
    "clusters": [
        {
            "name": EXEC,
            "auth": "exec",
            "nodes": [{"count": 1, "name": "l4", "gpu": "L4", "gpus": 1, "labels": "gke"}],
        },
        {"name": TOK, "auth": "token"},
        {"name": CERT, "auth": "client-cert"},
    ]
}


@pytest.fixture
def exec_fleet(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Fleet:
    fleet = make_fleet(json.loads(json.dumps(EXEC_ONLY)))
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    return fleet


def test_exec_plugin_runs_once_for_many_concurrent_requests(exec_fleet: Fleet) -> None:
    kc = load_kubeconfig()
    clients = [ContextClient(kc.resolve(EXEC)) for _ in range(2)]  # two clients, one cache
    before = auth.exec_plugin_runs()
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            clients[i % 2].version()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert auth.exec_plugin_runs() - before == 1
    log = exec_fleet.requests(EXEC)
    assert len(log) == 16 and {r["code"] for r in log} == {200}
    assert {r["user"] for r in log} == {"exec-admin"}


def test_exec_credential_refreshed_before_its_expiry(exec_fleet: Fleet) -> None:
    """A token that lives less than the client's skew (3 s < 10 s): reused by request after
    request (never a plugin run per request), and refreshed at half its lifetime, before the
    server would refuse it, so no request ever gets a 401."""
    exec_fleet.set_faults(EXEC, token_ttl_s=3.0)
    client = ContextClient(load_kubeconfig().resolve(EXEC))
    before = auth.exec_plugin_runs()
    client.version()
    cred = client.credentials.get()
    assert cred.expires_at is not None and cred.expires_at - time.time() <= 3
    for _ in range(5):
        client.version()
    assert auth.exec_plugin_runs() - before == 1  # reused while fresh
    wait_for(
        lambda: time.time() >= cred.expires_at - 0.9,  # type: ignore[operator]
        5,
        "the credential to come due",
    )
    client.version()
    assert auth.exec_plugin_runs() - before == 2
    assert client.credentials.get() is not cred
    assert all(r["code"] == 200 for r in exec_fleet.requests(EXEC))


def test_exec_401_reruns_the_plugin_once_and_retries(exec_fleet: Fleet, tmp_path: Path) -> None:
    """A credential without expirationTimestamp is kept until a 401 (client-go): when the
    fleet's short token TTL makes the server refuse it, the client re-runs the plugin once and
    the GET succeeds."""
    # The sim's own plugin behind a wrapper that drops expirationTimestamp (a process-level fake).
    wrapper = python_script(
        tmp_path / "bin" / "no-expiry-plugin",
        "import json, subprocess, sys\n"
        "out = subprocess.run([sys.executable, *sys.argv[1:]], check=True,\n"
        "                     stdout=subprocess.PIPE).stdout\n"
        "cred = json.loads(out)\n"
        "cred['status'].pop('expirationTimestamp', None)\n"
        "print(json.dumps(cred))\n",
    )
    doc = load_doc(exec_fleet.kubeconfig)
    ex = entry(doc, "users", user_key(EXEC, "exec"))["user"]["exec"]
    ex["command"] = str(wrapper)
    kc_path = write_doc(tmp_path / "kubeconfig", doc)
    exec_fleet.set_faults(EXEC, token_ttl_s=1.0)

    client = ContextClient(load_kubeconfig([str(kc_path)]).resolve(EXEC))
    before = auth.exec_plugin_runs()
    client.version()
    cred = client.credentials.get()
    assert cred.expires_at is None and cred.token
    wait_for(
        lambda: status_with_token(exec_fleet, EXEC, cred.token or "") == 401,
        5,
        "the fleet to refuse the expired token",
    )
    exec_fleet.clear_requests(EXEC)
    nodes, _ = client.list_items("/api/v1/nodes")
    assert [n["metadata"]["name"] for n in nodes] == ["l4"]
    assert auth.exec_plugin_runs() - before == 2
    assert [(r["path"], r["code"]) for r in exec_fleet.requests(EXEC)] == [
        ("/api/v1/nodes", 401),
        ("/api/v1/nodes", 200),
    ]


def test_failing_exec_plugin_fails_only_its_context(exec_fleet: Fleet, tmp_path: Path) -> None:
    broken = python_script(
        tmp_path / "bin" / "broken-plugin",
        "import sys\nsys.stderr.write('ERROR: you are not logged in; run `cloud login`\\n')\n"
        "sys.exit(1)\n",
    )
    doc = load_doc(exec_fleet.kubeconfig)
    entry(doc, "users", user_key(EXEC, "exec"))["user"]["exec"]["command"] = str(broken)
    kc_path = write_doc(tmp_path / "kubeconfig", doc)
    report = check(fast(2.0, kubeconfig=(str(kc_path),), allowed_contexts="all"))
    assert report[EXEC].error_kind == "exec"
    assert not report[EXEC].enabled
    assert "broken-plugin" in report[EXEC].reason and "not logged in" in report[EXEC].reason
    assert report[TOK].enabled and report[CERT].enabled
    # never silently anonymous: the plugin failed, so nothing was sent for that context
    assert exec_fleet.requests(EXEC) == []


def test_a_broken_entry_fails_only_its_context_with_a_context_free_reason(
    mixed: Fleet, isolated_env: Path, tmp_path: Path
) -> None:
    """The reason column and the tree show the message once, without `context 'X':`."""
    doc = load_doc(mixed.kubeconfig)
    doc["contexts"].append({"name": "ghost-user", "context": {"cluster": TOK, "user": "ghost"}})
    kc_path = write_doc(tmp_path / "kubeconfig", doc)
    report = check(fast(2.0, kubeconfig=(str(kc_path),), allowed_contexts=("ghost-user", TOK)))
    ghost = report["ghost-user"]
    assert not ghost.enabled and ghost.error_kind == "config"
    assert ghost.reason.startswith(f"kubeconfig entry in {kc_path} names user 'ghost', which no ")
    assert "context '" not in ghost.reason
    assert report[TOK].enabled
    frame = report.to_frame().set_index("context")
    assert frame.loc["ghost-user", "reason"] == ghost.reason
    assert f"├── ghost-user: disabled. Reason: kubeconfig entry in {kc_path}" in str(report)


def test_report_is_a_checkreport_with_json_roundtrip(mixed: Fleet, env: Path) -> None:
    report = check(fast(), infra=f"k8s/{TOK}")
    assert isinstance(report, CheckReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["enabled"] is True
    assert data["contexts"][0]["context"] == TOK
    assert data["contexts"][0]["permissions"]["list nodes"] is True
