"""Spot capacity in the plan, against a simulated fleet over real HTTPS.

`use_spot: true` puts node affinity on the providers' spot labels into the pod, and the
simulator's scheduler honours it; so the plan must count only the nodes such a pod could land
on. Cluster `ondemand` has free H100s on on-demand nodes only, `spot` free H100s on nodes
labelled as GKE spot, `karp` H100s on Karpenter spot nodes that are all taken. The fleet's
request log shows where a launch created a pod.
"""

from __future__ import annotations

from typing import Any

import pytest
from checkkit import fresh_session  # noqa: F401  (autouse)
from launchkit import Recorder, admin, fleet_fixture, settings, writes

from skymagic.errors import ProvisionFailedError
from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet

ONDEMAND, SPOT, KARP = "ondemand", "spot", "karp"
_H100 = {"name": "h100", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512}
SPEC: dict[str, Any] = {
    "clusters": [
        {"name": ONDEMAND, "pod_start_s": 0.05, "nodes": [_H100]},
        {"name": SPOT, "pod_start_s": 0.05, "nodes": [_H100, {**_H100, "name": "h100-spot", "spot": "gke"}]},
        {"name": KARP, "pod_start_s": 0.05, "nodes": [{**_H100, "name": "h100-spot", "spot": "karpenter"}]},
    ]
}  # fmt: skip

fleet = fleet_fixture(SPEC)

SPOT_TASK = """\
resources:
  accelerators: H100:8
  use_spot: {spot}
run: sleep 30
"""


def launch(spot: str, *contexts: str, rec: Recorder, name: str) -> LaunchResult:
    result = launch_task(
        parse_task(SPOT_TASK.format(spot=spot), name=name),
        settings(*contexts),
        # A provision timeout far beyond the test's own bound: any attempt that waited for
        # it would show as a created pod and a timeout outcome.
        LaunchControls(detach=True, provision_timeout=60.0),
        observer=rec,
    )
    assert isinstance(result, LaunchResult)
    return result


def pods_in(fleet: Fleet, cluster: str) -> list[str]:
    items, _ = admin(fleet, cluster).list_items("/api/v1/pods")
    return [i["metadata"]["name"] for i in items]


def test_a_spot_launch_goes_straight_to_the_context_with_free_spot_nodes(fleet: Fleet) -> None:
    fleet.clear_requests()
    rec = Recorder()
    result = launch("true", ONDEMAND, SPOT, rec=rec, name="spotty")

    assert result.status == "Running" and result.context == SPOT
    outcomes = [(a.context, a.outcome, a.pod_created) for a in result.attempts]
    assert outcomes == [(ONDEMAND, "skipped", False), (SPOT, "running", True)]
    assert writes(fleet, ONDEMAND) == 0 and pods_in(fleet, ONDEMAND) == []  # never tried there
    placed = admin(fleet, SPOT).get_json(f"/api/v1/namespaces/default/pods/{result.name}")
    assert placed["spec"]["nodeName"].startswith("h100-spot")
    assert rec.plan is not None
    first = rec.plan.rows[0]
    assert (first.context, first.fits) == (ONDEMAND, False)
    assert first.reason == "no such GPU on spot nodes: H100 only on 1 on-demand node"
    assert "H100:8 on-demand (1 node)" in first.would_fit


def test_a_spot_task_with_no_spot_capacity_anywhere_fails_at_once_with_the_advice(
    fleet: Fleet,
) -> None:
    fleet.add_pods(KARP, count=1, gpu="H100", gpus=8, namespace="team-x")  # the spot node taken
    fleet.clear_requests()
    with pytest.raises(ProvisionFailedError) as info:
        launch("true", ONDEMAND, KARP, rec=Recorder(), name="nospot")
    reasons = dict(info.value.failures)
    assert reasons[ONDEMAND] == "no such GPU on spot nodes: H100 only on 1 on-demand node"
    assert reasons[KARP] == "none free now: no spot node with 8 free H100 (best spot node has 0)"
    assert info.value.advice == (
        "H100:8 spot fits nowhere now; H100:8 on-demand fits in ondemand (1 node)"
    )
    assert str(info.value).splitlines()[-1] == info.value.advice
    assert writes(fleet, ONDEMAND) == 0 and writes(fleet, KARP) == 0  # nothing created


def test_an_on_demand_task_skips_spot_only_capacity(fleet: Fleet) -> None:
    fleet.clear_requests()
    rec = Recorder()
    with pytest.raises(ProvisionFailedError) as info:
        launch("false", KARP, rec=rec, name="ondemand")
    assert dict(info.value.failures)[KARP] == (
        "no such GPU on on-demand nodes: H100 only on 1 spot node"
    )
    assert info.value.advice.endswith("H100:8 spot fits in karp (1 node)")
    assert writes(fleet, KARP) == 0


def test_a_pod_config_node_selector_counts_only_the_nodes_it_selects(fleet: Fleet) -> None:
    """The same rule for any nodeSelector the pod carries (config.kubernetes.pod_config)."""
    body = """\
resources:
  accelerators: H100:8
config:
  kubernetes:
    pod_config:
      spec:
        nodeSelector:
          karpenter.sh/capacity-type: spot
run: sleep 30
"""
    fleet.clear_requests()
    result = launch_task(
        parse_task(body, name="pinned"),
        settings(ONDEMAND, KARP),
        LaunchControls(detach=True, provision_timeout=60.0),
        observer=Recorder(),
    )
    assert isinstance(result, LaunchResult) and result.context == KARP
    assert writes(fleet, ONDEMAND) == 0
    assert result.attempts[0].reason == (
        "no such GPU on nodes matching the pod's nodeSelector: H100 only on 1 other node"
    )
