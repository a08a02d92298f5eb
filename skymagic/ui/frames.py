"""A readable notebook view of an Inventory's `.nodes` frame; the DataFrame keeps every column.

`inv.nodes` has 19 columns (GPU labels, resource names, requested/free/total for GPU, CPU and
memory, readiness, taints, managed jobs, node labels) so that analysis never needs a second
request. Shown as pandas does it, it is ~1,700 px wide in a ~970 px notebook column, node
names wrap over several lines and CPU-only nodes read "None". `%load_ext skymagic` registers
an HTML formatter that shows such a frame (and its row subsets: `inv.nodes[inv.nodes.gpu ==
"H100"]`) with the columns a person scans first, names kept on one line and blanks for
missing values, under a line saying what is left out. Any other DataFrame, or a frame whose
columns were chosen by hand, displays exactly as pandas shows it. The data is never changed:
only its picture.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCAN_FIRST", "is_nodes_frame", "nodes_html", "register", "unregister"]

# What someone looking for GPUs reads first, in reading order.
SCAN_FIRST: tuple[str, ...] = (
    "context",
    "node",
    "gpu",
    "gpu_free",
    "gpu_total",
    "status",
    "cpu_free",
    "memory_gb_free",
)

# Selectors heavier than the notebook's own `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon
# td` (right-aligned, wrapping text, 0.5em padding), which would win otherwise.
_STYLE = (
    "<style>div.sky-nodes table.sky-nodes-table{border-collapse:collapse;margin:0}"
    "div.sky-nodes table.sky-nodes-table th,div.sky-nodes table.sky-nodes-table td"
    "{white-space:nowrap;padding:1px 8px;text-align:left}"
    "div.sky-nodes table.sky-nodes-table .num{text-align:right}"
    "div.sky-nodes table.sky-nodes-table tr.sky-ctx th{padding-top:6px;font-weight:600}"
    "div.sky-nodes .sky-nodes-note{color:#57606a;font-size:90%;margin:2px 0 4px}</style>"
)
_NUMERIC = {"gpu_free", "gpu_total", "cpu_free", "memory_gb_free"}


def is_nodes_frame(frame: Any) -> bool:
    """Whether `frame` has every column of an Inventory's `.nodes`, in order (rows may be cut)."""
    from skymagic.gpus.counting import NODE_COLUMNS

    columns = getattr(frame, "columns", None)
    return columns is not None and tuple(columns) == NODE_COLUMNS


def _cell(value: Any, column: str) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, (list, tuple)) and bool(pd.isna(value))):
        return ""
    if column in _NUMERIC and isinstance(value, float):
        return f"{value:g}"
    return html.escape(str(value))


def nodes_html(frame: pd.DataFrame, *, max_rows: int | None = None) -> str:
    """The node frame as a compact HTML table: SCAN_FIRST columns, one line per row.

    The context, the widest value, heads each run of rows of one context instead of taking
    a column. `max_rows` (default: pandas' display.max_rows) caps the rows the way pandas
    does: the first and last halves, with a row saying how many are left out.
    """
    import pandas as pd

    limit = max_rows if max_rows is not None else pd.get_option("display.max_rows")
    rows = list(range(len(frame)))
    cut = 0
    if limit and len(rows) > limit:
        head = max(1, limit // 2)
        cut = len(rows) - 2 * head
        rows = rows[:head] + rows[-head:]
    columns = [c for c in SCAN_FIRST if c != "context"]
    left_out = [c for c in frame.columns if c not in SCAN_FIRST]
    note = (
        f"{len(frame)} rows · {len(SCAN_FIRST)} of {len(frame.columns)} columns shown "
        f"(context heads its rows); the DataFrame has them all (also {', '.join(left_out)})"
    )
    width = len(columns) + 1
    parts = [
        _STYLE,
        "<div class='sky-nodes'>",
        f"<div class='sky-nodes-note'>{html.escape(note)}</div>",
        "<table class='sky-nodes-table'><thead><tr><th></th>",
    ]
    parts.extend(
        f"<th{' class=num' if c in _NUMERIC else ''}>{html.escape(c)}</th>" for c in columns
    )
    parts.append("</tr></thead><tbody>")
    values = frame[columns].to_numpy(dtype=object)
    contexts = frame["context"].to_numpy(dtype=object)
    index = list(frame.index)
    last: Any = object()
    for n, i in enumerate(rows):
        if cut and n == len(rows) // 2:
            parts.append(f"<tr><td colspan='{width}'>… {cut} more rows …</td></tr>")
            last = object()
        if contexts[i] != last:
            last = contexts[i]
            parts.append(
                f"<tr class='sky-ctx'><th colspan='{width}'>{_cell(last, 'context')}</th></tr>"
            )
        cells = "".join(
            f"<td{' class=num' if c in _NUMERIC else ''}>{_cell(v, c)}</td>"
            for c, v in zip(columns, values[i], strict=True)
        )
        parts.append(f"<tr><th>{html.escape(str(index[i]))}</th>{cells}</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _frame_html(frame: Any) -> str | None:
    """The HTML formatter's printer for DataFrames: ours for node frames, pandas' otherwise."""
    if is_nodes_frame(frame):
        return nodes_html(frame)
    render = getattr(frame, "_repr_html_", None)
    return render() if render is not None else None


# Where pandas says DataFrame lives: `pandas` since 2.x sets __module__, `pandas.core.frame`
# before. Deferred by name, so loading the extension does not import pandas.
_DATAFRAME_KEYS = (("pandas", "DataFrame"), ("pandas.core.frame", "DataFrame"))


def register(ipython: Any) -> None:
    """Show node frames compactly in this shell (`%load_ext skymagic` calls this)."""
    formatter = ipython.display_formatter.formatters["text/html"]
    for module, name in _DATAFRAME_KEYS:
        formatter.for_type_by_name(module, name, _frame_html)


def unregister(ipython: Any) -> None:
    """Give DataFrames back to pandas' own HTML (`%unload_ext skymagic`)."""
    formatter = ipython.display_formatter.formatters["text/html"]
    for key in _DATAFRAME_KEYS:
        if formatter.deferred_printers.get(key) is _frame_html:
            del formatter.deferred_printers[key]
    for cls, printer in list(formatter.type_printers.items()):
        if printer is _frame_html:  # moved here once a DataFrame was shown
            del formatter.type_printers[cls]
