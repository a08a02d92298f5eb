"""kubeconfig.py: client-go merge semantics, provenance, and one test per docstring table row."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core import kubeconfig as kcmod
from skymagic.core.entries import UserInfo
from skymagic.core.flatten import flatten_for_contexts
from skymagic.core.kubeconfig import Kubeconfig, kubeconfig_paths, load_kubeconfig
from skymagic.errors import ExecPluginError, KubeconfigError

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfakeCERT\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIIBfakeKEY\n-----END PRIVATE KEY-----\n"
SECRET_TOKEN = "s3cr3t-token-abcdef"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, doc: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def kc_doc(
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    current: str = "c",
) -> dict[str, Any]:
    """A one-context kubeconfig; pass overrides for the cluster/user/context bodies."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [
            {
                "name": "cl",
                "cluster": cluster if cluster is not None else {"server": "https://k:6443"},
            }
        ],
        "users": [{"name": "u", "user": user if user is not None else {"token": SECRET_TOKEN}}],
        "contexts": [
            {
                "name": "c",
                "context": context if context is not None else {"cluster": "cl", "user": "u"},
            }
        ],
    }


def load_one(tmp_path: Path, doc: Any) -> Kubeconfig:
    return load_kubeconfig([write(tmp_path / "config", doc)])


# --------------------------------------------------------------------------- paths


def test_paths_default_home(tmp_path: Path) -> None:
    assert kubeconfig_paths({"HOME": str(tmp_path)}) == [str(tmp_path / ".kube" / "config")]


def test_paths_dedup_order_and_empty_entries(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    env = {"KUBECONFIG": os.pathsep.join(["", b, a, "", b, a]), "HOME": str(tmp_path)}
    assert kubeconfig_paths(env) == [b, a]


def test_paths_only_separators_falls_back_to_default(tmp_path: Path) -> None:
    env = {"KUBECONFIG": os.pathsep * 3, "HOME": str(tmp_path)}
    assert kubeconfig_paths(env) == [str(tmp_path / ".kube" / "config")]


def test_paths_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "one"))
    assert kubeconfig_paths() == [str(tmp_path / "one")]
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "two"))
    assert kubeconfig_paths() == [str(tmp_path / "two")]
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kubeconfig_paths() == [str(tmp_path / "home" / ".kube" / "config")]


def test_load_uses_kubeconfig_env_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write(tmp_path / "x", kc_doc())
    monkeypatch.setenv("KUBECONFIG", p)
    assert list(load_kubeconfig().contexts) == ["c"]


# --------------------------------------------------------------------------- multi-file merge


def _three_files(tmp_path: Path) -> tuple[str, str, str]:
    f1 = write(
        tmp_path / "d1" / "config",
        {
            "current-context": "",  # empty: must NOT win
            "clusters": [
                {"name": "shared", "cluster": {"server": "https://first:6443"}},
            ],
            "users": [{"name": "alice", "user": {"token": "tok-first"}}],
            "contexts": [
                {"name": "ctx-a", "context": {"cluster": "shared", "user": "alice"}},
                {"name": "team/prod:eu", "context": {"cluster": "shared", "user": "alice"}},
            ],
        },
    )
    f2 = write(
        tmp_path / "d2" / "config",
        {
            "current-context": "ctx-b",
            "clusters": [
                # shadowed: first file wins the WHOLE entry (no field merge of the CA)
                {
                    "name": "shared",
                    "cluster": {
                        "server": "https://second:6443",
                        "certificate-authority": "ca.crt",
                    },
                },
                {"name": "second", "cluster": {"server": "https://second:6443"}},
            ],
            "users": [{"name": "bob", "user": {"token": "tok-bob"}}],
            "contexts": [
                {"name": "ctx-b", "context": {"cluster": "second", "user": "bob"}},
                {
                    "name": "ctx-a",
                    "context": {"cluster": "second", "user": "bob", "namespace": "x"},
                },
            ],
        },
    )
    f3 = write(
        tmp_path / "d3" / "config",
        {
            "current-context": "ctx-c",  # conflicting: later, loses to f2
            "contexts": [
                {"name": "ctx-c", "context": {"cluster": "second", "user": "bob"}},
                {"name": "ctx-a", "context": {"cluster": "second", "user": "bob"}},
            ],
        },
    )
    return f1, f2, f3


