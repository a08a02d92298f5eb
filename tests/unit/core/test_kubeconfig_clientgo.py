"""client-go's own kubeconfig cases, as our table-driven tests (facts carried over, not code).

Each table names the client-go test it mirrors (kubernetes/client-go, tools/clientcmd/
client_config_test.go, loader_test.go, validation_test.go; transport/round_trippers_test.go).
Where skymagic deliberately differs, the row says so and the divergence table in
skymagic/core/kubeconfig.py gives the reason; test_every_divergence_has_a_test keeps the
two in step.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core import kubeconfig as kcmod
from skymagic.core.auth import CredentialProvider, impersonation_headers
from skymagic.core.kubeconfig import Kubeconfig, load_kubeconfig
from skymagic.core.kubeconfig_parse import clean_control_chars
from skymagic.errors import ExecPluginError, KubeconfigError

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCERT\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIIBfakeKEY\n-----END PRIVATE KEY-----\n"
V1B1 = "client.authentication.k8s.io/v1beta1"
V1 = "client.authentication.k8s.io/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def one(
    tmp_path: Path,
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Kubeconfig:
    """Load a kubeconfig whose context "clean" uses cluster "clean" and user "clean" (the
    names client-go's createValidTestConfig uses)."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "clean",
        "clusters": [{"name": "clean", "cluster": cluster or {"server": "https://localhost:8443"}}],
        "users": [{"name": "clean", "user": user if user is not None else {"token": "my-tok"}}],
        "contexts": [
            {"name": "clean", "context": context or {"cluster": "clean", "user": "clean"}}
        ],
        **(extra or {}),
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return load_kubeconfig([str(path)])


# --------------------------------------------------------------------------- the server URL

# client_config_test.go TestCreateCleanWithPrefix (server -> Host), plus the scheme client-go
# then picks (rest.DefaultServerURL with defaultTLS decided before any CA is read).
SERVER_CASES = [
    ("https://anything.com:8080/foo/bar", {}, "https://anything.com:8080/foo/bar", True),
    ("http://anything.com:8080/foo/bar", {}, "http://anything.com:8080/foo/bar", False),
    ("http://anything.com:8080/", {}, "http://anything.com:8080/", False),
    ("anything.com:8080", {}, "http://anything.com:8080", False),
    ("anything.com", {}, "http://anything.com", False),
    ("anything", {}, "http://anything", False),
    # A CA does not make a schemeless server https in kubectl: TLS is decided from the host.
    ("10.0.0.1:6443", {"certificate-authority-data": b64(CA_PEM)}, "http://10.0.0.1:6443", False),
    ("10.0.0.1:6443", {"insecure-skip-tls-verify": True}, "http://10.0.0.1:6443", False),
]


@pytest.mark.parametrize(("server", "tls", "want", "secure"), SERVER_CASES)
def test_server_url_like_kubectl(
    server: str, tls: dict[str, Any], want: str, secure: bool, tmp_path: Path
) -> None:
    rc = one(tmp_path, cluster={"server": server, **tls}).resolve("clean")
    assert rc.cluster.server == want
    assert rc.secure is secure


# --------------------------------------------------------------------------- http: no credentials

# client_config.go ClientConfig: "only try to read the auth information if we are secure";
# TestFullImpersonateConfig shows impersonation is kept on an http server all the same.
HTTP_USERS: list[tuple[str, dict[str, Any]]] = [
    ("token", {"token": "tok"}),
    ("token-file", {"tokenFile": "tok.txt"}),
    ("basic", {"username": "u", "password": "p"}),
    ("client-cert", {"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)}),
    ("exec", {"exec": {"apiVersion": V1B1, "command": "never-run-me"}}),
    ("none", {}),
]


@pytest.mark.parametrize(("kind", "user"), HTTP_USERS, ids=[k for k, _ in HTTP_USERS])
@pytest.mark.parametrize("server", ["http://k:8080", "k:8080", "https://k:6443"])
def test_credentials_only_over_https(
    kind: str, user: dict[str, Any], server: str, tmp_path: Path
) -> None:
    (tmp_path / "tok.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tok.txt").write_text("file-tok")
    rc = one(tmp_path, cluster={"server": server}, user={**user, "as": "alice"}).resolve("clean")
    assert rc.configured_auth_kind == kind
    if server.startswith("https://"):
        assert rc.auth_kind == kind
        return
    assert rc.auth_kind == "none"
    cred = CredentialProvider(rc).get()  # the exec plugin does not exist: it must not run
    assert cred.source == "none" and cred.headers() == {}
    assert cred.client_cert_pem is None
    assert impersonation_headers(rc.user) == [("Impersonate-User", "alice")]


# --------------------------------------------------------------------------- impersonation

# client_config_test.go TestFullImpersonateConfig and transport/round_trippers_test.go
# TestImpersonationRoundTripper: user fields -> the headers on the wire (one per group and per
# extra value; extra keys escaped like headerKeyEscape, "%" included).
IMPERSONATE_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "all",
        {
            "as": "user",
            "as-uid": "uid-a",
            "as-groups": ["one", "two"],
            "as-user-extra": {"first": ["A", "a"], "second": ["B", "b"]},
        },
        [
            ("Impersonate-User", "user"),
            ("Impersonate-Uid", "uid-a"),
            ("Impersonate-Group", "one"),
            ("Impersonate-Group", "two"),
            ("Impersonate-Extra-first", "A"),
            ("Impersonate-Extra-first", "a"),
            ("Impersonate-Extra-second", "B"),
            ("Impersonate-Extra-second", "b"),
        ],
    ),
    (
        "username and uid",
        {"as": "user", "as-uid": "uid-a"},
        [("Impersonate-User", "user"), ("Impersonate-Uid", "uid-a")],
    ),
    (
        "escape handling",
        {"as": "user", "as-user-extra": {"test.example.com/thing.thing": ["A"]}},
        [("Impersonate-User", "user"), ("Impersonate-Extra-test.example.com%2Fthing.thing", "A")],
    ),
    (
        "double escape handling",
        {"as": "user", "as-user-extra": {"test.example.com/thing.thing%20another.thing": ["A"]}},
        [
            ("Impersonate-User", "user"),
            ("Impersonate-Extra-test.example.com%2Fthing.thing%2520another.thing", "A"),
        ],
    ),
    ("none", {}, []),
]


@pytest.mark.parametrize(
    ("name", "fields", "headers"), IMPERSONATE_CASES, ids=[c[0] for c in IMPERSONATE_CASES]
)
def test_impersonation_headers(
    name: str, fields: dict[str, Any], headers: list[tuple[str, str]], tmp_path: Path
) -> None:
    rc = one(tmp_path, user={"token": "t", **fields}).resolve("clean")
    assert impersonation_headers(rc.user) == headers


# validation_test.go TestValidateAuthInfoImpersonate*: uid, groups or extra need a user.
IMPERSONATE_VALIDATION: list[tuple[str, dict[str, Any], str | None]] = [
    ("ImpersonateUser", {"as": "user"}, None),
    (
        "ImpersonateEverything",
        {"as": "user", "as-uid": "abc", "as-groups": ["g"], "as-user-extra": {"k": ["v"]}},
        None,
    ),
    ("ImpersonateGroupsWithoutUserInvalid", {"as-groups": ["g"]}, "as-groups"),
    ("ImpersonateExtraWithoutUserInvalid", {"as-user-extra": {"k": ["v"]}}, "as-user-extra"),
    ("ImpersonateUIDWithoutUserInvalid", {"as-uid": "abc"}, "as-uid"),
]


@pytest.mark.parametrize(
    ("name", "fields", "bad_field"),
    IMPERSONATE_VALIDATION,
    ids=[c[0] for c in IMPERSONATE_VALIDATION],
)
def test_impersonation_validation(
    name: str, fields: dict[str, Any], bad_field: str | None, tmp_path: Path
) -> None:
    kc = one(tmp_path, user={"token": "t", **fields})
    if bad_field is None:
        assert kc.resolve("clean").user.impersonate == "user"
        return
    with pytest.raises(KubeconfigError) as info:
        kc.resolve("clean")
    assert info.value.field == bad_field and "without `as`" in str(info.value)


# --------------------------------------------------------------------------- cluster validation

# validation_test.go TestValidateEmptyClusterInfo, TestValidateMissingCAFileClusterInfo,
# TestValidateCleanClusterInfo, TestValidateCleanWithCAClusterInfo, and validateClusterInfo's
# "certificate-authority-data and certificate-authority are both specified".
CLUSTER_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("EmptyClusterInfo", {"insecure-skip-tls-verify": False}, "server"),
    ("MissingCAFile", {"server": "https://k", "certificate-authority": "missing.crt"}, "ca"),
    ("CleanClusterInfo", {"server": "anything"}, None),
    ("CleanWithCA", {"server": "https://k", "certificate-authority": "ca.crt"}, None),
    (
        "CAFileAndData",
        {
            "server": "https://k",
            "certificate-authority": "ca.crt",
            "certificate-authority-data": b64(CA_PEM),
        },
        "both",
    ),
]


