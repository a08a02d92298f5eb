"""`%sky_show_gpus` / `skymagic gpus list`: which GPUs are free, and where, as DataFrames.

One shot (`show_gpus`): every allowed context in parallel (fleet.fan_out), and per context
exactly two list requests, issued concurrently:

    GET /api/v1/nodes?resourceVersion=0&limit=N
    GET /api/v1/pods?resourceVersion=0&limit=N
        &fieldSelector=status.phase!=Succeeded,status.phase!=Failed

`resourceVersion=0` lets the API server answer from its watch cache; the field selector keeps
finished pods (often most of a busy cluster's pods) off the wire. Each page is decoded with
orjson and folded into per-node request sums at once (`_counting.Usage`), then dropped, so
memory stays at about one page whatever the cluster size. No /version, no access reviews:
a 403 on the pod list is an answer too (nodes shown, free unknown, a `forbidden` error row),
not a reason to fail the command (SkyPilot issue #5146).

Watch mode (`InventoryWatcher`): per context, list once, then watch nodes and pods from the
lists' resourceVersion; events are queued by background threads and applied by `refresh()`,
so a dashboard redraws from memory instead of re-reading the cluster. A 410 Gone re-lists.

The counting rules live in `_counting` (pure, unit-tested); the tables in `_inventory_tables`.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from skymagic.core.client import ContextClient, error_kind
from skymagic.core.fanout import ContextResult, fan_out
from skymagic.core.targets import Settings, Targets, resolve_targets
from skymagic.errors import (
    ConfigError,
    SkymagicError,
)
from skymagic.gpus.accelerators import gpu_names_match, parse_gpu_request
from skymagic.gpus.counting import (
    NODE_COLUMNS,
    NodeInfo,
    Usage,
    context_rows,
    node_rows,
    parse_node,
    summary_rows,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BY_CONTEXT_COLUMNS",
    "ERROR_COLUMNS",
    "NODE_COLUMNS",
    "NODES_PATH",
    "PODS_PATH",
    "POD_FIELD_SELECTOR",
    "SUMMARY_COLUMNS",
    "Inventory",
    "replace_contexts",
    "show_gpus",
]

NODES_PATH = "/api/v1/nodes"
PODS_PATH = "/api/v1/pods"
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"

BY_CONTEXT_COLUMNS: tuple[str, ...] = (
    "context",
    "gpu",
    "requestable_qty_per_node",
    "gpu_total",
    "gpu_free",
    "nodes",
    "utilization",
)
SUMMARY_COLUMNS: tuple[str, ...] = ("gpu", "gpu_total", "gpu_free", "utilization", "contexts")
ERROR_COLUMNS: tuple[str, ...] = ("context", "kind", "message")

_DECODE_ALLOWANCE_S = 60.0
_INT_COLUMNS = ("gpu_total", "gpu_requested", "gpu_free", "nodes")
_NULLABLE_TEXT_COLUMNS = ("gpu", "gpu_label", "label_scheme", "resource")
_FLOAT_COLUMNS = ("cpu_total", "cpu_free", "memory_gb_total", "memory_gb_free")


# --- one context's data ---------------------------------------------------------------------


@dataclass
class _ContextData:
    """What one context's two lists said; `usage` is None when the pods could not be read."""

    nodes: list[NodeInfo]
    usage: Usage | None
    pods_error: SkymagicError | None = None
    fetched_at: float = field(default_factory=time.time)


def _node_query() -> dict[str, str]:
    return {"resourceVersion": "0"}


def _pod_query() -> dict[str, str]:
    return {"resourceVersion": "0", "fieldSelector": POD_FIELD_SELECTOR}


_gc_users = 0
_gc_lock = threading.Lock()

