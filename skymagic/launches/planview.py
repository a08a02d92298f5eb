"""The plan's HTML table, narrow enough for a JupyterLab cell with the sidebar open (~900 px).

SkyPilot's ten columns side by side, none wrapping, made a 2,100 px table of a plan with
candidates and real context names (Chromium, 14 px). Here the HTML keeps the five columns a
user decides by (INFRA, GPUS, FREE, CHOSEN, REASON; ~790 px for that plan); INFRA and REASON
wrap inside a bounded width (inline styles, so they win over the launch widget's `nowrap`
stylesheet and the notebook's own), and the rest is shown, not dropped:

- INSTANCE, vCPUs, Mem(GB) and COST ($) follow from the task (INSTANCE spells out the other
  two and the GPUs; a Kubernetes pod has no hourly price), so they are the same on every row
  unless candidates differ: said once under the table, or in each row's detail line;
- WOULD_FIT (a skipped context's smaller offer) goes in the detail line under its row.

The text form (`str(plan)`) keeps SkyPilot's layout: a terminal scrolls sideways.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["MAIN_COLUMNS", "WRAP_WIDTHS", "plan_html"]

MAIN_COLUMNS = ("INFRA", "GPUS", "FREE", "CHOSEN", "REASON")
SHARED_COLUMNS = ("INSTANCE", "vCPUs", "Mem(GB)", "COST ($)")  # said once when equal on every row
DETAIL_COLUMNS = ("WOULD_FIT",)
# The columns that wrap, and the width they wrap at (the others are short: "A100-80GB:8
# (spot)" is about the longest GPUS).
WRAP_WIDTHS = {"INFRA": "10em", "REASON": "22em"}
_CELL = "padding:1px 8px;text-align:left;vertical-align:top"
_NOWRAP = _CELL + ";white-space:nowrap"
_DETAIL = "padding:0 8px 3px 8px;text-align:left;color:#57606a;white-space:normal"


def _cell(column: str, text: str) -> str:
    """A cell; one that wraps holds a div of bounded width (browsers ignore max-width on a
    table cell itself), breaking long names anywhere rather than overflowing."""
    width = WRAP_WIDTHS.get(column)
    if width is None:
        return f'<td style="{_NOWRAP}">{html.escape(text)}</td>'
    return (
        f'<td style="{_CELL};white-space:normal"><div style="max-width:{width};'
        f'overflow-wrap:anywhere">{html.escape(text)}</div></td>'
    )


def plan_html(
    title: str,
    columns: Sequence[str],
    table: Sequence[Sequence[Any]],
    chosen: Sequence[bool],
    *,
    notes: Sequence[str] = (),
    advice: str = "",
    warnings: Sequence[str] = (),
) -> str:
    """The plan as HTML: `table` rows hold a value per name in `columns` (PLAN_COLUMNS)."""
    index = {name: i for i, name in enumerate(columns)}
    shared = [[str(row[index[c]]) for c in SHARED_COLUMNS] for row in table]
    uniform = len({tuple(s) for s in shared}) <= 1
    head = "".join(
        f'<th style="{_NOWRAP};font-weight:600">{html.escape(c)}</th>' for c in MAIN_COLUMNS
    )
    body: list[str] = []
    for row, picked, values in zip(table, chosen, shared, strict=True):
        weight = ' style="font-weight:bold"' if picked else ""
        cells = "".join(_cell(c, str(row[index[c]])) for c in MAIN_COLUMNS)
        body.append(f"<tr{weight}>{cells}</tr>")
        details = [] if uniform else [_pairs(SHARED_COLUMNS, values)]
        details += [f"{c}: {row[index[c]]}" for c in DETAIL_COLUMNS if str(row[index[c]]).strip()]
        if details:
            body.append(
                f'<tr class="sky-plan-detail"><td style="{_DETAIL}"></td>'
                f'<td colspan="{len(MAIN_COLUMNS) - 1}" style="{_DETAIL}">'
                # width 0 + min-width 100%: the line fills the columns above it and wraps
                # there instead of widening them to its own length.
                f'<div style="width:0;min-width:100%;overflow-wrap:anywhere">'
                f"{html.escape('; '.join(details))}</div></td></tr>"
            )
    summary = ""
    if uniform and shared:
        summary = (
            f'<div class="sky-plan-shared" style="color:#57606a">Every row: '
            f"{html.escape(_pairs(SHARED_COLUMNS, shared[0]))}</div>"
        )
    return (
        f'<div class="sky-plan"><b>{html.escape(title)}</b>'
        f'<table style="border-collapse:collapse;margin:0">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + summary
        + (f"<div>{html.escape(advice)}</div>" if advice else "")
        + ("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else "")
        + "".join(f'<div style="color:#9a6700">Warning: {html.escape(w)}</div>' for w in warnings)
        + "</div>"
    )


def _pairs(names: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True))
