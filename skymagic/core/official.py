"""The official `kubernetes` client, configured from skymagic's own kubeconfig and credentials.

For what the official package does well (its typed API, the websocket streams behind exec and
port-forward); everything else goes through `ContextClient.request`. Impersonation included:
several `as-groups` are one Impersonate-Group header each (`_official_headers`); the WebSocket
streams cannot carry impersonation at all, so core/podstreams.py refuses an impersonating user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import Any

from skymagic.core.auth import CredentialProvider
from skymagic.core.entries import ResolvedContext
from skymagic.errors import ConfigError

__all__ = ["official_client"]


def official_client(resolved: ResolvedContext, credentials: CredentialProvider) -> Any:
    """A `kubernetes.client.ApiClient` using this context's TLS and current credential.

    The official client (and its websocket streams) reads the CA and client certificate
    from files each time it connects, so they live in a private temp dir for as long as
    the ApiClient does: its `close()` (or `with`) deletes them, and so does its garbage
    collection or the interpreter's exit, whichever comes first.
    """
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = resolved.cluster.server.rstrip("/")
    cluster = resolved.cluster
    cred = credentials.get()
    tmp = tempfile.mkdtemp(prefix="skymagic-")
    remove = weakref.finalize(cfg, shutil.rmtree, tmp, ignore_errors=True)
    try:
        os.chmod(tmp, 0o700)
        ca = cluster.ca_pem()
        if ca:
            cfg.ssl_ca_cert = _write(tmp, "ca.crt", ca)
        cfg.verify_ssl = not cluster.insecure_skip_tls_verify
        if cluster.tls_server_name:
            cfg.tls_server_name = cluster.tls_server_name
        if cred.client_cert_pem and cred.client_key_pem:
            cfg.cert_file = _write(tmp, "client.crt", cred.client_cert_pem)
            cfg.key_file = _write(tmp, "client.key", cred.client_key_pem)
        headers = cred.headers()
        if "Authorization" in headers:
            cfg.api_key = {"authorization": headers["Authorization"]}
        if cluster.proxy_url:
            cfg.proxy = cluster.proxy_url
        api = k8s.ApiClient(cfg)
        for k, v in _official_headers(credentials.impersonation()):
            api.set_default_header(k, v)
    except BaseException:
        remove()
        raise
    close = api.close

    def close_and_remove() -> None:
        try:
            close()
        finally:
            remove()

    api.close = close_and_remove  # type: ignore[method-assign]  # the file cleanup rides on it
    return api


def _official_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Repeated headers (several `as-groups`, an `as-user-extra` list) as the official client
    can send them: each repeat under its own spelling of the name.

    The official client keeps default headers in a plain dict and rebuilds every request's
    headers as a plain dict (`ApiClient.param_serialize`), so neither a repeated key nor
    urllib3's HTTPHeaderDict survives it, and a list value is refused by http.client. Keys that
    differ only in case do survive: urllib3 sends each as its own header line (a body's
    request folds them into an HTTPHeaderDict, which keeps one line per value), and the API
    server, like any HTTP server, reads header names case-insensitively, so it sees one
    `Impersonate-Group` per group, in order, as client-go sends them.
    """
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for name, value in headers:
        n = seen.get(name.lower(), 0)
        seen[name.lower()] = n + 1
        out.append((_spelling(name, n), value))
    return out


def _spelling(name: str, n: int) -> str:
    """The `n`-th distinct spelling of a header name (0: as given): bit i of n flips the case
    of its i-th letter, so a 16-letter name has 65,536 spellings."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if n >= 2 ** len(letters):
        raise ConfigError(f"too many values for the header {name} ({n + 1})")
    chars = list(name)
    for bit, i in enumerate(letters):
        if n >> bit & 1:
            chars[i] = chars[i].swapcase()
    return "".join(chars)


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path
