"""Running ONE exec credential plugin process and reading its answer, within a hard limit.

auth.py decides when a plugin runs (cache, single-flight, budget); this module only runs it:
start the process with ``KUBERNETES_EXEC_INFO``, wait at most ``timeout`` seconds, kill the
whole process group when that passes, and turn stdout into a :class:`PluginOutput` or a
:class:`PluginFailure` whose message never holds a secret.

Why a hard limit and a process group: a hung ``gke-gcloud-auth-plugin`` (waiting on a network
or a login) must not keep a Python thread in ``communicate()`` after the operation that needed
it has answered, and must not survive the interpreter (plugins run in their own session, so
they would outlive us): every live plugin is killed at interpreter exit too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from skymagic.core.entries import ExecConfig
from skymagic.errors import redact

__all__ = [
    "EXEC_INFO_ENV",
    "PluginFailure",
    "PluginOutput",
    "PluginTimeout",
    "find_command",
    "load_cert_pair",
    "plugin_runs",
    "run_plugin",
    "scrub",
]

EXEC_INFO_ENV = "KUBERNETES_EXEC_INFO"


@dataclass(frozen=True)
class PluginOutput:
    """The credential a plugin printed (status of its ExecCredential); secrets out of repr."""

    token: str | None = field(default=None, repr=False)
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds


class PluginFailure(Exception):
    """The plugin gave no usable credential; ``message`` is one line, context-free, no secret.

    ``ran`` says whether a process was started: only then is the failure worth caching (a
    missing binary costs nothing to look for again).
    """

    def __init__(self, message: str, *, ran: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.ran = ran


class PluginTimeout(PluginFailure):
    """The plugin did not answer within the limit and was killed."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"did not answer within {timeout:.3g} s and was killed")
        self.timeout = timeout


# --------------------------------------------------------------------------- process bookkeeping

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_runs = 0


def plugin_runs() -> int:
    """How many plugin processes this process has started (monotonic; for tests/bench)."""
    return _runs


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The plugin may have started children (aws -> python); kill its whole session.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            proc.kill()


