"""The dashboard and the launch progress widget, headless, against a simulated fleet.

Widgets talk to a recording comm (like ipywidgets' own tests' dummy comm), so the tests see
what would reach a browser and from which thread. Front-end clicks are simulated the way the
browser sends them: a state update of the anywidget's trait (`set_state`), or `button.click()`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import comm
import pytest
from conftest import write_sky_config
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output

from skymagic.core.client import ClientSettings, clear_clients
from skymagic.core.failures import error_kind
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError, SkymagicError
from skymagic.gpus.inventory import show_gpus
from skymagic.gpus.pods import PodRow, pods_on_nodes
from skymagic.launches import Attempt, LaunchControls, launch_task, parse_task
from skymagic.sim import Fleet
from skymagic.ui.dashboard import Dashboard, LiveInventory, dashboard, launch_cell, widget_asset
from skymagic.ui.launch_widget import LaunchProgressWidget

ALPHA, BETA, GAMMA = "alpha", "beta", "gamma"
SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": ALPHA,
            "nodes": [
                {"name": "g", "count": 3, "gpu": "H100", "gpus": 8, "taint_gpu": True},
                {"name": "cpu", "count": 1, "cpu": 8, "memory_gb": 32},
            ],
            "pods": [
                {"count": 2, "name": "train", "gpu": "H100", "gpus": 4, "namespace": "team-a"}
            ],
        },
        {
            "name": BETA,
            "nodes": [
                {"name": "l4", "count": 2, "gpu": "L4", "gpus": 4, "labels": "gke"},
                {
                    "name": "res",
                    "count": 1,
                    "gpu": "L4",
                    "gpus": 4,
                    "labels": "gke",
                    "taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}],
                },
            ],
            "pods": [{"count": 1, "name": "infer", "gpu": "L4", "gpus": 2, "namespace": "serve"}],
        },
        {
            "name": GAMMA,
            "nodes": [{"name": "a100", "count": 2, "gpu": "A100-80GB", "gpus": 4}],
        },
    ]
}
GPU_NODES = 3 + 3 + 2

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# --- plumbing -------------------------------------------------------------------------------


class RecordingComm:
    """Stands in for a kernel comm: records every message with the thread that sent it."""

    kernel = "recording"
    log: list[tuple[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        RecordingComm.log.append((threading.current_thread().name, data))

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    RecordingComm.log = []
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    return RecordingComm.log


def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def skymagic_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("skymagic-dashboard", "skymagic-watch"))
    ]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f
    clear_clients()


def settings_for(fleet: Fleet, *contexts: str) -> Settings:
    return Settings(
        client=ClientSettings(request_timeout=2.0, retries=0),
        kubeconfig=(fleet.kubeconfig,),
        allowed_contexts=contexts or "all",
    )


@pytest.fixture
def dash(fleet: Fleet) -> Iterator[Dashboard]:
    d = dashboard(settings_for(fleet), interval=60, auto_refresh=False)
    yield d
    d.close()


def cells(d: Dashboard, **match: Any) -> list[dict[str, Any]]:
    return [n for n in d.grid.get_state()["nodes"] if all(n[k] == v for k, v in match.items())]


def card(d: Dashboard, context: str) -> dict[str, Any]:
    found = [c for c in d.cards.get_state()["cards"] if c["context"] == context]
    assert len(found) == 1, d.cards.cards
    return found[0]


def click_node(d: Dashboard, context: str, node: str) -> None:
    d.grid.set_state({"selected": {"context": context, "node": node}})  # what the browser sends


# --- state after a refresh ------------------------------------------------------------------


def test_state_after_refresh_matches_the_inventory(dash: Dashboard, fleet: Fleet) -> None:
    inv = show_gpus(settings_for(fleet))
    state = dash.grid.get_state()
    assert len(state["nodes"]) == GPU_NODES  # GPU nodes only; the CPU node is not a cell
    assert [s["context"] for s in state["sections"]] == [ALPHA, BETA, GAMMA]
    assert all(s["error"] == "" for s in state["sections"])
    # every cell says what the inventory says about its node (a tainted node's free GPUs,
    # kept in the nodes frame for launches that tolerate the taint, count as none here)
    for row in inv.nodes[inv.nodes["gpu"].notna()].itertuples():
        (cell,) = cells(dash, context=row.context, node=row.node)
        free = 0 if "Taint" in str(row.status) else row.gpu_free
        assert (cell["gpu"], cell["total"], cell["free"]) == (row.gpu, row.gpu_total, free)
        assert cell["status"] == row.status
    # cards: health, how read, bars per GPU type equal to the per-context table
    for row in inv.by_context.itertuples():
        c = card(dash, row.context)
        assert c["health"] == "ok" and c["mode"] == "watch" and c["message"] == ""
        assert {"gpu": row.gpu, "total": row.gpu_total, "free": row.gpu_free} in c["gpus"]
    assert card(dash, ALPHA)["gpus"] == [{"gpu": "H100", "total": 24, "free": 16}]
    assert card(dash, ALPHA)["nodes"] == 4  # the CPU node counts as a node of the context
    assert isinstance(card(dash, ALPHA)["latency_ms"], float)
    # the reserved (tainted) node is marked, and counts as not free
    (res,) = cells(dash, node="res")
    assert res["status"].startswith("NoSchedule Taint") and res["free"] == 0
    # controls
    assert [v for _label, v in dash.context_filter.options] == ["", ALPHA, BETA, GAMMA]
    assert [v for _label, v in dash.gpu_filter.options] == ["", "A100-80GB", "H100", "L4"]
    assert "updated" in dash.updated.value and dash.refresh_count == 1
    assert dash.shown.value == f"{GPU_NODES} of {GPU_NODES} nodes shown"


def test_display_has_widget_view_and_static_fallbacks(
    dash: Dashboard, ipshell: InteractiveShell
) -> None:
    with capture_output() as cap:
        display(dash)
    (out,) = cap.outputs
    assert WIDGET_VIEW in out.data
    assert out.data[WIDGET_VIEW]["model_id"] == dash.view.model_id
    text, page = out.data["text/plain"], out.data["text/html"]
    assert f"{ALPHA}: ok" in text and "H100: 16 of 24 free" in text
    assert f"nodes: {GPU_NODES} shown of {GPU_NODES}" in text
    assert "<script" not in page and page.count("<span title=") == GPU_NODES
    assert "res: 0/4 free, NoSchedule Taint" in page


def test_front_end_assets_are_found_and_shipped() -> None:
    for name in ("node_grid.js", "context_cards.js", "dashboard.css"):
        assert widget_asset(name).is_file(), name
    assert "export default" in widget_asset("node_grid.js").read_text()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"widgets" = "skymagic/ui/dashboard/static"' in pyproject


# --- filters --------------------------------------------------------------------------------


def test_filters_narrow_grid_and_cards(dash: Dashboard) -> None:
    dash.context_filter.value = BETA
    assert {c["context"] for c in cells(dash)} == {BETA} and len(cells(dash)) == 3
    assert [s["context"] for s in dash.grid.sections] == [BETA]
    assert [c["context"] for c in dash.cards.cards] == [BETA]
    dash.context_filter.value = ""
    dash.gpu_filter.value = "H100"
    assert len(cells(dash)) == 3 and {c["gpu"] for c in cells(dash)} == {"H100"}
    assert all(g["gpu"] == "H100" for c in dash.cards.cards for g in c["gpus"])
    dash.min_free.value = 8  # two train pods of 4 fill one node or half-fill two
    expected = [n for n in cells(dash) if n["free"] >= 8]
    assert 1 <= len(expected) <= 2 and all(n["free"] == 8 for n in expected)
    dash.gpu_filter.value = ""
    dash.min_free.value = 4
    # the tainted node and busy ones drop out; free is per node
    assert all(n["free"] >= 4 for n in cells(dash)) and not cells(dash, node="res")
    assert dash.shown.value.endswith(f"of {GPU_NODES} nodes shown")
    # a refresh keeps the filters
    dash.refresh()
    assert dash.min_free.value == 4 and all(n["free"] >= 4 for n in cells(dash))
    text = dash.to_text()
    assert f"nodes: {len(cells(dash))} shown of {GPU_NODES}" in text


# --- clicks ---------------------------------------------------------------------------------


def test_node_click_lists_the_pods_holding_its_gpus(dash: Dashboard, fleet: Fleet) -> None:
    busy = [n for n in cells(dash, context=ALPHA) if n["free"] < n["total"]]
    assert busy
    node = busy[0]
    click_node(dash, ALPHA, node["node"])
    assert dash.details.layout.display == ""
    until(lambda: "<table" in dash.details.value, what="the pod table")
    html = dash.details.value
    assert node["node"] in html and "team-a" in html and "train-" in html
    held = sum(int(x.split("<")[0]) for x in html.split("text-align:right'>")[1:])
    assert held == node["total"] - node["free"]  # the pods account for every used GPU
    # the request the details made: one list filtered to the node by the server
    reqs = [r for r in fleet.requests(ALPHA) if "spec.nodeName" in str(r.get("query"))]
    assert reqs and f"spec.nodeName={node['node']}" in str(reqs[-1]["query"])
    # a free node: no pods
    free = [n for n in cells(dash, context=ALPHA) if n["free"] == n["total"]]
    click_node(dash, ALPHA, free[0]["node"])
    until(lambda: "no pods hold" in dash.details.value, what="the empty answer")
    # clicking the same cell again (the front end sends {}) hides the details
    dash.grid.set_state({"selected": {}})
    assert dash.details.layout.display == "none"


def test_gpu_row_click_lists_pods_across_nodes(dash: Dashboard) -> None:
    dash.cards.set_state({"selected_gpu": {"context": BETA, "gpu": "L4"}})
    until(lambda: "<table" in dash.details.value, what="the pod table")
    assert "infer-" in dash.details.value and "serve" in dash.details.value
    assert "<th>node</th>" in dash.details.value  # pods of several nodes: the node is shown
    # a node click replaces the GPU selection
    click_node(dash, ALPHA, "g-0")
    assert dash.cards.selected_gpu == {}
    until(lambda: "g-0" in dash.details.value and "loading" not in dash.details.value)


def test_pods_on_nodes_is_an_operation_over_allowed_contexts(fleet: Fleet) -> None:
    settings = settings_for(fleet, ALPHA)
    nodes = ["g-0", "g-1", "g-2"]
    rows = pods_on_nodes(settings, ALPHA, nodes, ["nvidia.com/gpu"])
    assert all(isinstance(r, PodRow) and r.namespace == "team-a" for r in rows)
    # when each started, from the pod's own status (the fleet dates its load an hour back)
    assert all(r.started is not None and 3000 < time.time() - r.started < 7200 for r in rows)
    assert sum(r.gpus for r in rows) == 2 * 4 and [r.name[:6] for r in rows] == ["train-"] * 2
    assert rows == sorted(rows, key=lambda r: (r.node, r.namespace, r.name))
    assert pods_on_nodes(settings, ALPHA, nodes, ["amd.com/gpu"]) == []  # other resources
    fleet.clear_requests(ALPHA)
    assert pods_on_nodes(settings, ALPHA, [], ["nvidia.com/gpu"]) == []
    assert fleet.requests(ALPHA) == []  # no nodes: no request
    with pytest.raises(ConfigError, match="not allowed"):
        pods_on_nodes(settings, BETA, ["l4-0"], ["nvidia.com/gpu"])


def test_details_say_which_skymagic_user_holds_the_gpus(
    make_fleet: Callable[..., Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYMAGIC_USER", "alice")
    f = make_fleet(
        {
            "clusters": [
                {
                    "name": "solo",
                    "nodes": [{"name": "g", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512}],
                }
            ]
        }
    )
    settings = Settings(
        client=ClientSettings(request_timeout=3.0, retries=0),
        kubeconfig=(f.kubeconfig,),
        allowed_contexts=("solo",),
    )
    task = parse_task("sleep infinity\n", name="held", gpus="H100:2")
    result = launch_task(task, settings, LaunchControls(detach=True, provision_timeout=20))
    try:
        (row,) = pods_on_nodes(settings, "solo", [str(result.node)], ["nvidia.com/gpu"])
        assert (row.name, row.gpus, row.holder) == ("held", 2, "skymagic: alice")
        assert row.started is not None and abs(time.time() - row.started) < 600
    finally:
        clear_clients()


def test_launch_here_prefills_the_next_cell(dash: Dashboard, ipshell: InteractiveShell) -> None:
    ipshell.rl_next_input = None
    assert dash.launch_box.layout.display == "none"
    click_node(dash, BETA, "l4-0")
    assert dash.launch_box.layout.display == ""
    dash.launch_gpus.value = 2
    dash.launch_button.click()
    expected = f"%%sky_launch --infra k8s/{BETA} --gpus L4:2\nnvidia-smi\n"
    assert ipshell.rl_next_input == expected
    assert dash.launch_text.value == expected == dash.last_launch_cell
    # the cell parses as the launch it promises
    task = parse_task(expected.split("\n", 1)[1], gpus="L4:2", infra=f"k8s/{BETA}")
    assert task is not None


def test_launch_cell_uses_yaml_for_names_with_spaces() -> None:
    text = launch_cell("my ctx", "A100-80GB (MIG 1g.10gb)", 1)
    assert text.startswith("%%sky_launch\nresources:\n")
    assert '"k8s/my ctx"' in text and '"A100-80GB (MIG 1g.10gb):1"' in text


# --- the fleet changing ---------------------------------------------------------------------


def test_fleet_changes_show_up_through_watches(dash: Dashboard, fleet: Fleet) -> None:
    before = {n["node"]: n["free"] for n in cells(dash, context=ALPHA)}
    fleet.clear_requests(ALPHA)
    fleet.cordon(ALPHA, "g-2")
    added = fleet.add_pods(ALPHA, count=1, gpu="H100", gpus=2, name="extra", namespace="team-c")
    try:

        def changed() -> bool:
            dash.refresh()
            (g2,) = cells(dash, node="g-2")
            used = sum(before.values()) - sum(n["free"] for n in cells(dash, context=ALPHA))
            return g2["status"] == "Cordoned" and used >= 2

        until(changed, what="the cordon and the new pod")
        assert card(dash, ALPHA)["mode"] == "watch"
        # from watches alone: no list request after the dashboard's first
        assert all(r.get("watch") for r in fleet.requests(ALPHA)), fleet.requests(ALPHA)
        assert "cordoned 1" in dash.to_text()
    finally:
        fleet.uncordon(ALPHA, "g-2")
        fleet.remove_pods(ALPHA, prefix="extra")
    assert added


def test_fleet_changes_show_up_with_relists(fleet: Fleet) -> None:
    with dashboard(settings_for(fleet, BETA), auto_refresh=False, watch=False) as d:
        assert card(d, BETA)["mode"] == "list"
        fleet.set_ready(BETA, "l4-1", False)
        fleet.add_pods(BETA, count=1, gpu="L4", gpus=1, name="more", namespace="serve")
        try:
            d.refresh()  # a full re-list sees everything at once
            (l41,) = cells(d, node="l4-1")
            assert l41["status"] == "NotReady" and l41["free"] == 0
            assert sum(n["total"] - n["free"] for n in cells(d)) >= 2 + 1 + 4
        finally:
            fleet.set_ready(BETA, "l4-1", True)
            fleet.remove_pods(BETA, prefix="more")


# --- errors per context ---------------------------------------------------------------------


def test_a_down_context_shows_its_error_in_place(fleet: Fleet) -> None:
    fleet.set_faults(GAMMA, down=True)
    clear_clients()
    try:
        with dashboard(settings_for(fleet), auto_refresh=False) as d:
            g = card(d, GAMMA)
            assert g["health"] == "error" and g["kind"] == "unreachable"
            assert "unreachable" in g["message"] and g["gpus"] == []
            assert g["mode"] == "list"  # the watcher could not: a re-list was tried too
            (section,) = [s for s in d.grid.sections if s["context"] == GAMMA]
            assert section["error"].startswith("unreachable") and section["shown"] == 0
            # the others still render
            assert card(d, ALPHA)["health"] == "ok" and len(cells(d, context=ALPHA)) == 3
            assert len(cells(d, context=BETA)) == 3
            assert "! unreachable" in d.to_text() and "color:#b02a2c" in d.to_html()
            with pytest.raises(SkymagicError) as failed:
                d.source.pods(GAMMA, ["a100-0"], ["nvidia.com/gpu"])
            assert failed.value.context == GAMMA and error_kind(failed.value) == "unreachable"
            # it comes back
            fleet.set_faults(GAMMA, down=False)

            def back() -> bool:
                d.refresh()
                return card(d, GAMMA)["health"] == "ok"

            until(back, timeout=15, what="gamma to come back")
            assert len(cells(d, context=GAMMA)) == 2
    finally:
        fleet.set_faults(GAMMA, down=False)


NO_WATCH_SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "watched",
            "nodes": [{"name": "g", "count": 2, "gpu": "H100", "gpus": 8}],
            "pods": [{"count": 1, "name": "train", "gpu": "H100", "gpus": 4}],
            # a user who may list pods but not watch them: the watcher cannot follow this
            # context, a re-list can read all of it
            "users": [{"name": "lister", "context": "lister", "auth": "token", "groups": []}],
            "rbac": [
                {
                    "user": "lister",
                    "rules": [
                        {"verbs": ["get", "list", "watch"], "resources": ["nodes"]},
                        {"verbs": ["get", "list"], "resources": ["pods"]},
                    ],
                }
            ],
        }
    ]
}


def test_a_relisted_context_replaces_the_watchers_rows_and_recounts_the_summary(
    make_fleet: Callable[..., Fleet],
) -> None:
    f = make_fleet(NO_WATCH_SPEC)
    settings = settings_for(f, "watched", "lister")
    source = LiveInventory(settings)
    try:
        inv = until(
            lambda: (i := source.fetch()) is not None and source.modes()["lister"] == "list" and i,
            what="the pod watch to be refused",
        )
        assert source.modes()["watched"] == "watch"
        full = show_gpus(settings)  # the fleet stood still: one list of both reads the same
        for table in ("nodes", "by_context", "summary"):
            merged, listed = getattr(inv, table), getattr(full, table)
            assert merged.to_dict("records") == listed.to_dict("records"), table
        assert inv.errors.empty and inv.contexts == ["watched", "lister"]
        # the summary agrees with the merged rows: 16 + 16 H100, 4 + 4 held
        (h100,) = inv.summary.to_dict("records")
        assert (h100["gpu_total"], h100["gpu_free"]) == (32, 24)
        assert h100["utilization"] == "24 of 32 free"
    finally:
        source.close()


def test_a_failing_source_keeps_the_last_picture(dash: Dashboard) -> None:
    good = len(cells(dash))

    def broken() -> Any:
        raise RuntimeError("kubeconfig vanished")

    dash.source.fetch = broken  # type: ignore[method-assign]
    dash.refresh()
    assert "refresh failed: RuntimeError: kubeconfig vanished" in dash.updated.value
    assert len(cells(dash)) == good


# --- the timer ------------------------------------------------------------------------------


def test_timer_refreshes_in_the_background_and_stops_on_close(
    fleet: Fleet, recording_comm: list[tuple[str, Any]]
) -> None:
    d = dashboard(settings_for(fleet), interval=0.2, auto_refresh=True)
    name = d._thread.name
    assert name in skymagic_threads()
    until(lambda: d.refresh_count >= 3, what="three timer refreshes")
    # updates reached the "front end" from the timer thread (trait assignments, no output)
    assert any(t == name and msg.get("method") == "update" for t, msg in recording_comm)
    d.auto.value = False
    settled = d.refresh_count
    d.refresh_button.click()  # refresh now: done on the timer thread, the kernel is not held
    until(lambda: d.refresh_count > settled, what="the button's refresh")
    d.close()
    assert d.closed and not d._thread.is_alive()
    assert skymagic_threads() == []  # no timer, no watch left
    count = d.refresh_count
    d.refresh()  # a closed dashboard does nothing
    assert d.refresh_count == count


def test_closing_the_view_stops_the_timer(fleet: Fleet) -> None:
    d = dashboard(settings_for(fleet, ALPHA), interval=0.2)
    d.view.close()  # what a front end closing the widget does
    assert d.closed
    until(lambda: skymagic_threads() == [], timeout=5, what="threads to end")


def test_the_magic_returns_a_live_dashboard(
    ipshell: InteractiveShell,
    fleet: Fleet,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    write_sky_config(isolated_env, "kubernetes:\n  allowed_contexts: [beta, alpha]\n")
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    with capture_output() as cap:
        # `dash = %sky_dashboard`: the magic shows it (IPython shows no assignment's value)
        d = ipshell.run_line_magic("sky_dashboard", "--interval 30 --no-auto")
        ipshell.displayhook(d)  # a cell ending in the magic: not shown a second time
    try:
        assert len(cap.outputs) == 1 and "beta: ok" in cap.outputs[0].data["text/plain"]
        assert isinstance(d, Dashboard) and d.auto.value is False and d.interval.value == 30
        assert [c["context"] for c in d.cards.cards] == [BETA, ALPHA]  # failover order
        assert len(cells(d)) == 6
    finally:
        d.close()
    d2 = ipshell.run_line_magic("sky_dashboard", f"--infra k8s/{ALPHA} --no-watch --all")
    try:
        assert isinstance(d2.source, LiveInventory) and d2.source.watcher is None
        assert len(cells(d2)) == 4  # --all: the CPU node too
    finally:
        d2.close()
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--interval"):
        ipshell.run_line_magic("sky_dashboard", "--interval 0")
    assert skymagic_threads() == []


def test_skymagic_dashboard_is_the_function_even_once_its_package_is_imported(
    fleet: Fleet,
) -> None:
    import skymagic
    import skymagic.ui.dashboard  # binds `ui` on the package, never `dashboard`

    assert skymagic.Dashboard is Dashboard and {"dashboard", "Dashboard"} <= set(skymagic.__all__)
    with skymagic.dashboard(settings_for(fleet, GAMMA), auto_refresh=False) as d:
        assert isinstance(d, Dashboard) and len(cells(d)) == 2


# --- launch progress ------------------------------------------------------------------------


def test_launch_widget_shows_attempts_and_the_log(ipshell: InteractiveShell) -> None:
    p = LaunchProgressWidget(min_interval=0.05)
    try:
        assert "launch</b>: " in p.header.value and "launching" in p.header.value
        p.on_progress("alpha", "waiting for a node", 0.4)
        assert "alpha: waiting for a node, 0.4 s" in p.phase.value
        p.on_attempt(Attempt("gamma", "skipped", "no such GPU: H100"))
        p.on_attempt(Attempt("alpha", "unschedulable", "0/3 nodes are available", 1.5))
        p.on_attempt(Attempt("beta", "running", "", 0.7))
        table = p.table.value
        order = [table.index(c) for c in ("gamma", "alpha", "beta")]
        assert order == sorted(order) and "0/3 nodes are available" in table and "1.5" in table
        p.on_message("beta: the cluster autoscaler is adding a node")
        assert "autoscaler" in p.notes.value
        for i in range(50):
            p.on_log(f"line {i}")
        until(lambda: "line 49" in p.log_view.value, timeout=5, what="the batched log")
        text = p.to_text()
        assert "1. [alpha] unschedulable: 0/3 nodes are available (1.5 s)" in text
        assert "  line 49" in text
        with capture_output() as cap:
            display(p)
        data = cap.outputs[0].data
        assert WIDGET_VIEW in data and "line 49" in data["text/html"]
        assert "<table class='sky-attempts'>" in data["text/html"]
    finally:
        p.close()


def test_launch_widget_as_a_real_launch_observer(
    make_fleet: Callable[..., Fleet], ipshell: InteractiveShell
) -> None:
    f = make_fleet(
        {
            "clusters": [
                {"name": "nogpu", "nodes": [{"name": "c", "cpu": 8, "memory_gb": 32}]},
                {
                    "name": "run",
                    "runtime": "local",
                    "pod_start_s": 0.05,
                    "nodes": [{"name": "g", "gpu": "H100", "gpus": 8}],
                },
            ]
        }
    )
    settings = Settings(
        client=ClientSettings(request_timeout=3.0, retries=0),
        kubeconfig=(f.kubeconfig,),
        allowed_contexts=("nogpu", "run"),
    )
    with capture_output():
        p = LaunchProgressWidget.show(min_interval=0.05, tick=0.05)
    phases: list[str] = []
    p.phase.observe(lambda change: phases.append(change["new"]), names="value")
    try:
        task = parse_task(
            "echo hello from the widget\nsleep 0.6\necho bye\n", name="widget-test", gpus="H100:1"
        )
        result = launch_task(task, settings, LaunchControls(provision_timeout=20), observer=p)
        p.finish(result)
        assert result.status == "Succeeded" and result.context == "run"
        assert [(a.context, a.outcome) for a in p.attempts][-1][0] == "run"
        assert p.attempts[0].context == "nogpu" and p.attempts[0].outcome == "skipped"
        assert "hello from the widget" in p.log_view.value
        assert "plan" in p.plan.value
        # the header ends in the final state; the phase line followed the pod to its node
        assert f"succeeded in {result.seconds:.1f} s on run" in p.header.value
        assert "launch 'widget-test'" in unescape(p.header.value)
        running = [v for v in phases if f"run: running on {result.node}, " in v]
        assert len(set(running)) >= 2, phases  # its seconds ticked while the task ran
        assert any("waiting for a node" in v or "starting" in v for v in phases), phases
        # what to do next is in the widget (the magic shows nothing else)
        assert "%sky_down widget-test" in p.notes.value
    finally:
        p.close()
        clear_clients()