# Decoding and tallying a page hold the GIL, so contexts gain nothing by decoding at the same
# time; taking turns keeps at most ONE decoded page alive (a decoded 5,000-pod page is ~100 MB
# of Python objects), while every context's next page still downloads in the background.
_DECODE_LOCK = threading.Lock()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while big list pages are decoded (shared by concurrent threads).

    A decoded page is millions of small acyclic containers, freed by reference counting as
    soon as the page is tallied; each generation-2 pass the allocations trigger would rescan
    all of them (a 260 MB pod list decodes in ~1 s with the GC paused, ~4 s without).
    """
    global _gc_users
    with _gc_lock:
        _gc_users += 1
        if _gc_users == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.enable()


def _list_nodes(client: ContextClient) -> tuple[list[NodeInfo], str]:
    with _gc_paused():
        return _list_nodes_unpaused(client)


def _list_nodes_unpaused(client: ContextClient) -> tuple[list[NodeInfo], str]:
    nodes: list[NodeInfo] = []
    rv = ""
    for page in client.list_pages(NODES_PATH, _node_query()):
        if not page.body:  # the list restarted after a 410: start over
            nodes.clear()
            continue
        with _DECODE_LOCK:
            doc = orjson.loads(page.body)
            rv = page.resource_version or rv
            nodes.extend(parse_node(item) for item in doc.get("items") or ())
            del doc
    return nodes, rv


def _tally_pods(client: ContextClient) -> Usage:
    with _gc_paused():
        return _tally_pods_unpaused(client)


def _tally_pods_unpaused(client: ContextClient) -> Usage:
    usage = Usage()
    for page in client.list_pages(PODS_PATH, _pod_query()):
        if not page.body:
            usage = Usage()
            continue
        with _DECODE_LOCK:
            items = orjson.loads(page.body).get("items") or ()
            usage.add_pods(items)
            del items
    return usage


def _fetch_context(client: ContextClient) -> _ContextData:
    """Both lists of one context, concurrently; a failed pod list degrades, never fails."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nodes-{client.name}") as pool:
        nodes_future: Future[tuple[list[NodeInfo], str]] = pool.submit(_list_nodes, client)
        usage: Usage | None = None
        pods_error: SkymagicError | None = None
        try:
            usage = _tally_pods(client)
        except SkymagicError as exc:
            pods_error = exc
        nodes, _rv = nodes_future.result()  # a node-list error fails the whole context
    return _ContextData(nodes=nodes, usage=usage, pods_error=pods_error)


_cache: dict[tuple[str, int], _ContextData] = {}
_cache_lock = threading.Lock()


def _cached_fetch(client: ContextClient, ttl: float | None) -> _ContextData:
    if not ttl or ttl <= 0:
        return _fetch_context(client)
    key = (client.name, id(client))
    now = time.time()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit.fetched_at <= ttl:
        return hit
    data = _fetch_context(client)
    if data.pods_error is None:
        with _cache_lock:
            _cache[key] = data
    return data


def clear_cache() -> None:
    """Forget cached inventories (`cache_ttl`)."""
    with _cache_lock:
        _cache.clear()


# --- the result -----------------------------------------------------------------------------


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(
        [{c: r.get(c) for c in columns} for r in rows], columns=list(columns)
    )
    for col in _INT_COLUMNS:
        if col in frame.columns:
            frame[col] = frame[col].astype("Int64")
    for col in _FLOAT_COLUMNS:
        if col in frame.columns:
            frame[col] = frame[col].astype("float64")
    for col in _NULLABLE_TEXT_COLUMNS:
        if col in frame.columns:  # keep None (pandas 3 would turn it into NaN in a str column)
            frame[col] = pd.Series([r.get(col) for r in rows], dtype=object, index=frame.index)
    for col in ("ready", "schedulable"):
        if col in frame.columns:
            frame[col] = frame[col].astype(bool)
    return frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    import pandas as pd

    out: list[dict[str, Any]] = []
    for rec in frame.astype(object).to_dict("records"):
        clean: dict[str, Any] = {}
        for k, v in rec.items():
            if isinstance(v, (list, tuple)):
                clean[str(k)] = [int(x) for x in v]
            elif v is None or bool(pd.isna(v)):
                clean[str(k)] = None
            elif hasattr(v, "item"):
                clean[str(k)] = v.item()
            else:
                clean[str(k)] = v
        out.append(clean)
    return out


