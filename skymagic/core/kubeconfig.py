"""Kubeconfig loading with client-go's semantics, not the official Python client's.

Why our own loader: users run many clusters from one notebook, usually with a multi-file
``KUBECONFIG`` that cloud CLIs wrote. The official Python client reads ``KUBECONFIG`` once at
import (a later ``%env`` is ignored), lets the LAST file's ``current-context`` win even when it
is empty, and turns broken entries into anonymous requests. kubectl (client-go) does none of
that, and users compare us with kubectl. The rules we follow (facts.md section 1):

- ``KUBECONFIG`` is read at call time; it is an ``os.pathsep`` list, deduplicated, in order;
  missing files are skipped; with no ``KUBECONFIG``, ``~/.kube/config``.
- The FIRST file that defines a cluster, user or context name wins the whole entry.
- ``current-context`` comes from the first file with a non-empty value.
- Relative paths resolve against the directory of the file that held them.

Loading is strict about the shape of a file (one broken file is named, with its line) and lazy
about the contents of an entry: a context whose cluster has a bad field fails only when that
context is resolved, so one broken context never hides the other forty in a fan-out.

What happens for each missing or malformed field (``id`` = the test case in
tests/unit/test_kubeconfig.py):

==========================  =================================================================
id                          what happens
==========================  =================================================================
no-file                     no file exists at any path: an empty Kubeconfig (no contexts,
                            ``current_context`` None); ``resolve()`` then names the files
                            that were looked for
missing-file                one path in KUBECONFIG does not exist: skipped, others are used
empty-file                  an empty file is an empty kubeconfig
unparsable                  YAML syntax error: KubeconfigError naming the file and line
not-mapping                 the file's top level is not a mapping: KubeconfigError(file)
list-shape                  ``clusters``/``users``/``contexts`` not a list, an item not a
                            mapping, or an item without a string ``name``: KubeconfigError
                            naming the file and the field (e.g. ``contexts[1].name``)
duplicate-name              the same name twice in ONE file: KubeconfigError (as client-go)
context-missing             ``resolve(name)`` for an unknown name: KubeconfigError naming the
                            context, the files read and the contexts that exist
context-no-cluster          context without ``cluster``: KubeconfigError, field ``cluster``
cluster-missing             context names a cluster no file defines: KubeconfigError
no-server                   cluster without ``server``: KubeconfigError (client-go would
                            silently talk to localhost:8080)
server-no-scheme            ``server: host:6443``: ``https://`` is assumed when TLS is
                            configured (CA, insecure-skip-tls-verify or a client certificate),
                            else ``http://`` -- exactly client-go's rule
server-bad-scheme           ``server: ftp://...`` or no host: KubeconfigError
bad-field-type              e.g. ``insecure-skip-tls-verify: "yes"`` or ``server: 3``:
                            KubeconfigError naming the entry and field, at resolve time
bad-base64                  ``*-data`` that is not base64: KubeconfigError naming the entry
                            and field, at resolve time (other contexts still work)
ca-file-missing             ``certificate-authority`` file does not exist: KubeconfigError
                            naming the absolute path, at resolve time
ca-data-wins                both ``certificate-authority`` and ``-data``: the data wins
user-not-specified          context without ``user``: anonymous (``auth_kind == "none"``)
user-missing                context names a user no file defines: KubeconfigError (client-go
                            silently goes anonymous, which users then see as a 403)
cert-without-key            ``client-certificate(-data)`` without ``client-key(-data)``, or
                            the other way round: KubeconfigError
token-and-token-file        both: ``tokenFile`` wins (``auth_kind == "token-file"``)
token-and-basic             token and username/password: KubeconfigError, one method only
exec-no-command             exec without ``command``: KubeconfigError
exec-env-no-name            an exec env entry without ``name``: KubeconfigError
exec-bad-api-version        exec ``apiVersion`` other than client.authentication.k8s.io/v1 or
                            v1beta1 (v1alpha1 was removed): ExecPluginError listing both
exec-v1-no-interactive      v1 exec without ``interactiveMode``: ExecPluginError (v1beta1
                            defaults to IfAvailable)
exec-bad-interactive        ``interactiveMode`` not Never/IfAvailable/Always: ExecPluginError
exec-and-auth-provider      both in one user: KubeconfigError (as client-go)
exec-with-static            exec plus a static token/cert/basic: the static credential is used
                            (client-go skips the plugin then)
auth-provider               deprecated ``auth-provider``: resolves (``auth_kind ==
                            "auth-provider"``); auth.py then raises AuthError, never anonymous
namespace-default           context without ``namespace`` (or empty): ``default``
==========================  =================================================================
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

from skymagic.errors import ExecPluginError, KubeconfigError

__all__ = [
    "EXEC_API_VERSIONS",
    "AuthKind",
    "ClusterInfo",
    "ContextInfo",
    "ExecConfig",
    "Kubeconfig",
    "ResolvedContext",
    "UserInfo",
    "kubeconfig_paths",
    "load_kubeconfig",
    "validate_exec",
]

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
"""The exec credential API versions client-go still speaks (v1alpha1 went in Kubernetes 1.24)."""

_INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")

AuthKind = Literal["exec", "client-cert", "token", "token-file", "basic", "auth-provider", "none"]

_Entry = TypeVar("_Entry", "ClusterInfo", "UserInfo")

# libyaml is ~10x faster on the big kubeconfigs cloud CLIs accumulate.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[str]:
    """The kubeconfig files to read, in precedence order, from ``KUBECONFIG`` at call time.

    Read at call time because notebook users run ``%env KUBECONFIG=...`` after import.
    Entries are ``~``-expanded (``%env`` does not expand it, a shell would) and made absolute
    so provenance and deduplication do not depend on the kernel's working directory.
    """
    env = os.environ if environ is None else environ
    raw = env.get("KUBECONFIG", "")
    out: list[str] = []
    seen: set[str] = set()
    for entry in raw.split(os.pathsep):
        if not entry.strip():
            continue
        path = os.path.abspath(_expand_home(entry, env))
        if path not in seen:
            seen.add(path)
            out.append(path)
    if out:
        return out
    return [os.path.abspath(_expand_home(os.path.join("~", ".kube", "config"), env))]


def _expand_home(path: str, env: Mapping[str, str]) -> str:
    if path == "~" or path.startswith(("~" + os.sep, "~/")):
        home = env.get("HOME") or os.path.expanduser("~")
        return home + path[1:]
    return os.path.expanduser(path)


@dataclass(frozen=True)
class ExecConfig:
    """An exec credential plugin stanza, as written (``command`` is not resolved here).

    ``command`` stays as written so the stanza can be copied unchanged into a pod's
    kubeconfig; :attr:`resolved_command` applies client-go's rule (only a command containing a
    path separator is relative to the file, a bare name is looked up on PATH at run time).
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
        """The CA bundle to trust: inline data wins over the file (client-go's order)."""
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
    """One ``users[]`` entry. Secrets are kept out of repr; paths are absolute."""

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
    def auth_kind(self) -> AuthKind:
        """Which credential will be sent, in client-go's precedence.

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


@dataclass
class _Broken:
    """An entry whose contents were unusable; raised only when a context needs it."""

    message: str
    path: str
    field: str


class Kubeconfig:
    """The merged view of several kubeconfig files, with provenance.

    Attributes:
        files: the files actually read (missing ones skipped), in precedence order.
        contexts / clusters / users: winning entries by name, in kubeconfig order (file order,
            then order within a file), so "all contexts" is deterministic.
        current_context / current_context_file: the first non-empty current-context and its
            file.
    """

    def __init__(self) -> None:
        self.files: tuple[str, ...] = ()
        self.searched: tuple[str, ...] = ()
        self.contexts: dict[str, ContextInfo] = {}
        self.clusters: dict[str, ClusterInfo] = {}
        self.users: dict[str, UserInfo] = {}
        self.current_context: str | None = None
        self.current_context_file: str | None = None
        self._broken: dict[tuple[str, str], _Broken] = {}
        self._origin: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return (
            f"Kubeconfig(files={list(self.files)!r}, contexts={list(self.contexts)!r}, "
            f"current_context={self.current_context!r})"
        )

    def origin(self, kind: Literal["cluster", "user", "context"], name: str) -> str | None:
        """The file that defined the winning ``kind`` entry ``name``, if any."""
        return self._origin.get((kind, name))

    def resolve(self, name: str) -> ResolvedContext:
        """Look up a context, its cluster and user, and check them as kubectl would before use.

        Raises KubeconfigError (or ExecPluginError for an exec stanza the protocol forbids)
        naming the context, the field and the fix.
        """
        ctx = self.contexts.get(name)
        if ctx is None:
            broken = self._broken.get(("context", name))
            if broken is not None:
                raise _entry_error(name, "context", name, broken)
            if self.files:
                where = "in " + ", ".join(self.files)
            else:
                where = "no kubeconfig file exists (looked for " + ", ".join(self.searched) + ")"
            known = ", ".join(f"'{c}'" for c in self.contexts) or "none"
            raise KubeconfigError(
                f"not defined {where}; contexts found: {known}; "
                "check the name with `kubectl config get-contexts` or set KUBECONFIG",
                context=name,
                field="contexts",
            )
        path = ctx.defined_in
        if not ctx.cluster:
            raise KubeconfigError(
                f"kubeconfig entry in {path} names no cluster; add `cluster: <name>` to it",
                context=name,
                path=path,
                field="cluster",
            )
        cluster = self._lookup(name, ctx, "cluster", self.clusters)
        user = (
            self._lookup(name, ctx, "user", self.users, " (remove it for anonymous access)")
            if ctx.user
            else UserInfo(name="")
        )
        server = _check_server(name, cluster, user, self.origin("cluster", cluster.name) or path)
        if server != cluster.server:
            cluster = _replace_cluster_server(cluster, server)
        ca_file = cluster.certificate_authority
        if ca_file and not cluster.certificate_authority_data and not os.path.isfile(ca_file):
            raise KubeconfigError(
                f"cluster '{cluster.name}' certificate-authority file "
                f"{ca_file} does not exist; fix the path or inline it as "
                "certificate-authority-data",
                context=name,
                path=ca_file,
                field="certificate-authority",
            )
        _check_user(name, user, self.origin("user", user.name) or path)
        return ResolvedContext(name=name, context=ctx, cluster=cluster, user=user)

    def _lookup(
        self,
        ctx_name: str,
        ctx: ContextInfo,
        kind: str,
        table: Mapping[str, _Entry],
        hint: str = "",
    ) -> _Entry:
        """The context's cluster or user entry (`kind`), or the error naming what is wrong."""
        name = ctx.cluster if kind == "cluster" else ctx.user
        broken = self._broken.get((kind, name))
        if broken is not None:
            raise _entry_error(ctx_name, kind, name, broken)
        entry = table.get(name)
        if entry is None:
            raise KubeconfigError(
                f"kubeconfig entry in {ctx.defined_in} names {kind} '{name}', which no "
                f"kubeconfig file defines ({', '.join(self.files)}); add it under `{kind}s:` or "
                f"fix the context's `{kind}:`{hint}",
                context=ctx_name,
                path=ctx.defined_in,
                field=kind,
            )
        return entry


