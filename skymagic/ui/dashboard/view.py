"""The dashboard's view model: an Inventory (and the filters, a click) in, what to show out.

Pure: no widgets, no requests, no threads, so every rule here is unit-tested without a fleet.
`build_view` turns an Inventory into nodes (one per node, its GPU resources added up) and
cards (one per context); `frame` narrows them by the filters into the grid's and the cards'
trait values; `select_node` / `select_gpu` say what a click shows and whose pods to list;
`pods_html` renders that list. The app assigns the results to widgets; the snapshot renders
them as text and HTML.

Managed jobs: a node whose GPUs a managed job's pod holds carries a small tag (`job_tag`:
the job's number) and a tooltip line saying which jobs and how to stop them (`job_hint`),
from the inventory's `jobs` column, which `counting.job_of` fills from the pods' labels
(the same rule the pod table's badge reads): no request beyond the inventory's own.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from skymagic.gpus.counting import jobs_text

if TYPE_CHECKING:
    from skymagic.gpus.inventory import Inventory
    from skymagic.gpus.pods import PodRow

__all__ = [
    "ALL",
    "Filters",
    "Frame",
    "Node",
    "Selection",
    "Shown",
    "View",
    "build_view",
    "fit_answer",
    "frame",
    "free_colour",
    "held_for",
    "job_hint",
    "job_tag",
    "launch_cell",
    "pods_html",
    "select_gpu",
    "select_node",
    "shown",
    "status_kind",
    "updated_html",
]

ALL = ""  # a filter's "everything" value (the dropdowns' first option)

# {context, health, kind, message, latency_ms, mode, nodes, gpu_nodes, nodes_text, gpus,
#  empty}: `empty` is what the card says where it has no GPU rows.
Card = dict[str, Any]


@dataclass
class Node:
    """One node as the grid shows it: its GPU resources added up (a node may have several)."""

    context: str
    node: str
    gpus: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    total: int = 0
    free: int | None = 0  # None: unknown (the pods could not be read)
    status: str = ""
    taints: str = ""
    jobs: list[str] = field(default_factory=list)  # managed jobs holding its GPUs: "3", ...

    @property
    def key(self) -> str:
        return f"{self.context}/{self.node}"

    def to_trait(self) -> dict[str, Any]:
        """The grid's cell (widgets/node_grid.js reads these keys; `job` is the tag's text,
        `job_title` the tooltip's line about it, both "" on a node without a job)."""
        return {
            "id": self.key,
            "context": self.context,
            "node": self.node,
            "gpu": " + ".join(self.gpus),
            "total": self.total,
            "free": self.free,
            "status": self.status,
            "taints": self.taints,
            "job": job_tag(self.jobs),
            "job_title": job_hint(self.jobs),
        }


@dataclass(frozen=True)
class View:
    """Everything one refresh read, before filters."""

    contexts: list[str]
    nodes: list[Node]
    cards: list[Card]
    errors: dict[str, str]  # context -> "kind: message" (its first error row)
    gpu_types: list[str]
    fetched_at: float
    took_s: float


@dataclass(frozen=True)
class Filters:
    """The filter controls' values: a context, a GPU type (ALL: any), the least free per node."""

    context: str = ALL
    gpu: str = ALL
    min_free: int = 0


@dataclass(frozen=True)
class Shown:
    """What passes the filters: nodes and the contexts whose sections and cards show."""

    nodes: list[Node]
    contexts: list[str]


@dataclass(frozen=True)
class Frame:
    """Trait values for one redraw: the grid's sections and cells, the cards, the count line."""

    sections: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    cards: list[Card]
    shown: str


@dataclass(frozen=True)
class Selection:
    """A click on a node or on a card's GPU row: what the details say, whose pods to list."""

    kind: Literal["node", "gpu"]
    context: str
    key: str  # the node's name, or the GPU
    head: str  # the details' first line (HTML)
    nodes: tuple[str, ...]  # whose pods to list
    resources: tuple[str, ...]  # which resource names count as these GPUs
    launch_gpu: str | None  # what "launch here" asks for (None: the node has no GPUs)
    most: int  # the largest GPU count on one of the nodes ("launch here" may ask for up to it)


# --- an Inventory in ------------------------------------------------------------------------


