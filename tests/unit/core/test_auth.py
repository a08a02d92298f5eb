"""auth.py against REAL plugin processes: small Python scripts on PATH, no mocks inside."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pluginkit import V1, V1B1, FakePlugin

from skymagic.core import auth
from skymagic.core.auth import (
    Credential,
    CredentialProvider,
    clear_credential_cache,
    exec_plugin_runs,
)
from skymagic.core.entries import ExecConfig, ResolvedContext
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.errors import AuthError, ExecPluginError, KubeconfigError

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBexecCERT\n-----END CERTIFICATE-----\n"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIBexecKEY\n-----END PRIVATE KEY-----\n"
GKE_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin"
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_credential_cache()
    yield
    clear_credential_cache()


def resolved(
    tmp_path: Path,
    user: dict[str, Any],
    *,
    cluster: dict[str, Any] | None = None,
    name: str = "ctx",
    fname: str = "config",
) -> ResolvedContext:
    doc = {
        "clusters": [{"name": "cl", "cluster": cluster or {"server": "https://k.example:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "cl", "user": "u"}}],
    }
    p = tmp_path / fname
    p.write_text(yaml.safe_dump(doc))
    return load_kubeconfig([str(p)]).resolve(name)


def gke_user() -> dict[str, Any]:
    # Exactly what `gcloud container clusters get-credentials` writes.
    return {
        "exec": {
            "apiVersion": V1B1,
            "command": "gke-gcloud-auth-plugin",
            "installHint": GKE_HINT,
            "provideClusterInfo": True,
        }
    }


def eks_user(
    region: str = "us-west-2", cluster: str = "gpu-a", profile: str = "ml"
) -> dict[str, Any]:
    # Exactly what `aws eks update-kubeconfig --profile ml` writes.
    return {
        "exec": {
            "apiVersion": V1B1,
            "args": [
                "--region",
                region,
                "eks",
                "get-token",
                "--cluster-name",
                cluster,
                "--output",
                "json",
            ],
            "command": "aws",
            "env": [{"name": "AWS_PROFILE", "value": profile}],
        }
    }


def assert_one_line_no_secret(err: BaseException, *secrets: str) -> str:
    text = str(err) + repr(err) + "".join(getattr(err, "_render_traceback_", list)())
    assert "\n" not in str(err)
    for s in secrets:
        assert s not in text, (s, text)
    context = getattr(err, "context", None)
    if context is not None:
        assert "context '" not in getattr(err, "message", ""), err
        assert str(err) == f"context '{context}': {getattr(err, 'message', '')}"
    return str(err)


# --------------------------------------------------------------------------- the cloud CLIs


def test_gke_plugin_gets_cluster_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "gke-gcloud-auth-plugin", monkeypatch)
    cluster = {
        "server": "https://34.1.2.3",
        "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
        "tls-server-name": "kubernetes.default",
        "proxy-url": "http://proxy:3128",
        "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "gke"}},
            {"name": "other", "extension": {"x": 1}},
        ],
    }
    rc = resolved(tmp_path, gke_user(), cluster=cluster, name="gke_proj_us-central1_gpu")
    cred = CredentialProvider(rc).get()
    assert cred.source == "exec" and cred.token == "tok-1"
    assert cred.headers() == {"Authorization": "Bearer tok-1"}
    info = plug.seen["info"]
    assert info == {
        "apiVersion": V1B1,
        "kind": "ExecCredential",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": "https://34.1.2.3",
                "tls-server-name": "kubernetes.default",
                "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
                "proxy-url": "http://proxy:3128",
                "config": {"audience": "gke"},
            },
        },
    }
    assert plug.seen["stdin"] == ""  # stdin is /dev/null, never the kernel's


def test_eks_aws_args_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(show_env=["AWS_PROFILE", "HOME_MARKER"])
    monkeypatch.setenv("HOME_MARKER", "kept")  # plugin env is ADDED to the host environment
    monkeypatch.setenv("AWS_PROFILE", "overridden")
    arn = "arn:aws:eks:us-west-2:123456789012:cluster/gpu-a"
    rc = resolved(tmp_path, eks_user(), name=arn)
    cred = CredentialProvider(rc).get()
    assert cred.token == "tok-1"
    seen = plug.seen
    assert seen["argv"] == [
        "--region",
        "us-west-2",
        "eks",
        "get-token",
        "--cluster-name",
        "gpu-a",
        "--output",
        "json",
    ]
    assert seen["env"] == {"AWS_PROFILE": "ml", "HOME_MARKER": "kept"}
    assert seen["info"] == {
        "apiVersion": V1B1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }


# --------------------------------------------------------------------------- cache and refresh


def test_cache_reuse_until_expiry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(expires_in=3600)
    rc = resolved(tmp_path, eks_user())
    p1, p2 = CredentialProvider(rc), CredentialProvider(rc)
    c1 = p1.get()
    assert c1.expires_at is not None and c1.expires_at > time.time() + 3000
    assert p2.get() is c1  # process-wide: another provider shares it
    assert plug.runs == 1


def test_expiry_then_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(expires_in=2)  # shorter than the skew: reused ~1 s, never re-run per request
    prov = CredentialProvider(resolved(tmp_path, eks_user()))
    first = prov.get()
    assert first.token == "tok-1"
    assert all(prov.get() is first for _ in range(20)) and plug.runs == 1
    time.sleep(1.2)
    plug.behave(expires_in=3600)
    assert prov.get().token == "tok-2"
    assert prov.get().token == "tok-2"
    assert plug.runs == 2


def test_invalidate_after_401_then_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "gke-gcloud-auth-plugin", monkeypatch)
    prov = CredentialProvider(resolved(tmp_path, gke_user()))
    before = exec_plugin_runs()
    old = prov.get()
    assert old.expires_at is None
    assert prov.get() is old and plug.runs == 1  # no expiry: reused until a 401
    prov.invalidate(old)
    new = prov.get()
    assert new.token == "tok-2" and plug.runs == 2
    prov.invalidate(old)  # a late 401 for the stale credential: nothing to do
    assert prov.get() is new and plug.runs == 2
    assert exec_plugin_runs() - before == 2


def test_cache_keyed_by_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "gke-gcloud-auth-plugin", monkeypatch)
    a = resolved(tmp_path, gke_user(), cluster={"server": "https://a"}, fname="a")
    b = resolved(tmp_path, gke_user(), cluster={"server": "https://b"}, fname="b")
    assert CredentialProvider(a).get().token == "tok-1"
    assert CredentialProvider(b).get().token == "tok-2"
    assert CredentialProvider(a).get().token == "tok-1"
    assert plug.runs == 2


def test_single_flight_eight_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(sleep=0.5)
    rc = resolved(tmp_path, eks_user())
    results: list[Credential] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(CredentialProvider(rc).get())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(results) == 8
    assert {c.token for c in results} == {"tok-1"}
    assert plug.runs == 1


# --------------------------------------------------------------------------- failures


def test_timeout_kills_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(sleep=60)
    prov = CredentialProvider(resolved(tmp_path, eks_user()), exec_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    assert time.monotonic() - t0 < 5
    msg = assert_one_line_no_secret(info.value)
    assert "'ctx'" in msg and "the exec plugin `aws` did not answer within 1 s" in msg
    assert "SkyMagics.exec_timeout" in msg
    assert info.value.plugin == "aws" and info.value.context == "ctx"


def test_missing_binary_shows_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    before = exec_plugin_runs()
    with pytest.raises(ExecPluginError) as info:
        CredentialProvider(resolved(tmp_path, gke_user())).get()
    msg = assert_one_line_no_secret(info.value)
    assert "gke-gcloud-auth-plugin" in msg and "not found" in msg
    assert "cluster-access-for-kubectl#install_plugin" in msg
    assert exec_plugin_runs() == before


def _now_plus(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


BAD_OUTPUTS = {
    "bad-json": ("not json {token: tok-LEAKED}", "not JSON"),
    "wrong-api-version": (
        json.dumps({"apiVersion": V1, "kind": "ExecCredential", "status": {"token": "tok-LEAKED"}}),
        "apiVersion",
    ),
    "wrong-kind": (
        json.dumps({"apiVersion": V1B1, "kind": "Secret", "status": {"token": "tok-LEAKED"}}),
        "kind",
    ),
    "no-status": (json.dumps({"apiVersion": V1B1, "kind": "ExecCredential"}), "without a status"),
    "no-credential": (
        json.dumps({"apiVersion": V1B1, "kind": "ExecCredential", "status": {}}),
        "neither a token nor",
    ),
    "cert-only": (
        json.dumps(
            {
                "apiVersion": V1B1,
                "kind": "ExecCredential",
                "status": {"clientCertificateData": CERT_PEM},
            }
        ),
        "clientKeyData missing",
    ),
    "key-only": (
        json.dumps(
            {"apiVersion": V1B1, "kind": "ExecCredential", "status": {"clientKeyData": KEY_PEM}}
        ),
        "clientCertificateData missing",
    ),
    "bad-expiry": (
        json.dumps(
            {
                "apiVersion": V1B1,
                "kind": "ExecCredential",
                "status": {"token": "tok-LEAKED", "expirationTimestamp": "tomorrow"},
            }
        ),
        "RFC 3339",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_bad_plugin_output(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdout, fragment = BAD_OUTPUTS[case]
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(stdout=stdout)
    prov = CredentialProvider(resolved(tmp_path, eks_user()))
    with pytest.raises(ExecPluginError) as info:
        prov.get()
    msg = assert_one_line_no_secret(info.value, "tok-LEAKED", "MIIBexec")
    assert fragment in msg and "'ctx'" in msg and "`aws`" in msg
    # Never anonymous; the failure answers for a few seconds without running the plugin...
    with pytest.raises(ExecPluginError) as again:
        prov.get()
    assert str(again.value) == msg and plug.runs == 1
    # ...and then the plugin is tried again.
    monkeypatch.setattr(auth, "FAILURE_TTL_SECONDS", 0.0)
    clear_credential_cache()
    with pytest.raises(ExecPluginError):
        prov.get()
    assert plug.runs == 2


def test_nonzero_exit_shows_last_stderr_line_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    plug.behave(
        stdout="",
        exit=255,
        stderr="debug: token: tok-LEAKED\n\nAn error occurred (ExpiredToken): run aws sso login\n",
    )
    with pytest.raises(ExecPluginError) as info:
        CredentialProvider(resolved(tmp_path, eks_user())).get()
    msg = assert_one_line_no_secret(info.value, "tok-LEAKED")
    assert "code 255" in msg and "ExpiredToken" in msg and "aws sso login" in msg
    plug.behave(stdout="", exit=1, stderr="Authorization: Bearer tok-LEAKED\n")
    with pytest.raises(ExecPluginError) as info:
        CredentialProvider(resolved(tmp_path, eks_user())).get()
    assert_one_line_no_secret(info.value, "tok-LEAKED")


def test_v1_without_interactive_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    user = {"exec": {"apiVersion": V1, "command": "aws"}}
    with pytest.raises(ExecPluginError, match="interactiveMode"):
        resolved(tmp_path, user)
    # A hand-built context gets the same check from the provider; the plugin never runs.
    good = resolved(tmp_path, eks_user())
    from dataclasses import replace

    bad_exec = ExecConfig(command="aws", api_version=V1, interactive_mode=None)
    rc = replace(good, user=replace(good.user, exec=bad_exec))
    with pytest.raises(ExecPluginError, match="interactiveMode"):
        CredentialProvider(rc).get()
    assert plug.runs == 0


def test_v1_with_interactive_mode_never(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "plug", monkeypatch)
    user = {"exec": {"apiVersion": V1, "command": "plug", "interactiveMode": "Never"}}
    cred = CredentialProvider(resolved(tmp_path, user)).get()
    assert cred.token == "tok-1"
    assert plug.seen["info"]["apiVersion"] == V1


def test_interactive_always_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "kubelogin", monkeypatch)
    user = {
        "exec": {
            "apiVersion": V1,
            "command": "kubelogin",
            "args": ["get-token", "--login", "devicecode"],
            "interactiveMode": "Always",
        }
    }
    with pytest.raises(ExecPluginError) as info:
        CredentialProvider(resolved(tmp_path, user)).get()
    msg = assert_one_line_no_secret(info.value)
    assert "interactive terminal" in msg and "notebook" in msg
    assert "`kubelogin get-token --login devicecode`" in msg
    assert plug.runs == 0


def test_unsupported_api_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakePlugin(tmp_path, "aws", monkeypatch)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "aws"}}
    with pytest.raises(ExecPluginError) as info:
        resolved(tmp_path, user)
    msg = str(info.value)
    assert "'ctx'" in msg and "aws" in msg and V1 in msg and V1B1 in msg


def test_exec_client_cert_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skymagic.sim.certs import FleetCA

    cert_pem, key_pem = FleetCA.create().issue_client_cert("alice")
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    exp = "2999-01-02T03:04:05.123456789Z"  # Go writes nanoseconds
    plug.behave(
        stdout=json.dumps(
            {
                "apiVersion": V1B1,
                "kind": "ExecCredential",
                "status": {
                    "clientCertificateData": cert_pem.decode(),
                    "clientKeyData": key_pem.decode(),
                    "expirationTimestamp": exp,
                },
            }
        )
    )
    cred = CredentialProvider(resolved(tmp_path, eks_user())).get()
    assert cred.client_cert_pem == cert_pem and cred.client_key_pem == key_pem
    assert cred.token is None and cred.headers() == {}
    assert cred.expires_at == pytest.approx(
        datetime(2999, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc).timestamp()
    )
    assert key_pem.decode().splitlines()[1] not in repr(cred) + str(cred)


@pytest.mark.parametrize(
    "stamp",
    [
        "2999-01-01T00:00:00Z",
        "2999-01-01T00:00:00.5Z",
        "2999-01-01T02:00:00+02:00",
        "2999-01-01T00:00:00.000+00:00",
    ],
)
def test_expiration_formats(stamp: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plug = FakePlugin(tmp_path, "aws", monkeypatch)
    status = {"token": "t", "expirationTimestamp": stamp}
    plug.behave(stdout=json.dumps({"apiVersion": V1B1, "kind": "ExecCredential", "status": status}))
    cred = CredentialProvider(resolved(tmp_path, eks_user())).get()
    want = datetime(2999, 1, 1, tzinfo=timezone.utc).timestamp()
    assert cred.expires_at is not None and abs(cred.expires_at - want) < 1


def test_relative_command_resolved_against_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plug = FakePlugin(tmp_path, "rel-plugin", monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    user = {"exec": {"apiVersion": V1B1, "command": f"./{plug.dir.name}/rel-plugin"}}
    monkeypatch.chdir(tmp_path.parent)  # the kernel's cwd must not matter
    assert CredentialProvider(resolved(tmp_path, user)).get().token == "tok-1"


# --------------------------------------------------------------------------- static credentials


def test_static_token_and_basic(tmp_path: Path) -> None:
    cred = CredentialProvider(resolved(tmp_path, {"token": "tok-static"})).get()
    assert cred.source == "token" and cred.headers() == {"Authorization": "Bearer tok-static"}
    assert "tok-static" not in repr(cred) + str(cred)
    basic = CredentialProvider(
        resolved(tmp_path, {"username": "admin", "password": "pw-SECRET"})
    ).get()
    assert basic.source == "basic"
    assert basic.headers() == {
        "Authorization": "Basic " + base64.b64encode(b"admin:pw-SECRET").decode()
    }
    assert "pw-SECRET" not in repr(basic)
    none = CredentialProvider(resolved(tmp_path, {})).get()
    assert none.source == "none" and none.headers() == {}


def test_token_file_reread_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = tmp_path / "token"
    tok.write_text("tok-A\n")
    prov = CredentialProvider(resolved(tmp_path, {"tokenFile": "token", "token": "ignored"}))
    assert prov.auth_kind == "token-file"
    assert prov.get().token == "tok-A"
    tok.write_text("tok-B")
    assert prov.get().token == "tok-A"  # re-read at most once a minute
    monkeypatch.setattr(auth, "TOKEN_FILE_TTL_SECONDS", 0.0)
    b = prov.get()
    assert b.token == "tok-B"
    tok.unlink()
    assert prov.get() is b  # the last token read stays in use (client-go's caching source)
    prov.invalidate(b)  # a 401 for it: then the static token is the fallback
    assert prov.get().token == "ignored"
    (tmp_path / "x").mkdir()
    only_file = CredentialProvider(resolved(tmp_path / "x", {"tokenFile": "token"}))
    with pytest.raises(AuthError) as info:
        only_file.get()
    msg = assert_one_line_no_secret(info.value)
    assert str(tmp_path / "x" / "token") in msg and msg.startswith("context 'ctx': tokenFile ")


def test_client_cert_files(tmp_path: Path) -> None:
    (tmp_path / "u.crt").write_text(CERT_PEM)
    (tmp_path / "u.key").write_text(KEY_PEM)
    cred = CredentialProvider(
        resolved(tmp_path, {"client-certificate": "u.crt", "client-key": "u.key"})
    ).get()
    assert cred.source == "client-cert" and cred.client_key_pem == KEY_PEM.encode()
    (tmp_path / "u.key").unlink()
    with pytest.raises(KubeconfigError) as info:
        CredentialProvider(
            resolved(tmp_path, {"client-certificate": "u.crt", "client-key": "u.key"})
        ).get()
    assert str(tmp_path / "u.key") in str(info.value)
    assert info.value.path == str(tmp_path / "u.key")


def test_auth_provider_is_an_error_not_anonymous(tmp_path: Path) -> None:
    user = {"auth-provider": {"name": "gcp", "config": {"access-token": "ya29.SECRET"}}}
    with pytest.raises(AuthError) as info:
        CredentialProvider(resolved(tmp_path, user)).get()
    assert_one_line_no_secret(info.value, "ya29.SECRET")
    assert "gcp" in str(info.value)


def test_credential_repr_hides_everything_secret() -> None:
    cred = Credential(
        "exec",
        token="tok-HIDDEN",
        client_cert_pem=b"CERT-HIDDEN",
        client_key_pem=b"KEY-HIDDEN",
        username="bob",
        password="PW-HIDDEN",
        expires_at=1.0,
    )
    text = repr(cred) + str(cred)
    for s in ("tok-HIDDEN", "CERT-HIDDEN", "KEY-HIDDEN", "PW-HIDDEN"):
        assert s not in text
    assert "bob" in text and "exec" in text
