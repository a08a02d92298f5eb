"""What would fit now (fit.py) and gangs in the plan: from hand-built inventories, no fleet."""

from __future__ import annotations

from dataclasses import replace

from test_plan import H100, inventory, node

from skymagic.launches.fit import Fit, advice_text, what_fits
from skymagic.launches.plan import PLAN_COLUMNS, make_plan
from skymagic.launches.task import Task

H100_8 = replace(H100, gpu_count=8)  # 32 vCPU, 128 GB
GANG = replace(H100_8, num_nodes=2)


def fleet_nodes() -> list[dict[str, object]]:
    return [
        # my-h100: three nodes with 4 free, one with 6 free
        *(node("my-h100", f"h{i}", free=4) for i in range(3)),
        node("my-h100", "h3", free=6),
        node("gke", "g0", free=4),
        node("my-a100", "a0", gpu="A100-80GB", free=8),
        node("my-a100", "a1", gpu="A100-80GB", free=2),
    ]


def test_a_request_that_fits_nowhere_says_what_would_fit_and_where() -> None:
    ctxs = ["my-h100", "gke", "my-a100"]
    plan = make_plan(H100_8, ctxs, inventory(fleet_nodes()))
    assert plan.candidates == []
    assert plan.advice() == (
        "H100:8 fits nowhere now; H100:4 fits in my-h100 (4 nodes) and gke (1 node); "
        "A100-80GB:8 fits in my-a100 (1 node)"
    )
    assert plan.advice() in str(plan) and "fits nowhere now" in plan._repr_html_()
    frame = plan.to_frame()
    assert list(frame.columns) == PLAN_COLUMNS and PLAN_COLUMNS[-1] == "WOULD_FIT"
    assert dict(zip(frame["INFRA"], frame["WOULD_FIT"], strict=True)) == {
        "Kubernetes (my-h100)": "H100:4 (4 nodes)",
        "Kubernetes (gke)": "H100:4 (1 node)",
        "Kubernetes (my-a100)": "A100-80GB:8 (1 node)",
    }


def test_a_plan_that_fits_gives_no_advice_and_no_would_fit_on_the_chosen_row() -> None:
    plan = make_plan(replace(H100, gpu_count=4), ["gke"], inventory(fleet_nodes()))
    assert plan.chosen == "gke" and plan.advice() == ""
    assert list(plan.to_frame()["WOULD_FIT"]) == [""]


def test_a_gang_fits_only_where_enough_nodes_have_room_now() -> None:
    nodes = [
        node("one", "o0", free=8),
        node("one", "o1", free=4),
        node("two", "t0", free=8),
        node("two", "t1", free=8),
    ]
    plan = make_plan(GANG, ["one", "two"], inventory(nodes))
    assert plan.chosen == "two"
    assert plan.title() == "Considered resources (2 nodes):"
    [row, _] = plan.rows
    assert row.reason == "not enough nodes free now: 1 of 2 nodes have 8 H100 free"
    assert row.would_fit == "H100:4 x2 nodes (2 nodes), H100:8 (1 node)"
    assert plan.candidates[0].nodes == ["t0", "t1"]


def test_a_gang_that_fits_nowhere_offers_fewer_nodes_and_smaller_counts() -> None:
    nodes = [node("one", "o0", free=8), node("one", "o1", free=4), node("two", "t0", free=2)]
    fits = what_fits(GANG, ["one", "two"], {"one": nodes[:2], "two": nodes[2:]})
    assert [str(f) for f in fits] == [
        "H100:4 x2 nodes fits in one (2 nodes)",
        "H100:8 fits in one (1 node)",
    ]
    assert advice_text(GANG, fits).startswith("H100:8 x2 nodes fits nowhere now; H100:4 x2")


def test_cpu_and_memory_bound_the_advice_through_the_default_sizes() -> None:
    # 8 GPUs free but only 20 vCPU: H100:8 wants 32 vCPU, H100:4 wants 16.
    recs = [node("c", "n", free=8, cpu_free=20.0)]
    assert [f.request() for f in what_fits(H100_8, ["c"], {"c": recs})] == ["H100:4"]
    # Named sizes do not shrink with the count: nothing smaller fits.
    sized = replace(H100_8, cpus=64.0)
    assert what_fits(sized, ["c"], {"c": recs}) == []
    assert advice_text(sized, []) == (
        "H100:8 fits nowhere now; nothing smaller fits in any allowed context either"
    )


def test_cpu_tasks_are_offered_what_one_untainted_node_has_free() -> None:
    task = Task(name="c", run="x", cpus=16, memory_gb=64, user="u")
    recs = [
        node("c", "cpu", gpu=None, cpu_free=6.5, memory_gb_free=20.7),
        node("c", "gpu", free=8, cpu_free=100.0, taints="nvidia.com/gpu=present:NoSchedule"),
    ]
    fits = what_fits(task, ["c"], {"c": recs})
    assert fits == [Fit(None, 0, 1, (("c", 1),), 6.0, 20.0)]
    assert (
        advice_text(task, fits)
        == "16 vCPU, 64 GB fits nowhere now; 6 vCPU, 20 GB fits in c (1 node)"
    )


def test_unhealthy_nodes_offer_nothing() -> None:
    recs = [node("c", "n", free=8, status="Cordoned")]
    assert what_fits(H100_8, ["c"], {"c": recs}) == []