def _entry_error(ctx_name: str, kind: str, name: str, broken: _Broken) -> KubeconfigError:
    what = "kubeconfig entry" if kind == "context" else f"{kind} '{name}'"
    return KubeconfigError(
        f"{what} (in {broken.path}): {broken.message}",
        context=ctx_name,
        path=broken.path,
        field=broken.field,
    )


def _replace_cluster_server(cluster: ClusterInfo, server: str) -> ClusterInfo:
    from dataclasses import replace

    return replace(cluster, server=server)


def _check_server(ctx_name: str, cluster: ClusterInfo, user: UserInfo, path: str) -> str:
    server = cluster.server.strip()
    if not server:
        raise KubeconfigError(
            f"cluster '{cluster.name}' (in {path}) has no server; add "
            "`server: https://HOST:PORT` to it",
            context=ctx_name,
            path=path,
            field="server",
        )
    parts = urlsplit(server)
    if not parts.scheme or not parts.netloc:
        # client-go's DefaultServerURL: no scheme -> https if any TLS setting, else http.
        tls = bool(
            cluster.certificate_authority
            or cluster.certificate_authority_data
            or cluster.insecure_skip_tls_verify
            or user.client_certificate
            or user.client_certificate_data
        )
        server = ("https://" if tls else "http://") + server
        parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KubeconfigError(
            f"cluster '{cluster.name}' (in {path}) has server "
            f"'{cluster.server}', which is not an http(s) URL; write `server: https://HOST:PORT`",
            context=ctx_name,
            path=path,
            field="server",
        )
    return server


