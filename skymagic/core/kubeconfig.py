"""Kubeconfig loading with client-go's semantics, not the official Python client's.

Why our own loader: users run many clusters from one notebook, usually with a multi-file
``KUBECONFIG`` that cloud CLIs wrote. The official Python client reads ``KUBECONFIG`` once at
import (a later ``%env`` is ignored), lets the LAST file's ``current-context`` win even when it
is empty, and turns broken entries into anonymous requests. kubectl (client-go) does none of
that, and users compare us with kubectl. The rules we follow (client-go tools/clientcmd loader.go):

- ``KUBECONFIG`` is read at call time; it is an ``os.pathsep`` list, deduplicated, in order;
  missing files are skipped; with no ``KUBECONFIG``, ``~/.kube/config``.
- The FIRST file that defines a cluster, user or context name wins the whole entry.
- ``current-context`` comes from the first file with a non-empty value.
- Relative paths resolve against the directory of the file that held them.

Loading is strict about the shape of a file (one broken file is named, with its line) and lazy
about the contents of an entry: a context whose cluster has a bad field fails only when that
context is resolved, so one broken context never hides the other forty in a fan-out. The
entries themselves are in entries.py, the per-file parsing in kubeconfig_parse.py.

What happens for each missing or malformed field (``id`` = the test case in
tests/unit/core/test_kubeconfig.py; the client-go cases behind them are mirrored in
tests/unit/core/test_kubeconfig_clientgo.py):

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
list-shape                  ``clusters``/``users``/``contexts`` not a list: KubeconfigError
                            naming the file and the field
nameless-entry              an item that is not a mapping, or whose ``name`` is missing, not
                            a string or ``""``: skipped with a line in
                            ``Kubeconfig.warnings`` (every operation shows it); the rest of
                            the file loads -- a context named "" breaks only itself
duplicate-name              the same name twice in ONE file: KubeconfigError (as client-go)
duplicate-extension         the same extension name twice in one ``extensions`` list (top
                            level, or of a cluster, user or context): KubeconfigError naming
                            the file and the list (as client-go's loader)
context-missing             ``resolve(name)`` for an unknown name: KubeconfigError naming the
                            context, the files read and the contexts that exist
context-no-cluster          context without ``cluster``: KubeconfigError, field ``cluster``
cluster-missing             context names a cluster no file defines: KubeconfigError
no-server                   cluster without ``server``: KubeconfigError
server-no-scheme            ``server: host:6443``: ``http://`` is assumed, whatever TLS
                            settings the entry has, so (see plain-http) no credential is sent
                            -- exactly kubectl's rule: client-go decides "secure" from the
                            bare host before it reads the CA or certificate
plain-http                  ``server: http://...``: resolves, but ``auth_kind`` is ``none``:
                            no token, basic auth or client certificate is sent and no exec
                            plugin runs, as client-go ("only try to read the auth information
                            if we are secure"); ``configured_auth_kind`` keeps what the user
                            entry has, and ``check`` warns
server-bad-scheme           ``server: ftp://...`` or no host: KubeconfigError
bad-field-type              e.g. ``insecure-skip-tls-verify: "yes"`` or ``server: 3``:
                            KubeconfigError naming the entry and field, at resolve time
bad-base64                  ``*-data`` that is not base64: KubeconfigError naming the entry
                            and field, at resolve time (other contexts still work)
ca-file-missing             ``certificate-authority`` file does not exist: KubeconfigError
                            naming the absolute path, at resolve time
ca-file-and-data            both ``certificate-authority`` and ``-data``: KubeconfigError, as
                            kubectl ("both specified")
proxy-url-invalid           ``proxy-url`` without a scheme or with one other than http,
                            https, socks5: KubeconfigError, field ``proxy-url``
user-not-specified          context without ``user``: anonymous (``auth_kind == "none"``)
user-missing                context names a user no file defines: KubeconfigError
cert-without-key            ``client-certificate(-data)`` without ``client-key(-data)``, or
                            the other way round: KubeconfigError
cert-file-and-data          ``client-certificate`` and ``client-certificate-data`` both set, or
                            ``client-key`` and ``client-key-data``: KubeconfigError (kubectl)
token-and-token-file        both: ``tokenFile`` wins (``auth_kind == "token-file"``), and the
                            token is sent while the file cannot be read (client-go's
                            fallback to the static token)
token-and-basic             token and username/password: KubeconfigError, one method only
impersonate                 ``as``, ``as-uid``, ``as-groups``, ``as-user-extra``: every
                            request carries ``Impersonate-User``/``-Uid``/``-Group`` (one
                            per group)/``-Extra-KEY`` (one per value), as kubectl's
impersonate-no-user         ``as-uid``, ``as-groups`` or ``as-user-extra`` without ``as``:
                            KubeconfigError (client-go: "without impersonating a user")
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
exec-install-hint           control characters in ``installHint`` (ESC and friends) are shown
                            as ``U+001B``: a kubeconfig cannot inject terminal formatting
auth-provider               deprecated ``auth-provider``: resolves (``auth_kind ==
                            "auth-provider"``); auth.py then raises AuthError, never anonymous
namespace-default           context without ``namespace`` (or empty): ``default``
==========================  =================================================================

Where skymagic deliberately differs from client-go, and why (auth.py has the credential
ones):

==========================  =================================================================
divergence                  client-go / skymagic, and the reason
==========================  =================================================================
no-default-server           client-go: a cluster without ``server`` (or no kubeconfig at all)
                            means ``http://localhost:8080`` (kubectl's ClusterDefaults).
                            skymagic: KubeconfigError. A notebook must never send requests
                            to whatever happens to listen on localhost:8080.
missing-user-is-error       client-go: a context naming an undefined user is silently
                            anonymous. skymagic: KubeconfigError naming the user -- the
                            anonymous requests would fail later as a puzzling 403 for
                            system:anonymous, far from the typo.
missing-cluster-is-error    client-go: an undefined cluster is an empty one, so "no
                            configuration" and localhost:8080. skymagic: KubeconfigError
                            naming the cluster, for the same reason.
no-in-cluster-fallback      kubectl with no kubeconfig inside a pod uses the service account.
                            skymagic does not: launched pods get a flattened kubeconfig
                            (LOCAL_CREDENTIALS), and a notebook on a cluster node must not
                            silently act as that node's service account.
nameless-entries-skipped    client-go loads an item without a name under the name "" and
                            its Validate refuses the whole config. skymagic skips the item
                            with a warning: one broken entry never hides the others.
==========================  =================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from skymagic.core.entries import (
    EXEC_API_VERSIONS,
    ClusterInfo,
    ContextInfo,
    ExecConfig,
    ResolvedContext,
    UserInfo,
)
from skymagic.core.kubeconfig_parse import (
    EntryProblem,
    check_extension_names,
    named_entries,
    parse_cluster,
    parse_context,
    parse_user,
    read_file,
)
from skymagic.errors import ExecPluginError, KubeconfigError

__all__ = ["Kubeconfig", "kubeconfig_paths", "load_kubeconfig", "validate_exec"]

_INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")

_Entry = TypeVar("_Entry", ClusterInfo, UserInfo)


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
        warnings: entries that were skipped because nothing can name them (an item without
            a name, or not a mapping); operations show them next to their results.
    """

    def __init__(self) -> None:
        self.files: tuple[str, ...] = ()
        self.searched: tuple[str, ...] = ()
        self.contexts: dict[str, ContextInfo] = {}
        self.clusters: dict[str, ClusterInfo] = {}
        self.users: dict[str, UserInfo] = {}
        self.current_context: str | None = None
        self.current_context_file: str | None = None
        self.warnings: list[str] = []
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
        cluster_file = self.origin("cluster", cluster.name) or path
        server = _check_server(name, cluster, cluster_file)
        if server != cluster.server:
            cluster = replace(cluster, server=server)
        _check_cluster(name, cluster, cluster_file)
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