def test_three_files_first_wins_and_current_context(tmp_path: Path) -> None:
    f1, f2, f3 = _three_files(tmp_path)
    kc = load_kubeconfig([f1, str(tmp_path / "missing"), f2, f3])
    assert kc.files == (f1, f2, f3)
    assert list(kc.contexts) == ["ctx-a", "team/prod:eu", "ctx-b", "ctx-c"]
    assert kc.current_context == "ctx-b"
    assert kc.current_context_file == f2
    rc = kc.resolve("ctx-a")
    assert rc.cluster.server == "https://first:6443"
    assert rc.cluster.certificate_authority is None  # no field merge from f2
    assert rc.namespace == "default"  # f2's namespace x lost with the whole entry
    assert rc.user.name == "alice"


def test_three_files_env_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f1, f2, f3 = _three_files(tmp_path)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([f3, f2, f1]))
    kc = load_kubeconfig()
    assert kc.current_context == "ctx-c"
    assert kc.contexts["ctx-a"].defined_in == f3
    assert kc.contexts["ctx-a"].shadowed_in == (f2, f1)


def test_provenance(tmp_path: Path) -> None:
    f1, f2, f3 = _three_files(tmp_path)
    kc = load_kubeconfig([f1, f2, f3])
    assert kc.contexts["ctx-a"].defined_in == f1
    assert kc.contexts["ctx-a"].shadowed_in == (f2, f3)
    assert kc.contexts["ctx-b"].defined_in == f2
    assert kc.contexts["ctx-b"].shadowed_in == ()
    assert kc.origin("cluster", "shared") == f1
    assert kc.origin("cluster", "second") == f2


def test_context_names_with_slash_and_colon(tmp_path: Path) -> None:
    f1, f2, f3 = _three_files(tmp_path)
    kc = load_kubeconfig([f1, f2, f3])
    rc = kc.resolve("team/prod:eu")
    assert rc.name == "team/prod:eu"
    assert rc.context.cluster == "shared"
    arn = "arn:aws:eks:us-west-2:123456789012:cluster/gpu-a"
    kc2 = load_one(
        tmp_path / "arn",
        kc_doc(context={"cluster": "cl", "user": "u"})
        | {
            "contexts": [{"name": arn, "context": {"cluster": "cl", "user": "u"}}],
            "current-context": arn,
        },
    )
    assert kc2.resolve(arn).name == arn
    assert kc2.current_context == arn