def _opt_int(value: Any) -> int | None:
    """An Int64 cell as int, or None for a missing one (pandas' NA or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return int(value)
    except TypeError:  # pandas.NA refuses int()
        return None


def _nodes(inv: Inventory, all_nodes: bool) -> list[Node]:
    nodes: dict[tuple[str, str], Node] = {}
    cols = [
        *("context", "node", "gpu", "resource", "gpu_total", "gpu_free", "status", "taints"),
        "jobs",
    ]
    for ctx, name, gpu, resource, total, free, status, taints, jobs in inv.nodes[cols].itertuples(
        index=False, name=None
    ):
        key = (str(ctx), str(name))
        free_i = _opt_int(free)
        if free_i and status_kind(str(status)) == "tainted":
            # The nodes frame keeps a tainted node's free GPUs (a launch whose pod tolerates
            # the taint may use them); the grid, like the per-GPU totals, shows what any pod
            # may take there: none.
            free_i = 0
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = Node(
                str(ctx), str(name), status=str(status), taints=str(taints or "")
            )
        if isinstance(jobs, str) and jobs:  # a node's resources may name different jobs
            merged = jobs_text([*node.jobs, *jobs.split(", ")])
            node.jobs = merged.split(", ")
        if isinstance(gpu, str):
            node.gpus.append(gpu)
            node.resources.append(str(resource))
            node.total += _opt_int(total) or 0
            node.free = None if node.free is None or free_i is None else node.free + free_i
        elif free_i is None:
            node.free = None
    return [n for n in nodes.values() if all_nodes or n.gpus]


def build_view(inv: Inventory, modes: Mapping[str, str], *, all_nodes: bool, took_s: float) -> View:
    """The view of `inv`; `modes` says how each context was read ('watch' or 'list').

    A context with an error row and no nodes is in `error`; with nodes (a 403 on pods: free
    unknown) it is `degraded`. CPU-only nodes count in a card's nodes, and show in the grid
    only with `all_nodes`.
    """
    every = _nodes(inv, all_nodes=True)
    errors: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for ctx, kind, message in inv.errors[["context", "kind", "message"]].itertuples(
        index=False, name=None
    ):
        errors.setdefault(str(ctx), f"{kind}: {message}")
        kinds.setdefault(str(ctx), str(kind))
    per_ctx_nodes: dict[str, int] = {}
    per_ctx_gpu_nodes: dict[str, int] = {}
    for n in every:
        per_ctx_nodes[n.context] = per_ctx_nodes.get(n.context, 0) + 1
        if n.gpus:
            per_ctx_gpu_nodes[n.context] = per_ctx_gpu_nodes.get(n.context, 0) + 1
    gpus_by_ctx: dict[str, list[dict[str, Any]]] = {}
    for ctx, gpu, total, free in inv.by_context[
        ["context", "gpu", "gpu_total", "gpu_free"]
    ].itertuples(index=False, name=None):
        gpus_by_ctx.setdefault(str(ctx), []).append(
            {"gpu": str(gpu), "total": _opt_int(total) or 0, "free": _opt_int(free)}
        )
    cards: list[Card] = []
    for ctx in inv.contexts:
        health = ("degraded" if ctx in per_ctx_nodes else "error") if ctx in errors else "ok"
        latency = inv.latency_ms.get(ctx)
        cards.append(
            {
                "context": ctx,
                "health": health,
                "kind": kinds.get(ctx, ""),
                "message": errors.get(ctx, ""),
                "latency_ms": None if latency is None else round(float(latency), 1),
                "mode": modes.get(ctx, "list"),
                "nodes": per_ctx_nodes.get(ctx, 0),
                "gpu_nodes": per_ctx_gpu_nodes.get(ctx, 0),
                "nodes_text": nodes_text(per_ctx_nodes.get(ctx, 0), per_ctx_gpu_nodes.get(ctx, 0)),
                "gpus": gpus_by_ctx.get(ctx, []),
                "empty": "" if health == "error" else "no GPUs",
            }
        )
    return View(
        contexts=list(inv.contexts),
        nodes=[n for n in every if all_nodes or n.gpus],
        cards=cards,
        errors=errors,
        gpu_types=sorted({g["gpu"] for gs in gpus_by_ctx.values() for g in gs}),
        fetched_at=inv.fetched_at,
        took_s=took_s,
    )


def nodes_text(nodes: int, gpu_nodes: int) -> str:
    """A card's node count in the grid's terms: "3 nodes (2 with GPUs)".

    The grid shows GPU nodes only (unless `all_nodes`), so a bare "3 nodes" beside a grid of
    two cells reads as a node missing.
    """
    noun = "node" if nodes == 1 else "nodes"
    if gpu_nodes == nodes:
        return f"{nodes} {noun}"
    return f"{nodes} {noun} ({gpu_nodes or 'none'} with GPUs)"


# --- filters --------------------------------------------------------------------------------


def shown(view: View, filters: Filters) -> Shown:
    """The nodes and contexts that pass `filters` (a node of unknown free fails `min_free`)."""
    ctx, gpu, min_free = filters.context, filters.gpu, filters.min_free
    contexts = [c for c in view.contexts if ctx in (ALL, c)]
    nodes = [
        n
        for n in view.nodes
        if ctx in (ALL, n.context)
        and (gpu == ALL or gpu in n.gpus)
        and (min_free <= 0 or (n.free is not None and n.free >= min_free))
    ]
    return Shown(nodes, contexts)


def frame(view: View, filters: Filters) -> Frame:
    """The trait values after `filters`: a GPU filter also narrows each card to that GPU."""
    picked = shown(view, filters)
    total: dict[str, int] = {}
    for n in view.nodes:
        total[n.context] = total.get(n.context, 0) + 1
    visible: dict[str, int] = {}
    for n in picked.nodes:
        visible[n.context] = visible.get(n.context, 0) + 1
    cards = []
    for card in view.cards:
        if card["context"] not in picked.contexts:
            continue
        if filters.gpu != ALL:
            card = {
                **card,
                "gpus": [g for g in card["gpus"] if g["gpu"] == filters.gpu],
                "empty": "" if card["health"] == "error" else f"no {filters.gpu}",
            }
        cards.append(card)
    sections = [
        {
            "context": c,
            "error": view.errors.get(c, ""),
            "shown": visible.get(c, 0),
            "total": total.get(c, 0),
        }
        for c in picked.contexts
    ]
    return Frame(
        sections=sections,
        nodes=[n.to_trait() for n in picked.nodes],
        cards=cards,
        shown=f"{len(picked.nodes)} of {len(view.nodes)} nodes shown",
    )


def updated_html(view: View) -> str:
    """The "updated HH:MM:SS · N ms" line (the browser test reads `data-ts`)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(view.fetched_at))
    return (
        f"updated <span class='sky-updated' data-ts='{view.fetched_at:.3f}'>{stamp}</span>"
        f" · {view.took_s * 1000:.0f} ms"
    )


