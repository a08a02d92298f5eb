"""Which nodes a launch's pod could land on (nodematch.py): the pod spec's own constraints."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from test_plan import CPU, H100, inventory, node

from skymagic.gpus.counting import labels_text
from skymagic.launches.nodematch import node_labels, node_rule
from skymagic.launches.plan import make_plan

GPU = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
SPOT_LABELS = [
    {"cloud.google.com/gke-spot": "true"},
    {"cloud.google.com/gke-provisioning": "spot"},
    {"karpenter.sh/capacity-type": "spot"},
    {"eks.amazonaws.com/capacityType": "SPOT"},
]


def rec(labels: dict[str, str] | None, name: str = "n") -> dict[str, Any]:
    return {"node": name, "labels": None if labels is None else labels_text(labels)}


def test_labels_text_reads_back_exactly() -> None:
    labels = {"b/x": "1", "a": "", "kubernetes.io/hostname": "n-1.example"}
    assert node_labels(labels_text(labels)) == labels
    assert node_labels(None) is None and node_labels("") == {}


def test_a_spot_pod_takes_every_providers_spot_node_and_no_other() -> None:
    rule = node_rule(replace(H100, use_spot=True))
    for spot in SPOT_LABELS:
        assert rule.admits(rec({**GPU, **spot}))
    assert not rule.admits(rec(GPU))
    assert not rule.admits(rec({**GPU, "karpenter.sh/capacity-type": "on-demand"}))
    assert rule.what == "spot node"


def test_an_on_demand_pod_takes_no_spot_node_and_any_pod_takes_both() -> None:
    on_demand = node_rule(replace(H100, use_spot=False))
    anything = node_rule(H100)
    assert on_demand.admits(rec(GPU)) and anything.admits(rec(GPU))
    for spot in SPOT_LABELS:
        assert not on_demand.admits(rec({**GPU, **spot}))
        assert anything.admits(rec({**GPU, **spot}))


def test_the_gpu_terms_of_the_pod_count_too() -> None:
    """The pod's GPU affinity is part of its spec: a node labelled for another GPU is out."""
    rule = node_rule(H100)
    assert not rule.admits(rec({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}))


def test_pod_config_node_selector_and_affinity_operators() -> None:
    # A CPU task: a GPU task's own affinity term is ORed with the user's (pod_config lists
    # are extended, as SkyPilot merges them), so there the GPU term alone admits a node.
    task = replace(
        CPU,
        pod_config={
            "spec": {
                "nodeSelector": {"pool": "train"},
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "gen", "operator": "Gt", "values": ["3"]},
                                        {"key": "drain", "operator": "DoesNotExist"},
                                    ]
                                }
                            ]
                        }
                    }
                },
            }
        },
    )
    rule = node_rule(task)
    assert rule.what == "node matching the pod's nodeSelector/affinity"
    assert rule.admits(rec({"pool": "train", "gen": "4"}))
    assert not rule.admits(rec({"pool": "serve", "gen": "4"}))
    assert not rule.admits(rec({"pool": "train", "gen": "3"}))
    assert not rule.admits(rec({"pool": "train", "gen": "4", "drain": "x"}))


def test_a_node_whose_labels_are_unknown_is_not_filtered() -> None:
    assert node_rule(replace(H100, use_spot=True)).admits(rec(None))


def test_the_plan_and_advice_count_spot_nodes_for_a_spot_task() -> None:
    spot = labels_text({**GPU, "karpenter.sh/capacity-type": "spot"})
    nodes = [
        node("a", "a0", labels=labels_text(GPU)),
        node("b", "b0", free=2, labels=spot),
        node("b", "b1", free=8, labels=labels_text(GPU)),
    ]
    task = replace(H100, gpu_count=8, use_spot=True)
    plan = make_plan(task, ["a", "b"], inventory(nodes))
    assert plan.candidates == []
    rows = {r.context: r.reason for r in plan.rows}
    assert rows == {
        "a": "no such GPU on spot nodes: H100 only on 1 on-demand node",
        "b": "none free now: no spot node with 8 free H100 (best spot node has 2)",
    }
    assert plan.advice() == (
        "H100:8 spot fits nowhere now; H100:8 on-demand fits in a (1 node) and b (1 node); "
        "H100:2 spot fits in b (1 node)"
    )
