"""One API client per kubeconfig context: TLS, credentials, timeouts, retries, fast lists.

Why not the official client's ApiClient: it has no default timeout (one dead context blocks
a whole fan-out), refreshes exec credentials only on expiry, and decodes every list into model
objects, the slow part on big clusters (one Python model object per nested field of every
item: a list of 100,000 pods is millions of them). This client speaks HTTPS with urllib3 (the
transport the official client uses), builds TLS and auth from skymagic's own kubeconfig and
credential layer, and hands list pages to the caller as bytes to decode into the few fields
it needs. `ContextClient.official()` still gives the official typed API, built
from the same settings, for anything else (impersonation included: several `as-groups` are
one Impersonate-Group header each, see `_official_headers`; its WebSocket streams cannot carry
impersonation at all, so core/podstreams.py refuses an impersonating user).

Behaviour per request:
- connect and read timeouts always (`request_timeout`, default 5 s);
- retries with backoff only for idempotent requests (GET, list, watch) after a retriable
  failure (connection refused/reset, 429, 500, 502, 503, 504), never past the time budget,
  never after a timeout (a black-holed server would only multiply the wait);
- a 401 with a refreshable credential (exec plugin, tokenFile) re-runs the plugin once and
  retries an idempotent request once;
- errors are SkymagicErrors naming the context, with a `kind` a fan-out can tabulate.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import shutil
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec
import urllib3
from urllib3._collections import HTTPHeaderDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from skymagic.core.auth import Credential, CredentialProvider
from skymagic.core.entries import ResolvedContext
from skymagic.core.execplugin import load_cert_pair
from skymagic.core.streams import PAGES, WatchStream, json_object, read_body, read_lines
from skymagic.errors import (
    ApiError,
    ConfigError,
    GoneError,
    RequestTimeoutError,
    SkymagicError,
    TransportError,
    api_error_for_status,
)

__all__ = [
    "ClientSettings",
    "ContextClient",
    "RawPage",
    "WatchStream",
    "error_kind",
    "fingerprint",
]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_CONTINUE_RE = re.compile(rb'"continue"\s*:\s*"([^"]*)"')
_RV_RE = re.compile(rb'"resourceVersion"\s*:\s*"([^"]*)"')


@dataclass(frozen=True)
class ClientSettings:
    """Knobs every request of a session shares (magics map their traitlets onto these)."""

    request_timeout: float = 5.0
    connect_timeout: float | None = None  # default: request_timeout
    retries: int = 2
    backoff: float = 0.2
    exec_timeout: float = 30.0
    # A large page (4x kubectl's 500) keeps requests few; bigger pages cost memory, not time:
    # a decoded 10,000-pod page is ~200 MB of Python objects (bench/README.md, GPU inventory).
    page_size: int = 2_000


@dataclass
class RawPage:
    """One page of a list: the undecoded body (valid until the next page) and its pagination."""

    body: bytes | memoryview
    resource_version: str
    continue_token: str | None


class ContextClient:
    """Talks to one context's API server. Thread-safe; keeps connections alive."""

    def __init__(self, resolved: ResolvedContext, settings: ClientSettings | None = None) -> None:
        self.resolved = resolved
        self.settings = settings or ClientSettings()
        self.name = resolved.name
        self.server = resolved.cluster.server.rstrip("/")
        self.namespace = resolved.namespace
        self.fingerprint = fingerprint(resolved)
        self.credentials = CredentialProvider(resolved, exec_timeout=self.settings.exec_timeout)
        self._pool: urllib3.PoolManager | None = None
        self._pool_cred: Credential | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ContextClient(context={self.name!r}, server={self.server!r})"

    @property
    def auth_kind(self) -> str:
        return self.resolved.auth_kind

    # -- connection pool -------------------------------------------------------------------
    def _ssl_context(self, cred: Credential) -> ssl.SSLContext:
        cluster = self.resolved.cluster
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
                        context=self.name,
                    ) from None
        if cred.client_cert_pem and cred.client_key_pem:
            _load_cert_chain(ctx, cred.client_cert_pem, cred.client_key_pem, self.name)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _pool_for(self, cred: Credential) -> urllib3.PoolManager:
        with self._lock:
            same_cert = self._pool_cred is not None and (
                self._pool_cred.client_cert_pem == cred.client_cert_pem
                and self._pool_cred.client_key_pem == cred.client_key_pem
            )
            if self._pool is None or not same_cert:
                if self._pool is not None:
                    self._pool.clear()
                cluster = self.resolved.cluster
                kwargs: dict[str, Any] = {
                    "ssl_context": self._ssl_context(cred),
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
                pool: urllib3.PoolManager
                if cluster.proxy_url:
                    if cluster.proxy_url.startswith("socks"):
                        try:
                            from urllib3.contrib.socks import SOCKSProxyManager
                        except ImportError:
                            raise ConfigError(
                                f"proxy-url {cluster.proxy_url} needs SOCKS support: "
                                "pip install 'urllib3[socks]'",
                                context=self.name,
                            ) from None
                        pool = SOCKSProxyManager(cluster.proxy_url, **kwargs)
                    else:
                        pool = urllib3.ProxyManager(cluster.proxy_url, **kwargs)
                else:
                    pool = urllib3.PoolManager(**kwargs)
                self._pool = pool
                self._pool_cred = cred
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.clear()
                self._pool = None

    # -- requests --------------------------------------------------------------------------
    def _timeout(self, read: float | None) -> urllib3.Timeout:
        s = self.settings
        return urllib3.Timeout(
            connect=s.connect_timeout or s.request_timeout,
            read=s.request_timeout if read is None else read,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
        retries: int | None = None,
        idempotent: bool | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request (with retries and 401 refresh); raise a SkymagicError on failure.

        With `stream=True` the body is left unread for the caller (watches, log follows).
        `idempotent` (default: GET, HEAD, OPTIONS) says the request may be sent again after a
        retriable failure; a POST that creates nothing (an access review) passes True.
        """
        url = self.server + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = _encode(body) if body is not None and not isinstance(body, bytes) else body
        hdrs = {"Accept": "application/json", "User-Agent": "skymagic"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        impersonate = self.credentials.impersonation()
        if idempotent is None:
            idempotent = method.upper() in _IDEMPOTENT
        attempts_left = (self.settings.retries if retries is None else retries) if idempotent else 0
        refreshed = False
        started = time.monotonic()
        delay = self.settings.backoff
        while True:
            cred = self.credentials.get()
            pool = self._pool_for(cred)
            try:
                resp = pool.request(
                    method,
                    url,
                    body=data,
                    headers=_headers(hdrs, impersonate, cred),
                    timeout=self._timeout(read_timeout),
                    preload_content=not stream,
                    redirect=False,
                )
            except (HTTPError, OSError) as exc:
                err, retriable = self._classify(exc, read_timeout)
                if retriable and attempts_left > 0 and self._budget_left(started, delay):
                    attempts_left -= 1
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise err from None
            if resp.status == 401 and not refreshed and self._refreshable():
                refreshed = True
                self.credentials.invalidate(cred)
                _drain(resp)
                if idempotent:
                    continue
                raise self._api_error(401, b"") from None
            if (
                resp.status in _RETRIABLE_STATUS
                and attempts_left > 0
                and self._budget_left(started, delay)
            ):
                attempts_left -= 1
                _drain(resp)
                time.sleep(delay)
                delay *= 2
                continue
            if resp.status >= 400:
                payload = resp.read() if stream else resp.data
                _drain(resp)
                raise self._api_error(resp.status, payload)
            return resp

    def _classify(
        self, exc: BaseException, read_timeout: float | None = None
    ) -> tuple[SkymagicError, bool]:
        """Map a transport failure to (error, worth retrying?): the one place that does it.

        Used for failures before an answer (in `request`) and while a streamed body is read
        (watches, followed logs), so neither can let a urllib3 exception escape. Timeouts are
        never retried: a black-holed server would only multiply the wait. TLS failures are not
        either (they will not fix themselves). Refused or reset connections are, within the
        time budget. urllib3's NewConnectionError subclasses ConnectTimeoutError, so it is
        tested first: only a real timeout is a timeout.
        """
        if isinstance(exc, MaxRetryError) and exc.reason is not None:
            return self._classify(exc.reason, read_timeout)
        if isinstance(exc, NewConnectionError):
            return self._transport_error(exc), True
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
            return self._timeout_error(exc, read_timeout), False
        if isinstance(exc, SSLError):
            return self._transport_error(exc), False
        return self._transport_error(exc), True

    def _budget_left(self, started: float, delay: float) -> bool:
        return time.monotonic() - started + delay < self.settings.request_timeout * 2

    def _refreshable(self) -> bool:
        return self.auth_kind in ("exec", "token-file")

    def _timeout_error(
        self, exc: BaseException, read_timeout: float | None = None
    ) -> RequestTimeoutError:
        connecting = isinstance(exc, ConnectTimeoutError)
        phase = "connecting to" if connecting else "waiting for"
        s = self.settings
        if connecting:
            t = s.connect_timeout or s.request_timeout
        else:
            t = s.request_timeout if read_timeout is None else read_timeout
        return RequestTimeoutError(
            f"timed out after {t:g} s {phase} {self.server}; the API server is not answering "
            f"(raise SkyMagics.request_timeout if it is just slow)",
            context=self.name,
        )

    def _transport_error(self, exc: BaseException) -> TransportError:
        text = str(exc)
        if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
            detail = "certificate verify failed" if "VERIFY" in text.upper() else "TLS error"
            return TransportError(
                f"TLS handshake with {self.server} failed ({detail}); check the cluster's "
                "certificate-authority in the kubeconfig",
                context=self.name,
            )
        if isinstance(exc, ProtocolError) and "aborted" not in text.lower():
            # (urllib3 says "Connection aborted" for a request that got no answer at all)
            return TransportError(
                f"the connection to {self.server} broke off in the middle of an answer (the API "
                "server restarted, or a proxy cut it); try again",
                context=self.name,
            )
        if "refused" in text.lower():
            return TransportError(
                f"connection refused by {self.server}; is the cluster up and the server "
                "address right?",
                context=self.name,
            )
        if "Name or service not known" in text or "nodename nor servname" in text:
            return TransportError(
                f"cannot resolve the host of {self.server}; check the server address",
                context=self.name,
            )
        short = text.split(": ", 1)[-1][:160]
        return TransportError(f"cannot reach {self.server}: {short}", context=self.name)

    def _api_error(self, status: int, payload: bytes) -> ApiError:
        body: dict[str, Any] = {}
        message = ""
        with contextlib.suppress(Exception):
            parsed = _decode(payload) if payload else {}
            if isinstance(parsed, dict):
                body = parsed
                message = str(parsed.get("message", ""))
        if status == 401:
            how = {
                "exec": "the exec plugin's credential was refused even after a refresh",
                "token": "the token was refused; get a fresh one",
                "token-file": "the token file's token was refused",
                "client-cert": "the client certificate was refused",
                "none": "the kubeconfig user has no credentials",
            }.get(self.auth_kind, "the credential was refused")
            if not self.resolved.secure and self.resolved.configured_auth_kind != "none":
                how = (
                    f"no credential was sent: the server {self.server} is plain http, and "
                    "credentials only go over https (as with kubectl); use an https:// server"
                )
            message = f"401 Unauthorized: {how}"
        elif status == 403:
            message = f"403 Forbidden: {message or 'RBAC does not allow this request'}"
        elif not message:
            message = f"HTTP {status} from {self.server}"
        return api_error_for_status(status, message, context=self.name, body=body)

    # -- JSON helpers ------------------------------------------------------------------------
    def decode_json(self, body: bytes | memoryview, path: str) -> dict[str, Any]:
        """A JSON object answer from `path`; MalformedResponseError when it is not one."""
        return json_object(body, path=path, server=self.server, context=self.name)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        resp = self.request("GET", path, query=query)
        return self.decode_json(resp.data, path)

    def post_json(self, path: str, body: Any, *, idempotent: bool = False) -> dict[str, Any]:
        resp = self.request("POST", path, body=body, idempotent=idempotent)
        return self.decode_json(resp.data, path)

    def version(self) -> dict[str, Any]:
        return self.get_json("/version")

    def can_i(
        self, verb: str, resource: str, namespace: str | None = None, group: str = ""
    ) -> bool:
        """SelfSubjectAccessReview: may the current user do `verb` on `resource`?

        The review creates nothing, so it is retried like a GET after a 5xx or a reset.
        """
        attrs: dict[str, str] = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attrs["namespace"] = namespace
        review = self.post_json(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            },
            idempotent=True,
        )
        return bool(review.get("status", {}).get("allowed"))

    # -- lists -------------------------------------------------------------------------------
    def list_pages(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[RawPage]:
        """Yield the pages of a list, fetching the next page while the caller decodes this one.

        The API server writes `metadata` (with `continue`) before `items`, so the next request
        can start from the first bytes of a page. A 410 for an expired continue token restarts
        the list from the beginning once (the caller sees pages from the new list after a
        `restart` marker: a page with an empty body).

        A body is valid until the next page is asked for, then its memory is reused
        (`streams.PagePool`): a list holds the page downloading and the one being decoded.
        """
        base = dict(query or {})
        limit = page_size or self.settings.page_size
        if limit:
            base["limit"] = limit
        restarted = False
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"list-{self.name}")
        PAGES.begin()
        try:
            pending: Future[memoryview] | None = executor.submit(self._get_body, path, base)
            while pending is not None:
                try:
                    body = pending.result()
                except GoneError:
                    if restarted:
                        raise
                    restarted = True
                    yield RawPage(b"", "", None)
                    pending = executor.submit(self._get_body, path, base)
                    continue
                head = bytes(body[:4096])
                m = _CONTINUE_RE.search(head)
                token = m.group(1).decode() if m and m.group(1) else None
                rv_m = _RV_RE.search(head)
                pending = None
                if token:
                    pending = executor.submit(self._get_body, path, {**base, "continue": token})
                yield RawPage(body, rv_m.group(1).decode() if rv_m else "", token)
                PAGES.recycle(body)  # the caller is done with the page: the next one reuses it
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            PAGES.end()

    def _get_body(self, path: str, query: Mapping[str, Any]) -> memoryview:
        resp = self.request("GET", path, query=query, stream=True)
        return read_body(resp, self._timeout_error, lambda exc: self._classify(exc)[0])

    def list_items(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        pick: Callable[[dict[str, Any]], Any] | None = None,
    ) -> tuple[list[Any], str]:
        """All items of a list (each passed through `pick`), and the list's resourceVersion."""
        items: list[Any] = []
        rv = ""
        for page in self.list_pages(path, query):
            if not page.body:
                items.clear()
                continue
            doc = self.decode_json(page.body, path)
            rv = doc.get("metadata", {}).get("resourceVersion", rv)
            raw = doc.get("items") or []
            items.extend(raw if pick is None else (pick(x) for x in raw))
        return items, rv

    # -- streams -------------------------------------------------------------------------------
    def open_watch(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        timeout_seconds: int = 300,
        decode_object: Callable[[msgspec.Raw], Any] | None = None,
    ) -> WatchStream:
        """Start a watch (`query` carries resourceVersion, selectors, allowWatchBookmarks).

        The server ends it after `timeout_seconds`; the read timeout is a little longer, so a
        silent server cannot hold the caller for ever. `decode_object`: see `WatchStream`.
        """
        q = {**(query or {}), "watch": "true", "timeoutSeconds": timeout_seconds}
        read_timeout = float(timeout_seconds + 5)
        resp = self.request("GET", path, query=q, stream=True, read_timeout=read_timeout)
        return WatchStream(
            resp,
            context=self.name,
            server=self.server,
            classify=lambda exc: self._classify(exc, read_timeout)[0],
            decode_object=decode_object,
            path=path,
        )

    def watch(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        timeout_seconds: int = 300,
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events ({type, object}) until the server ends the watch (`WatchStream`)."""
        with self.open_watch(path, query, timeout_seconds=timeout_seconds) as stream:
            yield from stream

    def stream_lines(
        self, path: str, query: Mapping[str, Any] | None = None, *, read_timeout: float = 3600
    ) -> Iterator[bytes]:
        """Yield lines of a streaming text response (pod logs with follow=true).

        A stream that stalls for `read_timeout` raises RequestTimeoutError, one that breaks off
        raises TransportError (a followed log must not look finished when it was cut).
        """
        resp = self.request("GET", path, query=query, stream=True, read_timeout=read_timeout)
        yield from read_lines(resp, lambda exc: self._classify(exc, read_timeout)[0])

    # -- the official client, for everything else ----------------------------------------------
    def official(self) -> Any:
        """A `kubernetes.client.ApiClient` using this context's TLS and current credential.

        The official client (and its websocket streams) reads the CA and client certificate
        from files each time it connects, so they live in a private temp dir for as long as
        the ApiClient does: its `close()` (or `with`) deletes them, and so does its garbage
        collection or the interpreter's exit, whichever comes first.
        """
        from kubernetes import client as k8s

        cfg = k8s.Configuration()
        cfg.host = self.server
        cluster = self.resolved.cluster
        cred = self.credentials.get()
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
            for k, v in _official_headers(self.credentials.impersonation()):
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


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, context: str) -> None:
    try:
        load_cert_pair(ctx, cert, key)
    except ssl.SSLError:
        raise ConfigError(
            "the client certificate and key do not load (not PEM, or not a pair); fix "
            "client-certificate(-data) / client-key(-data) in the kubeconfig",
            context=context,
        ) from None


def _headers(
    base: Mapping[str, str], impersonate: list[tuple[str, str]], cred: Credential
) -> HTTPHeaderDict:
    """One request's headers: repeated Impersonate-Group/-Extra-* headers stay separate."""
    out = HTTPHeaderDict(base)
    for k, v in impersonate:
        out.add(k, v)
    for k, v in cred.headers().items():
        out[k] = v
    return out


def _drain(resp: urllib3.BaseHTTPResponse) -> None:
    with contextlib.suppress(Exception):
        resp.drain_conn()
        resp.release_conn()


def error_kind(exc: BaseException) -> str:
    """Per-context error kind: unreachable|timeout|unauthorized|forbidden|config|exec, or
    server-error.

    `server-error` is a 5xx answer: the server was reached and failed, which is not the same
    advice as "unreachable" (check the address, the network).
    """
    if isinstance(exc, SkymagicError):
        kind = exc.kind
        if isinstance(exc, ApiError) and type(exc) is ApiError:
            return "server-error" if exc.status >= 500 else "config"
        return kind
    return "unreachable"


def fingerprint(resolved: ResolvedContext) -> str:
    """A digest of everything a kubeconfig entry resolved to: an edited entry gets a new one.

    A stable key for caches of what a context said (unlike `id()` of a client, which Python
    reuses once the client is gone). A digest, so no credential is kept in the key.
    """
    return hashlib.sha256(pickle.dumps(resolved)).hexdigest()


_clients: dict[str, tuple[str, dict[ClientSettings, ContextClient]]] = {}
_clients_lock = threading.Lock()


def client_for(resolved: ResolvedContext, settings: ClientSettings) -> ContextClient:
    """One cached client per (context, settings): keep-alive connections across cells.

    The cache remembers each context's resolved entry: when a kubeconfig edit changes it (a new
    server, token or certificate), the clients built from the old entry are closed and
    dropped, so neither their connections nor their credentials outlive the edit.
    """
    fp = fingerprint(resolved)
    stale: list[ContextClient] = []
    with _clients_lock:
        entry = _clients.get(resolved.name)
        if entry is None or entry[0] != fp:
            if entry is not None:
                stale = list(entry[1].values())
            entry = (fp, {})
            _clients[resolved.name] = entry
        client = entry[1].get(settings)
        if client is None:
            client = entry[1][settings] = ContextClient(resolved, settings)
    for old in stale:
        old.close()
    return client


def clear_clients() -> None:
    """Close and forget every cached client (tests, benchmarks, or after a fleet restarts)."""
    with _clients_lock:
        clients = [c for _fp, by_settings in _clients.values() for c in by_settings.values()]
        _clients.clear()
    for client in clients:
        client.close()