# --- clicks ---------------------------------------------------------------------------------


def select_node(view: View | None, context: str, node: str) -> Selection | None:
    """A click on `node` of `context`; None when the view has no such node (or no view yet)."""
    nodes = [] if view is None else view.nodes
    found = next((n for n in nodes if n.context == context and n.node == node), None)
    if found is None:
        return None
    free = "?" if found.free is None else str(found.free)
    head = (
        f"<b>{html.escape(node)}</b> in {html.escape(context)} · "
        f"{html.escape(' + '.join(found.gpus) or 'no GPUs')}: {free} of {found.total} free"
        f" · {html.escape(found.status)}"
        + (f" · taints: {html.escape(found.taints)}" if found.taints else "")
    )
    return Selection(
        kind="node",
        context=context,
        key=node,
        head=head,
        nodes=(node,),
        resources=tuple(found.resources),
        launch_gpu=found.gpus[0] if found.gpus else None,
        most=found.total,
    )


def select_gpu(view: View | None, context: str, gpu: str) -> Selection:
    """A click on the `gpu` row of `context`'s card: every node of the context with that GPU."""
    nodes = [] if view is None else view.nodes
    mine = [n for n in nodes if n.context == context and gpu in n.gpus]
    resources = sorted(
        {r for n in mine for g, r in zip(n.gpus, n.resources, strict=True) if g == gpu}
    )
    return Selection(
        kind="gpu",
        context=context,
        key=gpu,
        head=f"<b>{html.escape(gpu)}</b> in {html.escape(context)} · {len(mine)} nodes",
        nodes=tuple(n.node for n in mine),
        resources=tuple(resources),
        launch_gpu=gpu,
        most=max((n.total for n in mine), default=0),
    )