def test_relative_paths_per_file(tmp_path: Path) -> None:
    d1, d2 = tmp_path / "one", tmp_path / "two" / "deeper"
    (d1 / "pki").mkdir(parents=True)
    d2.mkdir(parents=True)
    (d1 / "pki" / "ca.crt").write_bytes(CA_PEM)
    (d2 / "ca.crt").write_bytes(b"other")
    f1 = write(
        d1 / "config",
        {
            "clusters": [
                {
                    "name": "c1",
                    "cluster": {"server": "https://a", "certificate-authority": "pki/ca.crt"},
                }
            ],
            "users": [
                {
                    "name": "u1",
                    "user": {
                        "client-certificate": "pki/u.crt",
                        "client-key": "./pki/u.key",
                        "tokenFile": "../tok",
                    },
                }
            ],
            "contexts": [{"name": "x1", "context": {"cluster": "c1", "user": "u1"}}],
        },
    )
    f2 = write(
        d2 / "config",
        {
            "clusters": [
                {
                    "name": "c2",
                    "cluster": {"server": "https://b", "certificate-authority": "ca.crt"},
                }
            ],
            "users": [
                {
                    "name": "u2",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "bin/plugin",
                        }
                    },
                },
                {
                    "name": "u3",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "plugin-on-path",
                        }
                    },
                },
            ],
            "contexts": [{"name": "x2", "context": {"cluster": "c2", "user": "u2"}}],
        },
    )
    kc = load_kubeconfig([f1, f2])
    assert kc.clusters["c1"].certificate_authority == str(d1 / "pki" / "ca.crt")
    assert kc.clusters["c1"].ca_pem() == CA_PEM
    assert kc.clusters["c2"].certificate_authority == str(d2 / "ca.crt")
    u1 = kc.users["u1"]
    assert u1.client_certificate == str(d1 / "pki" / "u.crt")
    assert u1.client_key == str(d1 / "pki" / "u.key")
    assert u1.token_file == str(tmp_path / "tok")
    ex = kc.users["u2"].exec
    assert ex is not None
    assert ex.command == "bin/plugin"
    assert ex.base_dir == str(d2)
    assert ex.resolved_command == str(d2 / "bin" / "plugin")
    ex3 = kc.users["u3"].exec
    assert ex3 is not None and ex3.resolved_command == "plugin-on-path"


def test_deterministic_order_within_file(tmp_path: Path) -> None:
    names = ["zeta", "alpha", "m/1", "m:2"]
    doc = kc_doc()
    doc["contexts"] = [{"name": n, "context": {"cluster": "cl", "user": "u"}} for n in names]
    assert list(load_one(tmp_path, doc).contexts) == names


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    doc = kc_doc(
        cluster={"server": "https://k", "certificate-authority-data": b64(CA_PEM)},
        user={
            "client-certificate-data": b64(CERT_PEM),
            "client-key-data": b64(KEY_PEM),
            "username": "bob",
            "password": "hunter2-pw",
            "auth-provider": {"name": "oidc", "config": {"id-token": "idtok-secret"}},
        },
    )
    kc = load_one(tmp_path, doc)
    text = repr(kc.users["u"]) + repr(kc.clusters["cl"]) + repr(kc)
    for secret in ("hunter2-pw", "MIIBfake", "idtok-secret", b64(KEY_PEM)[:20]):
        assert secret not in text
    kc2 = load_one(tmp_path / "t", kc_doc())
    rc = kc2.resolve("c")
    assert SECRET_TOKEN not in repr(rc) + str(rc)


# --------------------------------------------------------------------------- table rows

Check = Callable[[Path], None]
ROWS: dict[str, Check] = {}


def row(row_id: str) -> Callable[[Check], Check]:
    def deco(fn: Check) -> Check:
        ROWS[row_id] = fn
        return fn

    return deco


def expect_error(
    fn: Callable[[], object], cls: type[Exception], *fragments: str
) -> KubeconfigError | ExecPluginError:
    with pytest.raises(cls) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert SECRET_TOKEN not in msg
    err = info.value
    assert isinstance(err, (KubeconfigError, ExecPluginError))
    if err.context is not None:
        # The context is an attribute; the message alone reads right in a context's table row.
        assert "context '" not in err.message, err.message
        assert msg == f"context '{err.context}': {err.message}"
    return err


@row("no-file")
def _no_file(tmp_path: Path) -> None:
    kc = load_kubeconfig([str(tmp_path / "nope")])
    assert kc.files == () and kc.contexts == {} and kc.current_context is None
    expect_error(
        lambda: kc.resolve("x"),
        KubeconfigError,
        "'x'",
        "no kubeconfig file exists",
        str(tmp_path / "nope"),
    )


@row("missing-file")
def _missing_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good", kc_doc())
    kc = load_kubeconfig([str(tmp_path / "gone"), good])
    assert kc.files == (good,)
    assert kc.current_context == "c"


