"""The dashboard as text/plain and text/html, for `_repr_mimebundle_` beside the widget view.

A saved notebook, nbconvert or a terminal has no kernel to draw the widgets: these show the
same picture (after the same filters) without one. The HTML is self-contained (inline styles,
no CSS classes to load, no script) and caps the grid at `CELL_LIMIT` cells. A node whose GPUs
a managed job holds carries the widget's tag and tooltip line (`view.job_tag`, `job_hint`);
the text names each job's nodes on one line.
"""

from __future__ import annotations

import html
import time

from skymagic.gpus.counting import jobs_text
from skymagic.ui.dashboard.view import (
    Filters,
    Node,
    View,
    frame,
    free_colour,
    job_hint,
    job_tag,
    shown,
    status_kind,
)

__all__ = ["CELL_LIMIT", "to_html", "to_text"]

CELL_LIMIT = 2000  # node cells in the HTML snapshot; beyond: a count
_HEALTH_COLOURS = {"ok": "#3a9a5b", "degraded": "#d79a1e", "error": "#c8383a"}
# The job tag on a cell: the pod table's badge colours (view._job_badge), as a corner pill.
_TAG_STYLE = (
    "position:absolute;top:-4px;right:-5px;padding:0 2px;min-width:6px;border-radius:5px;"
    "font:bold 8px/9px sans-serif;text-align:center;background:#1a4f9c;color:#fff;"
    "box-shadow:0 0 0 1px #fff;z-index:1"
)
_TAG_LEGEND = "blue tag N: managed job N holds the node's GPUs (hover a cell: how to stop it)"


def _stamp(view: View) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.fetched_at))


def to_text(view: View | None, filters: Filters) -> str:
    """The picture as plain text: a line per card and GPU type, and the node counts."""
    if view is None:
        return "skymagic dashboard (no data yet)"
    picked = shown(view, filters)
    lines = [f"skymagic dashboard · updated {_stamp(view)} · {len(picked.contexts)} contexts"]
    for card in frame(view, filters).cards:
        latency = "" if card["latency_ms"] is None else f" · {card['latency_ms']:.0f} ms"
        lines.append(
            f"{card['context']}: {card['health']}{latency} · {card['mode']} · {card['nodes_text']}"
        )
        if card["message"]:
            lines.append(f"  ! {card['message']}")
        for g in card["gpus"]:
            free = "?" if g["free"] is None else g["free"]
            lines.append(f"  {g['gpu']}: {free} of {g['total']} free")
        if not card["gpus"] and card["empty"]:
            lines.append(f"  {card['empty']}")
    counts: dict[str, int] = {}
    for n in picked.nodes:
        kind = status_kind(n.status)
        counts[kind] = counts.get(kind, 0) + 1
    lines.append(
        f"nodes: {len(picked.nodes)} shown of {len(view.nodes)}"
        + "".join(f" · {k} {v}" for k, v in sorted(counts.items()))
    )
    jobs = jobs_line(picked.nodes)
    if jobs:
        lines.append(jobs)
    return "\n".join(lines)


def jobs_line(nodes: list[Node]) -> str:
    """'managed jobs: 3 on a/g-0 · 12 (attempt 2) on b/l4-0, b/l4-1', or "" without any."""
    where: dict[str, list[str]] = {}
    for n in nodes:
        for job in n.jobs:
            where.setdefault(job, []).append(n.key)
    if not where:
        return ""
    order = jobs_text(where).split(", ")  # by job number
    return "managed jobs: " + " · ".join(f"{j} on {', '.join(where[j])}" for j in order)


def to_html(view: View | None, filters: Filters) -> str:
    """The picture as self-contained HTML: cards with bars, then the grid's cells."""
    if view is None:
        return "<div>skymagic dashboard (no data yet)</div>"
    picked = shown(view, filters)
    parts = [
        "<div class='sky-dashboard-static' style='font-family:sans-serif;font-size:12px'>",
        f"<div><b>skymagic</b> · GPUs across contexts · updated {html.escape(_stamp(view))}</div>",
        "<div style='display:flex;flex-wrap:wrap;gap:8px;margin:6px 0'>",
    ]
    for card in frame(view, filters).cards:
        latency = "-" if card["latency_ms"] is None else f"{card['latency_ms']:.0f} ms"
        parts.append(
            "<div style='border:1px solid #ccc;border-left:4px solid "
            f"{_HEALTH_COLOURS.get(card['health'], '#999')};padding:4px 8px;min-width:200px'>"
            f"<b>{html.escape(card['context'])}</b><br>"
            f"{html.escape(card['health'])} · {latency} · {html.escape(card['mode'])} · "
            f"{html.escape(card['nodes_text'])}"
        )
        if card["message"]:
            parts.append(f"<div style='color:#b02a2c'>{html.escape(card['message'])}</div>")
        for g in card["gpus"]:
            pct = 0 if not g["total"] or g["free"] is None else 100 * g["free"] / g["total"]
            free = "?" if g["free"] is None else g["free"]
            parts.append(
                f"<div>{html.escape(g['gpu'])} {free} / {g['total']} free "
                "<span style='display:inline-block;width:80px;height:8px;"
                "background:#e3e6ea'><span style='display:block;height:8px;"
                f"width:{pct:.0f}%;background:#3a9a5b'></span></span></div>"
            )
        parts.append("</div>")
    parts.append("</div>")
    by_ctx: dict[str, list[Node]] = {}
    for n in picked.nodes[:CELL_LIMIT]:
        by_ctx.setdefault(n.context, []).append(n)
    for ctx in picked.contexts:
        cells = by_ctx.get(ctx, [])
        room = " style='padding-top:4px'" if any(n.jobs for n in cells) else ""  # for the tags
        parts.append(f"<div><b>{html.escape(ctx)}</b></div><div{room}>")
        parts.extend(_cell_html(n) for n in cells)
        parts.append("</div>")
    if len(picked.nodes) > CELL_LIMIT:
        parts.append(f"<div>… {len(picked.nodes) - CELL_LIMIT} more nodes</div>")
    if any(n.jobs for n in picked.nodes[:CELL_LIMIT]):
        parts.append(f"<div style='color:#666'>{html.escape(_TAG_LEGEND)}</div>")
    parts.append("</div>")
    return "".join(parts)


def _cell_html(n: Node) -> str:
    kind = status_kind(n.status)
    border = {"cordoned": "2px solid #000", "tainted": "2px dashed #000"}.get(kind, "0")
    colour = "#5a2a2a" if kind == "notready" else free_colour(n.free, n.total)
    free = "?" if n.free is None else n.free
    hint = job_hint(n.jobs)
    tag = job_tag(n.jobs)
    return (
        f"<span title='{html.escape(n.node)}: {free}/{n.total} free, "
        f"{html.escape(n.status)}{html.escape('; ' + hint) if hint else ''}' "
        "style='display:inline-block;width:14px;"
        f"height:14px;margin:1px;border:{border};box-sizing:border-box;"
        f"background:{colour}{';position:relative' if tag else ''}'>"
        + (
            f"<span class='sky-job-tag' style='{_TAG_STYLE}'>{html.escape(tag)}</span>"
            if tag
            else ""
        )
        + "</span>"
    )
