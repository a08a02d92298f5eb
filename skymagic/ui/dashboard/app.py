"""`Dashboard`: owns the widgets, redraws them from its source, runs ONE timer thread.

Shaped like dask's Cluster widget: the widgets are attributes; `refresh()` fetches through
the injected source, builds the view model (`view.build_view`) and only assigns traits; one
background thread (the timer) calls it every `interval` seconds while auto-refresh is on and
runs click work (a node's pods), so the kernel never waits on the network; `close()` stops
that thread and the source's watches. Nothing writes through `with out:` from a thread
(ipykernel 7 routes thread output elsewhere). `_repr_mimebundle_` adds the text and HTML
snapshots (`snapshot.py`) beside the widget view.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import ipywidgets as w

from skymagic.core.targets import Settings
from skymagic.ui.comms import keep_comms_open
from skymagic.ui.dashboard import snapshot
from skymagic.ui.dashboard.history import FreeHistory
from skymagic.ui.dashboard.source import DashboardSource, LiveInventory
from skymagic.ui.dashboard.view import (
    ALL,
    Filters,
    Selection,
    View,
    build_view,
    fit_answer,
    frame,
    launch_cell,
    pods_html,
    select_gpu,
    select_node,
    updated_html,
)
from skymagic.ui.dashboard.widgets import ContextCards, FreeChart, NodeGrid
from skymagic.ui.display import ShownOnce

__all__ = ["NOT_CONNECTED", "Dashboard", "dashboard"]

# What the dashboard says when a front end closed its comms and its view never answered.
NOT_CONNECTED = (
    "controls are not connected: close the other Jupyter tab on this kernel (for example "
    "Notebook's file browser), then re-run the cell"
)


def _labelled(kind: Any, description: str, width: str, **options: Any) -> Any:
    """A control (number box, dropdown) whose label sits beside it at its natural width."""
    return kind(
        description=description,
        layout=w.Layout(width=width),
        style={"description_width": "initial"},
        **options,
    )


class Dashboard(ShownOnce):
    """A live GPU availability dashboard (see the package docstring).

    Attributes are the widgets (`view`, `cards`, `chart`, `grid`, `refresh_button`, `auto`,
    `interval`, `context_filter`, `gpu_filter`, `min_free`, `updated`, `details`,
    `launch_gpus`, `launch_button`, `launch_text`, `warning`); `refresh()` redraws them from
    the source and records the free counts in `history` (the chart's data).
    `%sky_dashboard` calls `show()`; a cell ending in the handle does not show it twice.
    """

    ack_timeout = 8.0  # seconds a displayed view has to answer before `warning` shows

    def __init__(
        self,
        source: DashboardSource,
        *,
        interval: float = 10.0,
        auto_refresh: bool = True,
        all_nodes: bool = False,
        initial_refresh: bool = True,
    ) -> None:
        self.source = source
        self.all_nodes = all_nodes
        self._view_model: View | None = None
        self._lock = threading.RLock()  # guards the view model and trait assignment
        self._fetch_lock = threading.Lock()  # one fetch at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._jobs: deque[Callable[[], None]] = deque()
        self._refresh_requested = False
        self._closed = False
        self._holding = False  # options being replaced: filter events are not the user's
        self._selection: Selection | None = None
        self.refresh_count = 0
        self.last_error: str | None = None
        self.last_launch_cell: str | None = None
        self.foreign_closes = 0  # comms a front end closed (another tab on the kernel)
        self._ack_timer: threading.Timer | None = None

        self.title = w.HTML("<b>skymagic</b> · GPUs across contexts")
        self.refresh_button = w.Button(
            description="Refresh", icon="refresh", tooltip="Refresh now", button_style=""
        )
        self.refresh_button.layout.width = "auto"
        # ipywidgets' checkbox is 300 px wide by default: the header would wrap in a notebook.
        self.auto = w.Checkbox(
            value=auto_refresh,
            description="auto-refresh",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.interval = _labelled(
            w.BoundedFloatText,
            "every (s)",
            "150px",
            value=float(interval),
            min=0.5,
            max=3600.0,
            step=1.0,
        )
        self.updated = w.HTML("not updated yet")
        self.warning = w.HTML("", layout=w.Layout(display="none"))
        # Narrower than ipywidgets' 300 px so the filters and the count stay on one row.
        self.context_filter = _labelled(
            w.Dropdown, "context", "300px", options=[("all contexts", ALL)], value=ALL
        )
        self.gpu_filter = _labelled(
            w.Dropdown, "GPU", "200px", options=[("all GPUs", ALL)], value=ALL
        )
        self.min_free = _labelled(w.BoundedIntText, "min free", "150px", value=0, min=0, max=1024)
        self.shown = w.HTML("")
        self.cards = ContextCards()
        self.history = FreeHistory()
        self.chart = FreeChart()
        self.grid = NodeGrid()
        self.details = w.HTML("", layout=w.Layout(display="none"))
        self.launch_gpus = _labelled(w.BoundedIntText, "GPUs", "120px", value=1, min=1, max=1024)
        self.launch_button = w.Button(
            description="Launch here",
            icon="rocket",
            tooltip="Pre-fill a %%sky_launch cell for this context and GPU",
        )
        self.launch_text = w.Textarea(
            value="",
            placeholder="the %%sky_launch cell appears here",
            layout=w.Layout(width="100%", height="64px"),
        )
        self.launch_fit = w.HTML("")  # what-would-fit for the count typed in `launch_gpus`
        self.launch_box = w.VBox(
            [
                w.HBox(
                    [self.launch_gpus, self.launch_button, self.launch_fit],
                    layout=w.Layout(align_items="center"),
                ),
                self.launch_text,
            ],
            layout=w.Layout(display="none"),
        )
        self.view = w.VBox(
            [
                w.HBox(
                    [self.title, self.refresh_button, self.auto, self.interval, self.updated],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.warning,
                w.HBox(
                    [self.context_filter, self.gpu_filter, self.min_free, self.shown],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.cards,
                self.chart,
                self.grid,
                self.details,
                self.launch_box,
            ]
        )
        self.view.add_class("sky-dashboard")

        self.refresh_button.on_click(lambda _b: self.request_refresh())
        self.launch_button.on_click(lambda _b: self.launch_here())
        self.launch_gpus.observe(lambda _c: self._update_fit(), names="value")
        self.auto.observe(self._on_timer_change, names="value")
        self.interval.observe(self._on_timer_change, names="value")
        for control in (self.context_filter, self.gpu_filter, self.min_free):
            control.observe(self._on_filter_change, names="value")
        self.grid.observe(self._on_node_selected, names="selected")
        self.cards.observe(self._on_gpu_selected, names="selected_gpu")
        self.view.observe(self._on_view_closed, names="comm")
        self.grid.observe(self._on_view_answered, names="rendered")
        keep_comms_open([self.view], self._on_foreign_close)

        if initial_refresh:
            self.refresh()
        self._thread = threading.Thread(
            target=self._run, name=f"skymagic-dashboard-{id(self):x}", daemon=True
        )
        self._thread.start()

    # -- data ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fetch from the source and redraw (on the calling thread; the timer calls this)."""
        if self._closed:
            return
        with self._fetch_lock:
            started = time.monotonic()
            try:
                inv = self.source.fetch()
                view = build_view(
                    inv,
                    self.source.modes(),
                    all_nodes=self.all_nodes,
                    took_s=time.monotonic() - started,
                )
            except Exception as exc:  # keep the last picture; say why it is old
                self.last_error = f"refresh failed: {type(exc).__name__}: {exc}"
                with self._lock:
                    self.updated.value = html.escape(self.last_error)
                return
            self.last_error = None
            with self._lock:
                if self.closed:  # closed while fetching
                    return
                self._view_model = view
                self.history.record(view.fetched_at, view.cards)
                self._set_options(self.context_filter, "all contexts", view.contexts)
                self._set_options(self.gpu_filter, "all GPUs", view.gpu_types)
                self._redraw()
                self._update_fit()
                self.updated.value = updated_html(view)
                self.refresh_count += 1

    def request_refresh(self) -> None:
        """Refresh soon, on the timer thread (what the Refresh button does)."""
        self._refresh_requested = True
        self._wake.set()

    @property
    def visible_nodes(self) -> list[dict[str, Any]]:
        """The node cells shown now (after filters), as the grid has them."""
        return list(self.grid.nodes)

    @property
    def filters(self) -> Filters:
        """The filter controls' values now."""
        return Filters(
            context=str(self.context_filter.value or ALL),
            gpu=str(self.gpu_filter.value or ALL),
            min_free=int(self.min_free.value or 0),
        )

    def _set_options(self, dropdown: Any, all_label: str, values: list[str]) -> None:
        new = ((all_label, ALL), *((v, v) for v in values))
        if tuple(tuple(o) for o in dropdown.options) == new:
            return
        current = dropdown.value
        self._holding = True
        try:
            dropdown.options = new
            dropdown.value = current if current in values else ALL
        finally:
            self._holding = False

    def _redraw(self) -> None:
        """Assign the grid's and the cards' traits from the view model (holding the lock)."""
        view = self._view_model
        if view is None:
            return
        out = frame(view, self.filters)
        with self.grid.hold_sync(), self.cards.hold_sync(), self.chart.hold_sync():
            self.grid.sections = out.sections
            self.grid.nodes = out.nodes
            self.cards.cards = out.cards
            self.chart.series = self.history.series(self.filters)
        self.shown.value = out.shown

    def _on_filter_change(self, _change: Mapping[str, Any]) -> None:
        if self._holding:
            return
        with self._lock:
            self._redraw()
            self._drop_hidden_selection()

    def _drop_hidden_selection(self) -> None:
        """Clear the details when the filters now hide what they describe."""
        sel = self._selection
        if sel is None:
            return
        f = self.filters
        if sel.kind == "node":
            if not any(
                n["context"] == sel.context and n["node"] == sel.key for n in self.grid.nodes
            ):
                self.grid.selected = {}  # its observer hides the details
        elif f.context not in (ALL, sel.context) or f.gpu not in (ALL, sel.key):
            self.cards.selected_gpu = {}

    # -- timer -----------------------------------------------------------------------------
    def _on_timer_change(self, _change: Mapping[str, Any]) -> None:
        self._wake.set()  # the loop re-reads auto and interval

    def _run(self) -> None:
        due = time.monotonic() + float(self.interval.value)
        while not self._stop.is_set():
            auto = bool(self.auto.value)
            wait = max(0.0, due - time.monotonic()) if auto else None
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            while self._jobs:
                job = self._jobs.popleft()
                try:
                    job()
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                if self._stop.is_set():
                    return
            now = time.monotonic()
            if self._refresh_requested or (auto and now >= due):
                self._refresh_requested = False
                self.refresh()
                due = time.monotonic() + float(self.interval.value)
            elif not auto:
                due = now + float(self.interval.value)

    def _submit(self, job: Callable[[], None]) -> None:
        self._jobs.append(job)
        self._wake.set()

    # -- details and launch ------------------------------------------------------------------
    def _on_node_selected(self, change: Mapping[str, Any]) -> None:
        self._on_click(change["new"], "node", self.cards, "selected_gpu", self.show_node)

    def _on_gpu_selected(self, change: Mapping[str, Any]) -> None:
        self._on_click(change["new"], "gpu", self.grid, "selected", self.show_gpu)

    def _on_click(
        self,
        picked: Mapping[str, Any] | None,
        key: str,
        other: Any,
        other_trait: str,
        show: Callable[[str, str], None],
    ) -> None:
        """A click in one widget: clear the other's selection, show this one (or hide)."""
        picked = picked or {}
        if not picked.get(key):
            self._clear_details()
            return
        with self._lock:
            if getattr(other, other_trait):
                setattr(other, other_trait, {})
        show(str(picked.get("context", "")), str(picked[key]))

    def _clear_details(self) -> None:
        if self.grid.selected or self.cards.selected_gpu:
            return
        with self._lock:
            self._selection = None
            self.details.layout.display = "none"
            self.launch_box.layout.display = "none"

    def show_node(self, context: str, node: str) -> None:
        """Show the pods holding `node`'s GPUs (fetched on the timer thread)."""
        sel = select_node(self._view_model, context, node)
        if sel is None:
            with self._lock:
                self.details.value = (
                    f"<div class='sky-details'><b>{html.escape(context)} / "
                    f"{html.escape(node)}</b>: not shown</div>"
                )
                self.details.layout.display = ""
            return
        self._show(sel)

    def show_gpu(self, context: str, gpu: str) -> None:
        """Show the pods holding `gpu`s in `context` (fetched on the timer thread)."""
        self._show(select_gpu(self._view_model, context, gpu))

    def _show(self, sel: Selection) -> None:
        with self._lock:
            self._selection = sel
            self.details.value = (
                f"<div class='sky-details'>{sel.head}<br><i>loading pods…</i></div>"
            )
            self.details.layout.display = ""
            if sel.launch_gpu:
                self.launch_gpus.max = max(1, sel.most)
                self.launch_gpus.value = min(self.launch_gpus.value, self.launch_gpus.max)
                self.launch_box.layout.display = ""
                self._update_fit()
            else:
                self.launch_box.layout.display = "none"
        self._submit(lambda: self._load_pods(sel))

    def _load_pods(self, sel: Selection) -> None:
        try:
            pods = self.source.pods(sel.context, sel.nodes, sel.resources) if sel.nodes else []
            body = pods_html(pods, by_node=sel.kind == "gpu")
        except Exception as exc:
            body = f"<span class='sky-error'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"
        with self._lock:
            if self._selection != sel or self._closed:
                return  # another click came first
            self.details.value = f"<div class='sky-details'>{sel.head}{body}</div>"

    def _update_fit(self) -> None:
        """Say whether the count in the GPUs box fits now, here or elsewhere."""
        sel = self._selection
        if sel is None or not sel.launch_gpu:
            return
        with self._lock:
            answer = fit_answer(
                self._view_model, sel.context, sel.launch_gpu, int(self.launch_gpus.value or 1)
            )
            self.launch_fit.value = f"<span class='sky-fit'>{html.escape(answer)}</span>"

    def launch_here(self) -> str | None:
        """Pre-fill a `%%sky_launch` cell for the selected context and GPU; returns its text."""
        sel = self._selection
        if sel is None or not sel.launch_gpu:
            return None
        text = launch_cell(sel.context, sel.launch_gpu, int(self.launch_gpus.value))
        self.launch_text.value = text
        self.last_launch_cell = text
        try:
            from IPython import get_ipython

            ip = get_ipython()
        except ImportError:
            ip = None
        if ip is not None:
            ip.set_next_input(text, replace=False)
        return text

    # -- is a front end listening? -----------------------------------------------------------
    def show(self) -> None:
        """Display the dashboard (what `%sky_dashboard` does) and expect its view to answer."""
        super().show()
        # Armed whatever the count now: the closes are shell messages, often handled only
        # after this cell ends. No kernel (a terminal): no front end to wait for.
        if self._ack_timer is None and not self.grid.rendered and _in_kernel():
            timer = threading.Timer(self.ack_timeout, self._check_connected)
            timer.daemon = True
            timer.name = f"skymagic-dashboard-ack-{id(self):x}"
            self._ack_timer = timer
            timer.start()

    def _on_foreign_close(self, _comm_id: str) -> None:
        """A front end closed one of our comms (see ui/comms.py): watch for the view's answer."""
        self.foreign_closes += 1

    def _on_view_answered(self, _change: Mapping[str, Any]) -> None:
        """The grid's JavaScript set `rendered`: clicks reach this kernel."""
        with self._lock:
            self.warning.layout.display = "none"

    def _check_connected(self) -> None:
        self._ack_timer = None
        if self._closed or self.grid.rendered or not self.foreign_closes:
            return  # answered, or no sign of another front end (a headless run has neither)
        with self._lock:
            self.warning.value = f"<div class='sky-error'>{html.escape(NOT_CONNECTED)}</div>"
            self.warning.layout.display = ""

    # -- lifecycle -------------------------------------------------------------------------
    def _on_view_closed(self, change: Mapping[str, Any]) -> None:
        if change["new"] is None:
            self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 10.0) -> None:
        """Stop the timer thread and the source's watches, and close the widgets."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        timer = self._ack_timer
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join(timeout)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self.source.close()
        for widget in self._widgets():
            with contextlib.suppress(Exception):
                widget.close()

    def _widgets(self) -> Iterable[Any]:
        """Every widget under the view, children first (so the view closes last)."""
        seen: list[Any] = []

        def walk(x: Any) -> Iterator[Any]:
            if any(x is s for s in seen):
                return
            seen.append(x)
            for child in getattr(x, "children", ()) or ():
                yield from walk(child)
            yield x

        return list(walk(self.view))

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- static snapshot -------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        widget_repr = getattr(self.view, "_repr_mimebundle_", None)
        if widget_repr is not None and not self._closed:
            bundle.update(widget_repr(**kwargs) or {})
        bundle["text/plain"] = self.to_text()
        bundle["text/html"] = self.to_html()
        return bundle

    def __repr__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """The current picture (after the filters) as plain text."""
        return snapshot.to_text(self._view_model, self.filters)

    def to_html(self) -> str:
        """The current picture as self-contained HTML (inline styles: no CSS, no script)."""
        return snapshot.to_html(self._view_model, self.filters)


def _in_kernel() -> bool:
    """Whether IPython runs as a Jupyter kernel (a browser may be drawing our views)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def dashboard(
    settings: Settings | None = None,
    infra: str | None = None,
    *,
    interval: float = 10.0,
    auto_refresh: bool = True,
    watch: bool = True,
    all_nodes: bool = False,
) -> Dashboard:
    """A live GPU dashboard over every allowed context (or the one `infra`='k8s/CTX' pins).

    `interval`: seconds between background refreshes while auto-refresh is on. `watch`: follow
    each context with watches (a refresh costs no request) instead of re-listing everything.
    `all_nodes`: also show CPU-only nodes in the grid. Call `.close()` to stop it.
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    source = LiveInventory(settings, infra, watch=watch)
    try:
        return Dashboard(source, interval=interval, auto_refresh=auto_refresh, all_nodes=all_nodes)
    except BaseException:
        source.close()
        raise
