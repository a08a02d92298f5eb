"""The plan's HTML fits a JupyterLab cell with the sidebar open (~900 px), losing nothing.

Checked on the rendered HTML's structure, not pixels: the columns side by side, which cells
may wrap and at what width, the longest text of each cell that may not, and that every value
of every one of SkyPilot's ten columns is still somewhere in the HTML.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest

from skymagic.gpus.counting import NODE_COLUMNS
from skymagic.gpus.inventory import ERROR_COLUMNS, Inventory
from skymagic.launches.outcome import Attempt
from skymagic.launches.plan import PLAN_COLUMNS, Plan, make_plan
from skymagic.launches.planview import MAIN_COLUMNS
from skymagic.launches.task import parse_task
from skymagic.ui.launch_widget import LaunchProgressWidget

CELL_PX = 900  # a JupyterLab 4 notebook cell with the file browser open, at 1440 px
EM_PX = 14  # JupyterLab's --jp-content-font-size1
CHAR_PX = 9.5  # capitals and digits at 14 px in DejaVu Sans (Linux's system-ui), measured
PAD_PX = 16  # 8 px each side
# Real context names are long: GKE's, EKS's ARNs, and names with spaces.
GKE = "gke_my-research-project-123456_us-central1-a_gpu-training-cluster"
EKS = "arn:aws:eks:us-west-2:123456789012:cluster/inference-fleet-prod"
NEB = "nebius-eu-north1 shared H200 pool"


def node(ctx: str, name: str, gpu: str, free: int, total: int = 8) -> dict[str, Any]:
    return {
        "context": ctx,
        "node": name,
        "gpu": gpu,
        "resource": "nvidia.com/gpu",
        "gpu_total": total,
        "gpu_free": free,
        "cpu_free": 100.0,
        "memory_gb_free": 1000.0,
        "status": "Healthy",
        "taints": "",
    }


def inventory(*nodes: dict[str, Any]) -> Inventory:
    frame = pd.DataFrame([{c: n.get(c) for c in NODE_COLUMNS} for n in nodes])
    return Inventory(
        nodes=frame,
        by_context=pd.DataFrame(),
        summary=pd.DataFrame(),
        errors=pd.DataFrame(columns=list(ERROR_COLUMNS)),
        fetched_at=0.0,
        latency_ms={},
        contexts=sorted({n["context"] for n in nodes}),
    )


INV = inventory(
    node(GKE, "g1", "H100", 2),
    node(GKE, "g2", "A100-80GB", 4),
    node(EKS, "e1", "H100", 8),
    node(NEB, "n1", "H200", 8),
)


def wide_plan() -> Plan:
    """Candidates (per-row vCPUs and memory differ), spot, long names, long reasons, WOULD_FIT."""
    body = (
        "name: train\nresources:\n  use_spot: true\n"
        "  accelerators: {H100: 8, A100-80GB: 4}\nrun: echo\n"
    )
    return make_plan(parse_task(body), [GKE, EKS, NEB], INV, {NEB: "not in the GPU budget"})


def plain_plan() -> Plan:
    return make_plan(parse_task("echo", name="t", gpus="H100:4"), [GKE, EKS], INV)


class Table(HTMLParser):
    """Rows of (tr class, [(cell text, cell style, colspan)]), the headers, and all text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headers: list[tuple[str, str]] = []
        self.rows: list[tuple[str, list[tuple[str, str, int]]]] = []
        self.text: list[str] = []
        self._cell: list[Any] | None = None
        self.feed(text)
        self.rows = [r for r in self.rows if r[1]]  # the header row holds no td

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr":
            self.rows.append((a.get("class", ""), []))
        elif tag in ("td", "th"):
            self._cell = [tag, "", a.get("style", ""), int(a.get("colspan", "1"))]
        elif tag == "div" and self._cell is not None:  # a wrapping cell's bounded box
            self._cell[2] += ";" + a.get("style", "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            kind, text, style, span = self._cell
            if kind == "th":
                self.headers.append((text, style))
            else:
                self.rows[-1][1].append((text, style, span))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell[1] += data


def style(css: str) -> dict[str, str]:
    pairs = (p.split(":", 1) for p in css.split(";") if ":" in p)
    return {k.strip(): v.strip() for k, v in pairs}


def estimated_width(t: Table) -> float:
    """Each column: its wrap width (max-width) if it wraps, else its longest text; plus padding.

    Detail rows (one cell spanning the rest) wrap and do not widen the table."""
    widths = []
    main = [cells for cls, cells in t.rows if cls != "sky-plan-detail"]
    for i, (head, head_style) in enumerate(t.headers):
        cells = [row[i] for row in main]
        wraps = [style(s).get("white-space") == "normal" for _t, s, _n in cells]
        if cells and all(wraps):
            width = max(
                float(style(s)["max-width"].removesuffix("em")) * EM_PX for _t, s, _n in cells
            )
        else:
            # not wrapping (inline, or by the widget's stylesheet): as wide as its longest text
            assert style(head_style).get("white-space") != "normal" and not any(wraps)
            width = max(len(x) for x in [head, *(c[0] for c in cells)]) * CHAR_PX
        widths.append(width + PAD_PX)
    return sum(widths)


@pytest.mark.parametrize("make", [wide_plan, plain_plan], ids=["wide", "plain"])
def test_the_plan_table_fits_a_notebook_cell(make: Any) -> None:
    plan = make()
    t = Table(plan._repr_html_())
    assert [h for h, _s in t.headers] == list(MAIN_COLUMNS)
    assert estimated_width(t) <= CELL_PX
    for cls, cells in t.rows:
        if cls == "sky-plan-detail":  # under its row: starts after the INFRA column, wraps
            assert [n for _t, _s, n in cells] == [1, len(MAIN_COLUMNS) - 1]
            assert all(style(s)["white-space"] == "normal" for _t, s, _n in cells)


def test_no_value_of_the_ten_columns_is_lost() -> None:
    plan = wide_plan()
    t = Table(plan._repr_html_())
    text = " ".join(t.text)
    frame = plan.to_frame()
    assert len(frame) == 6 and frame["WOULD_FIT"].str.len().gt(0).any()
    # Candidates ask for different vCPUs/memory: each row says its own, in its detail line.
    assert frame["vCPUs"].nunique() > 1
    main = [cells for cls, cells in t.rows if cls != "sky-plan-detail"]
    assert len(main) == len(frame)
    details = dict.fromkeys(range(len(main)), "")
    n = -1
    for cls, cells in t.rows:
        if cls == "sky-plan-detail":
            details[n] = " ".join(c[0] for c in cells)
        else:
            n += 1
    for i, record in enumerate(frame.to_dict("records")):
        shown = " ".join(c[0] for c in main[i]) + " " + details[i]
        for column in PLAN_COLUMNS:
            value = str(record[column])
            if column in MAIN_COLUMNS:
                assert value == main[i][MAIN_COLUMNS.index(column)][0], (i, column)
            elif value.strip():
                assert f"{column}" in shown and value in shown, (i, column, shown)
    # The chosen row stays marked and bold.
    assert sum("✔" in " ".join(c[0] for c in cells) for cells in main) == 1
    assert plan.title() in text


def test_columns_equal_on_every_row_are_said_once() -> None:
    plan = plain_plan()
    t = Table(plan._repr_html_())
    text = " ".join(t.text)
    assert "Every row: INSTANCE 16CPU--64GB--4H100, vCPUs 16, Mem(GB) 64, COST ($) 0.00" in text
    frame = plan.to_frame()
    # Only a row with a WOULD_FIT gets a detail line, and it says only that.
    details = [" ".join(c[0] for c in cells) for cls, cells in t.rows if cls == "sky-plan-detail"]
    offers = [w for w in frame["WOULD_FIT"] if w]
    assert offers and details == [f" WOULD_FIT: {w}" for w in offers]


def test_the_launch_widget_shows_the_narrow_table() -> None:
    """The widget's stylesheet sets `nowrap` on every cell; the plan's inline styles win."""
    p = LaunchProgressWidget(tick=0)
    try:
        plan = wide_plan()
        p.on_plan(plan)
        t = Table(p.plan.value)
        assert [h for h, _s in t.headers] == list(MAIN_COLUMNS)
        assert estimated_width(t) <= CELL_PX
        for row in plan.rows:  # the attempts table wraps its long cells the same way
            p.on_attempt(Attempt(row.context, "skipped", row.reason))
        attempts = Table(p.table.value)
        assert [h for h, _s in attempts.headers] == ["#", "context", "outcome", "reason", "seconds"]
        assert estimated_width(attempts) <= CELL_PX
    finally:
        p.close()
