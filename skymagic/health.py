"""`%sky_check` / `skymagic check`: is each allowed context usable, and if not, why?

All allowed contexts are checked in parallel (SkyPilot checks them one after another, so one
black-holed context costs its full timeout per context). For each context, in order:

1. its kubeconfig entry resolves (else `config` / `exec`),
2. the API server answers `/version` with our credential (reachable, authenticated),
3. SelfSubjectAccessReviews: list nodes, list pods in all namespaces, create pods in the
   context's namespace (the permissions inventory and launch need),
4. the nodes carry GPUs, and every GPU node has a recognised label scheme,
5. SkyPilot's rule: exec-auth contexts need `remote_identity: LOCAL_CREDENTIALS` for launched
   pods to reach the clusters (a warning, as in SkyPilot).

A context is *enabled* when 1-2 pass and it may create pods; missing read permissions and
unlabelled GPU nodes are warnings that say what will be degraded and how to fix it.
"""

from __future__ import annotations

import html
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from skymagic.core.client import ContextClient
from skymagic.core.config import config_path
from skymagic.core.entries import ResolvedContext
from skymagic.core.fanout import ContextResult, fan_out
from skymagic.core.targets import Settings, Targets, missing_context_warning, resolve_targets
from skymagic.errors import ForbiddenError, SkymagicError
from skymagic.gpus.accelerators import detect_node_gpus

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CheckReport", "ContextCheck", "check"]

_FRAME_COLUMNS = [
    "context",
    "enabled",
    "reason",
    "server",
    "user",
    "auth",
    "namespace",
    "kubeconfig_file",
    "gpu_nodes",
    "latency_ms",
    "warnings",
]