@pytest.mark.parametrize(
    ("name", "cluster", "problem"), CLUSTER_CASES, ids=[c[0] for c in CLUSTER_CASES]
)
def test_cluster_validation(
    name: str, cluster: dict[str, Any], problem: str | None, tmp_path: Path
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    kc = one(tmp_path, cluster=cluster)
    if problem is None:
        kc.resolve("clean")
        return
    with pytest.raises(KubeconfigError) as info:
        kc.resolve("clean")
    msg = str(info.value)
    assert {"server": "no server", "ca": "does not exist", "both": "both"}[problem] in msg
    assert "'clean'" in msg


# client_config_test.go TestProxyURL (plus validateClusterInfo: a bad proxy-url is a config
# error naming the field).
PROXY_CASES = [
    ("no proxy-url", None, True),
    ("socks5 proxy-url", "socks5://example.com", True),
    ("https proxy-url", "https://example.com", True),
    ("http proxy-url", "http://example.com", True),
    ("bad scheme proxy-url", "socks6://example.com", False),
    ("no scheme proxy-url", "example.com", False),
    ("not a url proxy-url", "chewbacca@example.com", False),
]


@pytest.mark.parametrize(("desc", "proxy", "ok"), PROXY_CASES, ids=[c[0] for c in PROXY_CASES])
def test_proxy_url(desc: str, proxy: str | None, ok: bool, tmp_path: Path) -> None:
    cluster: dict[str, Any] = {"server": "https://localhost:8443"}
    if proxy is not None:
        cluster["proxy-url"] = proxy
    kc = one(tmp_path, cluster=cluster)
    if ok:
        assert kc.resolve("clean").cluster.proxy_url == proxy
        return
    with pytest.raises(KubeconfigError) as info:
        kc.resolve("clean")
    assert info.value.field == "proxy-url" and proxy in str(info.value)
    assert "'clean'" in str(info.value)


# --------------------------------------------------------------------------- user validation

# validation_test.go TestValidateCertDataOverridesFiles, TestValidateCleanCertFilesAuthInfo,
# TestValidateCleanTokenAuthInfo, TestValidateMultipleMethodsAuthInfo, TestValidateEmptyAuthInfo.
USER_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("EmptyAuthInfo", {}, None),
    ("CleanTokenAuthInfo", {"token": "any-value"}, None),
    ("CleanCertFilesAuthInfo", {"client-certificate": "u.crt", "client-key": "u.key"}, None),
    (
        "CertDataOverridesFiles (cert)",
        {
            "client-certificate": "u.crt",
            "client-certificate-data": b64(CERT_PEM),
            "client-key": "u.key",
        },
        "client-certificate",
    ),
    (
        "CertDataOverridesFiles (key)",
        {"client-certificate": "u.crt", "client-key": "u.key", "client-key-data": b64(KEY_PEM)},
        "client-key",
    ),
    ("MultipleMethodsAuthInfo", {"token": "t", "username": "u", "password": "p"}, "token"),
    ("KeyWithoutCert", {"client-key": "u.key"}, "client-certificate"),
]