@row("empty-file")
def _empty_file(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty", "")
    good = write(tmp_path / "good", kc_doc())
    kc = load_kubeconfig([empty, good])
    assert kc.files == (empty, good) and list(kc.contexts) == ["c"]


@row("unparsable")
def _unparsable(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", "clusters:\n- name: a\n  cluster: {server: [\n")
    good = write(tmp_path / "good", kc_doc())
    err = expect_error(lambda: load_kubeconfig([good, bad]), KubeconfigError, bad, "line ")
    assert isinstance(err, KubeconfigError) and err.path == bad


@row("not-mapping")
def _not_mapping(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", "- just\n- a list\n")
    err = expect_error(lambda: load_kubeconfig([bad]), KubeconfigError, bad, "mapping")
    assert isinstance(err, KubeconfigError) and err.field == "(top level)"


@row("list-shape")
def _list_shape(tmp_path: Path) -> None:
    for i, (doc, fld) in enumerate([({"clusters": {"a": 1}}, "clusters"), ({"users": 3}, "users")]):
        p = write(tmp_path / f"f{i}", doc)
        err = expect_error(lambda p=p: load_kubeconfig([p]), KubeconfigError, p, fld)
        assert isinstance(err, KubeconfigError) and err.field == fld and err.path == p


@row("nameless-entry")
def _nameless_entry(tmp_path: Path) -> None:
    doc = kc_doc()
    doc["contexts"] += [
        "oops",
        {"name": "", "context": {"cluster": "cl", "user": "u"}},
        {"name": 7, "context": {}},
        {"context": {"cluster": "cl"}},
    ]
    doc["users"].append({"user": {"token": "t"}})
    kc = load_one(tmp_path, doc)
    assert list(kc.contexts) == ["c"] and kc.resolve("c").auth_kind == "token"
    assert len(kc.warnings) == 5
    assert all(str(tmp_path / "config") in w and "skipped" in w for w in kc.warnings)
    # In file order: clusters, users, then contexts.
    assert "users[1] has an empty name" in kc.warnings[0]
    assert "contexts[1] is a string" in kc.warnings[1]
    assert "contexts[2] has an empty name" in kc.warnings[2]
    assert "contexts[3] has name 7" in kc.warnings[3]


@row("duplicate-name")
def _duplicate(tmp_path: Path) -> None:
    doc = kc_doc()
    doc["contexts"].append({"name": "c", "context": {"cluster": "cl"}})
    p = write(tmp_path / "dup", doc)
    expect_error(lambda: load_kubeconfig([p]), KubeconfigError, p, "'c'", "twice")


@row("duplicate-extension")
def _duplicate_extension(tmp_path: Path) -> None:
    ext = [{"name": "x", "extension": {"a": 1}}, {"name": "x", "extension": {"a": 2}}]
    top = kc_doc()
    top["extensions"] = ext
    in_cluster = kc_doc(cluster={"server": "https://k", "extensions": ext})
    for i, doc in enumerate([top, in_cluster]):
        p = write(tmp_path / f"f{i}", doc)
        expect_error(lambda p=p: load_kubeconfig([p]), KubeconfigError, p, "'x'", "twice")


@row("context-missing")
def _context_missing(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc())
    err = expect_error(
        lambda: kc.resolve("nope"), KubeconfigError, "'nope'", "'c'", "kubectl config get-contexts"
    )
    assert err.context == "nope"


@row("context-no-cluster")
def _context_no_cluster(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(context={"user": "u"}))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "cluster")
    assert isinstance(err, KubeconfigError) and err.field == "cluster"


@row("cluster-missing")
def _cluster_missing(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(context={"cluster": "ghost", "user": "u"}))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "'ghost'", "clusters:")


@row("no-server")
def _no_server(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(cluster={"insecure-skip-tls-verify": True}))
    err = expect_error(
        lambda: kc.resolve("c"), KubeconfigError, "'c'", "'cl'", "no server", "server: https://"
    )
    assert isinstance(err, KubeconfigError) and err.field == "server"


@row("server-no-scheme")
def _server_no_scheme(tmp_path: Path) -> None:
    kc = load_one(
        tmp_path / "a",
        kc_doc(cluster={"server": "10.0.0.1:6443", "certificate-authority-data": b64(CA_PEM)}),
    )
    rc = kc.resolve("c")
    assert rc.cluster.server == "http://10.0.0.1:6443"  # kubectl: CA or not, plain http
    assert rc.auth_kind == "none" and rc.configured_auth_kind == "token"
    kc = load_one(tmp_path / "b", kc_doc(cluster={"server": "localhost:8001"}))
    assert kc.resolve("c").cluster.server == "http://localhost:8001"


@row("plain-http")
def _plain_http(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(cluster={"server": "http://k:8080"}))
    rc = kc.resolve("c")
    assert not rc.secure and rc.auth_kind == "none" and rc.configured_auth_kind == "token"


@row("server-bad-scheme")
def _server_bad_scheme(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(cluster={"server": "ftp://k:21"}))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "ftp://k:21", "https://")


@row("bad-field-type")
def _bad_field_type(tmp_path: Path) -> None:
    doc = kc_doc(cluster={"server": "https://k", "insecure-skip-tls-verify": "yes"})
    doc["clusters"].append({"name": "num", "cluster": {"server": 3}})
    doc["contexts"].append({"name": "n", "context": {"cluster": "num"}})
    doc["contexts"].append({"name": "fine", "context": {"cluster": "num2"}})
    doc["clusters"].append({"name": "num2", "cluster": {"server": "https://ok"}})
    kc = load_one(tmp_path, doc)  # the file loads; only the broken contexts fail
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "insecure-skip-tls-verify")
    assert isinstance(err, KubeconfigError) and err.field == "insecure-skip-tls-verify"
    expect_error(lambda: kc.resolve("n"), KubeconfigError, "'n'", "server")
    assert kc.resolve("fine").cluster.server == "https://ok"


@row("bad-base64")
def _bad_base64(tmp_path: Path) -> None:
    doc = kc_doc(
        user={"client-certificate-data": "!!not base64!!", "client-key-data": b64(KEY_PEM)}
    )
    doc["contexts"].append({"name": "other", "context": {"cluster": "cl"}})
    kc = load_one(tmp_path, doc)
    err = expect_error(
        lambda: kc.resolve("c"), KubeconfigError, "'c'", "'u'", "client-certificate-data", "base64"
    )
    assert "not base64!!" not in str(err)
    assert kc.resolve("other").auth_kind == "none"


@row("ca-file-missing")
def _ca_file_missing(tmp_path: Path) -> None:
    kc = load_one(
        tmp_path, kc_doc(cluster={"server": "https://k", "certificate-authority": "nope/ca.crt"})
    )
    missing = str(tmp_path / "nope" / "ca.crt")
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", missing)
    assert isinstance(err, KubeconfigError) and err.path == missing
    expect_error(kc.clusters["cl"].ca_pem, KubeconfigError, missing)


@row("ca-file-and-data")
def _ca_file_and_data(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    cluster = {
        "server": "https://k",
        "certificate-authority": "ca.crt",
        "certificate-authority-data": b64(CA_PEM),
    }
    kc = load_one(tmp_path, kc_doc(cluster=cluster))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "'cl'", "both")
    assert isinstance(err, KubeconfigError) and err.field == "certificate-authority"


@row("proxy-url-invalid")
def _proxy_url_invalid(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(cluster={"server": "https://k", "proxy-url": "proxy:3128"}))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "proxy:3128")
    assert isinstance(err, KubeconfigError) and err.field == "proxy-url"