@dataclass
class ContextCheck:
    """The verdict on one context."""

    context: str
    enabled: bool
    reason: str = ""
    error_kind: str | None = None
    server: str = ""
    user: str = ""
    auth: str = ""
    namespace: str = ""
    kubeconfig_file: str = ""
    shadowed_in: list[str] = field(default_factory=list)
    version: str = ""
    gpu_nodes: int = 0
    gpus: dict[str, int] = field(default_factory=dict)
    unlabelled_gpu_nodes: list[str] = field(default_factory=list)
    permissions: dict[str, bool] = field(default_factory=dict)
    latency_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """The result of a check: one ContextCheck per allowed context, in failover order."""

    contexts: list[ContextCheck]
    allowed_source: str
    missing_contexts: list[str] = field(default_factory=list)
    kubeconfig_files: list[str] = field(default_factory=list)
    config_file: str | None = None
    notes: list[str] = field(default_factory=list)
    current_context: str | None = None
    current_context_file: str | None = None
    checked_at: float = field(default_factory=time.time)
    # contexts of the kubeconfig that are not allowed, and the config file that would allow
    # them (the one read, or where one would be read: $SKYPILOT_CONFIG or ~/.sky/config.yaml)
    other_contexts: list[str] = field(default_factory=list)
    config_target: str = ""

    @property
    def enabled(self) -> bool:
        return any(c.enabled for c in self.contexts)

    def __getitem__(self, context: str) -> ContextCheck:
        for c in self.contexts:
            if c.context == context:
                return c
        raise KeyError(context)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for c in self.contexts:
            row = {k: getattr(c, k) for k in _FRAME_COLUMNS}
            row["warnings"] = "; ".join(c.warnings)
            rows.append(row)
        frame: pd.DataFrame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "allowed_source": self.allowed_source,
            "missing_contexts": self.missing_contexts,
            "kubeconfig_files": self.kubeconfig_files,
            "config_file": self.config_file,
            "notes": self.notes,
            "current_context": self.current_context,
            "current_context_file": self.current_context_file,
            "other_contexts": self.other_contexts,
            "config_target": self.config_target,
            "contexts": [asdict(c) for c in self.contexts],
        }

    # -- display -----------------------------------------------------------------------------
    def _lines(self) -> list[tuple[int, str, str]]:
        """(depth, css class, text) lines of the SkyPilot-style tree."""
        lines: list[tuple[int, str, str]] = []
        state = "enabled" if self.enabled else "disabled"
        lines.append((0, "", "Checking credentials to enable infra for skymagic."))
        lines.append((0, state, f"Kubernetes: {state}"))
        for note in self.notes:
            lines.append((1, "warn", note))
        if not self.contexts:
            lines.append((1, "disabled", "No allowed contexts. " + (self.notes_hint())))
        else:
            lines.append((1, "", "Allowed contexts:"))
            lines.append((1, "detail", f"    ({self._source()})"))
        for i, c in enumerate(self.contexts):
            branch = "└── " if i == len(self.contexts) - 1 else "├── "
            cont = "    " if i == len(self.contexts) - 1 else "│   "
            if c.enabled:
                lines.append((1, "enabled", f"{branch}{c.context}: enabled."))
            else:
                lines.append((1, "disabled", f"{branch}{c.context}: disabled. Reason: {c.reason}"))
            detail = f"{cont}    server {c.server or '?'}, user {c.user or '?'} ({c.auth or '?'})"
            if c.latency_ms:
                detail += f", {c.latency_ms:.0f} ms"
            lines.append((2, "detail", detail))
            if c.kubeconfig_file:
                src = f"{cont}    from {c.kubeconfig_file}"
                if c.shadowed_in:
                    src += f" (shadows the same name in {', '.join(c.shadowed_in)})"
                lines.append((2, "detail", src))
            if c.enabled:
                gpus = ", ".join(f"{n} x {g}" for g, n in sorted(c.gpus.items())) or "no GPUs"
                lines.append((2, "detail", f"{cont}    {c.gpu_nodes} GPU nodes: {gpus}"))
            for w in c.warnings:
                lines.append((2, "warn", f"{cont}    Warning: {w}"))
        for name in self.missing_contexts:
            lines.append((1, "warn", f"Warning: {missing_context_warning(name)}"))
        lines.extend((1, "hint", text) for text in self._allow_more())
        return lines

    def _allow_more(self) -> list[str]:
        """How to allow the kubeconfig's other contexts: the file to edit, or one line.

        Short lines, each a whole phrase, so no front end has to wrap inside a word.
        """
        if not self.other_contexts or self.allowed_source in ("all", "override"):
            return []
        n = len(self.other_contexts)
        where = self.config_target or "~/.sky/config.yaml"
        return [
            f"{n} more context{'s' if n > 1 else ''} in the kubeconfig: "
            f"{', '.join(self.other_contexts)}.",
            f"To allow {'them' if n > 1 else 'it'}, add to {where}:",
            "    kubernetes:",
            "      allowed_contexts: all      # or a list, in failover order",
            "or, for this session only:",
            "    %config SkyMagics.allowed_contexts = 'all'",
        ]

    def _source(self) -> str:
        """Why these contexts: users with several kubeconfig files need to see which decided."""
        if self.allowed_source == "current-context":
            where = f" from {self.current_context_file}" if self.current_context_file else ""
            return f"current-context '{self.current_context}'{where}"
        if self.allowed_source == "override":
            return "set for this session: %config SkyMagics.allowed_contexts"
        where = self.config_file or "the config file"
        if self.allowed_source == "all":
            return f"allowed_contexts: all, in {where}; kubeconfig order"
        return f"kubernetes.allowed_contexts in {where}; failover order"

    def notes_hint(self) -> str:
        where = self.config_target or "~/.sky/config.yaml"
        return (
            f"Set kubernetes.allowed_contexts in {where}, or a current-context in the kubeconfig."
        )

    def __str__(self) -> str:
        return "\n".join("  " * min(d, 1) + text for d, _cls, text in self._lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colours = {
            "enabled": "#1a7f37",
            "disabled": "#cf222e",
            "warn": "#9a6700",
            "detail": "#57606a",
            "hint": "#0550ae",
        }
        # Wrap only between words: a notebook's narrow column must not split a path or a name.
        out = [
            '<pre style="line-height:1.35;white-space:pre-wrap;word-break:normal;'
            'overflow-wrap:break-word">'
        ]
        for depth, cls, text in self._lines():
            style = f"color:{colours[cls]}" if cls in colours else ""
            pad = "  " * min(depth, 1)
            out.append(f'<span style="{style}">{pad}{html.escape(text)}</span>')
        out.append("</pre>")
        return "\n".join(out)


def _list_nodes(client: ContextClient) -> list[tuple[str, dict[str, str], dict[str, str]]] | None:
    """(name, labels, allocatable) per node, or None when RBAC forbids listing nodes."""
    try:
        nodes, _ = client.list_items(
            "/api/v1/nodes",
            {"resourceVersion": "0"},
            pick=lambda n: (
                n["metadata"]["name"],
                n["metadata"].get("labels") or {},
                n.get("status", {}).get("allocatable") or {},
            ),
        )
    except ForbiddenError:
        return None
    return nodes


def _check_one(client: ContextClient, targets: Targets) -> ContextCheck:
    resolved = client.resolved
    ctx = resolved.context
    result = ContextCheck(
        context=client.name,
        enabled=False,
        server=client.server,
        user=ctx.user,
        auth=client.auth_kind,
        namespace=client.namespace,
        kubeconfig_file=ctx.defined_in,
        shadowed_in=list(ctx.shadowed_in),
    )
    result.warnings.extend(_entry_warnings(resolved))
    start = time.monotonic()
    version = client.version()
    result.latency_ms = (time.monotonic() - start) * 1000
    result.version = str(version.get("gitVersion", ""))
    create_key = f"create pods in {client.namespace}"
    # After /version proved the server answers, the three access reviews and the node list go
    # out together: two round trips per context instead of five (real clusters are 20-100 ms
    # away). The node list is speculative; a 403 just means "may not list nodes".
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="skymagic-check") as pool:
        reviews = {
            "list nodes": pool.submit(client.can_i, "list", "nodes"),
            "list pods (all namespaces)": pool.submit(client.can_i, "list", "pods"),
            create_key: pool.submit(client.can_i, "create", "pods", client.namespace),
        }
        nodes_future = pool.submit(_list_nodes, client)
        # Only "may create pods" decides whether the context is enabled; a read probe that
        # failed (a 5xx after its retries) degrades to a warning instead of disabling it.
        perms = {create_key: reviews[create_key].result()}
        for key in ("list nodes", "list pods (all namespaces)"):
            try:
                perms[key] = reviews[key].result()
            except SkymagicError as exc:
                perms[key] = False
                result.warnings.append(f"could not check '{key}': {exc.message}")
        nodes_failed = False
        try:
            nodes = nodes_future.result()
        except SkymagicError as exc:
            nodes, nodes_failed = None, True
            result.warnings.append(f"could not list nodes: {exc.message}")
    result.permissions = perms
    if not perms[create_key]:
        result.reason = (
            f"user '{ctx.user}' may not create pods in namespace '{client.namespace}'; ask the "
            "cluster admin for a Role that allows it, or set the context's namespace to one "
            "where you may"
        )
        result.error_kind = "forbidden"
    else:
        result.enabled = True
    if not perms["list pods (all namespaces)"]:
        result.warnings.append(
            "may not list pods across all namespaces: GPU inventory shows totals but not free "
            "GPUs (needs a ClusterRole with list on pods)"
        )
    if perms["list nodes"] and nodes is not None:
        for name, labels, alloc in nodes:
            ids = detect_node_gpus(labels, alloc)
            if not ids:
                continue
            result.gpu_nodes += 1
            for ident in ids:
                if ident.scheme == "unlabelled":
                    result.unlabelled_gpu_nodes.append(name)
                result.gpus[ident.canonical] = result.gpus.get(ident.canonical, 0) + int(
                    float(alloc.get(ident.resource, 0))
                )
        if result.unlabelled_gpu_nodes:
            shown = ", ".join(result.unlabelled_gpu_nodes[:3])
            more = len(result.unlabelled_gpu_nodes) - 3
            result.warnings.append(
                f"GPU nodes without a recognised GPU label: {shown}"
                f"{f' and {more} more' if more > 0 else ''}; "
                "label them (e.g. `kubectl label node NODE skypilot.co/accelerator=h100`) or "
                "install NVIDIA GPU Feature Discovery"
            )
    elif not nodes_failed:
        result.warnings.append("may not list nodes: GPU inventory will be empty for this context")
    identity = targets.config.remote_identity_for(client.name)
    if client.auth_kind == "exec" and identity != "LOCAL_CREDENTIALS":
        result.warnings.append(
            "uses exec-based auth; set kubernetes.remote_identity: LOCAL_CREDENTIALS so "
            "launched pods can reach the clusters (SkyPilot's rule)"
        )
    return result


