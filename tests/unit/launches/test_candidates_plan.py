"""Accelerator candidates in the plan: a row per context x candidate, CHOSEN by the rule.

`any_of` takes whichever candidate fits first in failover order (context by context);
`ordered` tries each candidate in the user's order across every context before the next.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from skymagic.gpus.counting import NODE_COLUMNS
from skymagic.gpus.inventory import ERROR_COLUMNS, Inventory
from skymagic.launches.plan import make_plan
from skymagic.launches.task import parse_task


def node(ctx: str, name: str, gpu: str, free: int, total: int = 8) -> dict[str, Any]:
    return {
        "context": ctx,
        "node": name,
        "gpu": gpu,
        "resource": "nvidia.com/gpu",
        "gpu_total": total,
        "gpu_free": free,
        "cpu_free": 100.0,
        "memory_gb_free": 1000.0,
        "status": "Healthy",
        "taints": "",
    }


def inventory(*nodes: dict[str, Any]) -> Inventory:
    frame = pd.DataFrame([{c: n.get(c) for c in NODE_COLUMNS} for n in nodes])
    return Inventory(
        nodes=frame,
        by_context=pd.DataFrame(),
        summary=pd.DataFrame(),
        errors=pd.DataFrame(columns=list(ERROR_COLUMNS)),
        fetched_at=0.0,
        latency_ms={},
        contexts=sorted({n["context"] for n in nodes}),
    )


# ctx-a has only A100-80GB free; ctx-b has H100 free.
INV = inventory(
    node("ctx-a", "a1", "H100", 0),
    node("ctx-a", "a2", "A100-80GB", 8),
    node("ctx-b", "b1", "H100", 8),
)
YAML = "resources:\n  {form}\nrun: echo\n"


def chosen(plan: Any) -> tuple[str, str]:
    [row] = [r for r in plan.rows if r.chosen]
    return row.context, row.task.gpu


def test_any_of_takes_the_first_fit_in_failover_order() -> None:
    task = parse_task(YAML.format(form="accelerators: {H100: 8, A100-80GB: 8}"), name="t")
    plan = make_plan(task, ["ctx-a", "ctx-b"], INV)
    rows = [(r.context, r.task.gpu, r.fits) for r in plan.rows]
    assert rows == [
        ("ctx-a", "H100", False),
        ("ctx-a", "A100-80GB", True),
        ("ctx-b", "H100", True),
        ("ctx-b", "A100-80GB", False),
    ]
    assert chosen(plan) == ("ctx-a", "A100-80GB")
    assert [(c.context, c.task.gpu) for c in plan.candidates] == [
        ("ctx-a", "A100-80GB"),
        ("ctx-b", "H100"),
    ]
    text = str(plan)
    assert "2 candidates, any_of" in text and "A100-80GB:8" in text and "H100:8" in text


def test_ordered_tries_the_users_first_choice_everywhere_first() -> None:
    task = parse_task(YAML.format(form="accelerators: [H100:8, A100-80GB:8]"), name="t")
    plan = make_plan(task, ["ctx-a", "ctx-b"], INV)
    assert [(r.context, r.task.gpu) for r in plan.rows] == [
        ("ctx-a", "H100"),
        ("ctx-b", "H100"),
        ("ctx-a", "A100-80GB"),
        ("ctx-b", "A100-80GB"),
    ]
    assert chosen(plan) == ("ctx-b", "H100")
    assert plan.chosen_task is not None and plan.chosen_task.gpu == "H100"
    frame = plan.to_frame()
    assert list(frame[frame["CHOSEN"] == "✔"]["GPUS"]) == ["H100:8"]


def test_a_single_candidate_plans_as_before() -> None:
    task = parse_task("echo", name="t", gpus="H100:8")
    plan = make_plan(task, ["ctx-a", "ctx-b"], INV)
    assert [r.context for r in plan.rows] == ["ctx-a", "ctx-b"]
    assert plan.chosen == "ctx-b" and "candidates" not in plan.title()


def test_notes_show_in_the_plan() -> None:
    task = parse_task("name: a_b\nresources:\n  disk_tier: best\nrun: echo\n")
    plan = make_plan(task, ["ctx-a"], inventory(node("ctx-a", "c", "H100", 8)))
    assert "Note: resources.disk_tier: 'best'" in str(plan)
    assert "Note: name: 'a_b'" in str(plan) and "a_b" in plan._repr_html_()