def _check_user(ctx_name: str, user: UserInfo, path: str) -> None:
    def fail(msg: str, fld: str) -> KubeconfigError:
        return KubeconfigError(
            f"user '{user.name}' (in {path}) {msg}",
            context=ctx_name,
            path=path,
            field=fld,
        )

    has_cert = bool(user.client_certificate or user.client_certificate_data)
    has_key = bool(user.client_key or user.client_key_data)
    if has_cert and not has_key:
        raise fail(
            "has client-certificate but no client-key; add client-key or client-key-data",
            "client-key",
        )
    if has_key and not has_cert:
        raise fail(
            "has client-key but no client-certificate; add client-certificate or "
            "client-certificate-data",
            "client-certificate",
        )
    if (user.token or user.token_file) and (user.username or user.password):
        raise fail(
            "has both a token and username/password; keep only one authentication method",
            "token",
        )
    if user.exec is not None:
        if user.auth_provider is not None:
            raise fail(
                "has both exec and auth-provider; remove the deprecated auth-provider", "exec"
            )
        validate_exec(ctx_name, user.exec, path)


def validate_exec(ctx_name: str, ex: ExecConfig, path: str | None = None) -> None:
    """Check an exec stanza against the protocol before anything is run.

    Shared by :meth:`Kubeconfig.resolve` and auth.py so a hand-built ResolvedContext gets the
    same checks. Protocol violations are ExecPluginError (kind ``exec`` in error tables).
    """
    where = f" (in {path})" if path else ""
    if not ex.command:
        raise KubeconfigError(
            f"exec{where} has no command; add `command: <plugin>`",
            context=ctx_name,
            path=path,
            field="exec.command",
        )
    for env_name, _ in ex.env:
        if not env_name:
            raise KubeconfigError(
                f"exec{where} has an env entry without a name; give every "
                "env entry `name:` and `value:`",
                context=ctx_name,
                path=path,
                field="exec.env",
            )
    if ex.api_version not in EXEC_API_VERSIONS:
        extra = " (v1alpha1 was removed in Kubernetes 1.24)" if "v1alpha1" in ex.api_version else ""
        raise ExecPluginError(
            f"exec plugin '{ex.command}'{where} uses apiVersion "
            f"'{ex.api_version or '(none)'}'{extra}; supported: {', '.join(EXEC_API_VERSIONS)}; "
            "update the plugin and regenerate the kubeconfig entry",
            context=ctx_name,
            plugin=ex.command,
        )
    if ex.interactive_mode is None:
        if ex.api_version.endswith("/v1"):
            raise ExecPluginError(
                f"exec plugin '{ex.command}'{where} uses "
                "client.authentication.k8s.io/v1, which requires interactiveMode; add "
                "`interactiveMode: Never` (or IfAvailable)",
                context=ctx_name,
                plugin=ex.command,
            )
    elif ex.interactive_mode not in _INTERACTIVE_MODES:
        raise ExecPluginError(
            f"exec plugin '{ex.command}'{where} has interactiveMode "
            f"'{ex.interactive_mode}'; use one of {', '.join(_INTERACTIVE_MODES)}",
            context=ctx_name,
            plugin=ex.command,
        )


