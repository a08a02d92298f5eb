"""client-go's own exec-plugin and credential cases, as our table-driven tests.

Each table names the client-go test it mirrors (kubernetes/client-go,
plugin/pkg/client/auth/exec/exec_test.go, tools/clientcmd/client_config_test.go,
transport/round_trippers_test.go). Plugins are real executables (pluginkit.FakePlugin);
requests go to a real HTTP(S) server on 127.0.0.1. Where skymagic deliberately differs, the
divergence table in skymagic/core/auth.py gives the reason and test_every_divergence_has_a_test
keeps the two in step. The budget and failure-cache tests are skymagic's own (client-go has
neither).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pluginkit import V1, V1B1, FakePlugin, alive, kubeconfig, recording_server, resolved

from skymagic.core import auth
from skymagic.core.auth import CredentialProvider, clear_credential_cache, exec_plugin_runs
from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.entries import ExecConfig
from skymagic.core.execplugin import scrub
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.errors import AuthError, ExecPluginError, UnauthorizedError
from skymagic.sim.certs import FleetCA

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_credential_cache()
    yield
    clear_credential_cache()


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    cert, key = FleetCA.create().issue_client_cert("alice")
    return cert.decode(), key.decode()


def plugin_user(command: str = "plug", **extra: Any) -> dict[str, Any]:
    return {"exec": {"apiVersion": V1B1, "command": command, **extra}}


def exec_credential(status: dict[str, Any] | None, api_version: str = V1B1) -> str:
    doc: dict[str, Any] = {"kind": "ExecCredential", "apiVersion": api_version}
    if status is not None:
        doc["status"] = status
    return json.dumps(doc)


# --------------------------------------------------------------------------- TestRefreshCreds

# (name, exec stanza extras, cluster, plugin behaviour, expected: "token"/"cert"/error text)
REFRESH_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any], str]] = [
    ("beta-basic-request", {}, None, {}, "token"),
    ("beta-with-TLS-credentials", {}, None, {"pair": True}, "cert"),
    (
        "beta-with-bad-TLS-credentials",
        {},
        None,
        {"stdout": exec_credential({"clientKeyData": "foo", "clientCertificateData": "bar"})},
        "do not load",
    ),
    (
        "beta-cert-but-no-key",
        {},
        None,
        {"stdout": exec_credential({"clientCertificateData": "bar"})},
        "clientKeyData missing",
    ),
    ("beta-expiry", {}, None, {"expires_in": 3600}, "token"),
    (
        "beta-no-group-version",
        {},
        None,
        {"stdout": json.dumps({"kind": "ExecCredential", "status": {"token": "t"}})},
        "apiVersion",
    ),
    ("beta-no-status", {}, None, {"stdout": exec_credential(None)}, "without a status"),
    ("beta-no-token", {}, None, {"stdout": exec_credential({})}, "neither a token nor"),
    ("binary-fails", {}, None, {"stdout": "", "exit": 10}, "exited with code 10"),
    (
        "beta-with-cluster-and-provide-cluster-info-is-serialized",
        {"provideClusterInfo": True},
        {
            "server": "https://127.0.0.1:443",
            "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
            "tls-server-name": "kubernetes.default",
            "extensions": [
                {
                    "name": "client.authentication.k8s.io/exec",
                    "extension": {"audience": "snorlax"},
                }
            ],
        },
        {},
        "token",
    ),
    (
        "beta-with-cluster-and-without-provide-cluster-info-is-not-serialized",
        {},
        {"server": "https://127.0.0.1:443"},
        {},
        "token",
    ),
    ("v1-basic-request", {"apiVersion": V1, "interactiveMode": "Never"}, None, {}, "token"),
    (
        "beta-basic-request-with-always-interactive-mode",
        {"interactiveMode": "Always"},
        None,
        {},
        "needs an interactive terminal",
    ),
]


@pytest.mark.parametrize(
    ("name", "stanza", "cluster", "beh", "want"), REFRESH_CASES, ids=[c[0] for c in REFRESH_CASES]
)
def test_refresh_creds(
    name: str,
    stanza: dict[str, Any],
    cluster: dict[str, Any] | None,
    beh: dict[str, Any],
    want: str,
    pair: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exec_test.go TestRefreshCreds: plugin output -> credential or error; the plugin's
    input (KUBERNETES_EXEC_INFO) carries the cluster only with provideClusterInfo."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    if beh.pop("pair", False):
        status = {"clientCertificateData": pair[0], "clientKeyData": pair[1]}
        beh["stdout"] = exec_credential(status)
    plug.behave(**beh)
    prov = CredentialProvider(resolved(tmp_path, plugin_user(**stanza), cluster))
    if want in ("token", "cert"):
        cred = prov.get()
        if want == "token":
            assert cred.token == "tok-1" and cred.client_cert_pem is None
        else:
            assert cred.token is None and cred.client_cert_pem == pair[0].encode()
        if "expires_in" in beh:
            assert cred.expires_at is not None and cred.expires_at > time.time() + 3500
        spec = plug.seen["info"]["spec"]
        assert spec["interactive"] is False
        if stanza.get("provideClusterInfo"):
            assert spec["cluster"] == {
                "server": "https://127.0.0.1:443",
                "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
                "tls-server-name": "kubernetes.default",
                "config": {"audience": "snorlax"},
            }
        else:
            assert "cluster" not in spec
        return
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    assert want in str(info.value) and "\n" not in str(info.value)
    assert "the exec plugin `plug`" in str(info.value)


def test_unknown_binary_shows_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """exec_test.go TestRefreshCreds "unknown-binary" (and the install hint, escaped)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    hint = "install \x1b[31mit\x1b[0m with brew"
    prov = CredentialProvider(resolved(tmp_path, plugin_user("nope", installHint=hint)))
    before = exec_plugin_runs()
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    msg = str(info.value)
    assert "`nope` was not found" in msg and "install U+001B[31mit" in msg and "\x1b" not in msg
    assert exec_plugin_runs() == before


