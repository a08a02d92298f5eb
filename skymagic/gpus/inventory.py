"""`%sky_show_gpus` / `skymagic gpus list`: which GPUs are free, and where, as DataFrames.

One shot (`show_gpus`): every allowed context in parallel (`core.fanout`), each read with its
two list requests (`gpus.lists`: nodes, and pods minus the finished ones), folded by the pure
rules of `gpus.counting` into rows, assembled here into the `Inventory`'s four DataFrames and
shown through `gpus.render`. The live inventory (`gpus.watcher.InventoryWatcher`) builds the
same `Inventory` from watched state with `build_inventory`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skymagic.core.failures import error_kind
from skymagic.core.fanout import ContextResult, fan_out
from skymagic.core.targets import Settings, Targets, resolve_targets
from skymagic.errors import ConfigError, SkymagicError
from skymagic.gpus.accelerators import gpu_names_match, parse_gpu_request
from skymagic.gpus.counting import (
    NODE_COLUMNS,
    ContextData,
    context_rows,
    node_rows,
    summary_rows,
)
from skymagic.gpus.lists import NODES_PATH, POD_FIELD_SELECTOR, PODS_PATH, cached_fetch
from skymagic.gpus.render import Tables, render_html, render_text

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
    "build_inventory",
    "replace_contexts",
    "show_gpus",
]

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


# --- the result -----------------------------------------------------------------------------


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A frame with the documented dtypes, built column by column (a list of row dicts is
    ~5x slower in pandas: 4,000 node rows per refresh on a big fleet)."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for col in columns:
        values = [r.get(col) for r in rows]
        if col in _INT_COLUMNS:
            data[col] = pd.array(values, dtype="Int64")
        elif col in _FLOAT_COLUMNS:
            data[col] = np.array([np.nan if v is None else v for v in values], dtype="float64")
        elif col in _NULLABLE_TEXT_COLUMNS:  # keep None (pandas 3 would make it NaN in str)
            data[col] = pd.Series(values, dtype=object)
        elif col in ("ready", "schedulable"):
            data[col] = np.array(values, dtype=bool)
        else:
            data[col] = pd.Series(values, dtype=object if not values else None)
    frame: pd.DataFrame = pd.DataFrame(data, columns=list(columns))
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
        return render_text(self._tables())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return render_html(self._tables())

    def _tables(self) -> Tables:
        frames = (self.nodes, self.by_context, self.summary, self.errors)
        return Tables(
            *frames,
            contexts=tuple(self.contexts),
            all_nodes=self.all_nodes,
            query=self.query,
            warnings=tuple(self.warnings),
        )

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


def build_inventory(
    contexts: Sequence[str],
    outcomes: Sequence[tuple[str, ContextData | None, SkymagicError | None, str | None]],
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
    results: list[ContextResult[ContextData]] = fan_out(
        targets, lambda client: cached_fetch(client, cache_ttl), settings, budget_s=budget
    )
    outcomes = [(r.context, r.value, r.error, r.error_kind) for r in results]
    latency = {r.context: r.latency_ms for r in results}
    return build_inventory(
        list(targets.contexts),
        outcomes,
        latency,
        gpu=gpu,
        all_nodes=all_nodes,
        warnings=targets.warnings,
    )