@row("user-not-specified")
def _user_not_specified(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(context={"cluster": "cl"}))
    assert kc.resolve("c").auth_kind == "none"


@row("user-missing")
def _user_missing(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(context={"cluster": "cl", "user": "ghost"}))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "'ghost'", "users:")
    assert isinstance(err, KubeconfigError) and err.field == "user"


@row("cert-without-key")
def _cert_without_key(tmp_path: Path) -> None:
    kc = load_one(tmp_path / "a", kc_doc(user={"client-certificate-data": b64(CERT_PEM)}))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "client-key")
    kc = load_one(tmp_path / "b", kc_doc(user={"client-key": "k.pem"}))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "client-certificate")
    kc = load_one(
        tmp_path / "c",
        kc_doc(user={"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)}),
    )
    rc = kc.resolve("c")
    assert rc.auth_kind == "client-cert" and rc.user.client_key_data == KEY_PEM


@row("cert-file-and-data")
def _cert_file_and_data(tmp_path: Path) -> None:
    user = {
        "client-certificate": "u.crt",
        "client-certificate-data": b64(CERT_PEM),
        "client-key-data": b64(KEY_PEM),
    }
    kc = load_one(tmp_path, kc_doc(user=user))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "'u'", "both")
    assert isinstance(err, KubeconfigError) and err.field == "client-certificate"


@row("token-and-token-file")
def _token_and_file(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(user={"token": SECRET_TOKEN, "tokenFile": "tok"}))
    rc = kc.resolve("c")
    assert rc.auth_kind == "token-file" and rc.user.token_file == str(tmp_path / "tok")
    assert rc.user.token == SECRET_TOKEN  # kept: auth.py falls back to it


@row("impersonate")
def _impersonate(tmp_path: Path) -> None:
    user = {
        "token": SECRET_TOKEN,
        "as": "alice",
        "as-uid": "u-1",
        "as-groups": ["g1", "g2"],
        "as-user-extra": {"scopes": ["a", "b"]},
    }
    u = load_one(tmp_path, kc_doc(user=user)).resolve("c").user
    assert (u.impersonate, u.impersonate_uid, u.impersonate_groups) == (
        "alice",
        "u-1",
        ("g1", "g2"),
    )
    assert u.impersonate_extra == (("scopes", ("a", "b")),)


@row("impersonate-no-user")
def _impersonate_no_user(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(user={"token": SECRET_TOKEN, "as-groups": ["g"]}))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "as-groups", "`as`")
    assert isinstance(err, KubeconfigError) and err.field == "as-groups"