def test_bad_tls_pair_is_never_cached(
    pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exec_test.go "beta-with-bad-TLS-credentials": the refresh fails and caches nothing, so
    once the plugin is fixed the next run's good pair is used (after the failure's few s)."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(stdout=exec_credential({"clientKeyData": "foo", "clientCertificateData": "bar"}))
    prov = CredentialProvider(resolved(tmp_path, plugin_user()))
    with pytest.raises(ExecPluginError, match="do not load"):
        prov.get()
    plug.behave(
        stdout=exec_credential({"clientCertificateData": pair[0], "clientKeyData": pair[1]})
    )
    monkeypatch.setattr(auth, "FAILURE_TTL_SECONDS", 0.0)
    clear_credential_cache()
    assert prov.get().client_cert_pem == pair[0].encode()
    assert plug.runs == 2


# --------------------------------------------------------------------------- TestCacheKey


def _two_contexts(
    tmp_path: Path,
    a: tuple[dict[str, Any], dict[str, Any]],
    b: tuple[dict[str, Any], dict[str, Any]],
) -> tuple[CredentialProvider, CredentialProvider]:
    path = kubeconfig(
        tmp_path,
        users={"ua": {"exec": a[0]}, "ub": {"exec": b[0]}},
        clusters={"ca": a[1], "cb": b[1]},
        contexts={"a": ("ca", "ua"), "b": ("cb", "ub")},
    )
    kc = load_kubeconfig([str(path)])
    return CredentialProvider(kc.resolve("a")), CredentialProvider(kc.resolve("b"))


STANZA = {"apiVersion": V1B1, "command": "foo-bar", "args": ["1", "2"]}
ENV = [{"name": "3", "value": "4"}, {"name": "5", "value": "6"}]


def _cluster(audience: str = "snorlax", **kw: Any) -> dict[str, Any]:
    ext = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": audience}}
    return {
        "server": "https://foo",
        "tls-server-name": "bar",
        "certificate-authority-data": base64.b64encode(b"baz").decode(),
        "extensions": [ext],
        **kw,
    }


