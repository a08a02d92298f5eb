"""`%sky_dashboard` / `skymagic.dashboard()`: a live view of GPU availability across contexts.

    dash = skymagic.dashboard()            # or: dash = %sky_dashboard --interval 5
    dash.refresh()                          # a refresh now, on the calling thread
    dash.close()                            # stop the timer and the watches; close the widgets

Layout, top to bottom: controls (refresh now, auto-refresh and its interval, the last-updated
time), filters (context, GPU type, minimum free GPUs per node), one card per context (health,
latency, how it is read, free/total GPUs per type as bars, its error in place), free GPUs
over time (a line per context and GPU type since the dashboard opened), the node grid
(one cell per node, coloured by its free fraction; NotReady crossed, cordoned hatched, tainted
dashed; a node whose GPUs a managed job holds tagged with the job's number, its tooltip naming
the `%sky_jobs_cancel` that stops it), and a details panel: clicking a node (or a GPU row of
a card) lists the pods holding those GPUs and offers "launch here", which pre-fills a
`%%sky_launch --infra k8s/CTX --gpus GPU:N` cell (IPython's `set_next_input`, and a text box
to copy from).

One job per module:
    source.py    where the data comes from: `LiveInventory` (watches, a re-list where they fail)
    view.py      pure: an Inventory, the filters and a click in; cards, cells, details out
    history.py   pure: free GPUs per context and GPU at each refresh, for the chart
    widgets.py   the anywidget classes (`NodeGrid`, `ContextCards`) and their front-end files
    app.py       `Dashboard` (owns the widgets, one timer thread) and `dashboard()`
    snapshot.py  text/plain and text/html pictures for a notebook saved without a kernel
The browser side is `widgets/` at the repository's top, shipped in the wheel as `static/`.
"""

from __future__ import annotations

from skymagic.gpus.pods import PodRow
from skymagic.ui.dashboard.app import Dashboard, dashboard
from skymagic.ui.dashboard.source import DashboardSource, LiveInventory
from skymagic.ui.dashboard.view import launch_cell
from skymagic.ui.dashboard.widgets import ContextCards, FreeChart, NodeGrid, widget_asset

__all__ = [
    "ContextCards",
    "Dashboard",
    "DashboardSource",
    "FreeChart",
    "LiveInventory",
    "NodeGrid",
    "PodRow",
    "dashboard",
    "launch_cell",
    "widget_asset",
]
