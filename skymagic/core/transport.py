"""The TLS context and the connection pool for one cluster, as its kubeconfig entry asks.

Trust, client certificates, `tls-server-name`, `insecure-skip-tls-verify` and `proxy-url`
(HTTP or SOCKS) become one urllib3 pool manager; `ContextClient` keeps one per credential's
client certificate and builds a new one when an exec plugin hands out another.
"""

from __future__ import annotations

import ssl
from typing import Any

import urllib3

from skymagic.core.auth import Credential
from skymagic.core.entries import ResolvedContext
from skymagic.core.execplugin import load_cert_pair
from skymagic.errors import ConfigError

__all__ = ["pool_manager", "ssl_context"]


def ssl_context(resolved: ResolvedContext, cred: Credential) -> ssl.SSLContext:
    """TLS for `resolved`'s server: its CA (or the system's), TLS >= 1.2, the client cert."""
    cluster = resolved.cluster
    # Trust only the cluster's CA when the kubeconfig names one (as client-go does): loading
    # the system bundle (ssl.create_default_context) costs ~25 ms of GIL-held work per
    # context, which serialises a 20-context fan-out for half a second for nothing.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # client-go's floor
    if cluster.insecure_skip_tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = cluster.ca_pem()
        if not ca:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            try:
                ctx.load_verify_locations(cadata=ca.decode("ascii", "replace"))
            except ssl.SSLError:
                raise ConfigError(
                    "the cluster's certificate-authority is not a valid PEM certificate; "
                    "fix certificate-authority(-data) in the kubeconfig",
                    context=resolved.name,
                ) from None
    if cred.client_cert_pem and cred.client_key_pem:
        _load_cert_chain(ctx, cred.client_cert_pem, cred.client_key_pem, resolved.name)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def pool_manager(resolved: ResolvedContext, cred: Credential) -> urllib3.PoolManager:
    """A keep-alive pool (8 connections per host, no urllib3 retries: the client retries)."""
    cluster = resolved.cluster
    kwargs: dict[str, Any] = {
        "ssl_context": ssl_context(resolved, cred),
        "maxsize": 8,
        "block": False,
        "retries": False,
    }
    if cluster.tls_server_name:
        kwargs["server_hostname"] = cluster.tls_server_name
        kwargs["assert_hostname"] = cluster.tls_server_name
    if cluster.insecure_skip_tls_verify:
        kwargs["cert_reqs"] = ssl.CERT_NONE
        kwargs["assert_hostname"] = False
    if not cluster.proxy_url:
        return urllib3.PoolManager(**kwargs)
    if not cluster.proxy_url.startswith("socks"):
        return urllib3.ProxyManager(cluster.proxy_url, **kwargs)
    try:
        from urllib3.contrib.socks import SOCKSProxyManager
    except ImportError:
        raise ConfigError(
            f"proxy-url {cluster.proxy_url} needs SOCKS support: pip install 'urllib3[socks]'",
            context=resolved.name,
        ) from None
    return SOCKSProxyManager(cluster.proxy_url, **kwargs)


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, context: str) -> None:
    try:
        load_cert_pair(ctx, cert, key)
    except ssl.SSLError:
        raise ConfigError(
            "the client certificate and key do not load (not PEM, or not a pair); fix "
            "client-certificate(-data) / client-key(-data) in the kubeconfig",
            context=context,
        ) from None
