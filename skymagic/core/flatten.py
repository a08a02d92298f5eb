"""Kubeconfig entries with every file reference inlined.

A self-contained kubeconfig for a pod (the chosen contexts, nothing pointing at the user's
files), and the inlined pieces auth.py sends: the client certificate pair and the cluster an
exec plugin receives in KUBERNETES_EXEC_INFO.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from skymagic.core.entries import ClusterInfo, UserInfo
from skymagic.core.kubeconfig import Kubeconfig
from skymagic.errors import KubeconfigError

__all__ = [
    "client_cert_pair",
    "flatten_for_contexts",
    "inline_cluster",
    "omit_empty",
    "read_user_file",
]


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
            clusters[rc.cluster.name] = _flat_cluster(rc.cluster)
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


def omit_empty(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` without the unset ones (None, False, "", 0, empty): client-go's `omitempty`."""
    return {k: v for k, v in fields.items() if v}


def read_user_file(ctx_name: str, user: UserInfo, path: str, fld: str) -> bytes:
    """The bytes of a file a user entry names (client certificate or key, tokenFile)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise KubeconfigError(
            f"user '{user.name}' {fld} file {path} "
            f"cannot be read ({exc.strerror or exc}); fix the path in the kubeconfig",
            context=ctx_name,
            path=path,
            field=fld,
        ) from None


def client_cert_pair(ctx_name: str, user: UserInfo) -> tuple[bytes | None, bytes | None]:
    """The user's client certificate and key PEM: inline data wins over the file (client-go)."""
    cert = user.client_certificate_data
    if cert is None and user.client_certificate:
        cert = read_user_file(ctx_name, user, user.client_certificate, "client-certificate")
    key = user.client_key_data
    if key is None and user.client_key:
        key = read_user_file(ctx_name, user, user.client_key, "client-key")
    return cert, key


def inline_cluster(c: ClusterInfo) -> dict[str, Any]:
    """A `cluster:` body with the CA inlined and unset fields left out.

    What both a pod's kubeconfig and an exec plugin's KUBERNETES_EXEC_INFO (client-go's
    Cluster struct: server always, the rest omitempty) carry; extensions are the caller's.
    """
    ca = c.ca_pem()
    return {
        "server": c.server,
        **omit_empty(
            {
                "certificate-authority-data": _b64(ca) if ca else None,
                "tls-server-name": c.tls_server_name,
                "insecure-skip-tls-verify": c.insecure_skip_tls_verify,
                "proxy-url": c.proxy_url,
                "disable-compression": c.disable_compression,
            }
        ),
    }


def _flat_cluster(c: ClusterInfo) -> dict[str, Any]:
    out = inline_cluster(c)
    if c.extensions:
        out["extensions"] = [{"name": k, "extension": v} for k, v in c.extensions.items()]
    return out


def _flat_user(ctx_name: str, u: UserInfo) -> dict[str, Any]:
    cert, key = client_cert_pair(ctx_name, u)
    token = u.token
    if u.token_file:
        try:
            token = read_user_file(ctx_name, u, u.token_file, "tokenFile").decode().strip()
        except KubeconfigError:
            if not u.token:
                raise  # else client-go's fallback: the token, when the file cannot be read
    out = omit_empty(
        {
            "client-certificate-data": _b64(cert) if cert else None,
            "client-key-data": _b64(key) if key else None,
            "token": token,
            "username": u.username,
            "password": u.password,
        }
    )
    if u.exec is not None:
        ex = u.exec
        out["exec"] = {
            "apiVersion": ex.api_version,
            "command": ex.resolved_command,
            **omit_empty(
                {
                    "args": list(ex.args),
                    "env": [{"name": k, "value": v} for k, v in ex.env],
                    "installHint": ex.install_hint,
                    "provideClusterInfo": ex.provide_cluster_info,
                    "interactiveMode": ex.interactive_mode,
                }
            ),
        }
    if u.auth_provider is not None:
        out["auth-provider"] = u.auth_provider
    # Impersonation reduces (or changes) what the pod may do: it must survive flattening.
    out.update(
        omit_empty(
            {
                "as": u.impersonate,
                "as-uid": u.impersonate_uid,
                "as-groups": list(u.impersonate_groups),
                "as-user-extra": {k: list(v) for k, v in u.impersonate_extra},
            }
        )
    )
    return out