def _blame(ctx_name: str, path: str | None, where: str) -> Callable[[str, str], KubeconfigError]:
    """How one check of an entry fails: `where` (the entry, its file), what is wrong and the
    fix, and the field to look at."""

    def fail(msg: str, fld: str) -> KubeconfigError:
        return KubeconfigError(f"{where} {msg}", context=ctx_name, path=path, field=fld)

    return fail


def _check_server(ctx_name: str, cluster: ClusterInfo, path: str) -> str:
    """The server URL to use; KubeconfigError when there is none or it is not http(s).

    A server without a scheme gets ``http://``, whatever TLS settings the entry has: kubectl
    decides "secure or not" from the bare host before it reads the CA or the certificate
    (client-go's DirectClientConfig.ClientConfig and rest.DefaultServerURL), so it talks
    plain http to ``host:6443`` and, being insecure, sends no credentials.
    """
    fail = _blame(ctx_name, path, f"cluster '{cluster.name}' (in {path})")
    server = cluster.server.strip()
    if not server:
        raise fail("has no server; add `server: https://HOST:PORT` to it", "server")
    parts = urlsplit(server)
    if not parts.scheme or not parts.netloc:
        server = "http://" + server
        parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(
            f"has server '{cluster.server}', which is not an http(s) URL; write "
            "`server: https://HOST:PORT`",
            "server",
        )
    return server


