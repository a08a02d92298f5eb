"""The dashboard's view model (skymagic/ui/dashboard/view.py) on hand-made inventories: no fleet."""

from __future__ import annotations

import pytest
from dashkit import inventory, jobs_inventory, node

from skymagic.gpus.inventory import Inventory
from skymagic.gpus.pods import PodRow, job_of
from skymagic.ui.dashboard.view import (
    ALL,
    Filters,
    build_view,
    fit_answer,
    frame,
    free_colour,
    held_for,
    job_hint,
    job_tag,
    launch_cell,
    nodes_text,
    pods_html,
    select_gpu,
    select_node,
    shown,
    status_kind,
    updated_html,
)


@pytest.fixture
def inv() -> Inventory:
    return inventory(
        [
            node("a", "a-0", "H100", 8, 4),
            node("a", "a-1", "H100", 8, 8, status="NoSchedule Taint", taints="x=y:NoSchedule"),
            node("a", "a-cpu"),
            # one node, two GPU resources: one cell, counts added
            node("b", "b-mix", "L4", 2, 1, resource="nvidia.com/gpu"),
            node("b", "b-mix", "A100-80GB (MIG 1g.10gb)", 7, 7, resource="nvidia.com/mig-1g.10gb"),
            node("b", "b-1", "L4", 4, 0, status="Cordoned"),
            # pods could not be read: free unknown
            node("c", "c-0", "H100", 8, None),
        ],
        contexts=["a", "b", "c", "d"],
        errors=[
            ("c", "forbidden", "cannot list pods"),
            ("c", "timeout", "a second row is not shown"),
            ("d", "unreachable", "connection refused"),
        ],
        latency={"a": 12.34, "b": 5.0, "c": 7.0},
    )


# --- build_view -----------------------------------------------------------------------------


def test_nodes_add_up_their_gpu_resources_and_skip_cpu_only(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.1)
    by_key = {n.key: n for n in view.nodes}
    assert list(by_key) == ["a/a-0", "a/a-1", "b/b-mix", "b/b-1", "c/c-0"]
    mix = by_key["b/b-mix"]
    assert mix.gpus == ["L4", "A100-80GB (MIG 1g.10gb)"]
    assert mix.resources == ["nvidia.com/gpu", "nvidia.com/mig-1g.10gb"]
    assert (mix.total, mix.free) == (9, 8)
    assert by_key["c/c-0"].free is None  # NA stays unknown, never 0
    assert by_key["a/a-1"].taints == "x=y:NoSchedule"
    cell = mix.to_trait()
    assert cell == {
        "id": "b/b-mix",
        "context": "b",
        "node": "b-mix",
        "gpu": "L4 + A100-80GB (MIG 1g.10gb)",
        "total": 9,
        "free": 8,
        "status": "Healthy",
        "taints": "",
        "job": "",
        "job_title": "",
    }


def test_all_nodes_shows_cpu_only_nodes(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=True, took_s=0.0)
    (cpu,) = [n for n in view.nodes if n.node == "a-cpu"]
    assert (cpu.gpus, cpu.total, cpu.free) == ([], 0, 0)


def test_cards_say_health_mode_latency_and_the_first_error(inv: Inventory) -> None:
    view = build_view(inv, {"a": "watch", "b": "list"}, all_nodes=False, took_s=0.0)
    cards = {c["context"]: c for c in view.cards}
    assert [c["context"] for c in view.cards] == ["a", "b", "c", "d"]
    assert cards["a"] == {
        "context": "a",
        "health": "ok",
        "kind": "",
        "message": "",
        "latency_ms": 12.3,
        "mode": "watch",
        "nodes": 3,  # the CPU node counts as a node of the context
        "gpu_nodes": 2,
        "nodes_text": "3 nodes (2 with GPUs)",  # the grid shows the two GPU nodes
        "gpus": [{"gpu": "H100", "total": 16, "free": 12}],
        "empty": "no GPUs",
    }
    assert cards["b"]["nodes_text"] == "2 nodes"  # every node has GPUs
    assert cards["d"]["empty"] == ""  # its error says why, not "no GPUs"
    assert cards["b"]["mode"] == "list"
    assert cards["b"]["gpus"] == [
        {"gpu": "L4", "total": 6, "free": 1},
        {"gpu": "A100-80GB (MIG 1g.10gb)", "total": 7, "free": 7},
    ]
    # an error with nodes: degraded; the first error row is the one shown
    assert cards["c"]["health"] == "degraded" and cards["c"]["kind"] == "forbidden"
    assert cards["c"]["message"] == "forbidden: cannot list pods"
    assert cards["c"]["gpus"] == [{"gpu": "H100", "total": 8, "free": None}]
    # an error and no nodes: error; no latency known: None; no mode given: list
    assert cards["d"]["health"] == "error" and cards["d"]["nodes"] == 0
    assert cards["d"]["latency_ms"] is None and cards["d"]["mode"] == "list"
    assert view.errors == {
        "c": "forbidden: cannot list pods",
        "d": "unreachable: connection refused",
    }
    assert view.gpu_types == ["A100-80GB (MIG 1g.10gb)", "H100", "L4"]