def _entry_warnings(resolved: ResolvedContext) -> list[str]:
    """What the kubeconfig entry itself gets wrong even when it resolves."""
    if not resolved.secure and resolved.configured_auth_kind != "none":
        return [
            f"server {resolved.cluster.server} is plain http: like kubectl, skymagic sends it no "
            f"credentials (the user's {resolved.configured_auth_kind} is ignored); write "
            "`server: https://...` in the kubeconfig"
        ]
    return []


def _from_error(res: ContextResult[ContextCheck], targets: Targets) -> ContextCheck:
    assert res.error is not None
    c = ContextCheck(context=res.context, enabled=False, reason=res.error.message)
    c.error_kind = res.error_kind
    c.latency_ms = res.latency_ms
    info = targets.kubeconfig.contexts.get(res.context)
    if info is not None:
        c.user = info.user
        c.namespace = info.namespace
        c.kubeconfig_file = info.defined_in
        c.shadowed_in = list(info.shadowed_in)
        cluster = targets.kubeconfig.clusters.get(info.cluster)
        if cluster is not None:
            c.server = cluster.server
        try:
            resolved = targets.kubeconfig.resolve(res.context)
        except SkymagicError:
            c.auth = "?"
        else:
            c.auth = resolved.auth_kind
            c.warnings.extend(_entry_warnings(resolved))
    return c