_PROXY_SCHEMES = ("http", "https", "socks5")


def _check_cluster(ctx_name: str, cluster: ClusterInfo, path: str) -> None:
    """client-go's validateClusterInfo: one CA source, a readable CA file, a usable proxy."""
    fail = _blame(ctx_name, path, f"cluster '{cluster.name}' (in {path})")
    ca_file = cluster.certificate_authority
    if ca_file and cluster.certificate_authority_data:
        raise fail(
            "sets both certificate-authority and certificate-authority-data; keep one "
            "(kubectl refuses this too)",
            "certificate-authority",
        )
    if ca_file and not os.path.isfile(ca_file):
        raise KubeconfigError(
            f"cluster '{cluster.name}' certificate-authority file "
            f"{ca_file} does not exist; fix the path or inline it as "
            "certificate-authority-data",
            context=ctx_name,
            path=ca_file,
            field="certificate-authority",
        )
    proxy = cluster.proxy_url
    if proxy is not None:
        parts = urlsplit(proxy)
        if parts.scheme not in _PROXY_SCHEMES or not parts.netloc:
            shown = f"scheme '{parts.scheme}'" if parts.scheme else "no scheme"
            raise fail(
                f"has proxy-url '{proxy}' with {shown}; write "
                "`proxy-url: http://HOST:PORT` (or https://, socks5://)",
                "proxy-url",
            )


def _check_user(ctx_name: str, user: UserInfo, path: str) -> None:
    fail = _blame(ctx_name, path, f"user '{user.name}' (in {path})")

    for fld, file_value, data_value in (
        ("client-certificate", user.client_certificate, user.client_certificate_data),
        ("client-key", user.client_key, user.client_key_data),
    ):
        if file_value and data_value:
            raise fail(f"sets both {fld} and {fld}-data; keep one (kubectl refuses this too)", fld)
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
    if not user.impersonate and (
        user.impersonate_uid or user.impersonate_groups or user.impersonate_extra
    ):
        asked = [
            f
            for f, v in (
                ("as-uid", user.impersonate_uid),
                ("as-groups", user.impersonate_groups),
                ("as-user-extra", user.impersonate_extra),
            )
            if v
        ]
        raise fail(
            f"sets {' and '.join(asked)} without `as`; impersonating groups or extras needs "
            "a user to impersonate (add `as: USER`)",
            asked[0],
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
    fail = _blame(ctx_name, path, f"exec{where}")
    if not ex.command:
        raise fail("has no command; add `command: <plugin>`", "exec.command")
    for env_name, _ in ex.env:
        if not env_name:
            raise fail(
                "has an env entry without a name; give every env entry `name:` and `value:`",
                "exec.env",
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
            doc = read_file(path)
            check_extension_names(path, doc)
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
            entries, skipped = named_entries(path, doc, list_key, body_key)
            kc.warnings.extend(skipped)
            for name, body in entries:
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
                        kc.clusters[name] = parse_cluster(name, body, base_dir)
                    else:
                        kc.users[name] = parse_user(name, body, base_dir)
                except EntryProblem as exc:
                    kc._broken[(kind, name)] = _Broken(exc.message, path, exc.field)
    for name in ctx_order:
        path, body = ctx_first[name]
        kc._origin[("context", name)] = path
        try:
            kc.contexts[name] = parse_context(name, body, path, tuple(shadows.get(name, ())))
        except EntryProblem as exc:
            kc._broken[("context", name)] = _Broken(exc.message, path, exc.field)
    kc.files = tuple(files)
    return kc