@pytest.mark.parametrize(("name", "user", "bad_field"), USER_CASES, ids=[c[0] for c in USER_CASES])
def test_user_validation(
    name: str, user: dict[str, Any], bad_field: str | None, tmp_path: Path
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "u.crt").write_bytes(CERT_PEM)
    (tmp_path / "u.key").write_bytes(KEY_PEM)
    kc = one(tmp_path, user=user)
    if bad_field is None:
        kc.resolve("clean")
        return
    with pytest.raises(KubeconfigError) as info:
        kc.resolve("clean")
    assert info.value.field == bad_field and "'clean'" in str(info.value)


# validation_test.go TestValidateAuthInfoExec, ...ExecNoVersion, ...ExecNoCommand,
# ...ExecWithAuthProvider, ...ExecNoEnv, ...ExecInteractiveModeMissing, ...InteractiveModeInvalid.
EXEC_CASES: list[tuple[str, dict[str, Any], type[Exception] | None, str]] = [
    (
        "AuthInfoExec",
        {"exec": {"apiVersion": V1, "command": "p", "interactiveMode": "Never"}},
        None,
        "",
    ),
    ("ExecNoVersion", {"exec": {"command": "p"}}, ExecPluginError, "apiVersion"),
    ("ExecNoCommand", {"exec": {"apiVersion": V1B1}}, KubeconfigError, "command"),
    (
        "ExecWithAuthProvider",
        {"exec": {"apiVersion": V1B1, "command": "p"}, "auth-provider": {"name": "oidc"}},
        KubeconfigError,
        "auth-provider",
    ),
    (
        "ExecNoEnv",
        {"exec": {"apiVersion": V1B1, "command": "p", "env": [{"value": "v"}]}},
        KubeconfigError,
        "env",
    ),
    (
        "InteractiveModeMissing",
        {"exec": {"apiVersion": V1, "command": "p"}},
        ExecPluginError,
        "interactiveMode",
    ),
    (
        "InteractiveModeInvalid",
        {"exec": {"apiVersion": V1, "command": "p", "interactiveMode": "Sometimes"}},
        ExecPluginError,
        "Sometimes",
    ),
]


