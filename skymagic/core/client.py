"""One API client per kubeconfig context: TLS, credentials, timeouts, retries, fast lists.

Why not the official client's ApiClient: it has no default timeout (one dead context blocks
a whole fan-out), refreshes exec credentials only on expiry, and decodes every list into model
objects, the slow part on big clusters (one Python model object per nested field of every
item: a list of 100,000 pods is millions of them). This client speaks HTTPS with urllib3 (the
transport the official client uses), builds TLS and auth from skymagic's own kubeconfig and
credential layer, and hands list pages to the caller as bytes to decode into the few fields
it needs. `ContextClient.official()` still gives the official typed API, built
from the same settings, for anything else (core/official.py, impersonation included).

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
import pickle
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec
import urllib3
from urllib3._collections import HTTPHeaderDict
from urllib3.exceptions import HTTPError

from skymagic.core import failures
from skymagic.core.auth import Credential, CredentialProvider
from skymagic.core.entries import ResolvedContext
from skymagic.core.official import official_client
from skymagic.core.streams import PAGES, WatchStream, json_object, read_body, read_lines
from skymagic.core.transport import pool_manager
from skymagic.errors import ApiError, GoneError, RequestTimeoutError, SkymagicError

__all__ = [
    "ClientSettings",
    "ContextClient",
    "RawPage",
    "WatchStream",
    "fingerprint",
]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_encode = msgspec.json.Encoder().encode
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
    # Ask for list pages gzip'd (the API server compresses answers over 128 KiB at level 1):
    # ~1/10 of the bytes on the wire, for the server's compression and the client's inflation
    # (~0.5 s of CPU per 270 MB). Off by default: on a fast link (the same host, the same
    # cluster's network) it costs more than it saves; worth it over a slow or metered link
    # (bench/README.md, GPU inventory).
    gzip_lists: bool = False


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
    def _pool_for(self, cred: Credential) -> urllib3.PoolManager:
        """The pool for `cred`: a new one when its client certificate is not the last one's."""
        with self._lock:
            same_cert = self._pool_cred is not None and (
                self._pool_cred.client_cert_pem == cred.client_cert_pem
                and self._pool_cred.client_key_pem == cred.client_key_pem
            )
            if self._pool is None or not same_cert:
                if self._pool is not None:
                    self._pool.clear()
                self._pool = pool_manager(self.resolved, cred)
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

    def _limits(self, read_timeout: float | None) -> tuple[float, float]:
        """(connect, read) seconds for a request: `read_timeout` overrides the read limit."""
        s = self.settings
        read = s.request_timeout if read_timeout is None else read_timeout
        return s.connect_timeout or s.request_timeout, read

    def _classify(
        self, exc: BaseException, read_timeout: float | None = None
    ) -> tuple[SkymagicError, bool]:
        """(error, worth retrying?) for a transport failure: `failures.classify`."""
        return failures.classify(exc, self.server, self.name, *self._limits(read_timeout))

    def _budget_left(self, started: float, delay: float) -> bool:
        return time.monotonic() - started + delay < self.settings.request_timeout * 2

    def _refreshable(self) -> bool:
        return self.auth_kind in ("exec", "token-file")

    def _timeout_error(self, exc: BaseException) -> RequestTimeoutError:
        return failures.timeout_error(exc, self.server, self.name, *self._limits(None))

    def _api_error(self, status: int, payload: bytes) -> ApiError:
        return failures.api_error(status, payload, self.resolved, self.server)

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
        hdrs = {"Accept-Encoding": "gzip"} if self.settings.gzip_lists else None
        resp = self.request("GET", path, query=query, stream=True, headers=hdrs)
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
        """A `kubernetes.client.ApiClient` with this context's TLS and current credential.

        Its `close()` (or `with`) deletes the certificate files it reads (`official_client`).
        """
        return official_client(self.resolved, self.credentials)


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
