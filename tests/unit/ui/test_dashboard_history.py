"""Free GPUs over time (skymagic/ui/dashboard/history.py): pure, no fleet."""

from __future__ import annotations

from typing import Any

from skymagic.ui.dashboard.history import FreeHistory
from skymagic.ui.dashboard.view import Filters


def card(ctx: str, **free: Any) -> dict[str, Any]:
    return {
        "context": ctx,
        "gpus": [{"gpu": g, "free": f, "total": 8} for g, f in free.items()],
    }


def test_a_line_per_context_and_gpu_with_its_change() -> None:
    h = FreeHistory()
    h.record(100.0, [card("a", H100=2, L4=1), card("b", H100=8)])
    h.record(110.0, [card("a", H100=5, L4=1), card("b", H100=None)])
    h.record(110.0, [card("a", H100=7)])  # the same fetch again: not a new point
    lines = {(s["context"], s["gpu"]): s for s in h.series(Filters())}
    assert list(lines) == [("a", "H100"), ("a", "L4"), ("b", "H100")]  # first-seen order
    assert lines["a", "H100"]["points"] == [[100.0, 2], [110.0, 5]]
    assert lines["a", "H100"]["change"] == 3 and lines["a", "L4"]["change"] == 0
    assert lines["b", "H100"]["points"][-1] == [110.0, None]  # a gap, not a zero
    assert lines["b", "H100"]["change"] is None and lines["b", "H100"]["total"] == 8
    assert len(h) == 2


def test_filters_pick_lines() -> None:
    h = FreeHistory()
    h.record(1.0, [card("a", H100=2, L4=1), card("b", H100=8)])
    assert [s["gpu"] for s in h.series(Filters(context="a"))] == ["H100", "L4"]
    assert [s["context"] for s in h.series(Filters(gpu="H100"))] == ["a", "b"]
    assert h.series(Filters(context="b", gpu="L4")) == []
    assert len(h.series(Filters(min_free=4))) == 3  # per node: not a line filter


def test_long_runs_are_thinned_keeping_the_newest_point() -> None:
    h = FreeHistory(max_samples=1000)
    for i in range(1500):
        h.record(float(i), [card("a", H100=i % 9)])
    (line,) = h.series(Filters(), points=50)
    assert 40 <= len(line["points"]) <= 50
    assert line["points"][-1] == [1499.0, 1499 % 9]
    assert line["points"][0][0] >= 500.0  # the oldest samples fell out of the bounded window