# --------------------------------------------------------------------------- loading


def load_kubeconfig(
    paths: Sequence[str] | None = None, *, read: dict[str, dict[str, Any]] | None = None
) -> Kubeconfig:
    """Read and merge kubeconfig files with client-go's first-wins rules.

    ``paths`` defaults to :func:`kubeconfig_paths` evaluated now. Missing files are skipped;
    a file that cannot be read or parsed, or whose lists have the wrong shape, raises
    KubeconfigError naming the file (and line or field). ``read`` holds the files already
    parsed in this operation, by absolute path, and receives the ones read now: one operation
    that merges two views of the same files (the user's and an admin policy's) reads each once.
    """
    if paths is None:
        paths = kubeconfig_paths()
    kc = Kubeconfig()
    kc.searched = tuple(os.path.abspath(p) for p in paths)
    files: list[str] = []
    ctx_order: dict[str, None] = {}
    ctx_first: dict[str, tuple[str, dict[str, Any]]] = {}
    shadows: dict[str, list[str]] = {}
    for raw_path in paths:
        path = os.path.abspath(raw_path)
        if path in files or not os.path.exists(path):
            continue
        doc = read.get(path) if read is not None else None
        if doc is None:
            doc = _read_file(path)
            if read is not None:
                read[path] = doc
        files.append(path)
        base_dir = os.path.dirname(path)
        cur = doc.get("current-context")
        if cur is not None and not isinstance(cur, str):
            raise KubeconfigError(
                f"kubeconfig {path}: current-context must be a context name, got "
                f"{type(cur).__name__}",
                path=path,
                field="current-context",
            )
        if cur and kc.current_context is None:
            kc.current_context = cur
            kc.current_context_file = path
        for list_key, kind, body_key in (
            ("clusters", "cluster", "cluster"),
            ("users", "user", "user"),
            ("contexts", "context", "context"),
        ):
            for name, body in _named_entries(path, doc, list_key, body_key):
                if kind == "context":
                    if name in ctx_first:
                        shadows.setdefault(name, []).append(path)
                        continue
                    ctx_order[name] = None
                    ctx_first[name] = (path, body)
                    continue
                if (kind, name) in kc._origin:
                    continue
                kc._origin[(kind, name)] = path
                try:
                    if kind == "cluster":
                        kc.clusters[name] = _parse_cluster(name, body, base_dir)
                    else:
                        kc.users[name] = _parse_user(name, body, base_dir)
                except _EntryProblem as exc:
                    kc._broken[(kind, name)] = _Broken(exc.message, path, exc.field)
    for name in ctx_order:
        path, body = ctx_first[name]
        kc._origin[("context", name)] = path
        try:
            kc.contexts[name] = _parse_context(name, body, path, tuple(shadows.get(name, ())))
        except _EntryProblem as exc:
            kc._broken[("context", name)] = _Broken(exc.message, path, exc.field)
    kc.files = tuple(files)
    return kc


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise KubeconfigError(
            f"kubeconfig {path} cannot be read ({exc.strerror or exc}); fix its permissions or "
            "remove it from KUBECONFIG",
            path=path,
        ) from None
    try:
        doc = yaml.load(data, Loader=_Loader)  # a SafeLoader: no object construction
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise KubeconfigError(
            f"kubeconfig {path} is not valid YAML{where}: {problem}; fix the file or remove it "
            "from KUBECONFIG",
            path=path,
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"kubeconfig {path} must be a mapping (apiVersion, clusters, users, contexts), got "
            f"{_type_name(doc)}; is this really a kubeconfig?",
            path=path,
            field="(top level)",
        )
    return doc