# (name, (stanza, cluster) of context a, of context b, share one plugin run?)
CACHE_KEY_CASES: list[
    tuple[str, tuple[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]], bool]
] = [
    (
        "key1==key2 same stanza and cluster info",
        ({**STANZA, "env": ENV, "provideClusterInfo": True}, _cluster()),
        ({**STANZA, "env": ENV, "provideClusterInfo": True}, _cluster()),
        True,
    ),
    (
        "key1!=key3 env differs",
        ({**STANZA, "env": [*ENV, {"name": "7", "value": "8"}]}, _cluster()),
        ({**STANZA, "env": ENV}, _cluster()),
        False,
    ),
    (
        "key3!=key4 audience differs (with cluster info)",
        ({**STANZA, "env": ENV, "provideClusterInfo": True}, _cluster("snorlax")),
        ({**STANZA, "env": ENV, "provideClusterInfo": True}, _cluster("panda")),
        False,
    ),
    (
        "key4!=key5 provideClusterInfo differs",
        ({**STANZA, "env": ENV}, _cluster("panda")),
        ({**STANZA, "env": ENV, "provideClusterInfo": True}, _cluster("panda")),
        False,
    ),
    (
        "key6!=key4 apiVersion differs",
        ({**STANZA, "apiVersion": V1, "interactiveMode": "IfAvailable"}, _cluster()),
        ({**STANZA}, _cluster()),
        False,
    ),
    (
        "no cluster info: other servers share the run",
        ({**STANZA}, {"server": "https://one"}),
        ({**STANZA}, {"server": "https://two"}),
        True,
    ),
    (
        "cluster info: proxy-url differs",
        ({**STANZA, "provideClusterInfo": True}, _cluster(**{"proxy-url": "http://p:3128"})),
        ({**STANZA, "provideClusterInfo": True}, _cluster()),
        False,
    ),
    (
        "cluster info: server differs",
        ({**STANZA, "provideClusterInfo": True}, _cluster(server="https://one")),
        ({**STANZA, "provideClusterInfo": True}, _cluster(server="https://two")),
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "a", "b", "shared"), CACHE_KEY_CASES, ids=[c[0] for c in CACHE_KEY_CASES]
)
def test_cache_key(
    name: str,
    a: tuple[dict[str, Any], dict[str, Any]],
    b: tuple[dict[str, Any], dict[str, Any]],
    shared: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exec_test.go TestCacheKey, observed as plugin runs: the credential cache key is the
    exec stanza, plus the whole cluster info when provideClusterInfo hands it to the plugin."""
    plug = FakePlugin(tmp_path, "foo-bar", monkeypatch)
    pa, pb = _two_contexts(tmp_path, a, b)
    ta, tb = pa.get().token, pb.get().token
    assert pa.get().token == ta  # each one cached
    assert (ta == tb) is shared
    assert plug.runs == (1 if shared else 2)


# --------------------------------------------------------------------------- static credentials


# exec_test.go TestAuthorizationHeaderPresentCancelsExecAction: a token, basic auth or a client
# certificate next to the exec stanza is used, and the plugin never runs.
STATIC_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bearer token", {"token": "token1f"}, "token"),
    ("basic auth", {"username": "marshmallow", "password": "zelda"}, "basic"),
    (
        "cert auth",
        {
            "client-certificate-data": base64.b64encode(b"some-cert-data").decode(),
            "client-key-data": base64.b64encode(b"some-key-data").decode(),
        },
        "client-cert",
    ),
]


@pytest.mark.parametrize(
    ("name", "static", "source"), STATIC_CASES, ids=[c[0] for c in STATIC_CASES]
)
def test_static_credential_cancels_exec(
    name: str, static: dict[str, Any], source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    cred = CredentialProvider(resolved(tmp_path, {**plugin_user(), **static})).get()
    assert cred.source == source and plug.runs == 0


# client_config_test.go TestBasicTokenFile and TestPrecedenceTokenFile, with what the transport
# then sends (round_trippers.go NewBearerAuthWithRefreshRoundTripper + cachingTokenSource): the
# file's token when it can be read, else the last one read, else the static token.
TOKEN_CASES: list[tuple[str, str | None, str | None, str]] = [
    ("BasicTokenFile", None, "exampletoken", "exampletoken"),
    ("PrecedenceTokenFile (file readable)", "expected", "exampletoken", "exampletoken"),
    ("token + missing tokenFile", "expected", None, "expected"),
    ("token + empty tokenFile", "expected", "", "expected"),
    ("missing tokenFile alone", None, None, "error"),
]


@pytest.mark.parametrize(
    ("name", "token", "content", "sent"), TOKEN_CASES, ids=[c[0] for c in TOKEN_CASES]
)
def test_token_and_token_file(
    name: str, token: str | None, content: str | None, sent: str, tmp_path: Path
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if content is not None:
        (tmp_path / "tokenfile").write_text(content)
    user: dict[str, Any] = {"tokenFile": "tokenfile"}
    if token is not None:
        user["token"] = token
    prov = CredentialProvider(resolved(tmp_path, user))
    if sent == "error":
        with pytest.raises(AuthError, match="tokenFile"):
            prov.get()
        return
    assert prov.get().token == sent


# --------------------------------------------------------------------------- on the wire


def _context_for(
    tmp_path: Path, server: str, ca: bytes, user: dict[str, Any], timeout: float = 3.0
) -> ContextClient:
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return ContextClient(
        resolved(tmp_path, user, cluster), ClientSettings(request_timeout=timeout, retries=0)
    )


def test_impersonation_on_the_wire(tmp_path: Path) -> None:
    """round_trippers_test.go TestImpersonationRoundTripper, over real HTTPS: repeated headers
    stay repeated (the API server reads them as lists)."""
    user = {
        "token": "t0k",
        "as": "alice",
        "as-uid": "u-1",
        "as-groups": ["one", "two"],
        "as-user-extra": {"scopes": ["a", "b"], "example.com/x": ["y"]},
    }
    with recording_server(lambda path, h: (200, {"gitVersion": "v1.32.0"})) as (url, log, ca):
        _context_for(tmp_path, url, ca, user).version()
    h = log[0]["headers"]
    assert h["authorization"] == ["Bearer t0k"]
    assert h["impersonate-user"] == ["alice"] and h["impersonate-uid"] == ["u-1"]
    assert h["impersonate-group"] == ["one", "two"]
    assert h["impersonate-extra-scopes"] == ["a", "b"]
    assert h["impersonate-extra-example.com%2fx"] == ["y"]


HTTP_USERS: list[tuple[str, dict[str, Any]]] = [
    ("token", {"token": "t0k-secret"}),
    ("basic", {"username": "u", "password": "pw-secret"}),
    ("exec", plugin_user()),
]


@pytest.mark.parametrize(("kind", "user"), HTTP_USERS, ids=[k for k, _ in HTTP_USERS])
def test_plain_http_gets_no_credential(
    kind: str, user: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client_config.go "only try to read the auth information if we are secure": a plain
    http server gets no Authorization header and the exec plugin never runs; the 401 says why.
    Impersonation is not a credential: it is still sent (TestFullImpersonateConfig)."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    with recording_server(lambda path, h: (401, {"message": "Unauthorized"}), tls=False) as (
        url,
        log,
        _,
    ):
        client = _context_for(tmp_path, url, b"", {**user, "as": "alice"})
        with pytest.raises(UnauthorizedError) as info:
            client.version()
    assert "authorization" not in log[0]["headers"]
    assert log[0]["headers"]["impersonate-user"] == ["alice"]
    assert plug.runs == 0
    assert "plain http" in str(info.value) and "https://" in str(info.value)


def _retry_after_401(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """exec_test.go TestRoundTripper: a 401 rotates the credential. client-go lets THAT request
    fail and uses the new token next time; skymagic re-runs the plugin and retries the GET."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)

    def only_tok2(path: str, h: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        ok = h.get("authorization") == ["Bearer tok-2"]
        return (200, {"gitVersion": "v1.32.0"}) if ok else (401, {"message": "Unauthorized"})

    with recording_server(only_tok2) as (url, log, ca):
        client = _context_for(tmp_path, url, ca, plugin_user())
        assert client.version()["gitVersion"] == "v1.32.0"
        assert client.version()["gitVersion"] == "v1.32.0"  # the rotated token is cached
    assert plug.runs == 2
    assert [r["headers"]["authorization"] for r in log] == [
        ["Bearer tok-1"],
        ["Bearer tok-2"],
        ["Bearer tok-2"],
    ]


# --------------------------------------------------------------------------- expiry


def _expiry_skew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TestRoundTripper's expiry: client-go refreshes once now > expiry. skymagic: 10 s early,
    half the lifetime for a short-lived credential, never less than 1 s of reuse."""
    t0 = 1_000_000.0
    cases = [
        (None, float("inf")),
        (t0 + 3600, t0 + 3600 - auth.EXPIRY_SKEW_SECONDS),
        (t0 + 20, t0 + 10),
        (t0 + 12, t0 + 6),
        (t0 + 5, t0 + 2.5),
        (t0 + 1, t0 + 1),
        (t0 - 30, t0 + auth.MIN_REUSE_SECONDS),  # arrived expired: a 401 will refresh it
    ]
    for expires_at, refresh_at in cases:
        assert auth._refresh_at(expires_at, t0) == pytest.approx(refresh_at)
    # And for real: a 4 s token is reused, not re-run per request, then refreshed early.
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(expires_in=4)
    prov = CredentialProvider(resolved(tmp_path, plugin_user()))
    first = prov.get()
    assert all(prov.get() is first for _ in range(50)) and plug.runs == 1
    assert first.expires_at is not None
    while time.time() < first.expires_at - 1.5:
        time.sleep(0.05)
    assert prov.get() is not first and plug.runs == 2


# --------------------------------------------------------------------------- failures and budget

FAILURES: list[tuple[str, dict[str, Any], str]] = [
    ("exit code", {"stdout": "", "exit": 3}, "exited with code 3"),
    ("bad output", {"stdout": "not json"}, "not JSON"),
    (
        "bad TLS pair",
        {"stdout": exec_credential({"clientKeyData": "k", "clientCertificateData": "c"})},
        "do not load",
    ),
    ("timeout", {"sleep": 30}, "did not answer within"),
]


@pytest.mark.parametrize(("name", "beh", "fragment"), FAILURES, ids=[c[0] for c in FAILURES])
def test_failure_answers_for_a_few_seconds(
    name: str, beh: dict[str, Any], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One operation, one failing run: 12 contexts sharing a failing plugin start together,
    the plugin runs once, all 12 get its error; after FAILURE_TTL_SECONDS it is tried again."""
    monkeypatch.setattr(auth, "FAILURE_TTL_SECONDS", 1.0)
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(**beh)
    path = kubeconfig(
        tmp_path,
        users={"u": plugin_user()},
        clusters={f"c{i}": {"server": f"https://k{i}"} for i in range(12)},
        contexts={f"x{i}": (f"c{i}", "u") for i in range(12)},
    )
    kc = load_kubeconfig([str(path)])
    providers = [CredentialProvider(kc.resolve(f"x{i}"), exec_timeout=0.5) for i in range(12)]
    errors: list[str] = []
    barrier = threading.Barrier(12)

    def one(p: CredentialProvider) -> None:
        barrier.wait()
        try:
            p.get()
        except ExecPluginError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=one, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(errors) == 12 and all(fragment in e for e in errors), errors
    assert {e.split(": ", 1)[0] for e in errors} == {f"context 'x{i}'" for i in range(12)}
    assert plug.runs == 1
    with pytest.raises(ExecPluginError, match=fragment):
        providers[0].get()
    assert plug.runs == 1
    time.sleep(1.1)
    with pytest.raises(ExecPluginError, match=fragment):
        providers[0].get()
    assert plug.runs == 2


def test_plugin_wait_is_capped_by_the_operation_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin that hangs: every waiter gives up at its operation's deadline, the plugin runs
    once and is killed then (no process or thread left), and the message says so."""
    plug = FakePlugin(tmp_path, "gke-gcloud-auth-plugin", monkeypatch)
    plug.behave(sleep=300)
    rc = resolved(tmp_path, plugin_user("gke-gcloud-auth-plugin"))
    results: list[tuple[float, str]] = []

    def op() -> None:
        prov = CredentialProvider(rc, exec_timeout=30)
        start = time.monotonic()
        with prov.budget(start + 1.5):
            try:
                prov.get()
            except ExecPluginError as exc:
                results.append((time.monotonic() - start, str(exc)))

    before = {t.ident for t in threading.enumerate()}
    threads = [threading.Thread(target=op) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 6
    assert max(s for s, _ in results) < 1.5 + 3  # generous: the bound, not a speed claim
    assert any("`gke-gcloud-auth-plugin` did not answer within 1.5 s" in m for _, m in results)
    assert all("time budget" in m for _, m in results)
    assert plug.runs == 1
    deadline = time.monotonic() + 3
    while alive(plug.pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(plug.pids[0])
    assert {t.ident for t in threading.enumerate()} <= before


def test_expired_budget_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    prov = CredentialProvider(resolved(tmp_path, plugin_user()))
    with prov.budget(time.monotonic() - 1), pytest.raises(ExecPluginError, match="time budget"):
        prov.get()
    assert plug.runs == 0
    assert prov.get().token == "tok-1"  # outside the operation: runs, nothing was cached


def _exec_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """client-go waits for a plugin forever; skymagic kills it at exec_timeout."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(sleep=300)
    prov = CredentialProvider(resolved(tmp_path, plugin_user()), exec_timeout=1)
    start = time.monotonic()
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    assert time.monotonic() - start < 1 + 3
    assert "did not answer within 1 s" in str(info.value)
    assert "SkyMagics.exec_timeout" in str(info.value)
    time.sleep(0.2)
    assert not alive(plug.pids[0])


def _failure_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """client-go re-runs a failing plugin for every request; skymagic remembers the failure
    for FAILURE_TTL_SECONDS, per stanza (not per provider)."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(stdout="", exit=1, stderr="error: expired\n")
    rc = resolved(tmp_path, plugin_user())
    for _ in range(5):
        with pytest.raises(ExecPluginError, match="exited with code 1: error: expired"):
            CredentialProvider(rc).get()
    assert plug.runs == 1
    assert auth.FAILURE_TTL_SECONDS <= 10  # seconds, not forever


# --------------------------------------------------------------------------- stderr

SCRUB_CASES: list[tuple[str, str, list[str], list[str]]] = [
    (
        "bearer",
        "request failed: Authorization: Bearer abc.def-ghi",
        ["abc.def-ghi"],
        ["request failed"],
    ),
    (
        "jwt",
        "id token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl rejected",
        ["eyJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJl"],
        ["id token", "rejected"],
    ),
    (
        "pem block",
        "bad key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "-----END PRIVATE KEY-----\nerror: key rejected",
        ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "PRIVATE KEY"],
        ["error: key rejected"],
    ),
    (
        "aws token",
        "error: k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9uPUdldENhbGxlcklk expired",
        ["aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8"],
        ["error:", "expired"],
    ),
    (
        "google token",
        "ERROR: token ya29.a0AfH6SMBx3k4_Lq9ZpXr7TtYy2Uu8Ww0Zz1Aa invalid",
        ["a0AfH6SMBx3k4_Lq9ZpXr7TtYy2Uu8Ww0Zz1Aa"],
        ["ERROR:", "invalid"],
    ),
    (
        "kept: paths, urls, words",
        "ERROR: (gcloud.auth) see https://cloud.google.com/sdk/docs/authorizing-with-a-user"
        "-account and /home/alice/.config/gcloud/credentials.db (ExpiredToken)",
        [],
        [
            "https://cloud.google.com/sdk/docs/authorizing-with-a-user-account",
            "/home/alice/.config/gcloud/credentials.db",
            "ExpiredToken",
        ],
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "gone", "kept"), SCRUB_CASES, ids=[c[0] for c in SCRUB_CASES]
)
def test_scrub(name: str, text: str, gone: list[str], kept: list[str]) -> None:
    out = scrub(text)
    for s in gone:
        assert s not in out, out
    for s in kept:
        assert s in out, out


def _stderr_captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """client-go passes stderr to the terminal; skymagic shows the error line, scrubbed of the
    token the plugin returned before (a plugin that echoes it in an error must not leak it)."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    plug.behave(token_prefix="sekret-token-")
    prov = CredentialProvider(resolved(tmp_path, plugin_user()))
    old = prov.get()
    assert old.token == "sekret-token-1"
    prov.invalidate(old)
    plug.behave(
        stdout="",
        exit=1,
        stderr=f"debug: cached {old.token}\n-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n"
        f"-----END CERTIFICATE-----\nerror: token {old.token} was revoked\n$ plug login\n",
    )
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    msg = str(info.value)
    assert "sekret-token-1" not in msg and "MIIBkTCB" not in msg
    assert "error: token <redacted> was revoked" in msg and "`plug login`" in msg


# --------------------------------------------------------------------------- other divergences


def _auth_provider_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = {"auth-provider": {"name": "oidc", "config": {"id-token": "eyJx.eyJy.sig"}}}
    with pytest.raises(AuthError) as info:
        CredentialProvider(resolved(tmp_path, user)).get()
    assert "oidc" in str(info.value) and "eyJx" not in str(info.value)


def _install_hint_always(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """client-go prints the hint at most 10 times an hour; here every error carries it."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    prov = CredentialProvider(resolved(tmp_path, plugin_user("nope", installHint="brew it")))
    for _ in range(12):
        with pytest.raises(ExecPluginError, match="brew it"):
            prov.get()
    # A hand-built stanza (no loader) gets the escaping too.
    good = resolved(tmp_path / "b", plugin_user("nope"))
    from dataclasses import replace

    bad = ExecConfig(
        command="nope", api_version=V1B1, interactive_mode="Never", install_hint="\x1b[2J"
    )
    with pytest.raises(ExecPluginError) as info:
        CredentialProvider(replace(good, user=replace(good.user, exec=bad))).get()
    assert "U+001B[2J" in str(info.value) and "\x1b" not in str(info.value)


DIVERGENCES: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "expiry-skew": _expiry_skew,
    "exec-timeout": _exec_timeout,
    "failure-cache": _failure_cache,
    "stderr-captured": _stderr_captured,
    "retry-after-401": _retry_after_401,
    "auth-provider-refused": _auth_provider_refused,
    "install-hint-always": _install_hint_always,
}


def test_every_divergence_has_a_test() -> None:
    doc = auth.__doc__ or ""
    table = doc.split("deliberately differs", 1)[1]
    ids = re.findall(r"^([a-z][a-z0-9-]+)\s{2,}", table, re.M)
    assert sorted(i for i in ids if i != "divergence") == sorted(DIVERGENCES)


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_divergence(divergence: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    DIVERGENCES[divergence](tmp_path, monkeypatch)


def test_expiration_in_the_past_is_still_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin whose clock is off (expiry already past) is not re-run by every request."""
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    past = (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plug.behave(stdout=exec_credential({"token": "t", "expirationTimestamp": past}))
    prov = CredentialProvider(resolved(tmp_path, plugin_user()))
    for _ in range(20):
        prov.get()
    assert plug.runs == 1
