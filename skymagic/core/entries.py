"""The kubeconfig's entries as immutable, typed values (what a client needs, nothing else).

Split from kubeconfig.py (loading and merging) and validate.py (the resolve-time rules) so
each stays small. Import these names from here (kubeconfig.py does not re-export them).
Secrets (tokens, passwords, key and certificate data) are kept out of every repr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from skymagic.errors import KubeconfigError

__all__ = [
    "EXEC_API_VERSIONS",
    "AuthKind",
    "ClusterInfo",
    "ContextInfo",
    "ExecConfig",
    "ResolvedContext",
    "UserInfo",
]

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
"""The exec credential API versions client-go still speaks (v1alpha1 went in Kubernetes 1.24)."""

AuthKind = Literal["exec", "client-cert", "token", "token-file", "basic", "auth-provider", "none"]


@dataclass(frozen=True)
class ExecConfig:
    """An exec credential plugin stanza, as written (``command`` is not resolved here).

    ``command`` stays as written so the stanza can be copied unchanged into a pod's
    kubeconfig; :attr:`resolved_command` applies client-go's rule (only a command containing a
    path separator is relative to the file, a bare name is looked up on PATH at run time).
    ``install_hint`` has control characters (ESC...) already escaped as ``U+001B``.
    """

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = ""
    install_hint: str | None = None
    provide_cluster_info: bool = False
    interactive_mode: str | None = None
    base_dir: str = ""

    @property
    def resolved_command(self) -> str:
        """The command with a relative path made absolute against the kubeconfig's directory."""
        if (os.sep in self.command or "/" in self.command) and not os.path.isabs(self.command):
            return os.path.normpath(os.path.join(self.base_dir, self.command))
        return self.command


@dataclass(frozen=True)
class ClusterInfo:
    """One ``clusters[]`` entry. Paths are absolute; ``*-data`` is base64-decoded PEM."""

    name: str
    server: str
    tls_server_name: str | None = None
    insecure_skip_tls_verify: bool = False
    certificate_authority: str | None = None
    certificate_authority_data: bytes | None = field(default=None, repr=False)
    proxy_url: str | None = None
    disable_compression: bool = False
    extensions: dict[str, Any] = field(default_factory=dict)

    def ca_pem(self) -> bytes | None:
        """The CA bundle to trust (a cluster never has both: validate.py refuses that)."""
        if self.certificate_authority_data:
            return self.certificate_authority_data
        if self.certificate_authority:
            try:
                with open(self.certificate_authority, "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise KubeconfigError(
                    f"cluster '{self.name}': cannot read certificate-authority "
                    f"{self.certificate_authority} ({exc.strerror or exc}); fix the path or "
                    "inline it as certificate-authority-data",
                    path=self.certificate_authority,
                    field="certificate-authority",
                ) from None
        return None


@dataclass(frozen=True)
class UserInfo:
    """One ``users[]`` entry. Secrets are kept out of repr; paths are absolute.

    ``impersonate*`` are the ``as``, ``as-uid``, ``as-groups`` and ``as-user-extra`` fields:
    requests then act as that user (``Impersonate-*`` headers), as kubectl's do.
    """

    name: str
    client_certificate: str | None = None
    client_certificate_data: bytes | None = field(default=None, repr=False)
    client_key: str | None = None
    client_key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec: ExecConfig | None = None
    auth_provider: dict[str, Any] | None = field(default=None, repr=False)
    impersonate: str | None = None
    impersonate_uid: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ContextInfo:
    """One ``contexts[]`` entry plus where it came from (for ``check`` and error messages)."""

    name: str
    cluster: str
    user: str
    namespace: str = "default"
    defined_in: str = ""
    shadowed_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedContext:
    """A context with its cluster and user looked up and checked: everything a client needs."""

    name: str
    context: ContextInfo
    cluster: ClusterInfo
    user: UserInfo

    @property
    def namespace(self) -> str:
        """The context's namespace (``default`` when unset)."""
        return self.context.namespace

    @property
    def secure(self) -> bool:
        """Whether the server is ``https``: only then are credentials sent (as client-go)."""
        return urlsplit(self.cluster.server).scheme == "https"

    @property
    def configured_auth_kind(self) -> AuthKind:
        """Which credential the user entry configures, in client-go's precedence.

        Static credentials come first because client-go skips an exec plugin when a token,
        basic auth or client certificate is configured too; tokenFile beats token.
        """
        u = self.user
        if u.token_file:
            return "token-file"
        if u.token:
            return "token"
        if u.username or u.password:
            return "basic"
        if u.client_certificate or u.client_certificate_data:
            return "client-cert"
        if u.exec is not None:
            return "exec"
        if u.auth_provider is not None:
            return "auth-provider"
        return "none"

    @property
    def auth_kind(self) -> AuthKind:
        """Which credential will be SENT: none to a plain-http server, whatever is configured.

        client-go reads the user's credentials only "if we are secure" (rest.Config with an
        https host), so neither a token nor a client certificate ever goes out in clear text
        and no exec plugin runs for an http server.
        """
        return self.configured_auth_kind if self.secure else "none"
