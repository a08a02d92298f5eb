"""Credentials for a resolved context, including the full exec plugin protocol.

Why our own: the official Python client refreshes exec credentials only on expiry (never on a
401), keeps no cache shared between clients (so a 40-context fan-out runs ``aws eks
get-token`` 40 times per refresh), ignores ``interactiveMode``, and turns a failing plugin
into an anonymous request that users then see as a puzzling 403 for system:anonymous
(facts.md section 2). Here:

- exec credentials live in ONE process-wide cache keyed by (exec stanza, cluster server + CA),
  reused until ``expirationTimestamp`` minus a small skew, or until a 401 calls
  :meth:`CredentialProvider.invalidate`; concurrent callers for one key run the plugin once
  (single-flight), which matters when a fan-out starts 40 threads at the same moment;
- a plugin that cannot produce a credential raises ExecPluginError: one line naming the
  context and the plugin, never the token, and never an anonymous request;
- a notebook kernel has no terminal, so plugins run with stdin closed, and an
  ``interactiveMode: Always`` plugin is refused with the command to run in a terminal.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from skymagic.core.flatten import client_cert_pair, inline_cluster
from skymagic.core.kubeconfig import ExecConfig, ResolvedContext, validate_exec
from skymagic.errors import AuthError, ExecPluginError, redact

__all__ = [
    "EXPIRY_SKEW_SECONDS",
    "TOKEN_FILE_TTL_SECONDS",
    "Credential",
    "CredentialProvider",
    "clear_credential_cache",
    "exec_plugin_runs",
]

EXPIRY_SKEW_SECONDS = 10.0
"""Refresh an exec credential this long before it expires, so a request never races expiry."""

TOKEN_FILE_TTL_SECONDS = 60.0
"""Re-read a tokenFile at most this often (client-go: about once a minute), for rotated tokens."""

_EXEC_CLUSTER_CONFIG_EXTENSION = "client.authentication.k8s.io/exec"


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


# --------------------------------------------------------------------------- process-wide state

_CacheKey = tuple[ExecConfig, str, bytes | None]


class _Slot:
    """One cache entry; its lock makes concurrent refreshes for the same key single-flight."""

    __slots__ = ("cred", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cred: Credential | None = None


_cache: dict[_CacheKey, _Slot] = {}
_cache_lock = threading.Lock()
_runs = 0
_runs_lock = threading.Lock()


def clear_credential_cache() -> None:
    """Forget every cached exec credential (tests; or after the user re-logs in a terminal)."""
    with _cache_lock:
        _cache.clear()


def exec_plugin_runs() -> int:
    """How many exec plugin processes this process has started (monotonic; for tests/bench)."""
    return _runs


def _count_run() -> None:
    global _runs
    with _runs_lock:
        _runs += 1


def _slot_for(key: _CacheKey) -> _Slot:
    with _cache_lock:
        slot = _cache.get(key)
        if slot is None:
            slot = _cache[key] = _Slot()
        return slot


def _fresh(cred: Credential | None, now: float) -> bool:
    if cred is None:
        return False
    return cred.expires_at is None or now < cred.expires_at - EXPIRY_SKEW_SECONDS


# --------------------------------------------------------------------------- provider


class CredentialProvider:
    """Produces the credential for one resolved context, refreshing it as client-go would.

    Cheap to create (one per API client); the exec cache behind it is shared process-wide,
    so many providers for the same plugin and cluster share one plugin run.
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

    def __repr__(self) -> str:
        return f"CredentialProvider(context={self._rc.name!r}, auth_kind={self.auth_kind!r})"

    @property
    def auth_kind(self) -> str:
        """Which credential this context uses (see ResolvedContext.auth_kind)."""
        return self._rc.auth_kind

    @property
    def context(self) -> str:
        """The context name, for error messages."""
        return self._rc.name

    def get(self) -> Credential:
        """The credential to use now. Thread-safe. Raises AuthError/ExecPluginError, never
        returns an anonymous credential for a context that has one configured."""
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
                if slot.cred is cred:
                    slot.cred = None
        elif kind == "token-file":
            with self._lock:
                if self._token_file_cred is cred:
                    self._token_file_cred = None

    # ----------------------------------------------------------------- static credentials

    def _static_cert(self) -> tuple[bytes | None, bytes | None]:
        return client_cert_pair(self.context, self._rc.user)

    def _get_token_file(self) -> Credential:
        path = self._rc.user.token_file or ""
        with self._lock:
            now = time.monotonic()
            cached = self._token_file_cred
            if cached is not None and now - self._token_file_read_at < TOKEN_FILE_TTL_SECONDS:
                return cached
            try:
                with open(path, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise AuthError(
                    f"tokenFile {path} cannot be read "
                    f"({exc.strerror or exc}); fix `tokenFile` in user '{self._rc.user.name}'",
                    context=self.context,
                ) from None
            if not token:
                raise AuthError(
                    f"tokenFile {path} is empty; write the token into it or fix `tokenFile`",
                    context=self.context,
                )
            cert, key = self._static_cert()
            cred = Credential("token-file", token=token, client_cert_pem=cert, client_key_pem=key)
            self._token_file_cred = cred
            self._token_file_read_at = now
            return cred

    # ----------------------------------------------------------------- exec

    def _cache_key(self) -> _CacheKey:
        ex = self._rc.user.exec
        assert ex is not None
        return (ex, self._rc.cluster.server, self._rc.cluster.certificate_authority_data)

    def _get_exec(self) -> Credential:
        ex = self._rc.user.exec
        assert ex is not None
        validate_exec(self.context, ex)
        slot = _slot_for(self._cache_key())
        if _fresh(slot.cred, time.time()):
            cred = slot.cred
            assert cred is not None
            return cred
        with slot.lock:  # single-flight: the losers wait here, then find a fresh credential
            if _fresh(slot.cred, time.time()):
                cred = slot.cred
                assert cred is not None
                return cred
            cred = self._run_plugin(ex)
            slot.cred = cred
            return cred

    def _fail(self, ex: ExecConfig, message: str) -> ExecPluginError:
        return ExecPluginError(
            f"exec plugin '{ex.command}' {message}",
            context=self.context,
            plugin=ex.command,
        )

    def _exec_info(self, ex: ExecConfig, interactive: bool) -> str:
        spec: dict[str, Any] = {"interactive": interactive}
        if ex.provide_cluster_info:
            c = self._rc.cluster
            cluster = inline_cluster(c)
            if _EXEC_CLUSTER_CONFIG_EXTENSION in c.extensions:
                cluster["config"] = c.extensions[_EXEC_CLUSTER_CONFIG_EXTENSION]
            spec["cluster"] = cluster
        return json.dumps({"apiVersion": ex.api_version, "kind": "ExecCredential", "spec": spec})

    def _run_plugin(self, ex: ExecConfig) -> Credential:
        mode = ex.interactive_mode or "IfAvailable"
        if mode == "Always" and not self._interactive:
            raise self._fail(
                ex,
                "has interactiveMode Always and needs an interactive terminal; a notebook "
                f"kernel has none; run `{' '.join((ex.command, *ex.args))}` in a terminal first "
                "(so it caches a login), or ask for a non-interactive plugin configuration",
            )
        interactive = self._interactive and mode != "Never"
        command = ex.resolved_command
        found = shutil.which(command) if not os.path.isabs(command) else command
        if found is None or not os.path.isfile(found) or not os.access(found, os.X_OK):
            hint = f"; {ex.install_hint.strip()}" if ex.install_hint else ""
            raise self._fail(
                ex, f"was not found (not executable or not on PATH){hint}".replace("\n", " ")
            )
        env = dict(os.environ)
        env.update(dict(ex.env))
        env["KUBERNETES_EXEC_INFO"] = self._exec_info(ex, interactive)
        _count_run()
        try:
            proc = subprocess.Popen(
                [found, *ex.args],
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                env=env,
                start_new_session=not interactive,
            )
        except OSError as exc:
            raise self._fail(ex, f"could not be started ({exc.strerror or exc})") from None
        try:
            out, err = proc.communicate(timeout=self._exec_timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise self._fail(
                ex,
                f"did not finish within {self._exec_timeout:g} s and was killed; check its "
                "login/network, or raise the limit with `%config SkyMagics.exec_timeout = N`",
            ) from None
        if proc.returncode != 0:
            last = _last_line(err)
            detail = f": {last}" if last else ""
            raise self._fail(ex, f"exited with code {proc.returncode}{detail}")
        return self._parse_output(ex, out)

    def _parse_output(self, ex: ExecConfig, out: bytes) -> Credential:
        try:
            doc = json.loads(out)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            # Never echo the output: it may hold half a token.
            where = ""
            if isinstance(exc, json.JSONDecodeError):
                where = f" (line {exc.lineno}, column {exc.colno})"
            raise self._fail(
                ex, f"printed {len(out)} bytes that are not JSON{where}; expected an ExecCredential"
            ) from None
        if not isinstance(doc, dict):
            raise self._fail(ex, "printed JSON that is not an ExecCredential object")
        if doc.get("kind") != "ExecCredential":
            raise self._fail(
                ex, f"printed kind {_safe(doc.get('kind'))}, expected kind ExecCredential"
            )
        if doc.get("apiVersion") != ex.api_version:
            raise self._fail(
                ex,
                f"answered with apiVersion {_safe(doc.get('apiVersion'))} but was asked for "
                f"'{ex.api_version}'; update the plugin or the kubeconfig's exec apiVersion",
            )
        status = doc.get("status")
        if not isinstance(status, dict):
            raise self._fail(ex, "printed an ExecCredential without a status")
        token = status.get("token")
        cert = status.get("clientCertificateData")
        key = status.get("clientKeyData")
        if not isinstance(token, str):
            token = None
        if not isinstance(cert, str):
            cert = None
        if not isinstance(key, str):
            key = None
        if bool(cert) != bool(key):
            missing = "clientKeyData" if cert else "clientCertificateData"
            raise self._fail(
                ex, f"returned only one of clientCertificateData/clientKeyData ({missing} missing)"
            )
        if not token and not cert:
            raise self._fail(
                ex, "returned neither a token nor clientCertificateData + clientKeyData"
            )
        expires_at = None
        raw_exp = status.get("expirationTimestamp")
        if raw_exp:
            expires_at = _parse_rfc3339(raw_exp)
            if expires_at is None:
                raise self._fail(
                    ex, f"returned expirationTimestamp {_safe(raw_exp)}, which is not RFC 3339"
                )
        return Credential(
            "exec",
            token=token or None,
            client_cert_pem=cert.encode() if cert else None,
            client_key_pem=key.encode() if key else None,
            expires_at=expires_at,
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The plugin may have started children (aws -> python); kill its whole session.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a pipe held open by a grandchild
        pass


def _last_line(err: bytes | None) -> str:
    """The line of a plugin's stderr that says what went wrong, plus any command it suggests.

    Cloud plugins wrap errors over several lines ending in a lone ')' (gke-gcloud-auth-plugin
    quotes gcloud's multi-line message), so the last line is often useless: prefer the last
    line that mentions an error, and keep a suggested `$ command` (e.g. `gcloud auth login`).
    """
    if not err:
        return ""
    lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if sum(c.isalnum() for c in ln) >= 8]
    if not meaningful:
        return redact(lines[-1])[:300] if lines else ""
    errors = [ln for ln in meaningful if "error" in ln.lower()]
    pick = errors[-1] if errors else meaningful[-1]
    at = pick.rfind("ERROR:")
    if at >= 0:
        pick = pick[at:]
    text = redact(pick)[:300]
    hint = next((ln[1:].strip() for ln in lines if ln.startswith("$ ")), None)
    if hint:
        text += f"; it suggests running `{redact(hint)[:120]}` in a terminal"
    return text


def _safe(value: object) -> str:
    """A short quoted rendering of a value that is not secret by protocol (kind, version)."""
    return repr(value)[:80] if isinstance(value, str) else f"({type(value).__name__})"


def _parse_rfc3339(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 0, 3 or 6 fraction digits; Go writes up to 9.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        dt = datetime.fromisoformat(text.replace("t", "T", 1) if "t" in text[:11] else text)
    except ValueError:
        return None
    if dt.tzinfo is None or "T" not in text.upper():
        return None
    return dt.timestamp()
