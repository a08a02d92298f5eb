"""`%sky_dashboard` / `skymagic.dashboard()`: a live view of GPU availability across contexts.

Shaped like dask's Cluster widget: a `Dashboard` owns its widgets as attributes; `refresh()`
fetches through an injected source and only assigns traits; one background thread (the timer)
calls it every `interval` seconds while auto-refresh is on, and runs click work (a node's pods)
so the kernel never waits on the network; `close()` stops that thread and the source's watches.
Nothing writes through `with out:` from a thread (ipykernel 7 routes thread output elsewhere).

    dash = skymagic.dashboard()            # or: dash = %sky_dashboard --interval 5
    dash.refresh()                          # a refresh now, on the calling thread
    dash.close()                            # stop the timer and the watches; close the widgets

Layout, top to bottom: controls (refresh now, auto-refresh and its interval, the last-updated
time), filters (context, GPU type, minimum free GPUs per node), one card per context (health,
latency, how it is read, free/total GPUs per type as bars, its error in place), the node grid
(one cell per node, coloured by its free fraction; NotReady crossed, cordoned hatched, tainted
dashed), and a details panel: clicking a node (or a GPU row of a card) lists the pods holding
those GPUs and offers "launch here", which pre-fills a `%%sky_launch --infra k8s/CTX --gpus
GPU:N` cell (IPython's `set_next_input`, and a text box to copy from).

Data: `LiveInventory` follows each context with `InventoryWatcher` (list once, then watches:
a refresh redraws from memory). A context the watcher cannot follow right now (an error row:
watch forbidden, a broken connection in backoff) is re-listed with `show_gpus` on that refresh;
its card says "list" instead of "watch". `watch=False` re-lists everything every time.

The front end is two anywidget ES modules (`widgets/node_grid.js`, `widgets/context_cards.js`,
styled by `widgets/dashboard.css`), shipped in the wheel as `skymagic/ui/dashboard/static/`.
Standard
ipywidgets do the controls. `_repr_mimebundle_` adds text/plain and text/html snapshots beside
the widget view, so a saved notebook still shows the fleet without a kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anywidget
import ipywidgets as w
import traitlets

from skymagic.core.targets import Settings

if TYPE_CHECKING:
    import pandas as pd

    from skymagic.gpus.inventory import Inventory
    from skymagic.gpus.watcher import InventoryWatcher

__all__ = [
    "ContextCards",
    "Dashboard",
    "DashboardSource",
    "LiveInventory",
    "NodeGrid",
    "PodRow",
    "dashboard",
    "launch_cell",
    "widget_asset",
]

PodRow = dict[str, Any]  # {"namespace", "name", "node", "gpus"}

_STATIC_CELL_LIMIT = 2000  # node cells in the text/html snapshot; beyond: counts only


# --- front-end assets -----------------------------------------------------------------------


def widget_asset(name: str) -> Path:
    """A front-end file: the wheel ships the repository's `widgets/` here as `static/`.

    In a checkout (an editable install) there is no `static/`; the files are read from
    `widgets/` at the repository's top, so an edit there shows on the next import.
    """
    here = Path(__file__).resolve().parent
    packaged = here / "static" / name
    if packaged.is_file():
        return packaged
    return here.parents[2] / "widgets" / name


def _read_asset(name: str) -> str:
    return widget_asset(name).read_text(encoding="utf-8")


class NodeGrid(anywidget.AnyWidget):
    """One cell per node, grouped by context (widgets/node_grid.js)."""

    _esm = _read_asset("node_grid.js")
    _css = _read_asset("dashboard.css")
    sections = traitlets.List(traitlets.Dict()).tag(sync=True)
    nodes = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)


class ContextCards(anywidget.AnyWidget):
    """One card per context (widgets/context_cards.js)."""

    _esm = _read_asset("context_cards.js")
    _css = _read_asset("dashboard.css")
    cards = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected_gpu = traitlets.Dict().tag(sync=True)


# --- the data source ------------------------------------------------------------------------


class DashboardSource(Protocol):
    """Where a Dashboard gets its data (tests inject their own)."""

    def fetch(self) -> Inventory:
        """The current inventory (may block: it runs on the timer thread)."""
        ...

    def modes(self) -> Mapping[str, str]:
        """How each context was read on the last fetch: 'watch' or 'list'."""
        ...

    def pods(self, context: str, nodes: Sequence[str], resources: Sequence[str]) -> list[PodRow]:
        """Live pods on `nodes` of `context` that request any of `resources`."""
        ...

    def close(self) -> None:
        """Stop background work (watches)."""
        ...


def _concat(frames: list[pd.DataFrame], like: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    kept = [f for f in frames if not f.empty]
    if not kept:
        empty: pd.DataFrame = like.iloc[0:0]
        return empty
    out: pd.DataFrame = (
        kept[0].reset_index(drop=True) if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    )
    return out


class LiveInventory:
    """The dashboard's default source: watches per context, a re-list where a watch fails.

    `watch=False` re-lists every context on every fetch (`show_gpus`), like `%sky_show_gpus`.
    """

    def __init__(
        self, settings: Settings | None = None, infra: str | None = None, *, watch: bool = True
    ) -> None:
        from skymagic.core.targets import resolve_targets
        from skymagic.gpus.watcher import InventoryWatcher

        self.settings = settings or Settings()
        self.infra = infra
        self.watcher: InventoryWatcher | None = None
        if watch:
            self.watcher = InventoryWatcher(self.settings, infra, wait=0)
            self.contexts: list[str] = list(self.watcher.contexts)
        else:
            targets = resolve_targets(self.settings, infra, operation="gpus")
            self.contexts = list(targets.contexts)
        self._modes: dict[str, str] = dict.fromkeys(self.contexts, "watch" if watch else "list")
        self._synced = False

    def _budget(self) -> float:
        return self.settings.client.request_timeout * 3 + 1.0

    def fetch(self) -> Inventory:
        from skymagic.gpus.inventory import show_gpus

        if self.watcher is None:
            return show_gpus(self.settings, self.infra)
        if not self._synced:
            self.watcher.wait_synced(self._budget())
            self._synced = True
        snap = self.watcher.snapshot()
        failing = [c for c in dict.fromkeys(snap.errors["context"]) if c in self.contexts]
        modes = dict.fromkeys(self.contexts, "watch")
        if not failing:
            self._modes = modes
            return snap
        # The watcher cannot follow these right now: read them once, the way show_gpus does.
        relisted = show_gpus(dataclasses.replace(self.settings, allowed_contexts=tuple(failing)))
        for c in failing:
            modes[c] = "list"
        self._modes = modes
        return _merge(snap, relisted, failing)

    def modes(self) -> Mapping[str, str]:
        return dict(self._modes)

    def pods(self, context: str, nodes: Sequence[str], resources: Sequence[str]) -> list[PodRow]:
        return pods_holding(self.settings, context, nodes, resources)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


def _merge(base: Inventory, extra: Inventory, replaced: Sequence[str]) -> Inventory:
    """`base` with the rows of the `replaced` contexts taken from `extra`."""
    from skymagic.gpus.inventory import Inventory

    def pick(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
        keep = a[~a["context"].isin(replaced)]
        take = b[b["context"].isin(replaced)]
        return _concat([keep, take], a)

    latency = dict(base.latency_ms)
    latency.update({c: v for c, v in extra.latency_ms.items() if c in replaced})
    return Inventory(
        nodes=pick(base.nodes, extra.nodes),
        by_context=pick(base.by_context, extra.by_context),
        summary=base.summary,
        errors=pick(base.errors, extra.errors),
        fetched_at=extra.fetched_at,
        latency_ms=latency,
        contexts=list(base.contexts),
        all_nodes=base.all_nodes,
    )


def pods_holding(
    settings: Settings, context: str, nodes: Sequence[str], resources: Sequence[str]
) -> list[PodRow]:
    """Live pods bound to `nodes` of `context` that request any of `resources`.

    One node: `GET /api/v1/pods?fieldSelector=spec.nodeName=NODE,...` (the server filters).
    Several (a GPU row): the context's live pods, filtered here.
    """
    from skymagic.core.client import client_for
    from skymagic.core.targets import resolve_targets
    from skymagic.gpus.counting import pod_binding
    from skymagic.gpus.inventory import POD_FIELD_SELECTOR, PODS_PATH

    targets = resolve_targets(settings, f"k8s/{context}", operation="gpus")
    client = client_for(targets.kubeconfig.resolve(context), settings.client)
    field = POD_FIELD_SELECTOR
    if len(nodes) == 1:
        field = f"spec.nodeName={nodes[0]},{POD_FIELD_SELECTOR}"
    wanted = set(nodes)

    def pick(pod: dict[str, Any]) -> PodRow | None:
        bound = pod_binding(pod)
        if bound is None or bound[0] not in wanted:
            return None
        gpus = sum(bound[1].get(r, 0.0) for r in resources)
        if gpus <= 0:
            return None
        meta = pod.get("metadata") or {}
        return {
            "namespace": str(meta.get("namespace", "")),
            "name": str(meta.get("name", "")),
            "node": bound[0],
            "gpus": round(gpus),
        }

    items, _rv = client.list_items(PODS_PATH, {"fieldSelector": field}, pick=pick)
    rows = [r for r in items if r is not None]
    rows.sort(key=lambda r: (r["node"], r["namespace"], r["name"]))
    return rows


# --- the view model (pure) ------------------------------------------------------------------


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return int(value)


@dataclasses.dataclass
class _Node:
    context: str
    node: str
    gpus: list[str]
    resources: list[str]
    total: int
    free: int | None
    status: str
    taints: str

    @property
    def key(self) -> str:
        return f"{self.context}/{self.node}"

    def to_trait(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "context": self.context,
            "node": self.node,
            "gpu": " + ".join(self.gpus),
            "total": self.total,
            "free": self.free,
            "status": self.status,
            "taints": self.taints,
        }


@dataclasses.dataclass
class _View:
    contexts: list[str]
    nodes: list[_Node]
    cards: list[dict[str, Any]]
    errors: dict[str, str]
    gpu_types: list[str]
    fetched_at: float
    took_s: float


def _view(inv: Inventory, modes: Mapping[str, str], *, all_nodes: bool, took_s: float) -> _View:
    nodes: dict[tuple[str, str], _Node] = {}
    cols = ["context", "node", "gpu", "resource", "gpu_total", "gpu_free", "status", "taints"]
    for ctx, name, gpu, resource, total, free, status, taints in inv.nodes[cols].itertuples(
        index=False, name=None
    ):
        key = (str(ctx), str(name))
        free_i = _opt_int(free)
        total_i = _opt_int(total) or 0
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = _Node(
                str(ctx), str(name), [], [], 0, 0, str(status), str(taints or "")
            )
        if gpu is not None and not (isinstance(gpu, float)):
            node.gpus.append(str(gpu))
            node.resources.append(str(resource))
            node.total += total_i
            node.free = None if node.free is None or free_i is None else node.free + free_i
        elif free_i is None:
            node.free = None
    node_list = [n for n in nodes.values() if all_nodes or n.gpus]
    errors: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for ctx, kind, message in inv.errors[["context", "kind", "message"]].itertuples(
        index=False, name=None
    ):
        errors.setdefault(str(ctx), f"{kind}: {message}")
        kinds.setdefault(str(ctx), str(kind))
    per_ctx_nodes: dict[str, int] = {}
    for n in nodes.values():
        per_ctx_nodes[n.context] = per_ctx_nodes.get(n.context, 0) + 1
    gpus_by_ctx: dict[str, list[dict[str, Any]]] = {}
    gpu_types: set[str] = set()
    for ctx, gpu, total, free in inv.by_context[
        ["context", "gpu", "gpu_total", "gpu_free"]
    ].itertuples(index=False, name=None):
        gpus_by_ctx.setdefault(str(ctx), []).append(
            {"gpu": str(gpu), "total": _opt_int(total) or 0, "free": _opt_int(free)}
        )
        gpu_types.add(str(gpu))
    cards: list[dict[str, Any]] = []
    for ctx in inv.contexts:
        has_nodes = ctx in per_ctx_nodes
        health = ("degraded" if has_nodes else "error") if ctx in errors else "ok"
        latency = inv.latency_ms.get(ctx)
        cards.append(
            {
                "context": ctx,
                "health": health,
                "kind": kinds.get(ctx, ""),
                "message": errors.get(ctx, ""),
                "latency_ms": None if latency is None else round(float(latency), 1),
                "mode": modes.get(ctx, "list"),
                "nodes": per_ctx_nodes.get(ctx, 0),
                "gpus": gpus_by_ctx.get(ctx, []),
            }
        )
    return _View(
        contexts=list(inv.contexts),
        nodes=node_list,
        cards=cards,
        errors=errors,
        gpu_types=sorted(gpu_types),
        fetched_at=inv.fetched_at,
        took_s=took_s,
    )


def _status_kind(status: str) -> str:
    if status == "NotReady":
        return "notready"
    if status == "Cordoned":
        return "cordoned"
    if "Taint" in status:
        return "tainted"
    return "healthy"


def _free_colour(free: int | None, total: int) -> str:
    if free is None or not total:
        return "#b8bcc4"
    frac = max(0.0, min(1.0, free / total))
    return f"hsl({round(frac * 120)}, 62%, 48%)"


def launch_cell(context: str, gpu: str, count: int) -> str:
    """The `%%sky_launch` cell that "launch here" pre-fills."""
    if any(ch.isspace() or ch in "'\"" for ch in context + gpu):
        # Flags cannot carry spaces or quotes through IPython's line splitting: use the YAML form.
        return (
            "%%sky_launch\n"
            "resources:\n"
            f"  infra: {_yaml_str('k8s/' + context)}\n"
            f"  accelerators: {_yaml_str(f'{gpu}:{count}')}\n"
            "run: |\n"
            "  nvidia-smi\n"
        )
    return f"%%sky_launch --infra k8s/{context} --gpus {gpu}:{count}\nnvidia-smi\n"


def _yaml_str(text: str) -> str:
    import json

    return json.dumps(text)


# --- the dashboard --------------------------------------------------------------------------

_ALL = ""


class Dashboard:
    """A live GPU availability dashboard (see the module docstring).

    Attributes are the widgets (`view`, `cards`, `grid`, `refresh_button`, `auto`, `interval`,
    `context_filter`, `gpu_filter`, `min_free`, `updated`, `details`, `launch_gpus`,
    `launch_button`, `launch_text`); `refresh()` redraws them from the source.
    """

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
        self._view_model: _View | None = None
        self._lock = threading.RLock()  # guards the view model and trait assignment
        self._fetch_lock = threading.Lock()  # one fetch at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._jobs: deque[Callable[[], None]] = deque()
        self._refresh_requested = False
        self._closed = False
        self._selection: tuple[str, str, str] | None = None  # (kind, context, node-or-gpu)
        self._launch_target: tuple[str, str] | None = None  # (context, gpu)
        self.refresh_count = 0
        self.last_error: str | None = None
        self.last_launch_cell: str | None = None

        self.title = w.HTML("<b>skymagic</b> · GPUs across contexts")
        self.refresh_button = w.Button(
            description="Refresh", icon="refresh", tooltip="Refresh now", button_style=""
        )
        self.auto = w.Checkbox(value=auto_refresh, description="auto-refresh", indent=False)
        self.interval = w.BoundedFloatText(
            value=float(interval),
            min=0.5,
            max=3600.0,
            step=1.0,
            description="every (s)",
            layout=w.Layout(width="150px"),
            style={"description_width": "initial"},
        )
        self.updated = w.HTML("not updated yet")
        self.context_filter = w.Dropdown(
            options=[("all contexts", _ALL)], value=_ALL, description="context"
        )
        self.gpu_filter = w.Dropdown(options=[("all GPUs", _ALL)], value=_ALL, description="GPU")
        self.min_free = w.BoundedIntText(
            value=0,
            min=0,
            max=1024,
            description="min free",
            layout=w.Layout(width="150px"),
            style={"description_width": "initial"},
        )
        self.shown = w.HTML("")
        self.cards = ContextCards()
        self.grid = NodeGrid()
        self.details = w.HTML("", layout=w.Layout(display="none"))
        self.launch_gpus = w.BoundedIntText(
            value=1,
            min=1,
            max=1024,
            description="GPUs",
            layout=w.Layout(width="120px"),
            style={"description_width": "initial"},
        )
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
        self.launch_box = w.VBox(
            [w.HBox([self.launch_gpus, self.launch_button]), self.launch_text],
            layout=w.Layout(display="none"),
        )
        self.view = w.VBox(
            [
                w.HBox(
                    [self.title, self.refresh_button, self.auto, self.interval, self.updated],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                w.HBox(
                    [self.context_filter, self.gpu_filter, self.min_free, self.shown],
                    layout=w.Layout(align_items="center", flex_flow="row wrap"),
                ),
                self.cards,
                self.grid,
                self.details,
                self.launch_box,
            ]
        )
        self.view.add_class("sky-dashboard")

        self.refresh_button.on_click(lambda _b: self.request_refresh())
        self.launch_button.on_click(lambda _b: self.launch_here())
        self.auto.observe(self._on_timer_change, names="value")
        self.interval.observe(self._on_timer_change, names="value")
        for control in (self.context_filter, self.gpu_filter, self.min_free):
            control.observe(self._on_filter_change, names="value")
        self.grid.observe(self._on_node_selected, names="selected")
        self.cards.observe(self._on_gpu_selected, names="selected_gpu")
        self.view.observe(self._on_view_closed, names="comm")

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
                view = _view(
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
                if self.closed:
                    return
                self._view_model = view
                self._apply()
                self.refresh_count += 1

    def request_refresh(self) -> None:
        """Refresh soon, on the timer thread (what the Refresh button does)."""
        self._refresh_requested = True
        self._wake.set()

    @property
    def visible_nodes(self) -> list[dict[str, Any]]:
        """The node cells shown now (after filters), as the grid has them."""
        return list(self.grid.nodes)

    def _filtered(self, view: _View) -> tuple[list[_Node], list[str]]:
        ctx = self.context_filter.value
        gpu = self.gpu_filter.value
        min_free = int(self.min_free.value or 0)
        contexts = [c for c in view.contexts if ctx in (_ALL, c)]
        nodes = [
            n
            for n in view.nodes
            if ctx in (_ALL, n.context)
            and (gpu == _ALL or gpu in n.gpus)
            and (min_free <= 0 or (n.free is not None and n.free >= min_free))
        ]
        return nodes, contexts

    def _apply(self) -> None:
        """Assign every trait from the view model (holding the lock)."""
        view = self._view_model
        if view is None:
            return
        self._set_options(self.context_filter, "all contexts", [(c, c) for c in view.contexts])
        self._set_options(self.gpu_filter, "all GPUs", [(g, g) for g in view.gpu_types])
        self._redraw()
        stamp = time.strftime("%H:%M:%S", time.localtime(view.fetched_at))
        self.updated.value = (
            f"updated <span class='sky-updated' data-ts='{view.fetched_at:.3f}'>{stamp}</span>"
            f" · {view.took_s * 1000:.0f} ms"
        )

    def _set_options(self, dd: Any, all_label: str, options: list[tuple[str, str]]) -> None:
        new = ((all_label, _ALL), *options)
        if tuple(tuple(o) for o in dd.options) == new:
            return
        current = dd.value
        with self._hold_filters():
            dd.options = new
            dd.value = current if current in (v for _o, v in new) else _ALL

    @contextlib.contextmanager
    def _hold_filters(self) -> Any:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    _holding = False

    def _redraw(self) -> None:
        view = self._view_model
        if view is None:
            return
        nodes, contexts = self._filtered(view)
        per_ctx_total: dict[str, int] = {}
        for n in view.nodes:
            per_ctx_total[n.context] = per_ctx_total.get(n.context, 0) + 1
        per_ctx_shown: dict[str, int] = {}
        for n in nodes:
            per_ctx_shown[n.context] = per_ctx_shown.get(n.context, 0) + 1
        gpu = self.gpu_filter.value
        cards = []
        for card in view.cards:
            if card["context"] not in contexts:
                continue
            if gpu != _ALL:
                card = {**card, "gpus": [g for g in card["gpus"] if g["gpu"] == gpu]}
            cards.append(card)
        with self.grid.hold_sync(), self.cards.hold_sync():
            self.grid.sections = [
                {
                    "context": c,
                    "error": view.errors.get(c, ""),
                    "shown": per_ctx_shown.get(c, 0),
                    "total": per_ctx_total.get(c, 0),
                }
                for c in contexts
            ]
            self.grid.nodes = [n.to_trait() for n in nodes]
            self.cards.cards = cards
        self.shown.value = f"{len(nodes)} of {len(view.nodes)} nodes shown"

    def _on_filter_change(self, _change: Mapping[str, Any]) -> None:
        if self._holding:
            return
        with self._lock:
            self._redraw()

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
        sel = change["new"] or {}
        if not sel.get("node"):
            self._clear_details()
            return
        with self._lock:
            if self.cards.selected_gpu:
                self.cards.selected_gpu = {}
        self.show_node(str(sel.get("context", "")), str(sel["node"]))

    def _on_gpu_selected(self, change: Mapping[str, Any]) -> None:
        sel = change["new"] or {}
        if not sel.get("gpu"):
            self._clear_details()
            return
        with self._lock:
            if self.grid.selected:
                self.grid.selected = {}
        self.show_gpu(str(sel.get("context", "")), str(sel["gpu"]))

    def _clear_details(self) -> None:
        if self.grid.selected or self.cards.selected_gpu:
            return
        with self._lock:
            self._selection = None
            self._launch_target = None
            self.details.layout.display = "none"
            self.launch_box.layout.display = "none"

    def show_node(self, context: str, node: str) -> None:
        """Show the pods holding `node`'s GPUs (fetched on the timer thread)."""
        view = self._view_model
        found = None
        if view is not None:
            found = next((n for n in view.nodes if n.context == context and n.node == node), None)
        if found is None:
            self._set_details(f"<b>{html.escape(context)} / {html.escape(node)}</b>: not shown")
            return
        sel = ("node", context, node)
        free = "?" if found.free is None else str(found.free)
        head = (
            f"<b>{html.escape(node)}</b> in {html.escape(context)} · "
            f"{html.escape(' + '.join(found.gpus) or 'no GPUs')}: {free} of {found.total} free"
            f" · {html.escape(found.status)}"
            + (f" · taints: {html.escape(found.taints)}" if found.taints else "")
        )
        self._select(sel, head, context, found.gpus[0] if found.gpus else None, found.total)
        self._submit(lambda: self._load_pods(sel, head, [node], found.resources))

    def show_gpu(self, context: str, gpu: str) -> None:
        """Show the pods holding `gpu`s in `context` (fetched on the timer thread)."""
        view = self._view_model
        nodes = [] if view is None else [n for n in view.nodes if n.context == context]
        mine = [n for n in nodes if gpu in n.gpus]
        resources = sorted(
            {r for n in mine for g, r in zip(n.gpus, n.resources, strict=True) if g == gpu}
        )
        total = sum(n.total for n in mine)
        sel = ("gpu", context, gpu)
        head = f"<b>{html.escape(gpu)}</b> in {html.escape(context)} · {len(mine)} nodes"
        self._select(sel, head, context, gpu, max((n.total for n in mine), default=total))
        names = [n.node for n in mine]
        self._submit(lambda: self._load_pods(sel, head, names, resources))

    def _select(
        self, sel: tuple[str, str, str], head: str, context: str, gpu: str | None, most: int
    ) -> None:
        with self._lock:
            self._selection = sel
            self._launch_target = (context, gpu) if gpu else None
            self.details.value = f"<div class='sky-details'>{head}<br><i>loading pods…</i></div>"
            self.details.layout.display = ""
            if gpu:
                self.launch_gpus.max = max(1, most)
                self.launch_gpus.value = min(self.launch_gpus.value, self.launch_gpus.max)
                self.launch_box.layout.display = ""
            else:
                self.launch_box.layout.display = "none"

    def _set_details(self, body: str) -> None:
        with self._lock:
            self.details.value = f"<div class='sky-details'>{body}</div>"
            self.details.layout.display = ""

    def _load_pods(
        self, sel: tuple[str, str, str], head: str, nodes: list[str], resources: list[str]
    ) -> None:
        try:
            pods = self.source.pods(sel[1], nodes, resources) if nodes else []
            body = _pods_html(pods, by_node=sel[0] == "gpu")
        except Exception as exc:
            body = f"<span class='sky-error'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"
        with self._lock:
            if self._selection != sel or self._closed:
                return  # another click came first
            self.details.value = f"<div class='sky-details'>{head}{body}</div>"

    def launch_here(self) -> str | None:
        """Pre-fill a `%%sky_launch` cell for the selected context and GPU; returns its text."""
        target = self._launch_target
        if target is None:
            return None
        text = launch_cell(target[0], target[1], int(self.launch_gpus.value))
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
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self.source.close()
        for widget in self._widgets():
            with contextlib.suppress(Exception):
                widget.close()

    def _widgets(self) -> Iterable[Any]:
        seen: list[Any] = []

        def walk(x: Any) -> None:
            if any(x is s for s in seen):
                return
            seen.append(x)
            for child in getattr(x, "children", ()) or ():
                walk(child)

        walk(self.view)
        out: list[Any] = seen[::-1]  # children first, the view last
        return out

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
        """The current picture as plain text."""
        view = self._view_model
        if view is None:
            return "skymagic dashboard (no data yet)"
        nodes, contexts = self._filtered(view)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.fetched_at))
        lines = [f"skymagic dashboard · updated {stamp} · {len(contexts)} contexts"]
        for card in view.cards:
            if card["context"] not in contexts:
                continue
            latency = "" if card["latency_ms"] is None else f" · {card['latency_ms']:.0f} ms"
            lines.append(
                f"{card['context']}: {card['health']}{latency} · {card['mode']} · "
                f"{card['nodes']} nodes"
            )
            if card["message"]:
                lines.append(f"  ! {card['message']}")
            for g in card["gpus"]:
                free = "?" if g["free"] is None else g["free"]
                lines.append(f"  {g['gpu']}: {free} of {g['total']} free")
        counts: dict[str, int] = {}
        for n in nodes:
            kind = _status_kind(n.status)
            counts[kind] = counts.get(kind, 0) + 1
        lines.append(
            f"nodes: {len(nodes)} shown of {len(view.nodes)}"
            + "".join(f" · {k} {v}" for k, v in sorted(counts.items()))
        )
        return "\n".join(lines)

    def to_html(self) -> str:
        """The current picture as self-contained HTML (inline styles: no CSS, no script)."""
        view = self._view_model
        if view is None:
            return "<div>skymagic dashboard (no data yet)</div>"
        nodes, contexts = self._filtered(view)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.fetched_at))
        parts = [
            "<div class='sky-dashboard-static' style='font-family:sans-serif;font-size:12px'>",
            f"<div><b>skymagic</b> · GPUs across contexts · updated {html.escape(stamp)}</div>",
            "<div style='display:flex;flex-wrap:wrap;gap:8px;margin:6px 0'>",
        ]
        colours = {"ok": "#3a9a5b", "degraded": "#d79a1e", "error": "#c8383a"}
        for card in view.cards:
            if card["context"] not in contexts:
                continue
            latency = "-" if card["latency_ms"] is None else f"{card['latency_ms']:.0f} ms"
            parts.append(
                "<div style='border:1px solid #ccc;border-left:4px solid "
                f"{colours.get(card['health'], '#999')};padding:4px 8px;min-width:200px'>"
                f"<b>{html.escape(card['context'])}</b><br>"
                f"{html.escape(card['health'])} · {latency} · {html.escape(card['mode'])} · "
                f"{card['nodes']} nodes"
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
        by_ctx: dict[str, list[_Node]] = {}
        for n in nodes[:_STATIC_CELL_LIMIT]:
            by_ctx.setdefault(n.context, []).append(n)
        for ctx in contexts:
            parts.append(f"<div><b>{html.escape(ctx)}</b></div><div>")
            for n in by_ctx.get(ctx, []):
                kind = _status_kind(n.status)
                border = {"cordoned": "2px solid #000", "tainted": "2px dashed #000"}.get(kind, "0")
                colour = "#5a2a2a" if kind == "notready" else _free_colour(n.free, n.total)
                free = "?" if n.free is None else n.free
                parts.append(
                    f"<span title='{html.escape(n.node)}: {free}/{n.total} free, "
                    f"{html.escape(n.status)}' style='display:inline-block;width:14px;"
                    f"height:14px;margin:1px;border:{border};box-sizing:border-box;"
                    f"background:{colour}'></span>"
                )
            parts.append("</div>")
        if len(nodes) > _STATIC_CELL_LIMIT:
            parts.append(f"<div>… {len(nodes) - _STATIC_CELL_LIMIT} more nodes</div>")
        parts.append("</div>")
        return "".join(parts)


def _pods_html(pods: list[PodRow], *, by_node: bool) -> str:
    if not pods:
        return "<div class='sky-muted'>no pods hold these GPUs</div>"
    head = "<th>node</th>" if by_node else ""
    rows = "".join(
        "<tr>"
        + (f"<td>{html.escape(p['node'])}</td>" if by_node else "")
        + f"<td>{html.escape(p['namespace'])}</td><td>{html.escape(p['name'])}</td>"
        f"<td style='text-align:right'>{p['gpus']}</td></tr>"
        for p in pods
    )
    return (
        "<table class='sky-pods'><thead><tr>"
        f"{head}<th>namespace</th><th>name</th><th>GPUs</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


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