@pytest.mark.parametrize(
    ("name", "user", "error", "fragment"), EXEC_CASES, ids=[c[0] for c in EXEC_CASES]
)
def test_exec_validation(
    name: str, user: dict[str, Any], error: type[Exception] | None, fragment: str, tmp_path: Path
) -> None:
    kc = one(tmp_path, user=user)
    if error is None:
        assert kc.resolve("clean").auth_kind == "exec"
        return
    with pytest.raises(error) as info:
        kc.resolve("clean")
    assert fragment in str(info.value)


# --------------------------------------------------------------------------- install hint

# client_config_test.go TestCleanANSIEscapeCodes: control characters become U+XXXX, letters,
# marks, numbers, punctuation, symbols, separators and whitespace are kept.
ANSI_CASES = [
    (
        "DenyBoldCharacters",
        "\x1b[1mbold tuna\x1b[0m, fish, \x1b[1mbold marlin\x1b[0m",
        "U+001B[1mbold tunaU+001B[0m, fish, U+001B[1mbold marlinU+001B[0m",
    ),
    (
        "DenyCursorNavigation",
        "\x1b[2Aup up, \x1b[2Cright right",
        "U+001B[2Aup up, U+001B[2Cright right",
    ),
    ("DenyClearScreen", "clear: \x1b[2J", "clear: U+001B[2J"),
    ("DenyBellAndNul", "ding\x07\x00", "dingU+0007U+0000"),
    ("AllowSpaceCharactersUnchanged", "tuna\nfish\r\nmarlin\t\r\ntuna\vfish\fmarlin", None),
    ("AllowLetters", "alpha: \u03b1, beta: \u03b2, gamma: \u03b3", None),
    ("AllowMarks", "tu\u0301na with a mark over the u, fi\u0302sh", None),
    ("AllowNumbers", "t1na, f2sh, m3rlin, t12a, f34h, m56lin, t123, f456, m567n", None),
    ("AllowPunctuation", '"here\'s a sentence; with! some...punctuation ;)"', None),
    ("AllowSymbols", "\u222b\u2081\u207f f(x) dx \u2248 \u2211\u2090\u208c\u2081\u207f f(x)", None),
    ("AllowSeparators", "a paragraph separator\u2029and here\u2003are\u2003em\u2003spaces", None),
]


@pytest.mark.parametrize(("name", "text", "want"), ANSI_CASES, ids=[c[0] for c in ANSI_CASES])
def test_clean_control_chars(name: str, text: str, want: str | None) -> None:
    assert clean_control_chars(text) == (text if want is None else want)


def test_install_hint_cleaned_when_loaded(tmp_path: Path) -> None:
    """client_config_test.go TestCreateAuthConfigExecInstallHintCleanup."""
    hint = "some install hint with \x1b[1mcontrol chars\x1b[0m\nand a newline"
    user = {"exec": {"apiVersion": V1B1, "command": "some-command", "installHint": hint}}
    ex = one(tmp_path, user=user).resolve("clean").user.exec
    assert ex is not None
    assert (
        ex.install_hint == "some install hint with U+001B[1mcontrol charsU+001B[0m\nand a newline"
    )


# --------------------------------------------------------------------------- loading