def _named_entries(
    path: str, doc: dict[str, Any], list_key: str, body_key: str
) -> list[tuple[str, dict[str, Any]]]:
    items = doc.get(list_key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise KubeconfigError(
            f"kubeconfig {path}: {list_key} must be a list of {{name, {body_key}}} entries, got "
            f"{_type_name(items)}",
            path=path,
            field=list_key,
        )
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{list_key}[{i}]"
        if not isinstance(item, dict):
            raise KubeconfigError(
                f"kubeconfig {path}: {where} must be a mapping with name and {body_key}, got "
                f"{_type_name(item)}",
                path=path,
                field=where,
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise KubeconfigError(
                f"kubeconfig {path}: {where}.name must be a non-empty string; give the entry "
                "a name",
                path=path,
                field=f"{where}.name",
            )
        if name in seen:
            raise KubeconfigError(
                f"kubeconfig {path}: {where}.name '{name}' is defined twice in {list_key}; "
                "remove or rename one",
                path=path,
                field=f"{where}.name",
            )
        seen.add(name)
        out.append((name, item))
    return out


class _EntryProblem(Exception):
    def __init__(self, message: str, fld: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = fld


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"{type(value).__name__} {value!r}"[:60]
    )


def _body(entry: dict[str, Any], key: str) -> dict[str, Any]:
    body = entry.get(key)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _EntryProblem(f"`{key}` must be a mapping, got {_type_name(body)}", key)
    return body


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _EntryProblem(f"`{key}` must be a string, got {_type_name(value)}", key)
    return value


def _opt_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _EntryProblem(
            f"`{key}` must be true or false, got {_type_name(value)}; write it unquoted", key
        )
    return value


def _opt_path(body: dict[str, Any], key: str, base_dir: str) -> str | None:
    value = _opt_str(body, key)
    if value is None:
        return None
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _opt_b64(body: dict[str, Any], key: str) -> bytes | None:
    value = _opt_str(body, key)
    if value is None:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        # Never echo the value: it may be key material.
        raise _EntryProblem(
            f"`{key}` is not valid base64; paste the base64 of the PEM file (`base64 -w0 FILE`)",
            key,
        ) from None


def _extensions(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("extensions")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise _EntryProblem(
            f"`extensions` must be a list of {{name, extension}}, got {_type_name(raw)}",
            "extensions",
        )
    out: dict[str, Any] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _EntryProblem(
                f"`extensions[{i}]` must be a mapping with a string name", f"extensions[{i}]"
            )
        out.setdefault(item["name"], item.get("extension"))
    return out


def _parse_cluster(name: str, entry: dict[str, Any], base_dir: str) -> ClusterInfo:
    body = _body(entry, "cluster")
    server = body.get("server")
    if server is not None and not isinstance(server, str):
        raise _EntryProblem(f"`server` must be a URL string, got {_type_name(server)}", "server")
    return ClusterInfo(
        name=name,
        server=server or "",
        tls_server_name=_opt_str(body, "tls-server-name"),
        insecure_skip_tls_verify=_opt_bool(body, "insecure-skip-tls-verify"),
        certificate_authority=_opt_path(body, "certificate-authority", base_dir),
        certificate_authority_data=_opt_b64(body, "certificate-authority-data"),
        proxy_url=_opt_str(body, "proxy-url"),
        disable_compression=_opt_bool(body, "disable-compression"),
        extensions=_extensions(body),
    )


def _parse_user(name: str, entry: dict[str, Any], base_dir: str) -> UserInfo:
    body = _body(entry, "user")
    ex = None
    raw_exec = body.get("exec")
    if raw_exec is not None:
        ex = _parse_exec(raw_exec, base_dir)
    provider = body.get("auth-provider")
    if provider is not None and not isinstance(provider, dict):
        raise _EntryProblem(
            f"`auth-provider` must be a mapping, got {_type_name(provider)}", "auth-provider"
        )
    return UserInfo(
        name=name,
        client_certificate=_opt_path(body, "client-certificate", base_dir),
        client_certificate_data=_opt_b64(body, "client-certificate-data"),
        client_key=_opt_path(body, "client-key", base_dir),
        client_key_data=_opt_b64(body, "client-key-data"),
        token=_opt_str(body, "token"),
        token_file=_opt_path(body, "tokenFile", base_dir),
        username=_opt_str(body, "username"),
        password=_opt_str(body, "password"),
        exec=ex,
        auth_provider=provider,
    )


def _parse_exec(raw: object, base_dir: str) -> ExecConfig:
    if not isinstance(raw, dict):
        raise _EntryProblem(f"`exec` must be a mapping, got {_type_name(raw)}", "exec")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise _EntryProblem("`exec.args` must be a list of strings", "exec.args")
    env_raw = raw.get("env") or []
    if not isinstance(env_raw, list):
        raise _EntryProblem("`exec.env` must be a list of {name, value}", "exec.env")
    env: list[tuple[str, str]] = []
    for i, item in enumerate(env_raw):
        if not isinstance(item, dict):
            raise _EntryProblem(f"`exec.env[{i}]` must be a mapping {{name, value}}", "exec.env")
        env_name = item.get("name") or ""
        value = item.get("value")
        if not isinstance(env_name, str) or (value is not None and not isinstance(value, str)):
            raise _EntryProblem(f"`exec.env[{i}]` name and value must be strings", "exec.env")
        env.append((env_name, value or ""))
    try:
        command = _opt_str(raw, "command") or ""
        api_version = _opt_str(raw, "apiVersion") or ""
        install_hint = _opt_str(raw, "installHint")
        interactive = _opt_str(raw, "interactiveMode")
        provide = _opt_bool(raw, "provideClusterInfo")
    except _EntryProblem as exc:
        raise _EntryProblem(exc.message.replace("`", "`exec.", 1), "exec." + exc.field) from None
    if interactive is None and api_version.endswith("/v1beta1"):
        interactive = "IfAvailable"  # v1beta1's documented default
    return ExecConfig(
        command=command,
        args=tuple(args),
        env=tuple(env),
        api_version=api_version,
        install_hint=install_hint,
        provide_cluster_info=provide,
        interactive_mode=interactive,
        base_dir=base_dir,
    )


def _parse_context(
    name: str, entry: dict[str, Any], path: str, shadowed_in: tuple[str, ...]
) -> ContextInfo:
    body = _body(entry, "context")
    return ContextInfo(
        name=name,
        cluster=_opt_str(body, "cluster") or "",
        user=_opt_str(body, "user") or "",
        namespace=_opt_str(body, "namespace") or "default",
        defined_in=path,
        shadowed_in=shadowed_in,
    )
