"""Text and HTML rendering of an Inventory, in SkyPilot's `sky gpus list --infra k8s` layout.

1. "Kubernetes GPUs", with an aggregate GPU / UTILIZATION table when more than one context
   has GPUs;
2. per context "Context: NAME", then GPU, REQUESTABLE_QTY_PER_NODE, UTILIZATION;
3. "Kubernetes per-node GPU availability": CONTEXT, NODE, vCPU, Memory (GB), GPU,
   GPU UTILIZATION, NODE STATUS (CPU-only nodes only with `--all`);
4. the contexts that failed, one line each, with the kind of failure and what to do.

Rendering reads only the Inventory's DataFrames (passed in as `Tables`, so this module knows
nothing of the Inventory type), so what is shown is what the user can query.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Tables", "render_html", "render_text"]


@dataclass(frozen=True)
class Tables:
    """What the tables show: the inventory's four frames and how they were asked for."""

    nodes: pd.DataFrame
    by_context: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    contexts: Sequence[str]
    all_nodes: bool = False
    query: str | None = None
    warnings: Sequence[str] = ()


_Table = tuple[list[str], list[list[str]]]
_Section = tuple[str, str, _Table | None]  # (kind: title|table|note, text, table)


def _missing(value: Any) -> bool:
    """None, NaN or pd.NA (what an unknown count looks like once in a DataFrame)."""
    import pandas as pd

    return value is None or (not isinstance(value, (list, tuple)) and bool(pd.isna(value)))


def _num(value: Any) -> str:
    if _missing(value):
        return "?"
    f = float(value)
    if math.isclose(f, round(f)):
        return str(round(f))
    return f"{f:.1f}"


def _of(free: Any, total: Any) -> str:
    if _missing(free):
        return f"free unknown of {_num(total)}"
    return f"{_num(free)} of {_num(total)} free"


def _qtys(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if _missing(value) else str(value)


def _sections(inv: Tables) -> list[_Section]:
    out: list[_Section] = []
    by_ctx = inv.by_context
    gpu_contexts = list(dict.fromkeys(by_ctx["context"].tolist())) if len(by_ctx) else []
    out.append(("title", "Kubernetes GPUs", None))
    if inv.query and not len(by_ctx):
        where = ", ".join(inv.contexts) or "no context"
        out.append(("note", f"No GPU matching {inv.query} found in {where}.", None))
    if len(gpu_contexts) > 1:
        rows = [[str(r.gpu), str(r.utilization)] for r in inv.summary.itertuples()]
        out.append(("table", "", (["GPU", "UTILIZATION"], rows)))
    for ctx in gpu_contexts:
        sub = by_ctx[by_ctx["context"] == ctx]
        rows = [
            [str(r.gpu), _qtys(r.requestable_qty_per_node), str(r.utilization)]
            for r in sub.itertuples()
        ]
        out.append(("title", f"Context: {ctx}", None))
        out.append(("table", "", (["GPU", "REQUESTABLE_QTY_PER_NODE", "UTILIZATION"], rows)))
    failed = set(inv.errors["context"].tolist()) if len(inv.errors) else set()
    for ctx in inv.contexts:
        if ctx not in gpu_contexts and ctx not in failed and not inv.query:
            out.append(("title", f"Context: {ctx}", None))
            out.append(("note", "No GPUs found.", None))
    nodes = inv.nodes
    if not inv.all_nodes and len(nodes):
        nodes = nodes[nodes["gpu"].notna()]
    if len(nodes):
        rows = []
        for r in nodes.itertuples():
            has_gpu = not _missing(r.gpu)
            rows.append(
                [
                    str(r.context),
                    str(r.node),
                    _of(r.cpu_free, r.cpu_total),
                    _of(r.memory_gb_free, r.memory_gb_total),
                    str(r.gpu) if has_gpu else "-",
                    _of(r.gpu_free, r.gpu_total) if has_gpu else "-",
                    str(r.status),
                ]
            )
        headers = ["CONTEXT", "NODE", "vCPU", "Memory (GB)", "GPU", "GPU UTILIZATION"]
        out.append(("title", "Kubernetes per-node GPU availability", None))
        out.append(("table", "", ([*headers, "NODE STATUS"], rows)))
    if len(inv.errors):
        out.append(("title", "Contexts with errors", None))
        rows = [[str(r.context), str(r.kind), str(r.message)] for r in inv.errors.itertuples()]
        out.append(("table", "", (["CONTEXT", "ERROR", "MESSAGE"], rows)))
    for warning in inv.warnings:
        out.append(("note", f"Warning: {warning}", None))
    return out


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return lines


def render_text(inv: Tables) -> str:
    """The tables as text, laid out like SkyPilot's."""
    lines: list[str] = []
    for kind, text, table in _sections(inv):
        if kind == "table" and table is not None:
            lines.extend(_text_table(*table))
        else:
            if lines:
                lines.append("")  # a blank line between sections, as SkyPilot prints them
            lines.append(text)
    return "\n".join(lines)


_CSS = (
    "<style>.skym-inv table{border-collapse:collapse;margin:2px 0 10px 0}"
    ".skym-inv th,.skym-inv td{padding:2px 10px;text-align:left;white-space:nowrap}"
    ".skym-inv th{border-bottom:1px solid #aaa}.skym-inv .t{font-weight:bold;margin-top:6px}"
    ".skym-inv .bad{color:#cf222e}.skym-inv .note{color:#57606a}</style>"
)


def render_html(inv: Tables) -> str:
    """The tables as one HTML fragment with its own small stylesheet."""
    parts = [_CSS, '<div class="skym-inv">']
    for kind, text, table in _sections(inv):
        if kind == "table" and table is not None:
            headers, rows = table
            parts.append("<table><thead><tr>")
            parts.extend(f"<th>{html.escape(h)}</th>" for h in headers)
            parts.append("</tr></thead><tbody>")
            for row in rows:
                parts.append("<tr>")
                for i, cell in enumerate(row):
                    bad = headers[i] in ("NODE STATUS", "ERROR") and cell != "Healthy"
                    cls = ' class="bad"' if bad else ""
                    parts.append(f"<td{cls}>{html.escape(cell)}</td>")
                parts.append("</tr>")
            parts.append("</tbody></table>")
        elif kind == "title":
            parts.append(f'<div class="t">{html.escape(text)}</div>')
        else:
            parts.append(f'<div class="note">{html.escape(text)}</div>')
    parts.append("</div>")
    return "".join(parts)