@row("token-and-basic")
def _token_and_basic(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(user={"token": SECRET_TOKEN, "username": "a", "password": "b"}))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "one authentication method")


EXEC_V1B1 = "client.authentication.k8s.io/v1beta1"
EXEC_V1 = "client.authentication.k8s.io/v1"


@row("exec-no-command")
def _exec_no_command(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(user={"exec": {"apiVersion": EXEC_V1B1}}))
    err = expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "command")
    assert isinstance(err, KubeconfigError) and err.field == "exec.command"


@row("exec-env-no-name")
def _exec_env_no_name(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": EXEC_V1B1, "command": "x", "env": [{"value": "v"}]}}
    kc = load_one(tmp_path, kc_doc(user=user))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "env")


@row("exec-bad-api-version")
def _exec_bad_api_version(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "plug"}}
    kc = load_one(tmp_path, kc_doc(user=user))
    err = expect_error(
        lambda: kc.resolve("c"), ExecPluginError, "'c'", "plug", "v1alpha1", EXEC_V1, EXEC_V1B1
    )
    assert isinstance(err, ExecPluginError) and err.plugin == "plug"


@row("exec-v1-no-interactive")
def _exec_v1_no_interactive(tmp_path: Path) -> None:
    kc = load_one(tmp_path / "a", kc_doc(user={"exec": {"apiVersion": EXEC_V1, "command": "p"}}))
    expect_error(lambda: kc.resolve("c"), ExecPluginError, "'c'", "interactiveMode")
    kc = load_one(tmp_path / "b", kc_doc(user={"exec": {"apiVersion": EXEC_V1B1, "command": "p"}}))
    ex = kc.resolve("c").user.exec
    assert ex is not None and ex.interactive_mode == "IfAvailable"