def held_for(seconds: float | None) -> str:
    """How long a pod has held its GPUs, as people say it: 42 s, 7 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h" if days else f"{hours} h {rest // 60} min"


def pods_html(pods: Sequence[PodRow], *, by_node: bool, now: float | None = None) -> str:
    """The details' pod table: who holds these GPUs and for how long; `by_node` adds a node
    column (pods of several nodes), and a "managed job" column appears when a pod is one (from
    its labels: stopping it is `%sky_jobs_cancel N`, not `%sky_down`). `now` (default: the
    clock) dates the "for" column."""
    if not pods:
        return "<div class='sky-muted'>no pods hold these GPUs</div>"
    at = time.time() if now is None else now
    jobs = any(p.job for p in pods)
    head = ("<th>node</th>" if by_node else "") + ("<th>managed job</th>" if jobs else "")
    rows = "".join(
        "<tr>"
        + (f"<td>{html.escape(p.node)}</td>" if by_node else "")
        + (f"<td>{_job_badge(p.job)}</td>" if jobs else "")
        + f"<td>{html.escape(p.namespace)}</td><td>{html.escape(p.name)}</td>"
        f"<td style='text-align:right'>{p.gpus}</td><td>{html.escape(p.holder)}</td>"
        f"<td>{held_for(None if p.started is None else at - p.started)}</td></tr>"
        for p in pods
    )
    return (
        "<table class='sky-pods'><thead><tr>"
        f"{head}<th>namespace</th><th>name</th><th>GPUs</th><th>held by</th><th>for</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _job_number(job: str) -> str:
    """'3' of '3 (attempt 2)': what `%sky_jobs_cancel` takes."""
    return job.split(maxsplit=1)[0] if job else ""


def job_tag(jobs: Sequence[str]) -> str:
    """A grid cell's tag: the job's number ("3"), "3+" when several jobs hold the node's GPUs
    (the tooltip names them all), "" for none. Short: a cell is 22 px wide."""
    numbers = list(dict.fromkeys(_job_number(j) for j in jobs if j))
    if not numbers:
        return ""
    return numbers[0] + ("+" if len(numbers) > 1 else "")


def job_hint(jobs: Sequence[str]) -> str:
    """Which managed jobs these are and how to stop them (a tooltip; the pod badge's title):
    'managed job 3: %sky_jobs_cancel 3 stops it', or for several 'managed jobs 3, 12:
    %sky_jobs_cancel 3 12 stops them'; "" for none."""
    numbers = list(dict.fromkeys(_job_number(j) for j in jobs if j))
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"managed job {numbers[0]}: %sky_jobs_cancel {numbers[0]} stops it"
    return f"managed jobs {', '.join(numbers)}: %sky_jobs_cancel {' '.join(numbers)} stops them"


def _job_badge(job: str) -> str:
    """'job 3' as a badge (its title says how to stop it), or nothing for other pods."""
    if not job:
        return ""
    title = job_hint([job])
    return (
        f"<span class='sky-job' title='{html.escape(title)}' style='padding:0 5px;"
        "border-radius:8px;background:#e3ecfa;color:#1a4f9c;white-space:nowrap'>"
        f"job {html.escape(job)}</span>"
    )


def launch_cell(context: str, gpu: str, count: int) -> str:
    """The `%%sky_launch` cell that "launch here" pre-fills."""
    if any(ch.isspace() or ch in "'\"" for ch in context + gpu):
        # Flags cannot carry spaces or quotes through IPython's line splitting: use the YAML form.
        return (
            "%%sky_launch\n"
            "resources:\n"
            f"  infra: {json.dumps('k8s/' + context)}\n"
            f"  accelerators: {json.dumps(f'{gpu}:{count}')}\n"
            "run: |\n"
            "  nvidia-smi\n"
        )
    return f"%%sky_launch --infra k8s/{context} --gpus {gpu}:{count}\nnvidia-smi\n"


def fit_answer(view: View | None, context: str, gpu: str, count: int) -> str:
    """What-would-fit for "launch here": does `count` x `gpu` fit on one node now, and where.

    A node counts when it has only that GPU type, its free count is known and it takes new
    pods (healthy: not NotReady, cordoned or tainted against GPU pods). Other contexts are
    named too: a launch with `--infra k8s` would fail over to them.
    """
    if view is None:
        return ""
    best: dict[str, tuple[int, int]] = {}  # context -> (nodes where it fits, most free)
    for n in view.nodes:
        if n.gpus != [gpu] or n.free is None or status_kind(n.status) != "healthy":
            continue
        fits, most = best.get(n.context, (0, 0))
        best[n.context] = (fits + (n.free >= count), max(most, n.free))
    fits, most = best.get(context, (0, 0))
    want = f"{count} x {gpu}"
    elsewhere = [(c, k) for c, (k, _m) in best.items() if c != context and k]
    also = ", ".join(f"{c} ({k} node{'s' if k > 1 else ''})" for c, k in elsewhere)
    if fits:
        answer = f"{want} fits now on {fits} node{'s' if fits > 1 else ''} of {context}"
        return answer + (f"; also in {also}" if also else "")
    answer = f"{want} does not fit in {context} now (most free on one node: {most})"
    if also:
        return answer + f"; it fits now in {also}"
    return answer + "; nowhere else either: the launch would wait for its provision timeout"


# --- how a node looks -----------------------------------------------------------------------


def status_kind(status: str) -> str:
    """healthy | notready | cordoned | tainted: the cell's marking (and the text's counts)."""
    if status == "NotReady":
        return "notready"
    if status == "Cordoned":
        return "cordoned"
    if "Taint" in status:
        return "tainted"
    return "healthy"


def free_colour(free: int | None, total: int) -> str:
    """Red (nothing free) to green (all free); grey when unknown (as widgets/node_grid.js)."""
    if free is None or not total:
        return "#b8bcc4"
    frac = max(0.0, min(1.0, free / total))
    return f"hsl({round(frac * 120)}, 62%, 48%)"
