"""wait.py's pure parts: which failures waiting can cure, and what a waiter says it waits for."""

from __future__ import annotations

from skymagic.launches.task import parse_task
from skymagic.launches.wait import clock, may_fit_later, wanted


def test_may_fit_later_only_when_some_context_is_merely_busy() -> None:
    never = [
        "no such GPU in this context",
        "not enough per node: 8 H100 at most",
        "excluded by policy",
    ]
    assert not may_fit_later(never)
    assert not may_fit_later([])
    assert may_fit_later([*never, "none free now: best node has 0 H100 free, needs 8"])
    assert may_fit_later(["unreachable: timed out"])  # a context back up may take it


def test_wanted_and_clock() -> None:
    assert wanted(parse_task("true", gpus="H100:8")) == "H100:8"
    assert wanted(parse_task("true", gpus="H100:8", num_nodes=2)) == "H100:8 (x2 nodes)"
    assert wanted(parse_task("true", cpus="3")) == "3 vCPU"
    assert (clock(5), clock(252)) == ("5 s", "4 m 12 s")