def test_updated_line_carries_the_fetch_time_and_duration(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.25)
    text = updated_html(view)
    assert "data-ts='1700000000.000'" in text and text.endswith(" · 250 ms")


# --- filters --------------------------------------------------------------------------------


def test_no_filter_shows_everything(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    out = frame(view, Filters())
    assert len(out.nodes) == 5 and out.shown == "5 of 5 nodes shown"
    assert [s["context"] for s in out.sections] == ["a", "b", "c", "d"]
    assert out.sections[3] == {
        "context": "d",
        "error": "unreachable: connection refused",
        "shown": 0,
        "total": 0,
    }
    assert out.cards == view.cards


def test_context_filter_narrows_cells_sections_and_cards(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    out = frame(view, Filters(context="b"))
    assert {n["context"] for n in out.nodes} == {"b"}
    assert [s["context"] for s in out.sections] == ["b"]
    assert [c["context"] for c in out.cards] == ["b"]
    assert out.shown == "2 of 5 nodes shown"


def test_gpu_filter_matches_any_resource_of_a_node_and_narrows_card_bars(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    out = frame(view, Filters(gpu="A100-80GB (MIG 1g.10gb)"))
    assert [n["node"] for n in out.nodes] == ["b-mix"]
    # every context keeps its card (and section), showing only that GPU's bar
    assert [c["context"] for c in out.cards] == ["a", "b", "c", "d"]
    assert [c["gpus"] for c in out.cards] == [
        [],
        [{"gpu": "A100-80GB (MIG 1g.10gb)", "total": 7, "free": 7}],
        [],
        [],
    ]
    assert [s["shown"] for s in out.sections] == [0, 1, 0, 0]
    assert [s["total"] for s in out.sections] == [2, 2, 1, 0]
    # a card without that GPU names it; the unreachable one keeps its error instead
    assert [c["empty"] for c in out.cards] == [
        "no A100-80GB (MIG 1g.10gb)",
        "no A100-80GB (MIG 1g.10gb)",
        "no A100-80GB (MIG 1g.10gb)",
        "",
    ]


def test_nodes_text_counts_gpu_nodes_like_the_grid() -> None:
    assert nodes_text(3, 2) == "3 nodes (2 with GPUs)"
    assert nodes_text(3, 3) == "3 nodes"
    assert nodes_text(1, 1) == "1 node"
    assert nodes_text(2, 0) == "2 nodes (none with GPUs)"
    assert nodes_text(0, 0) == "0 nodes"


def test_min_free_is_per_node_and_drops_unknown_free(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    # a-1's 8 free GPUs are behind a taint: the grid counts none free there
    assert [n.node for n in shown(view, Filters(min_free=5)).nodes] == ["b-mix"]
    assert [n.node for n in shown(view, Filters(min_free=8)).nodes] == ["b-mix"]
    assert [n.node for n in shown(view, Filters(min_free=9)).nodes] == []
    # 0 keeps the node whose free is unknown; any minimum drops it
    assert "c-0" in [n.node for n in shown(view, Filters(min_free=0)).nodes]
    assert "c-0" not in [n.node for n in shown(view, Filters(min_free=1)).nodes]


def test_filters_combine(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    picked = shown(view, Filters(context="a", gpu="H100", min_free=4))
    assert [n.node for n in picked.nodes] == ["a-0"] and picked.contexts == ["a"]
    assert shown(view, Filters(context="nowhere")).nodes == []
    assert Filters() == Filters(context=ALL, gpu=ALL, min_free=0)


# --- clicks ---------------------------------------------------------------------------------


def test_node_click_lists_that_nodes_resources(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    sel = select_node(view, "b", "b-mix")
    assert sel is not None and sel.kind == "node" and sel.nodes == ("b-mix",)
    assert sel.resources == ("nvidia.com/gpu", "nvidia.com/mig-1g.10gb")
    assert (sel.launch_gpu, sel.most) == ("L4", 9)
    assert "8 of 9 free" in sel.head and "L4 + A100-80GB (MIG 1g.10gb)" in sel.head
    tainted = select_node(view, "a", "a-1")
    assert tainted is not None and "taints: x=y:NoSchedule" in tainted.head
    unknown = select_node(view, "c", "c-0")
    assert unknown is not None and "? of 8 free" in unknown.head
    assert select_node(view, "a", "missing") is None
    assert select_node(None, "a", "a-0") is None  # no refresh yet


def test_a_cpu_node_offers_no_launch(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=True, took_s=0.0)
    sel = select_node(view, "a", "a-cpu")
    assert sel is not None and sel.launch_gpu is None and "no GPUs" in sel.head


def test_gpu_click_spans_the_contexts_nodes_with_that_gpu(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    sel = select_gpu(view, "b", "L4")
    assert sel.kind == "gpu" and sel.nodes == ("b-mix", "b-1")
    assert sel.resources == ("nvidia.com/gpu",)  # only the L4's resource, not the MIG one
    assert (sel.launch_gpu, sel.most) == ("L4", 9)
    assert "2 nodes" in sel.head
    none = select_gpu(view, "a", "L4")
    assert none.nodes == () and none.most == 0
    assert select_gpu(None, "a", "H100").nodes == ()


def test_selection_head_escapes_names() -> None:
    inv = inventory([node("<ctx>", "n&1", "H100", 1, 1)], contexts=["<ctx>"])
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    sel = select_node(view, "<ctx>", "n&1")
    assert sel is not None and "&lt;ctx&gt;" in sel.head and "n&amp;1" in sel.head
    assert "<ctx>" not in select_gpu(view, "<ctx>", "H100").head


def test_pods_html() -> None:
    pods = [PodRow("team-a", "train-0", "g-0", 4), PodRow("ns", "<b>", "g-1", 2)]
    table = pods_html(pods, by_node=True)
    assert "<th>node</th>" in table and "<td>g-0</td>" in table and "&lt;b&gt;" in table
    assert table.count("<tr>") == 3 and "text-align:right'>4<" in table
    assert "<th>node</th>" not in pods_html(pods, by_node=False)
    assert "no pods hold these GPUs" in pods_html([], by_node=True)


def test_pods_say_who_holds_the_gpus_and_for_how_long() -> None:
    pods = [
        PodRow("default", "hello", "g-0", 1, holder="skymagic: alice", started=1000.0),
        PodRow("team-a", "train-0", "g-0", 4, holder="Job/train", started=None),
    ]
    table = pods_html(pods, by_node=False, now=1000.0 + 3 * 3600 + 5 * 60)
    assert "<th>held by</th><th>for</th>" in table
    assert "<td>skymagic: alice</td><td>3 h 5 min</td>" in table
    assert "<td>Job/train</td><td></td>" in table  # start unknown: blank


def test_pods_of_managed_jobs_carry_a_job_badge() -> None:
    pods = [
        PodRow("default", "train-3", "g-0", 8, holder="skymagic: alice", job="3 (attempt 2)"),
        PodRow("team-a", "other", "g-0", 4, holder="Job/train"),
    ]
    table = pods_html(pods, by_node=True)
    assert "<th>node</th><th>managed job</th><th>namespace</th>" in table
    assert "job 3 (attempt 2)</span>" in table
    assert "title='managed job 3: %sky_jobs_cancel 3 stops it'" in table
    assert "<td>g-0</td><td></td><td>team-a</td>" in table  # not a job: an empty cell
    # No job among the pods: no column.
    assert "managed job" not in pods_html(pods[1:], by_node=False)


def test_a_node_held_by_managed_jobs_carries_their_tag_and_how_to_stop_them() -> None:
    view = build_view(jobs_inventory(), {}, all_nodes=True, took_s=0.0)
    by_key = {n.key: n for n in view.nodes}
    assert by_key["a/a-0"].jobs == ["5"]
    assert by_key["b/b-mix"].jobs == ["3", "12 (attempt 2)"]
    assert by_key["a/a-1"].jobs == [] and by_key["b/b-cpu"].jobs == ["9"]
    cells = {c["id"]: c for c in frame(view, Filters()).nodes}
    assert (cells["a/a-0"]["job"], cells["a/a-0"]["job_title"]) == (
        "5",
        "managed job 5: %sky_jobs_cancel 5 stops it",
    )
    assert (cells["b/b-mix"]["job"], cells["b/b-mix"]["job_title"]) == (
        "3+",
        "managed jobs 3, 12: %sky_jobs_cancel 3 12 stops them",
    )
    assert (cells["a/a-1"]["job"], cells["a/a-1"]["job_title"]) == ("", "")
    # the filters narrow cells, never what a cell says
    (only,) = frame(view, Filters(gpu="L4")).nodes
    assert only["id"] == "b/b-mix" and only["job"] == "3+"


def test_job_tag_and_hint_are_short_and_name_each_job_once() -> None:
    assert job_tag([]) == "" and job_hint([]) == "" and job_tag([""]) == ""
    assert job_tag(["7 (attempt 3)"]) == "7"
    assert job_tag(["7", "7 (attempt 2)"]) == "7"  # one job, whatever its pods' attempts
    assert job_hint(["7", "7 (attempt 2)"]) == "managed job 7: %sky_jobs_cancel 7 stops it"
    # the cell's tooltip and the pod table's badge say it the same way
    badge = pods_html([PodRow("d", "p", "g-0", 8, job="7 (attempt 2)")], by_node=False)
    assert f"title='{job_hint(['7 (attempt 2)'])}'" in badge


def test_job_of_reads_the_job_labels() -> None:
    from skymagic.jobs.model import LABEL_JOB_ATTEMPT, LABEL_JOB_ID

    assert job_of({"labels": {LABEL_JOB_ID: "3", LABEL_JOB_ATTEMPT: "1"}}) == "3"
    assert job_of({"labels": {LABEL_JOB_ID: "3", LABEL_JOB_ATTEMPT: "2"}}) == "3 (attempt 2)"
    assert job_of({"labels": {"skymagic.dev/user": "alice"}}) == ""
    assert job_of({}) == ""


def test_held_for_reads_like_people_say_it() -> None:
    assert [held_for(s) for s in (None, -3, 42, 420, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "",
        "0 s",
        "42 s",
        "7 min",
        "3 h 5 min",
        "2 d 4 h",
    ]


def test_launch_cell_flags_or_yaml() -> None:
    assert launch_cell("beta", "L4", 2) == "%%sky_launch --infra k8s/beta --gpus L4:2\nnvidia-smi\n"
    text = launch_cell("my ctx", "H100", 1)
    assert text.startswith("%%sky_launch\nresources:\n") and '"k8s/my ctx"' in text
    quoted = launch_cell("ctx", "it's", 1)  # a quote cannot pass through flags either
    assert quoted.startswith("%%sky_launch\nresources:\n") and '"it\'s:1"' in quoted


def test_status_kind_and_colour() -> None:
    assert status_kind("NotReady") == "notready"
    assert status_kind("Cordoned") == "cordoned"
    assert status_kind("NoSchedule Taint") == "tainted"
    assert status_kind("Healthy") == "healthy"
    assert free_colour(None, 8) == free_colour(3, 0) == "#b8bcc4"
    assert free_colour(0, 8) == "hsl(0, 62%, 48%)"
    assert free_colour(8, 8) == "hsl(120, 62%, 48%)"
    assert free_colour(4, 8) == "hsl(60, 62%, 48%)"


def test_fit_answer_counts_healthy_nodes_with_that_gpu_alone(inv: Inventory) -> None:
    view = build_view(inv, {}, all_nodes=False, took_s=0.0)
    # a-0: 4 of 8 free; a-1's free GPUs are behind a taint; c-0's free is unknown
    assert fit_answer(view, "a", "H100", 4) == "4 x H100 fits now on 1 node of a"
    assert fit_answer(view, "a", "H100", 5) == (
        "5 x H100 does not fit in a now (most free on one node: 4); "
        "nowhere else either: the launch would wait for its provision timeout"
    )
    assert fit_answer(None, "a", "H100", 1) == ""


def test_fit_answer_names_the_contexts_it_would_fail_over_to() -> None:
    other = inventory(
        [
            node("x", "x-0", "A100", 8, 1),
            node("y", "y-0", "A100", 8, 8),
            node("y", "y-1", "A100", 8, 6),
            node("z", "z-0", "A100", 8, 8),
        ],
        contexts=["x", "y", "z"],
    )
    view = build_view(other, {}, all_nodes=False, took_s=0.0)
    assert fit_answer(view, "x", "A100", 6) == (
        "6 x A100 does not fit in x now (most free on one node: 1); "
        "it fits now in y (2 nodes), z (1 node)"
    )
    assert (
        fit_answer(view, "y", "A100", 8) == "8 x A100 fits now on 1 node of y; also in z (1 node)"
    )