@row("exec-bad-interactive")
def _exec_bad_interactive(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": EXEC_V1, "command": "p", "interactiveMode": "Sometimes"}}
    kc = load_one(tmp_path, kc_doc(user=user))
    expect_error(lambda: kc.resolve("c"), ExecPluginError, "'c'", "Sometimes", "Never")


@row("exec-and-auth-provider")
def _exec_and_auth_provider(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": EXEC_V1B1, "command": "p"}, "auth-provider": {"name": "gcp"}}
    kc = load_one(tmp_path, kc_doc(user=user))
    expect_error(lambda: kc.resolve("c"), KubeconfigError, "'c'", "auth-provider")


@row("exec-with-static")
def _exec_with_static(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": EXEC_V1B1, "command": "p"}, "token": SECRET_TOKEN}
    kc = load_one(tmp_path, kc_doc(user=user))
    assert kc.resolve("c").auth_kind == "token"


@row("exec-install-hint")
def _exec_install_hint(tmp_path: Path) -> None:
    hint = "run \x1b[1mgcloud\x1b[0m components install\nthen retry"
    user = {"exec": {"apiVersion": EXEC_V1B1, "command": "p", "installHint": hint}}
    ex = load_one(tmp_path, kc_doc(user=user)).resolve("c").user.exec
    assert ex is not None
    assert ex.install_hint == "run U+001B[1mgcloudU+001B[0m components install\nthen retry"


@row("auth-provider")
def _auth_provider(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc(user={"auth-provider": {"name": "gcp", "config": {}}}))
    assert kc.resolve("c").auth_kind == "auth-provider"


@row("namespace-default")
def _namespace_default(tmp_path: Path) -> None:
    kc = load_one(tmp_path / "a", kc_doc(context={"cluster": "cl", "user": "u", "namespace": ""}))
    assert kc.resolve("c").namespace == "default"
    kc = load_one(tmp_path / "b", kc_doc(context={"cluster": "cl", "user": "u", "namespace": "ml"}))
    assert kc.resolve("c").namespace == "ml"


def _table_ids() -> list[str]:
    doc = kcmod.__doc__ or ""
    table = doc.split("what happens", 1)[1].split("deliberately differs", 1)[0]
    return re.findall(r"^([a-z][a-z0-9-]+)\s{2,}", table, re.M)


def test_every_table_row_has_a_test() -> None:
    ids = _table_ids()
    assert len(ids) >= 25
    assert sorted(ids) == sorted(ROWS)


@pytest.mark.parametrize("row_id", sorted(ROWS))
def test_table_row(row_id: str, tmp_path: Path) -> None:
    ROWS[row_id](tmp_path)


# --------------------------------------------------------------------------- flatten


def test_flatten_inlines_files_and_keeps_exec(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "ca.crt").write_bytes(CA_PEM)
    (d / "u.crt").write_bytes(CERT_PEM)
    (d / "u.key").write_bytes(KEY_PEM)
    (d / "tok").write_text(SECRET_TOKEN + "\n")
    exec_stanza = {
        "apiVersion": EXEC_V1B1,
        "command": "aws",
        "args": ["--region", "us-west-2", "eks", "get-token", "--cluster-name", "n"],
        "env": [{"name": "AWS_PROFILE", "value": "p"}],
    }
    p = write(
        d / "config",
        {
            "current-context": "other",
            "clusters": [
                {
                    "name": "k",
                    "cluster": {"server": "https://k", "certificate-authority": "ca.crt"},
                },
                {"name": "unused", "cluster": {"server": "https://u"}},
            ],
            "users": [
                {"name": "cert", "user": {"client-certificate": "u.crt", "client-key": "u.key"}},
                {"name": "tf", "user": {"tokenFile": "tok"}},
                {"name": "ex", "user": {"exec": exec_stanza}},
            ],
            "contexts": [
                {"name": "a/1", "context": {"cluster": "k", "user": "cert", "namespace": "ns"}},
                {"name": "b:2", "context": {"cluster": "k", "user": "tf"}},
                {"name": "e", "context": {"cluster": "k", "user": "ex"}},
                {"name": "other", "context": {"cluster": "unused", "user": "tf"}},
            ],
        },
    )
    kc = load_kubeconfig([p])
    flat = flatten_for_contexts(kc, ["a/1", "b:2", "e"])
    assert flat["current-context"] == "a/1"
    assert [c["name"] for c in flat["contexts"]] == ["a/1", "b:2", "e"]
    assert [c["name"] for c in flat["clusters"]] == ["k"]
    assert flat["clusters"][0]["cluster"]["certificate-authority-data"] == b64(CA_PEM)
    users = {u["name"]: u["user"] for u in flat["users"]}
    assert users["cert"] == {
        "client-certificate-data": b64(CERT_PEM),
        "client-key-data": b64(KEY_PEM),
    }
    assert users["tf"] == {"token": SECRET_TOKEN}
    assert users["ex"]["exec"]["command"] == "aws"
    assert users["ex"]["exec"]["args"] == exec_stanza["args"]
    assert users["ex"]["exec"]["env"] == exec_stanza["env"]
    # No file references survive, and the result loads on its own from anywhere.
    text = yaml.safe_dump(flat)
    for key in ("certificate-authority:", "client-certificate:", "client-key:", "tokenFile"):
        assert key not in text
    elsewhere = tmp_path / "elsewhere"
    kc2 = load_kubeconfig([write(elsewhere / "config", flat)])
    assert kc2.resolve("a/1").cluster.ca_pem() == CA_PEM
    assert kc2.resolve("a/1").namespace == "ns"
    assert kc2.resolve("b:2").user.token == SECRET_TOKEN


def test_flatten_unknown_context(tmp_path: Path) -> None:
    kc = load_one(tmp_path, kc_doc())
    with pytest.raises(KubeconfigError, match="'zzz'"):
        flatten_for_contexts(kc, ["zzz"])


def test_flatten_relative_exec_command_made_absolute(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": EXEC_V1B1, "command": "./bin/p", "provideClusterInfo": True}}
    kc = load_one(tmp_path, kc_doc(user=user))
    flat = flatten_for_contexts(kc, ["c"])
    stanza = flat["users"][0]["user"]["exec"]
    assert stanza["command"] == str(tmp_path / "bin" / "p")
    assert stanza["provideClusterInfo"] is True


def test_flatten_keeps_impersonation_and_token_fallback(tmp_path: Path) -> None:
    """A pod's kubeconfig must act as the same (reduced) identity as the notebook's: `as*`
    survive flattening; a token next to an unreadable tokenFile is what gets inlined."""
    user = {
        "token": SECRET_TOKEN,
        "tokenFile": "missing-token-file",
        "as": "alice",
        "as-uid": "u-1",
        "as-groups": ["g1", "g2"],
        "as-user-extra": {"scopes": ["a", "b"]},
    }
    kc = load_one(tmp_path, kc_doc(user=user))
    flat_user = flatten_for_contexts(kc, ["c"])["users"][0]["user"]
    assert flat_user == {
        "token": SECRET_TOKEN,
        "as": "alice",
        "as-uid": "u-1",
        "as-groups": ["g1", "g2"],
        "as-user-extra": {"scopes": ["a", "b"]},
    }
    again = load_kubeconfig([write(tmp_path / "pod" / "config", flatten_for_contexts(kc, ["c"]))])
    assert again.resolve("c").user == UserInfo(
        name="u",
        token=SECRET_TOKEN,
        impersonate="alice",
        impersonate_uid="u-1",
        impersonate_groups=("g1", "g2"),
        impersonate_extra=(("scopes", ("a", "b")),),
    )
