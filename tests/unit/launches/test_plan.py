"""make_plan: which contexts can take a task now, from a hand-built Inventory (no fleet)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from skymagic.gpus.counting import NODE_COLUMNS
from skymagic.gpus.inventory import ERROR_COLUMNS, Inventory
from skymagic.launches.plan import PLAN_COLUMNS, make_plan
from skymagic.launches.task import Task

H100 = Task(name="t", run="x", gpu="H100", gpu_count=4, user="u")  # 16 vCPU, 64 GB
CPU = Task(name="c", run="x", cpus=4, memory_gb=8, user="u")


def node(
    ctx: str, name: str, gpu: str | None = "H100", total: int = 8, free: int | None = 8, **kw: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "context": ctx,
        "node": name,
        "gpu": gpu,
        "resource": "nvidia.com/gpu" if gpu else None,
        "gpu_total": total if gpu else 0,
        "gpu_free": free if gpu else 0,
        "cpu_free": 100.0,
        "memory_gb_free": 1000.0,
        "status": "Healthy",
        "taints": "",
    }
    row.update(kw)
    return row


def inventory(nodes: list[dict[str, Any]], errors: Sequence[dict[str, Any]] = ()) -> Inventory:
    """An Inventory as show_gpus builds it: None stays None in text columns (object dtype)."""
    empty = pd.DataFrame()
    return Inventory(
        nodes=pd.DataFrame(nodes, columns=list(NODE_COLUMNS), dtype=object),
        by_context=empty,
        summary=empty,
        errors=pd.DataFrame(list(errors), columns=list(ERROR_COLUMNS)),
        fetched_at=0.0,
        latency_ms={},
        contexts=sorted({n["context"] for n in nodes}),
    )


def reasons(plan: Any) -> dict[str, str]:
    return {r.context: r.reason for r in plan.rows}


def test_every_skip_reason_in_failover_order_and_the_first_fit_is_chosen() -> None:
    inv = inventory(
        [
            node("nogpu", "a1", gpu="A100-80GB", total=4, free=4),
            node("cpuonly", "c1", gpu=None),
            node("small", "s1", total=2, free=2),
            node("full", "f1", free=1),
            node("roomless", "r1", free=8, cpu_free=2.0),
            node("cordoned", "k1", free=8, status="Cordoned"),
            node("ok", "o1", free=4),
            node("ok", "o2", free=6),
            node("later", "l1"),
        ],
        [{"context": "down", "kind": "unreachable", "message": "connection refused"}],
    )
    order = ["down", "nogpu", "cpuonly", "small", "full", "roomless", "cordoned", "ok", "later"]
    plan = make_plan(H100, order, inv)
    assert [r.context for r in plan.rows] == order
    assert reasons(plan) == {
        "down": "unreachable: connection refused",
        "nogpu": "no such GPU: H100 (has A100-80GB)",
        "cpuonly": "no such GPU: H100 (no GPU nodes)",
        "small": "not enough per node: at most 2 H100 per node",
        "full": "none free now: best node has 1 H100 free, needs 4",
        "roomless": "none free now: no node with 4 H100 also has 16 vCPU and 64 GB free",
        "cordoned": "none free now: best node has 0 H100 free, needs 4",
        "ok": "",
        "later": "",
    }
    assert plan.chosen == "ok"
    assert [r.context for r in plan.rows if r.chosen] == ["ok"]
    assert [c.context for c in plan.candidates] == ["ok", "later"]
    best = plan.candidates[0]
    assert (best.resource, best.nodes, best.free) == ("nvidia.com/gpu", ["o2", "o1"], 6)


def test_a_gpu_name_matches_exactly_after_normalisation() -> None:
    inv = inventory([node("a", "n1", gpu="A100-80GB"), node("b", "n2", gpu="A100")])
    plan = make_plan(Task(name="t", run="x", gpu="A100", gpu_count=1, user="u"), ["a", "b"], inv)
    assert reasons(plan)["a"] == "no such GPU: A100 (has A100-80GB)"
    assert plan.chosen == "b"


def test_forbidden_pod_list_means_free_unknown_but_still_tried() -> None:
    inv = inventory(
        [node("ro", "n1", free=None)],
        [{"context": "ro", "kind": "forbidden", "message": "may not list pods"}],
    )
    plan = make_plan(H100, ["ro"], inv)
    (row,) = plan.rows
    assert row.fits and row.free is None
    assert row.reason == "free GPUs unknown (may not list pods); trying"
    assert plan.candidates[0].free == -1 and plan.candidates[0].nodes == ["n1"]


def test_contexts_a_policy_removed_are_shown_with_why() -> None:
    plan = make_plan(H100, ["ok", "gone"], inventory([node("ok", "n1")]), {"gone": "not today"})
    assert reasons(plan)["gone"] == "excluded by policy: not today"
    assert [c.context for c in plan.candidates] == ["ok"]


def test_cpu_tasks_avoid_gpu_tainted_and_unhealthy_nodes() -> None:
    inv = inventory(
        [
            node("a", "gpu-tainted", taints="nvidia.com/gpu=present:NoSchedule", cpu_free=64.0),
            node("a", "cpu-small", gpu=None, cpu_free=2.0),
            node("a", "cpu-big", gpu=None, cpu_free=32.0),
            node("a", "cpu-notready", gpu=None, cpu_free=99.0, status="NotReady"),
            node("b", "gpu-tainted", taints="amd.com/gpu=present:NoExecute"),
        ]
    )
    plan = make_plan(CPU, ["a", "b"], inv)
    assert plan.candidates[0].nodes == ["cpu-big"]
    assert plan.candidates[0].resource is None
    assert reasons(plan)["b"] == (
        "none free now: no node whose taints the pod tolerates has 4 vCPU and 8 GB free; "
        "1 node with room has taint amd.com/gpu=present:NoExecute the pod does not tolerate"
    )


def test_the_plan_table_marks_the_chosen_row() -> None:
    plan = make_plan(H100, ["full", "ok"], inventory([node("full", "f", free=0), node("ok", "o")]))
    frame = plan.to_frame()
    assert list(frame.columns) == PLAN_COLUMNS
    assert frame["CHOSEN"].tolist() == ["", "✔"]
    assert frame["INSTANCE"].tolist() == ["16CPU--64GB--4H100"] * 2
    text = str(plan)
    assert text.startswith("Considered resources (1 node):")
    assert "Kubernetes (ok)" in text and "none free now" in text
    assert "<b>Considered resources" in plan._repr_html_()


@pytest.mark.parametrize("free", [4, 8])
def test_free_is_the_best_fitting_nodes(free: int) -> None:
    plan = make_plan(H100, ["a"], inventory([node("a", "n", free=free)]))
    assert plan.rows[0].free == free and plan.rows[0].fits


def test_a_custom_taint_counts_only_for_pods_that_tolerate_it() -> None:
    """The status a tainted node carries is not the plan's rule: the pod's tolerations are."""
    ml = {"status": "NoSchedule Taint [dedicated=ml]", "taints": "dedicated=ml:NoSchedule"}
    inv = inventory(
        [
            node("a", "ml-gpu", **{**ml, "taints": "nvidia.com/gpu:NoSchedule, " + ml["taints"]}),
            node("a", "ml-cpu", gpu=None, **ml),
            node("b", "soft", taints="team=x:PreferNoSchedule"),
        ]
    )
    plain = make_plan(H100, ["a", "b"], inv)
    assert [c.context for c in plain.candidates] == ["b"]  # PreferNoSchedule never blocks
    assert reasons(plain)["a"].endswith(
        "1 node with room has taint dedicated=ml:NoSchedule the pod does not tolerate "
        "(tolerate it in config.kubernetes.pod_config spec.tolerations)"
    )
    assert "H100" not in plain.rows[0].would_fit  # the advice uses the same rule
    config = {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}
    for task, nodes in ((H100, ["ml-gpu"]), (CPU, ["ml-cpu"])):
        tolerant = make_plan(replace(task, pod_config=config), ["a", "b"], inv)
        assert tolerant.candidates[0].context == "a"
        assert tolerant.candidates[0].nodes == nodes