def check(settings: Settings | None = None, infra: str | None = None) -> CheckReport:
    """Check every allowed context (or the one `infra` pins) in parallel."""
    settings = settings or Settings()
    targets = resolve_targets(settings, infra, operation="check")
    results = fan_out(targets, lambda client: _check_one(client, targets), settings)
    contexts = []
    for res in results:
        if res.error is None and res.value is not None:
            contexts.append(res.value)
        else:
            contexts.append(_from_error(res, targets))
    notes = []
    if targets.policy is not None:
        notes.append(f"Admin policy {targets.policy.name} is active.")
        notes.extend(f"Admin policy: {n}" for n in targets.policy.notes)
    if targets.allowed.reason and not targets.contexts:
        notes.append(targets.allowed.reason)
    notes.extend(targets.kubeconfig.warnings)
    return CheckReport(
        contexts=contexts,
        allowed_source=targets.allowed.source,
        missing_contexts=list(targets.allowed.missing),
        kubeconfig_files=list(targets.kubeconfig.files),
        config_file=targets.config.path,
        notes=notes,
        current_context=targets.kubeconfig.current_context,
        current_context_file=targets.kubeconfig.current_context_file,
        other_contexts=[
            c
            for c in targets.kubeconfig.contexts
            if c not in targets.allowed.names and c not in targets.excluded
        ],
        config_target=targets.config.path or settings.config_file or config_path(),
    )
