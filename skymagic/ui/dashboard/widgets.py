"""The dashboard's two anywidget classes and where their front-end files come from.

The browser side lives at the repository's top in `widgets/` (ES modules and CSS, see its
README); the wheel ships that folder as `skymagic/ui/dashboard/static/` (pyproject's
`force-include`). Each class reads its files once, at import.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

__all__ = ["ContextCards", "FreeChart", "NodeGrid", "widget_asset"]

_HERE = Path(__file__).resolve().parent


def widget_asset(name: str) -> Path:
    """A front-end file: the wheel ships the repository's `widgets/` here as `static/`.

    In a checkout (an editable install) there is no `static/`; the files are read from
    `widgets/` at the repository's top, so an edit there shows on the next import.
    """
    packaged = _HERE / "static" / name
    if packaged.is_file():
        return packaged
    return _HERE.parents[2] / "widgets" / name


def _read_asset(name: str) -> str:
    return widget_asset(name).read_text(encoding="utf-8")


class NodeGrid(anywidget.AnyWidget):
    """One cell per node, grouped by context (widgets/node_grid.js); a click sets `selected`.

    Each view answers once, by counting up `rendered`.
    """

    _esm = _read_asset("node_grid.js")
    _css = _read_asset("dashboard.css")
    sections = traitlets.List(traitlets.Dict()).tag(sync=True)
    nodes = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)
    # Counted up by the JavaScript each time it draws a view: the kernel hears that a front
    # end renders the grid AND that messages from it arrive (see ui/comms.py).
    rendered = traitlets.Int(0).tag(sync=True)


class ContextCards(anywidget.AnyWidget):
    """One card per context (widgets/context_cards.js); a GPU row's click sets `selected_gpu`."""

    _esm = _read_asset("context_cards.js")
    _css = _read_asset("dashboard.css")
    cards = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected_gpu = traitlets.Dict().tag(sync=True)


class FreeChart(anywidget.AnyWidget):
    """Free GPUs over time, a line per context and GPU (widgets/free_chart.js; history.py)."""

    _esm = _read_asset("free_chart.js")
    _css = _read_asset("dashboard.css")
    series = traitlets.List(traitlets.Dict()).tag(sync=True)