@atexit.register
def _kill_live_plugins() -> None:
    """A daemon thread may still wait on a plugin at exit; its process must not outlive us."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill(proc)


# --------------------------------------------------------------------------- running


def find_command(ex: ExecConfig) -> str | None:
    """The executable to run: a path (relative to the kubeconfig) or a name on PATH."""
    command = ex.resolved_command
    found = shutil.which(command) if not os.path.isabs(command) else command
    if found is None or not os.path.isfile(found) or not os.access(found, os.X_OK):
        return None
    return found


def run_plugin(
    ex: ExecConfig,
    *,
    exec_info: str,
    timeout: float,
    interactive: bool = False,
    secrets: Iterable[str] = (),
) -> PluginOutput:
    """Run the plugin once and parse its ExecCredential; PluginFailure on any problem.

    Non-interactive runs get stdin from /dev/null and their own session (so a timeout kills
    the plugin and everything it started); stderr is captured and only its meaningful line
    is shown, with anything credential-like (and the ``secrets`` given) redacted.
    """
    global _runs
    found = find_command(ex)
    if found is None:
        hint = f"; {ex.install_hint.strip()}" if ex.install_hint else ""
        raise PluginFailure(
            f"was not found (not executable or not on PATH){hint}".replace("\n", " "), ran=False
        )
    env = dict(os.environ)
    env.update(dict(ex.env))
    env[EXEC_INFO_ENV] = exec_info
    with _live_lock:
        _runs += 1
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
        raise PluginFailure(f"could not be started ({exc.strerror or exc})") from None
    with _live_lock:
        _live.add(proc)
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=2)  # reap; a grandchild holding the pipe is killed too
            raise PluginTimeout(timeout) from None
    finally:
        with _live_lock:
            _live.discard(proc)
    if proc.returncode != 0:
        last = _last_line(err, secrets)
        detail = f": {last}" if last else ""
        raise PluginFailure(f"exited with code {proc.returncode}{detail}")
    return _parse_output(ex, out)


def _parse_output(ex: ExecConfig, out: bytes) -> PluginOutput:
    try:
        doc = json.loads(out)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        # Never echo the output: it may hold half a token.
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" (line {exc.lineno}, column {exc.colno})"
        raise PluginFailure(
            f"printed {len(out)} bytes that are not JSON{where}; expected an ExecCredential"
        ) from None
    if not isinstance(doc, dict):
        raise PluginFailure("printed JSON that is not an ExecCredential object")
    if doc.get("kind") != "ExecCredential":
        raise PluginFailure(f"printed kind {_safe(doc.get('kind'))}, expected kind ExecCredential")
    if doc.get("apiVersion") != ex.api_version:
        raise PluginFailure(
            f"answered with apiVersion {_safe(doc.get('apiVersion'))} but was asked for "
            f"'{ex.api_version}'; update the plugin or the kubeconfig's exec apiVersion"
        )
    status = doc.get("status")
    if not isinstance(status, dict):
        raise PluginFailure("printed an ExecCredential without a status")
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    token = token if isinstance(token, str) else None
    cert = cert if isinstance(cert, str) else None
    key = key if isinstance(key, str) else None
    if bool(cert) != bool(key):
        missing = "clientKeyData" if cert else "clientCertificateData"
        raise PluginFailure(
            f"returned only one of clientCertificateData/clientKeyData ({missing} missing)"
        )
    if not token and not cert:
        raise PluginFailure("returned neither a token nor clientCertificateData + clientKeyData")
    expires_at = None
    raw_exp = status.get("expirationTimestamp")
    if raw_exp:
        expires_at = _parse_rfc3339(raw_exp)
        if expires_at is None:
            raise PluginFailure(
                f"returned expirationTimestamp {_safe(raw_exp)}, which is not RFC 3339"
            )
    cert_pem = cert.encode() if cert else None
    key_pem = key.encode() if key else None
    if cert_pem and key_pem:
        # client-go parses the pair (tls.X509KeyPair) and fails the refresh, caching nothing;
        # a pair cached unparsed would fail every request while blaming the kubeconfig.
        try:
            load_cert_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert_pem, key_pem)
        except ssl.SSLError:
            raise PluginFailure(
                "returned clientCertificateData/clientKeyData that do not load as a PEM "
                "certificate and its key; fix or update the plugin"
            ) from None
    return PluginOutput(
        token=token or None, cert_pem=cert_pem, key_pem=key_pem, expires_at=expires_at
    )


def load_cert_pair(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a PEM certificate and key into ``ctx``; ssl.SSLError when they are not a pair.

    ssl only loads certificates from files: they are written 0600 in a private directory,
    loaded and deleted at once.
    """
    tmp = tempfile.mkdtemp(prefix="skymagic-")
    try:
        os.chmod(tmp, 0o700)
        paths = []
        for name, data in (("c.crt", cert), ("c.key", key)):
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            paths.append(path)
        ctx.load_cert_chain(paths[0], paths[1])
    finally:
        for name in ("c.crt", "c.key"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


# --------------------------------------------------------------------------- what users see

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# Long opaque blobs (AWS k8s-aws-v1.<base64url>, Google ya29.<...>, hex or base64 secrets):
# 32+ token characters with both letters and digits, and no path or URL punctuation.
_BLOB = re.compile(
    r"(?<![\w./:+=-])(?=[\w.+=-]*\d)(?=[\w.+=-]*[A-Za-z])[\w.+=-]{32,}(?![\w./:+=-])"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact anything credential-like from text a plugin printed (stderr, usually).

    Known secrets first (the tokens this plugin returned earlier), then PEM blocks (over the
    whole text, before any line is picked), bearer/``token:`` values (errors.redact), JWTs
    and long opaque blobs.
    """
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "<redacted>")
    text = redact(text)
    text = _JWT.sub("<redacted JWT>", text)
    return _BLOB.sub("<redacted>", text)


def _last_line(err: bytes | None, secrets: Iterable[str] = ()) -> str:
    """The line of a plugin's stderr that says what went wrong, plus any command it suggests.

    Cloud plugins wrap errors over several lines ending in a lone ')' (gke-gcloud-auth-plugin
    quotes gcloud's multi-line message), so the last line is often useless: prefer the last
    line that mentions an error, and keep a suggested `$ command` (e.g. `gcloud auth login`).
    The whole text is scrubbed first, so a PEM block's body line can never be "the error".
    """
    if not err:
        return ""
    text = scrub(err.decode("utf-8", "replace"), secrets)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if sum(c.isalnum() for c in ln) >= 8]
    if not meaningful:
        return lines[-1][:300] if lines else ""
    errors = [ln for ln in meaningful if "error" in ln.lower()]
    pick = errors[-1] if errors else meaningful[-1]
    at = pick.rfind("ERROR:")
    if at >= 0:
        pick = pick[at:]
    text = pick[:300]
    hint = next((ln[1:].strip() for ln in lines if ln.startswith("$ ")), None)
    if hint:
        text += f"; it suggests running `{hint[:120]}` in a terminal"
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
