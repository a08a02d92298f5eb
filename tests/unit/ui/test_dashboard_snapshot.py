"""The dashboard's text and HTML snapshots (skymagic/ui/dashboard/snapshot.py): no fleet."""

from __future__ import annotations

import pytest
from dashkit import inventory, jobs_inventory, node

from skymagic.ui.dashboard import snapshot
from skymagic.ui.dashboard.view import Filters, View, build_view


def view() -> View:
    inv = inventory(
        [
            node("a", "a-0", "H100", 8, 4),
            node("a", "a-1", "H100", 8, 0, status="Cordoned"),
            node("b", "b-0", "L4", 4, None),
            node("b", "b-1", "L4", 4, 4, status="NotReady"),
        ],
        contexts=["a", "b"],
        errors=[("b", "forbidden", "cannot list <pods>")],
    )
    return build_view(inv, {"a": "watch"}, all_nodes=False, took_s=0.0)


def test_no_data_yet() -> None:
    assert snapshot.to_text(None, Filters()) == "skymagic dashboard (no data yet)"
    assert "no data yet" in snapshot.to_html(None, Filters())


def test_text_has_cards_gpus_errors_and_node_counts() -> None:
    lines = snapshot.to_text(view(), Filters()).splitlines()
    assert lines[0].startswith("skymagic dashboard · updated ") and lines[0].endswith(
        " · 2 contexts"
    )
    assert lines[1:] == [
        "a: ok · 12 ms · watch · 2 nodes",
        "  H100: 4 of 16 free",
        "b: degraded · 12 ms · list · 2 nodes",
        "  ! forbidden: cannot list <pods>",
        "  L4: ? of 8 free",
        "nodes: 4 shown of 4 · cordoned 1 · healthy 2 · notready 1",
    ]


def test_text_follows_the_filters() -> None:
    text = snapshot.to_text(view(), Filters(context="a", min_free=1))
    assert "b:" not in text and text.endswith("nodes: 1 shown of 4 · healthy 1")


def test_text_with_a_gpu_filter_names_the_missing_gpu() -> None:
    text = snapshot.to_text(view(), Filters(gpu="L4"))
    assert "a: ok · 12 ms · watch · 2 nodes\n  no L4\nb:" in text
    assert "H100" not in text


def test_html_is_self_contained_and_escaped() -> None:
    page = snapshot.to_html(view(), Filters())
    assert "<script" not in page and "<style" not in page and "class='sky-" in page
    assert page.count("<span title=") == 4
    assert "cannot list &lt;pods&gt;" in page and "<pods>" not in page
    assert "a-1: 0/8 free, Cordoned" in page and "border:2px solid #000" in page
    assert "b-1: 4/4 free, NotReady" in page and "background:#5a2a2a" in page
    assert "b-0: ?/4 free" in page and "background:#b8bcc4" in page
    assert "width:25%" in page  # H100: 4 of 16 free


def test_html_caps_the_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "CELL_LIMIT", 3)
    page = snapshot.to_html(view(), Filters())
    assert page.count("<span title=") == 3 and "… 1 more nodes" in page


def test_a_node_held_by_a_managed_job_shows_it_in_both_pictures() -> None:
    jobs = build_view(jobs_inventory(), {}, all_nodes=False, took_s=0.0)
    page = snapshot.to_html(jobs, Filters())
    assert page.count("<span title=") == 3  # still one cell per node
    assert "a-0: 0/8 free, Healthy; managed job 5: %sky_jobs_cancel 5 stops it'" in page
    assert "managed jobs 3, 12: %sky_jobs_cancel 3 12 stops them'" in page
    assert "a-1: 8/8 free, Healthy'" in page  # no job: the title as before
    tags = [part.split("</span>")[0].rsplit(">", 1)[1] for part in page.split("sky-job-tag")[1:]]
    assert tags == ["5", "3+"]
    assert "blue tag N: managed job N holds the node" in page
    text = snapshot.to_text(jobs, Filters())
    assert text.endswith("managed jobs: 3 on b/b-mix · 5 on a/a-0 · 12 (attempt 2) on b/b-mix")
    assert "managed job" not in snapshot.to_text(jobs, Filters(context="a", min_free=1))
    # no job on any node: neither the legend nor a tag
    plain = snapshot.to_html(view(), Filters())
    assert "sky-job-tag" not in plain and "blue tag" not in plain
