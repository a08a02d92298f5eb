"""skymagic's errors: one small tree, each class carrying the context it happened in.

```
SkymagicError                     base; `message`, `context` (may be None), `kind`
├── ConfigError                   kind=config: ~/.sky/config.yaml, flags, settings
│   └── KubeconfigError           kind=config: a kubeconfig file or entry (`path`, `field`)
├── AuthError                     kind=unauthorized: no usable credential for a context
│   └── ExecPluginError           kind=exec: an exec credential plugin failed (`plugin`)
├── ApiError                      the server answered with a Kubernetes Status (`status`, `reason`)
│   ├── UnauthorizedError         401
│   ├── ForbiddenError            403 (kind=forbidden)
│   ├── NotFoundError             404
│   ├── ConflictError             409
│   └── GoneError                 410 (expired continue token / resourceVersion)
├── TransportError                kind=unreachable: the request got no answer
│   └── RequestTimeoutError       kind=timeout: connect or read timed out
├── MalformedResponseError        kind=malformed: an answer that is not what the API promises
├── LaunchError                   a launch could not be placed or run
│   └── ProvisionFailedError      every candidate context failed (`failures`)
├── PolicyError                   an admin policy refused or broke (kind=config)
└── SimError                      the simulated fleet could not start or be controlled
```

An error's `message` never names its context: the context is the `context` attribute, and
`str()` puts the two together (`context 'gke-a': tokenFile /t cannot be read ...`). So a table
with a context column shows `.message` and nobody strips prefixes off strings.

Every error renders as ONE readable line in a notebook (`_render_traceback_`), still fails the
cell (so nbclient/papermill runs stop), and never contains a token, key or certificate: the
messages are built from names and paths only, and `redact()` scrubs anything that slipped in.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "AuthError",
    "CommandFailedError",
    "ConfigError",
    "ConflictError",
    "ExecPluginError",
    "ForbiddenError",
    "GoneError",
    "KubeconfigError",
    "LaunchError",
    "MalformedResponseError",
    "NotFoundError",
    "PolicyError",
    "ProvisionFailedError",
    "RequestTimeoutError",
    "SimError",
    "SkymagicError",
    "TransportError",
    "UnauthorizedError",
    "redact",
]

_SECRET_PATTERNS = [
    # bearer tokens and anything that looks like "token: value"
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1<redacted>"),
    (
        re.compile(
            r"(?i)((?:token|password|client-key-data|client-certificate-data|"
            r"certificate-authority-data|clientKeyData|clientCertificateData)\"?\s*[:=]\s*\"?)"
            r"[^\s\"',}]+"
        ),
        r"\1<redacted>",
    ),
    (
        re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S),
        "<redacted PEM>",
    ),
]


def redact(text: str) -> str:
    """Scrub bearer tokens, key material and PEM blocks from text meant for users or logs."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class SkymagicError(Exception):
    """Base of every error skymagic raises on purpose.

    Attributes:
        message: what went wrong and the fix, without the context's name (redacted).
        context: the kubeconfig context it happened in, or None when it is not about one.
        kind: the per-context error class shown in tables (config, unauthorized, exec, ...).
    """

    kind: ClassVar[str] = "config"

    def __init__(self, message: str, *, context: str | None = None) -> None:
        self.message = redact(message)
        self.context = context
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.context:
            return f"context '{self.context}': {self.message}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: one red line, cell still fails.
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(SkymagicError):
    """A settings problem: config file, flag value, or missing context."""

    kind = "config"


class KubeconfigError(ConfigError):
    """A kubeconfig file that cannot be read, or an entry that cannot be used."""

    def __init__(
        self,
        message: str,
        *,
        context: str | None = None,
        path: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.field = field
        super().__init__(message, context=context)


class AuthError(SkymagicError):
    """No usable credential for a context."""

    kind = "unauthorized"


class ExecPluginError(AuthError):
    """An exec credential plugin could not produce a credential."""

    kind = "exec"

    def __init__(self, message: str, *, context: str | None = None, plugin: str = "") -> None:
        self.plugin = plugin
        super().__init__(message, context=context)


class ApiError(SkymagicError):
    """The API server answered with an error Status."""

    kind = "config"

    def __init__(
        self,
        message: str,
        *,
        context: str | None = None,
        status: int = 0,
        reason: str = "",
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body or {}
        super().__init__(message, context=context)


class UnauthorizedError(ApiError):
    """401: the server did not accept the credential."""

    kind = "unauthorized"


class ForbiddenError(ApiError):
    """403: the credential is valid but RBAC does not allow the request."""

    kind = "forbidden"


class NotFoundError(ApiError):
    """404."""


class ConflictError(ApiError):
    """409: the object already exists or changed underneath us."""


class GoneError(ApiError):
    """410: an expired continue token or a too-old resourceVersion."""


class TransportError(SkymagicError):
    """The request got no HTTP answer: refused, reset, TLS failure."""

    kind = "unreachable"


class RequestTimeoutError(TransportError):
    """Connect or read timed out."""

    kind = "timeout"


class MalformedResponseError(SkymagicError):
    """The server answered 200 with a body that does not decode: truncated, a field of the
    wrong type, a string longer than the API allows. Says which list and where."""

    kind = "malformed"


class LaunchError(SkymagicError):
    """A launch could not be planned, placed or run (`interrupted`: by Ctrl-C)."""

    interrupted: bool = False


class ProvisionFailedError(LaunchError):
    """Every candidate context was tried and none could run the task."""

    def __init__(
        self, message: str, *, failures: list[tuple[str, str]] | None = None, advice: str = ""
    ) -> None:
        self.failures = failures or []
        self.advice = advice  # what WOULD fit now, and where ("" when unknown); also in message
        super().__init__(message)


class CommandFailedError(LaunchError):
    """A command run in a pod (exec, a re-run launch) exited non-zero; `exit_code` is its code."""

    def __init__(self, message: str, *, exit_code: int, context: str | None = None) -> None:
        self.exit_code = exit_code
        super().__init__(message, context=context)


class PolicyError(SkymagicError):
    """An admin policy refused the operation or could not be run."""


class SimError(SkymagicError):
    """The simulated fleet could not be started, reached or controlled."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
}


def api_error_for_status(
    status: int, message: str, *, context: str | None = None, body: dict[str, Any] | None = None
) -> ApiError:
    """Build the most specific ApiError for an HTTP status."""
    cls = _BY_STATUS.get(status, ApiError)
    reason = str((body or {}).get("reason", ""))
    return cls(message, context=context, status=status, reason=reason, body=body)