@dataclass(eq=False)
class Inventory:
    """GPUs across contexts: DataFrames plus how and when they were read.

    `nodes`: one row per node and accelerator resource (CPU-only nodes too, gpu None);
    `by_context`: per context and GPU; `summary`: per GPU over all contexts; `errors`: one row
    per context that failed (kind: unreachable | timeout | unauthorized | forbidden | config |
    exec | server-error) or answered only in part (a 403 on pods). Shown as SkyPilot-style tables.
    """

    nodes: pd.DataFrame
    by_context: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    fetched_at: float
    latency_ms: dict[str, float]
    contexts: list[str]
    all_nodes: bool = False
    query: str | None = None
    # Allowed contexts missing from the kubeconfig, skipped kubeconfig entries: shown under
    # the tables, so an inventory never looks complete when a context was left out.
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        from skymagic.gpus.render import render_text

        return render_text(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from skymagic.gpus.render import render_html

        return render_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-able data (what `skymagic gpus list -o json` prints)."""
        return {
            "fetched_at": self.fetched_at,
            "contexts": list(self.contexts),
            "latency_ms": {k: round(v, 1) for k, v in self.latency_ms.items()},
            "query": self.query,
            "summary": _records(self.summary),
            "by_context": _records(self.by_context),
            "nodes": _records(self.nodes),
            "errors": _records(self.errors),
            "warnings": list(self.warnings),
        }


def _gpu_filter(gpu: str | None) -> tuple[str, int] | None:
    if gpu is None or not gpu.strip():
        return None
    try:
        return parse_gpu_request(gpu)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _build(
    contexts: Sequence[str],
    outcomes: Sequence[tuple[str, _ContextData | None, SkymagicError | None, str | None]],
    latency_ms: dict[str, float],
    *,
    gpu: str | None,
    all_nodes: bool,
    warnings: Sequence[str] = (),
) -> Inventory:
    """Assemble an Inventory from per-context outcomes (context, data, error, error kind)."""
    wanted = _gpu_filter(gpu)
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for ctx, data, err, kind in outcomes:
        if data is not None:
            rows.extend(node_rows(ctx, data.nodes, data.usage))
            if data.pods_error is not None:
                perr = data.pods_error
                message = perr.message
                if error_kind(perr) == "forbidden":
                    message += (
                        " (the user may not list pods in all namespaces: GPU totals shown, "
                        "free GPUs unknown; needs a ClusterRole with list on pods)"
                    )
                errors.append({"context": ctx, "kind": error_kind(perr), "message": message})
        elif err is not None:
            errors.append({"context": ctx, "kind": kind or error_kind(err), "message": err.message})
    min_qty = 1
    if wanted is not None:
        name, min_qty = wanted
        rows = [
            r
            for r in rows
            if r["gpu"] is not None
            and gpu_names_match(name, r["gpu"])
            and r["gpu_total"] >= min_qty
        ]
    ctx_rows = context_rows(rows)
    if wanted is not None:
        for r in ctx_rows:
            r["requestable_qty_per_node"] = [
                q for q in r["requestable_qty_per_node"] if q >= min_qty
            ]
    return Inventory(
        nodes=_frame(rows, NODE_COLUMNS),
        by_context=_frame(ctx_rows, BY_CONTEXT_COLUMNS),
        summary=_frame(summary_rows(ctx_rows), SUMMARY_COLUMNS),
        errors=_frame(errors, ERROR_COLUMNS),
        fetched_at=time.time(),
        latency_ms=dict(latency_ms),
        contexts=list(contexts),
        all_nodes=all_nodes,
        query=gpu.strip() if gpu and gpu.strip() else None,
        warnings=list(warnings),
    )


def replace_contexts(base: Inventory, extra: Inventory, contexts: Sequence[str]) -> Inventory:
    """`base` with every row of `contexts` taken from `extra`; the summary counted again.

    The dashboard reads most contexts from an `InventoryWatcher` and re-lists the few it cannot
    follow right now; the summary is per GPU over ALL contexts, so neither side's summary is
    right for the merged rows: it is recounted from the merged nodes, the way `show_gpus`
    counts it. Rows stay in `base.contexts` order; latency of `contexts` comes from `extra`.
    """
    import pandas as pd

    replaced = set(contexts)
    order = {c: i for i, c in enumerate(base.contexts)}

    def pick(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
        parts = [
            f for f in (a[~a["context"].isin(replaced)], b[b["context"].isin(replaced)]) if len(f)
        ]
        if not parts:
            empty: pd.DataFrame = a.iloc[0:0]
            return empty
        merged = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        rank = merged["context"].map(order).fillna(len(order))
        out: pd.DataFrame = merged.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
        return out

    nodes = pick(base.nodes, extra.nodes)
    by_context = pick(base.by_context, extra.by_context)
    # the columns context_rows reads (converting only these is twice as fast on big fleets)
    counted = ["context", "node", "gpu", "gpu_total", "gpu_free", "schedulable"]
    latency = dict(base.latency_ms)
    latency.update({c: v for c, v in extra.latency_ms.items() if c in replaced})
    return Inventory(
        nodes=nodes,
        by_context=by_context,
        summary=_frame(summary_rows(context_rows(_records(nodes[counted]))), SUMMARY_COLUMNS),
        errors=pick(base.errors, extra.errors),
        fetched_at=extra.fetched_at,
        latency_ms=latency,
        contexts=list(base.contexts),
        all_nodes=base.all_nodes,
        query=base.query,
    )


def show_gpus(
    settings: Settings | None = None,
    infra: str | None = None,
    gpu: str | None = None,
    *,
    all_nodes: bool = False,
    cache_ttl: float | None = None,
    targets: Targets | None = None,
) -> Inventory:
    """GPU inventory of every allowed context (or the one `infra` = 'k8s/CTX' pins).

    `gpu` filters like SkyPilot's `GPU[:N]`: rows for that GPU (exact name after
    normalisation: "h100" is H100, "A100" never matches A100-80GB) on nodes with at least N.
    `all_nodes` also shows CPU-only nodes in the per-node table (the frame always has them).
    `cache_ttl` reuses a context's lists younger than that many seconds (default: no cache).
    Contexts that fail give error rows; the call returns within the request-timeout budget.
    `targets`: contexts an operation already resolved (a launch plans from its own), used
    instead of resolving again (`infra` is then ignored).
    """
    settings = settings or Settings()
    _gpu_filter(gpu)  # a bad GPU argument fails before any request
    if targets is None:
        targets = resolve_targets(settings, infra, operation="gpus")
    # A dead or black-holed context ends on its own connect/read timeouts (one request
    # timeout, no retry after a timeout); the overall budget only has to stop a server that
    # dribbles bytes forever, so it leaves room for decoding big lists on a busy machine.
    budget = settings.client.request_timeout * 3 + 1.0 + _DECODE_ALLOWANCE_S
    results: list[ContextResult[_ContextData]] = fan_out(
        targets, lambda client: _cached_fetch(client, cache_ttl), settings, budget_s=budget
    )
    outcomes = [(r.context, r.value, r.error, r.error_kind) for r in results]
    latency = {r.context: r.latency_ms for r in results}
    return _build(
        list(targets.contexts),
        outcomes,
        latency,
        gpu=gpu,
        all_nodes=all_nodes,
        warnings=targets.warnings,
    )
