"""What went wrong talking to one API server, as one SkymagicError: the one place that says it.

`classify` maps a urllib3 or socket failure (before an answer, or while a streamed body is
read) to an error and whether the request is worth sending again; `api_error` maps an error
answer (401 with the advice for this kind of credential, 403, the Status message); `error_kind`
is the per-context `kind` a fan-out tabulates.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from skymagic.core.entries import ResolvedContext
from skymagic.errors import (
    ApiError,
    RequestTimeoutError,
    SkymagicError,
    TransportError,
    api_error_for_status,
)

__all__ = ["api_error", "classify", "error_kind", "timeout_error", "transport_error"]

_decode = msgspec.json.Decoder().decode


def classify(
    exc: BaseException, server: str, context: str, connect_s: float, read_s: float
) -> tuple[SkymagicError, bool]:
    """Map a transport failure to (error, worth retrying?).

    Used for failures before an answer and while a streamed body is read (watches, followed
    logs), so neither can let a urllib3 exception escape. Timeouts are never retried: a
    black-holed server would only multiply the wait. TLS failures are not either (they will
    not fix themselves). Refused or reset connections are, within the time budget. urllib3's
    NewConnectionError subclasses ConnectTimeoutError, so it is tested first: only a real
    timeout is a timeout. `connect_s` and `read_s` are the limits that applied.
    """
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, server, context, connect_s, read_s)
    if isinstance(exc, NewConnectionError):
        return transport_error(exc, server, context), True
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return timeout_error(exc, server, context, connect_s, read_s), False
    if isinstance(exc, SSLError):
        return transport_error(exc, server, context), False
    return transport_error(exc, server, context), True


def timeout_error(
    exc: BaseException, server: str, context: str, connect_s: float, read_s: float
) -> RequestTimeoutError:
    """A connect or read timeout, naming the limit that ran out."""
    connecting = isinstance(exc, ConnectTimeoutError)
    phase = "connecting to" if connecting else "waiting for"
    t = connect_s if connecting else read_s
    return RequestTimeoutError(
        f"timed out after {t:g} s {phase} {server}; the API server is not answering "
        f"(raise SkyMagics.request_timeout if it is just slow)",
        context=context,
    )


def transport_error(exc: BaseException, server: str, context: str) -> TransportError:
    """A failure of the connection itself, with the advice that fits it."""
    text = str(exc)
    if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        detail = "certificate verify failed" if "VERIFY" in text.upper() else "TLS error"
        return TransportError(
            f"TLS handshake with {server} failed ({detail}); check the cluster's "
            "certificate-authority in the kubeconfig",
            context=context,
        )
    if isinstance(exc, ProtocolError) and "aborted" not in text.lower():
        # (urllib3 says "Connection aborted" for a request that got no answer at all)
        return TransportError(
            f"the connection to {server} broke off in the middle of an answer (the API "
            "server restarted, or a proxy cut it); try again",
            context=context,
        )
    if "refused" in text.lower():
        return TransportError(
            f"connection refused by {server}; is the cluster up and the server address right?",
            context=context,
        )
    if "Name or service not known" in text or "nodename nor servname" in text:
        return TransportError(
            f"cannot resolve the host of {server}; check the server address", context=context
        )
    short = text.split(": ", 1)[-1][:160]
    return TransportError(f"cannot reach {server}: {short}", context=context)


def api_error(status: int, payload: bytes, resolved: ResolvedContext, server: str) -> ApiError:
    """An error answer (status >= 400) from `server` as the ApiError subclass for its status."""
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
        }.get(resolved.auth_kind, "the credential was refused")
        if not resolved.secure and resolved.configured_auth_kind != "none":
            how = (
                f"no credential was sent: the server {server} is plain http, and "
                "credentials only go over https (as with kubectl); use an https:// server"
            )
        message = f"401 Unauthorized: {how}"
    elif status == 403:
        message = f"403 Forbidden: {message or 'RBAC does not allow this request'}"
    elif not message:
        message = f"HTTP {status} from {server}"
    return api_error_for_status(status, message, context=resolved.name, body=body)


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
