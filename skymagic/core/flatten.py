"""A self-contained kubeconfig for a pod: the chosen contexts with every file reference inlined."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from skymagic.core.kubeconfig import ClusterInfo, Kubeconfig, UserInfo
from skymagic.errors import KubeconfigError

__all__ = ["flatten_for_contexts"]


def flatten_for_contexts(kc: Kubeconfig, names: Sequence[str]) -> dict[str, Any]:
    """A self-contained kubeconfig holding only ``names``, for mounting into a pod.

    Why: a pod has none of the user's files, so every file reference is inlined as
    ``*-data`` (tokenFile as ``token``) and nothing relative survives. Exec stanzas are kept
    as written (only a relative command path is made absolute): the pod image must provide
    the plugin, as with SkyPilot's LOCAL_CREDENTIALS. The result holds secrets: write it with
    mode 0600 and never log it. ``current-context`` is the kubeconfig's if it is among
    ``names``, else the first name.
    """
    contexts: list[dict[str, Any]] = []
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for name in names:
        rc = kc.resolve(name)
        ctx: dict[str, Any] = {"cluster": rc.cluster.name, "namespace": rc.namespace}
        if rc.context.user:
            ctx["user"] = rc.user.name
        contexts.append({"name": name, "context": ctx})
        if rc.cluster.name not in clusters:
            clusters[rc.cluster.name] = _flat_cluster(name, rc.cluster)
        if rc.user.name and rc.user.name not in users:
            users[rc.user.name] = _flat_user(name, rc.user)
    current = kc.current_context if kc.current_context in names else (names[0] if names else "")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": current,
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": contexts,
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _read_ref(ctx_name: str, path: str, fld: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise KubeconfigError(
            f"cannot read {fld} {path} ({exc.strerror or exc}); fix the path in the kubeconfig",
            context=ctx_name,
            path=path,
            field=fld,
        ) from None


def _flat_cluster(ctx_name: str, c: ClusterInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"server": c.server}
    ca = c.ca_pem()
    if ca:
        out["certificate-authority-data"] = _b64(ca)
    if c.tls_server_name:
        out["tls-server-name"] = c.tls_server_name
    if c.insecure_skip_tls_verify:
        out["insecure-skip-tls-verify"] = True
    if c.proxy_url:
        out["proxy-url"] = c.proxy_url
    if c.disable_compression:
        out["disable-compression"] = True
    if c.extensions:
        out["extensions"] = [{"name": k, "extension": v} for k, v in c.extensions.items()]
    return out


def _flat_user(ctx_name: str, u: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cert = u.client_certificate_data
    if cert is None and u.client_certificate:
        cert = _read_ref(ctx_name, u.client_certificate, "client-certificate")
    key = u.client_key_data
    if key is None and u.client_key:
        key = _read_ref(ctx_name, u.client_key, "client-key")
    if cert:
        out["client-certificate-data"] = _b64(cert)
    if key:
        out["client-key-data"] = _b64(key)
    if u.token_file:
        out["token"] = _read_ref(ctx_name, u.token_file, "tokenFile").decode().strip()
    elif u.token:
        out["token"] = u.token
    if u.username:
        out["username"] = u.username
    if u.password:
        out["password"] = u.password
    if u.exec is not None:
        ex = u.exec
        stanza: dict[str, Any] = {"apiVersion": ex.api_version, "command": ex.resolved_command}
        if ex.args:
            stanza["args"] = list(ex.args)
        if ex.env:
            stanza["env"] = [{"name": k, "value": v} for k, v in ex.env]
        if ex.install_hint:
            stanza["installHint"] = ex.install_hint
        if ex.provide_cluster_info:
            stanza["provideClusterInfo"] = True
        if ex.interactive_mode:
            stanza["interactiveMode"] = ex.interactive_mode
        out["exec"] = stanza
    if u.auth_provider is not None:
        out["auth-provider"] = u.auth_provider
    return out