# loader_test.go TestDuplicateClusterName, TestDuplicateContextName, TestDuplicateUserName,
# TestDuplicateExtensionName: the whole file is refused, naming the duplicate.
def _dup(kind: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        if kind == "extensions":
            doc["extensions"] = [
                {"name": "test-extension", "extension": {"bytes": "test"}},
                {"name": "test-extension", "extension": {"bytes": "some-example"}},
            ]
        else:
            doc[kind].append(dict(doc[kind][0]))

    return edit


DUPLICATE_CASES = [
    ("DuplicateClusterName", _dup("clusters"), "'clean'"),
    ("DuplicateContextName", _dup("contexts"), "'clean'"),
    ("DuplicateUserName", _dup("users"), "'clean'"),
    ("DuplicateExtensionName", _dup("extensions"), "'test-extension'"),
]


@pytest.mark.parametrize(
    ("name", "edit", "named"), DUPLICATE_CASES, ids=[c[0] for c in DUPLICATE_CASES]
)
def test_duplicate_names_refuse_the_file(
    name: str, edit: Callable[[dict[str, Any]], None], named: str, tmp_path: Path
) -> None:
    doc: dict[str, Any] = {
        "clusters": [{"name": "clean", "cluster": {"server": "https://k"}}],
        "users": [{"name": "clean", "user": {"tokenFile": "/var/run/token"}}],
        "contexts": [{"name": "clean", "context": {"cluster": "clean", "user": "clean"}}],
    }
    edit(doc)
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig([str(path)])
    assert named in str(info.value) and str(path) in str(info.value)


def test_empty_context_name_breaks_only_itself(tmp_path: Path) -> None:
    """validation_test.go TestValidateEmptyContextName: client-go flags a context named "";
    here only that entry is skipped (with a warning), the file's other contexts still work."""
    kc = one(
        tmp_path,
        extra={
            "contexts": [
                {"name": "", "context": {"cluster": "missing", "user": "missing"}},
                {"name": "clean", "context": {"cluster": "clean", "user": "clean"}},
            ]
        },
    )
    assert list(kc.contexts) == ["clean"]
    assert kc.resolve("clean").auth_kind == "token"
    assert len(kc.warnings) == 1 and "contexts[0] has an empty name" in kc.warnings[0]


# --------------------------------------------------------------------------- divergences


def _no_default_server(tmp_path: Path) -> None:
    # TestCreateCleanWithPrefix's last row: "" -> http://localhost:8080 in client-go.
    with pytest.raises(KubeconfigError, match="no server"):
        one(tmp_path, cluster={"server": ""}).resolve("clean")


def _missing_user_is_error(tmp_path: Path) -> None:
    kc = one(tmp_path, context={"cluster": "clean", "user": "ghost"})
    with pytest.raises(KubeconfigError, match="'ghost'"):
        kc.resolve("clean")


def _missing_cluster_is_error(tmp_path: Path) -> None:
    kc = one(tmp_path, context={"cluster": "ghost", "user": "clean"})
    with pytest.raises(KubeconfigError, match="'ghost'"):
        kc.resolve("clean")


def _no_in_cluster_fallback(tmp_path: Path) -> None:
    # A pod's service account files exist, KUBERNETES_SERVICE_HOST is set: still no context.
    kc = load_kubeconfig([str(tmp_path / "none")])
    with pytest.raises(KubeconfigError, match="no kubeconfig file exists"):
        kc.resolve("in-cluster")


def _nameless_entries_skipped(tmp_path: Path) -> None:
    kc = one(tmp_path, extra={"users": [{"user": {"token": "x"}}, {"name": "clean", "user": {}}]})
    assert list(kc.users) == ["clean"] and len(kc.warnings) == 1


DIVERGENCES: dict[str, Callable[[Path], None]] = {
    "no-default-server": _no_default_server,
    "missing-user-is-error": _missing_user_is_error,
    "missing-cluster-is-error": _missing_cluster_is_error,
    "no-in-cluster-fallback": _no_in_cluster_fallback,
    "nameless-entries-skipped": _nameless_entries_skipped,
}


def test_every_divergence_has_a_test() -> None:
    doc = kcmod.__doc__ or ""
    table = doc.split("deliberately differs", 1)[1]
    ids = re.findall(r"^([a-z][a-z0-9-]+)\s{2,}", table, re.M)
    assert sorted(i for i in ids if i != "divergence") == sorted(DIVERGENCES)


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_divergence(divergence: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    DIVERGENCES[divergence](tmp_path)
