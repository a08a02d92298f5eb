"""Credentials for a resolved context, including the full exec plugin protocol.

Why our own: the official Python client refreshes exec credentials only on expiry (never on a
401), keeps no cache shared between clients (so a 40-context fan-out runs ``aws eks
get-token`` 40 times per refresh), ignores ``interactiveMode``, and turns a failing plugin
into an anonymous request that users then see as a puzzling 403 for system:anonymous
(kubernetes-client/python exec_provider.py). Here, as in client-go (plugin/pkg/client/auth/exec):

- nothing is sent to a plain-http server and no plugin runs for one (ResolvedContext.auth_kind
  is ``none`` there);
- exec credentials live in ONE process-wide cache keyed like client-go's: the exec stanza,
  plus the whole cluster info (server, tls-server-name, CA, proxy-url, the cluster's exec
  extension...) when ``provideClusterInfo`` hands it to the plugin; concurrent callers for
  one key run the plugin once (single-flight), which matters when a fan-out starts 40
  threads at the same moment; a 401 calls :meth:`CredentialProvider.invalidate`;
- a plugin that cannot produce a credential raises ExecPluginError naming the plugin, never
  the token, and never becomes an anonymous request; a client certificate that does not
  parse is a failure, never cached;
- a notebook kernel has no terminal, so plugins run with stdin closed, and an
  ``interactiveMode: Always`` plugin is refused with the command to run in a terminal;
- ``as``/``as-groups``/... become ``Impersonate-*`` headers (:meth:`impersonation_headers`).

The exec-plugin time budget. An operation (``check``, ``gpus list``, a launch) registers its
deadline with :meth:`CredentialProvider.budget`; a plugin run is killed at
``min(exec_timeout, the operation's remaining budget)``, every thread waiting on it gives up
at the same bound, and a failure (exit code, timeout, bad output) is remembered for
:data:`FAILURE_TTL_SECONDS`, so one operation runs a failing plugin at most once and no
thread outlives its operation (execplugin.py kills the process group, and any plugin still
running at interpreter exit).

Where skymagic deliberately differs from client-go, and why (the tests in
tests/unit/core/test_auth_clientgo.py name the client-go case each mirrors):

==========================  =================================================================
divergence                  client-go / skymagic, and the reason
==========================  =================================================================
expiry-skew                 client-go uses an exec credential until ``expirationTimestamp``.
                            skymagic refreshes EXPIRY_SKEW_SECONDS (10 s) early, so a request
                            (a POST cannot be retried) never races the expiry; a credential
                            that lives less than twice the skew is reused for half its
                            lifetime (at least MIN_REUSE_SECONDS), never re-run per request.
exec-timeout                client-go waits for a plugin forever (a hung plugin hangs
                            kubectl). skymagic kills it at ``exec_timeout`` (30 s) or at the
                            operation's remaining budget, whichever comes first: a notebook
                            cell or a fan-out must answer.
failure-cache               client-go re-runs a failing plugin on every request. skymagic
                            remembers the failure for FAILURE_TTL_SECONDS (5 s): one
                            operation over 40 contexts runs it once, not 40 times in a row.
stderr-captured             client-go passes the plugin's stderr to the terminal. A kernel
                            has none: skymagic captures it, shows the line that names the
                            error (and a suggested ``$ command``), with tokens, JWTs, PEM
                            blocks and the plugin's earlier tokens redacted.
retry-after-401             client-go refreshes after a 401 for the NEXT request. skymagic
                            re-runs the plugin once and retries an idempotent request, so a
                            revoked token costs the user nothing (client.py).
auth-provider-refused       client-go still runs the ``oidc`` auth-provider. skymagic refuses
                            every auth-provider with the exec plugin to switch to: the
                            provider writes refreshed tokens back into the kubeconfig, which
                            a multi-file, multi-context notebook session must not do.
install-hint-always         client-go shows ``installHint`` at most 10 times an hour.
                            skymagic shows it (control characters escaped) in every "not
                            found" error: a notebook shows each error once anyway.
==========================  =================================================================
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from skymagic.core.entries import ExecConfig, ResolvedContext, UserInfo
from skymagic.core.execplugin import (
    PluginFailure,
    PluginOutput,
    PluginTimeout,
    plugin_runs,
    run_plugin,
)
from skymagic.core.flatten import client_cert_pair, inline_cluster
from skymagic.core.kubeconfig import validate_exec
from skymagic.core.kubeconfig_parse import clean_control_chars
from skymagic.errors import AuthError, ExecPluginError

__all__ = [
    "EXPIRY_SKEW_SECONDS",
    "FAILURE_TTL_SECONDS",
    "MIN_REUSE_SECONDS",
    "TOKEN_FILE_TTL_SECONDS",
    "Credential",
    "CredentialProvider",
    "clear_credential_cache",
    "exec_plugin_runs",
    "impersonation_headers",
]

EXPIRY_SKEW_SECONDS = 10.0
"""Refresh an exec credential this long before it expires, so a request never races expiry."""

MIN_REUSE_SECONDS = 1.0
"""Even a credential that arrives already expired is reused this long (a 401 refreshes it)."""

FAILURE_TTL_SECONDS = 5.0
"""How long a failed plugin run answers for the plugin: one operation, one failing run."""

TOKEN_FILE_TTL_SECONDS = 60.0
"""Re-read a tokenFile at most this often (client-go: about once a minute), for rotated tokens."""

_EXEC_CLUSTER_CONFIG_EXTENSION = "client.authentication.k8s.io/exec"
_WAITER_GRACE_SECONDS = 0.2


@dataclass(frozen=True)
class Credential:
    """What to present to an API server. Secret fields never appear in repr or str."""

    source: str  # "token" | "token-file" | "client-cert" | "exec" | "basic" | "none"
    token: str | None = field(default=None, repr=False)
    client_cert_pem: bytes | None = field(default=None, repr=False)
    client_key_pem: bytes | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds

    def headers(self) -> dict[str, str]:
        """The Authorization header for this credential (``{}`` for certificates or none)."""
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username is not None and self.password is not None:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        return {}


def impersonation_headers(user: UserInfo) -> list[tuple[str, str]]:
    """The ``Impersonate-*`` headers for a user entry's ``as*`` fields (client-go's order).

    A header per group and per extra value (the API server reads them as lists, so they are
    never joined with commas); extra keys are percent-escaped where a header name cannot
    hold the byte, and ``%`` itself, as client-go's headerKeyEscape does.
    """
    if not user.impersonate:
        return []
    out = [("Impersonate-User", user.impersonate)]
    if user.impersonate_uid:
        out.append(("Impersonate-Uid", user.impersonate_uid))
    out.extend(("Impersonate-Group", g) for g in user.impersonate_groups)
    for key, values in user.impersonate_extra:
        out.extend((f"Impersonate-Extra-{_header_key_escape(key)}", v) for v in values)
    return out


_HEADER_TOKEN = frozenset(
    b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def _header_key_escape(key: str) -> str:
    return "".join(chr(b) if b in _HEADER_TOKEN else f"%{b:02X}" for b in key.encode("utf-8"))


# --------------------------------------------------------------------------- process-wide state

_CacheKey = tuple[ExecConfig, str | None]


class _Slot:
    """One cache entry; its lock makes concurrent refreshes for the same key single-flight.

    ``entry`` is (credential, refresh-at epoch seconds), replaced as one tuple so a reader
    without the lock never sees a credential with another one's refresh time. ``failure``
    is (context-free message, until monotonic seconds). ``tokens`` are the last tokens the
    plugin returned: scrubbed from its stderr should it print one in an error.
    """

    __slots__ = ("entry", "failure", "lock", "tokens")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entry: tuple[Credential, float] | None = None
        self.failure: tuple[str, float] | None = None
        self.tokens: collections.deque[str] = collections.deque(maxlen=4)


_cache: dict[_CacheKey, _Slot] = {}
_cache_lock = threading.Lock()


def clear_credential_cache() -> None:
    """Forget every cached exec credential and failure (tests; or after a terminal re-login)."""
    with _cache_lock:
        _cache.clear()


def exec_plugin_runs() -> int:
    """How many exec plugin processes this process has started (monotonic; for tests/bench)."""
    return plugin_runs()


def _slot_for(key: _CacheKey) -> _Slot:
    with _cache_lock:
        slot = _cache.get(key)
        if slot is None:
            slot = _cache[key] = _Slot()
        return slot


def _refresh_at(expires_at: float | None, obtained: float) -> float:
    """When to run the plugin again for a credential obtained at ``obtained`` (epoch s)."""
    if expires_at is None:
        return float("inf")  # until a 401
    lifetime = expires_at - obtained
    skew = min(EXPIRY_SKEW_SECONDS, max(lifetime, 0.0) / 2)
    return max(expires_at - skew, obtained + MIN_REUSE_SECONDS)


# --------------------------------------------------------------------------- provider


class CredentialProvider:
    """Produces the credential for one resolved context, refreshing it as client-go would.

    Cheap to create (one per API client); the exec cache behind it is shared process-wide,
    so many providers for the same plugin (and cluster, with provideClusterInfo) share one
    plugin run.
    """

    def __init__(
        self, resolved: ResolvedContext, *, exec_timeout: float = 30.0, interactive: bool = False
    ) -> None:
        self._rc = resolved
        self._exec_timeout = exec_timeout
        self._interactive = interactive
        self._lock = threading.Lock()
        self._token_file_cred: Credential | None = None
        self._token_file_read_at = 0.0
        self._deadlines: list[float] = []
        self._key: _CacheKey | None = None

    def __repr__(self) -> str:
        return f"CredentialProvider(context={self._rc.name!r}, auth_kind={self.auth_kind!r})"

    @property
    def auth_kind(self) -> str:
        """Which credential this context sends (see ResolvedContext.auth_kind)."""
        return self._rc.auth_kind

    @property
    def context(self) -> str:
        """The context name, for error messages."""
        return self._rc.name

    def impersonation(self) -> list[tuple[str, str]]:
        """The ``Impersonate-*`` headers every request of this context carries."""
        return impersonation_headers(self._rc.user)

    @contextlib.contextmanager
    def budget(self, deadline: float) -> Iterator[None]:
        """Cap plugin runs and waits at ``deadline`` (``time.monotonic()``) while inside.

        The fan-out enters this for each context's operation, so every thread of that
        operation (pool threads included: they share the client) is bounded by it. With
        several operations on one client at once, the latest deadline bounds the shared run.
        """
        with self._lock:
            self._deadlines.append(deadline)
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.remove(deadline)

    def get(self) -> Credential:
        """The credential to use now. Thread-safe. Raises AuthError/ExecPluginError, never
        returns an anonymous credential for a context that has one configured (and sends
        none to a plain-http server, as client-go)."""
        kind = self.auth_kind
        if kind == "exec":
            return self._get_exec()
        if kind == "token-file":
            return self._get_token_file()
        if kind == "token":
            cert, key = self._static_cert()
            return Credential(
                "token", token=self._rc.user.token, client_cert_pem=cert, client_key_pem=key
            )
        if kind == "basic":
            return Credential(
                "basic",
                username=self._rc.user.username or "",
                password=self._rc.user.password or "",
            )
        if kind == "client-cert":
            cert, key = self._static_cert()
            return Credential("client-cert", client_cert_pem=cert, client_key_pem=key)
        if kind == "auth-provider":
            provider = (self._rc.user.auth_provider or {}).get("name", "?")
            raise AuthError(
                f"user '{self._rc.user.name}' uses the removed "
                f"auth-provider '{provider}'; regenerate the kubeconfig entry with the cloud CLI "
                "so it uses an exec plugin (e.g. gke-gcloud-auth-plugin, kubelogin)",
                context=self.context,
            )
        return Credential("none")

    def invalidate(self, cred: Credential) -> None:
        """Drop ``cred`` after the server answered 401, so the next get() fetches a new one.

        Only that exact credential is dropped: if another thread already replaced it, the
        replacement stays, so a burst of 401s re-runs the plugin once, not once per request.
        """
        kind = self.auth_kind
        if kind == "exec":
            slot = _slot_for(self._cache_key())
            with slot.lock:
                if slot.entry is not None and slot.entry[0] is cred:
                    slot.entry = None
        elif kind == "token-file":
            with self._lock:
                if self._token_file_cred is cred:
                    self._token_file_cred = None

    # ----------------------------------------------------------------- static credentials

    def _static_cert(self) -> tuple[bytes | None, bytes | None]:
        return client_cert_pair(self.context, self._rc.user)

    def _get_token_file(self) -> Credential:
        """The tokenFile's token, re-read once a minute; the fallbacks are client-go's.

        When the file cannot be read (or is empty), the last token read from it stays in use,
        else the user's static ``token`` (client-go's NewBearerAuthWithRefreshRoundTripper);
        only with neither is it an error.
        """
        path = self._rc.user.token_file or ""
        with self._lock:
            now = time.monotonic()
            cached = self._token_file_cred
            if cached is not None and now - self._token_file_read_at < TOKEN_FILE_TTL_SECONDS:
                return cached
            problem = ""
            try:
                with open(path, encoding="utf-8") as fh:
                    token = fh.read().strip()
                if not token:
                    problem = "is empty; write the token into it or fix `tokenFile`"
            except OSError as exc:
                token = ""
                problem = (
                    f"cannot be read ({exc.strerror or exc}); fix `tokenFile` in user "
                    f"'{self._rc.user.name}'"
                )
            cert, key = self._static_cert()
            if problem:
                fallback = cached
                if fallback is None and self._rc.user.token:
                    fallback = Credential(
                        "token",
                        token=self._rc.user.token,
                        client_cert_pem=cert,
                        client_key_pem=key,
                    )
                if fallback is None:
                    raise AuthError(f"tokenFile {path} {problem}", context=self.context)
                cred = fallback
            else:
                cred = Credential(
                    "token-file", token=token, client_cert_pem=cert, client_key_pem=key
                )
            self._token_file_cred = cred
            self._token_file_read_at = now
            return cred

    # ----------------------------------------------------------------- exec

    def _cache_key(self) -> _CacheKey:
        """client-go's cacheKey: the exec stanza, and the cluster info when the plugin gets it.

        Without provideClusterInfo the plugin's input does not depend on the cluster, so
        every context with the same stanza shares one run (as in kubectl). The stanza's
        command is keyed resolved, so the same plugin from two kubeconfig directories is one.
        """
        if self._key is None:
            ex = self._rc.user.exec
            assert ex is not None
            stanza = replace(ex, command=ex.resolved_command, base_dir="")
            cluster = None
            if ex.provide_cluster_info:
                cluster = json.dumps(self._exec_cluster(), sort_keys=True)
            self._key = (stanza, cluster)
        return self._key

    def _wait_limit(self) -> tuple[float, bool]:
        """(seconds a plugin run or wait may take now, whether the operation's budget set it)."""
        with self._lock:
            deadline = max(self._deadlines) if self._deadlines else None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining < self._exec_timeout:
                return max(remaining, 0.0), True
        return self._exec_timeout, False

    def _get_exec(self) -> Credential:
        ex = self._rc.user.exec
        assert ex is not None
        validate_exec(self.context, ex)
        slot = _slot_for(self._cache_key())
        hit = slot.entry
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        self._raise_cached_failure(slot, ex)
        limit, by_budget = self._wait_limit()
        # A waiter allows the running thread a moment past the shared bound to report its
        # verdict (the fan-out's own deadline is later still), so every context shows it.
        if limit <= 0 or not slot.lock.acquire(timeout=limit + _WAITER_GRACE_SECONDS):
            # Another thread's run did not finish within this caller's bound.
            raise self._fail(ex, self._timeout_text(limit, by_budget, killed=False))
        try:  # single-flight: the losers waited above, and find the winner's result here
            hit = slot.entry
            if hit is not None and time.time() < hit[1]:
                return hit[0]
            self._raise_cached_failure(slot, ex)
            limit, by_budget = self._wait_limit()
            if limit <= 0:
                raise self._fail(ex, self._timeout_text(0.0, by_budget, killed=False))
            try:
                out = self._run(ex, limit, tuple(slot.tokens))
            except PluginFailure as exc:
                text = exc.message
                if isinstance(exc, PluginTimeout):
                    text = self._timeout_text(exc.timeout, by_budget)
                if exc.ran:
                    slot.failure = (text, time.monotonic() + FAILURE_TTL_SECONDS)
                raise self._fail(ex, text) from None
            cred = Credential(
                "exec",
                token=out.token,
                client_cert_pem=out.cert_pem,
                client_key_pem=out.key_pem,
                expires_at=out.expires_at,
            )
            slot.entry = (cred, _refresh_at(cred.expires_at, time.time()))
            slot.failure = None
            if out.token:
                slot.tokens.append(out.token)
            return cred
        finally:
            slot.lock.release()

    def _raise_cached_failure(self, slot: _Slot, ex: ExecConfig) -> None:
        failure = slot.failure
        if failure is not None and time.monotonic() < failure[1]:
            raise self._fail(ex, failure[0])

    def _timeout_text(self, limit: float, by_budget: bool, *, killed: bool = True) -> str:
        """Why there is no credential after ``limit`` seconds, and the knob that would help."""
        fix = (
            "--timeout / SkyMagics.request_timeout"
            if by_budget
            else "`%config SkyMagics.exec_timeout = N`"
        )
        if limit <= 0:
            return f"was not run: the operation's time budget was already spent; raise {fix}"
        shown = f"{limit:.2g}" if limit < 10 else f"{limit:.0f}"
        why = " (the operation's time budget)" if by_budget else ""
        stopped = " and was stopped" if killed else ""
        return (
            f"did not answer within {shown} s{why}{stopped}; run it in a terminal to see why "
            f"(a login? the network?), or raise {fix} if it is just slow"
        )

    def _fail(self, ex: ExecConfig, message: str) -> ExecPluginError:
        return ExecPluginError(
            f"the exec plugin `{ex.command}` {message}", context=self.context, plugin=ex.command
        )

    def _exec_cluster(self) -> dict[str, Any]:
        """client-go's clientauthentication Cluster: server always, the rest omitempty."""
        c = self._rc.cluster
        cluster = inline_cluster(c)
        if _EXEC_CLUSTER_CONFIG_EXTENSION in c.extensions:
            cluster["config"] = c.extensions[_EXEC_CLUSTER_CONFIG_EXTENSION]
        return cluster

    def _exec_info(self, ex: ExecConfig, interactive: bool) -> str:
        spec: dict[str, Any] = {"interactive": interactive}
        if ex.provide_cluster_info:
            spec["cluster"] = self._exec_cluster()
        return json.dumps({"apiVersion": ex.api_version, "kind": "ExecCredential", "spec": spec})

    def _run(self, ex: ExecConfig, limit: float, tokens: tuple[str, ...]) -> PluginOutput:
        mode = ex.interactive_mode or "IfAvailable"
        if mode == "Always" and not self._interactive:
            raise PluginFailure(
                "has interactiveMode Always and needs an interactive terminal; a notebook "
                f"kernel has none; run `{' '.join((ex.command, *ex.args))}` in a terminal first "
                "(so it caches a login), or ask for a non-interactive plugin configuration",
                ran=False,
            )
        interactive = self._interactive and mode != "Never"
        if ex.install_hint:  # a hand-built ExecConfig skipped the loader's escaping
            ex = replace(ex, install_hint=clean_control_chars(ex.install_hint))
        return run_plugin(
            ex,
            exec_info=self._exec_info(ex, interactive),
            timeout=limit,
            interactive=interactive,
            secrets=tokens,
        )
