"""capacity.py's judging, without a fleet: the oldest job that fits is handed off alone, the
others say what they wait for (throttled), and a hand-off blocks the next until it reports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd

from skymagic.core.targets import Settings
from skymagic.gpus.counting import NODE_COLUMNS
from skymagic.gpus.inventory import ERROR_COLUMNS, Inventory
from skymagic.jobs.capacity import LINE_EVERY_S, CapacityWatch, Fits, Waits, _Group, _Waiter
from skymagic.launches.task import Task


def task(count: int) -> Task:
    return Task(name=f"t{count}", run="x", gpu="H100", gpu_count=count, user="u")


def inventory(free: dict[str, int]) -> Inventory:
    rows = [
        {
            "context": ctx, "node": f"{ctx}-n", "gpu": "H100", "resource": "nvidia.com/gpu",
            "gpu_total": 8, "gpu_free": n, "cpu_free": 100.0, "memory_gb_free": 1000.0,
            "status": "Healthy", "taints": "",
        }
        for ctx, n in free.items()
    ]  # fmt: skip
    empty = pd.DataFrame()
    return Inventory(
        nodes=pd.DataFrame(rows, columns=list(NODE_COLUMNS), dtype=object),
        by_context=empty,
        summary=empty,
        errors=pd.DataFrame([], columns=list(ERROR_COLUMNS)),
        fetched_at=0.0,
        latency_ms={},
        contexts=sorted(free),
    )


def group(posted: list[Any], **jobs: Task) -> _Group:
    targets: Any = SimpleNamespace(contexts=("a", "b"), excluded={}, task=None)
    g = _Group("test", Settings(), targets, posted.append)  # (its thread is never started)
    for job_id, t in jobs.items():
        g.jobs[int(job_id.lstrip("j"))] = _Waiter(int(job_id.lstrip("j")), t)
    return g


def judge(g: _Group, inv: Inventory, now: float | None = None) -> None:
    jobs = [w for _i, w in sorted(g.jobs.items())]
    g._judge(inv, jobs)
    if now is not None:
        g._post_due(jobs, now)


def test_nothing_fits_every_job_says_what_it_waits_for() -> None:
    posted: list[Any] = []
    g = group(posted, j1=task(8), j2=task(4))
    judge(g, inventory({"a": 2, "b": 0}))
    assert posted == [
        Waits(1, "waiting for capacity for H100:8: best now a 2/8 free on a-n"),
        Waits(2, "waiting for capacity for H100:4: best now a 2/8 free on a-n"),
    ]
    assert g.handed is None and sorted(g.jobs) == [1, 2]


def test_the_oldest_that_fits_goes_alone_and_blocks_the_next_until_it_reports() -> None:
    posted: list[Any] = []
    g = group(posted, j1=task(8), j2=task(4), j3=task(2))
    inv = inventory({"a": 4, "b": 0})  # j1 does not fit; j2 and j3 do
    judge(g, inv)
    assert posted == [Fits(2, inv)]  # (j1's line waits for the next round)
    assert g.jobs[1].due.endswith("a 4/8 free on a-n")
    assert g.handed == 2 and sorted(g.jobs) == [1, 3]

    owner = CapacityWatch(posted.append)
    key = ("k",)
    owner._groups[key] = g  # type: ignore[index]
    owner.drop(2)  # its launch reported: the next may go
    assert g.handed is None and g.dirty
    assert owner.waiting() == [1, 3]
    owner.drop(1)
    owner.drop(3)
    assert owner.waiting() == [] and not owner._groups  # an empty group is closed


def test_a_changed_line_is_posted_at_most_every_few_seconds() -> None:
    posted: list[Any] = []
    g = group(posted, j1=task(8))
    judge(g, inventory({"a": 2, "b": 0}))
    assert len(posted) == 1
    first_at = g.jobs[1].posted_at
    judge(g, inventory({"a": 3, "b": 0}), now=first_at + 0.1)
    assert len(posted) == 1 and g.jobs[1].due.endswith("a 3/8 free on a-n")  # held back
    judge(g, inventory({"a": 3, "b": 0}), now=first_at + LINE_EVERY_S)
    assert posted[-1] == Waits(1, "waiting for capacity for H100:8: best now a 3/8 free on a-n")
    judge(g, inventory({"a": 3, "b": 0}), now=first_at + 10 * LINE_EVERY_S)
    assert len(posted) == 2  # unchanged: nothing new
