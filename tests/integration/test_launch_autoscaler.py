"""A cluster autoscaler's verdict decides whether a Pending launch waits, for one pod and gangs.

Two clusters of two 8-H100 nodes each (launchkit.GANG_SPEC, `runtime: local`). The launch
plans from an inventory snapshot taken while `one` was free; then another user takes the room,
so the pods the launch creates there stay Pending. The simulator's cluster autoscaler
(`Fleet.set_autoscaler`, sim/autoscaler.py) answers as cluster-autoscaler does, in Events on
the pods: TriggeredScaleUp (a node is coming: keep waiting, within provision_timeout counted
from the scale-up) or NotTriggerScaleUp (none is: fail over now, not after the grace).
"""

from __future__ import annotations

from typing import Any

import pytest
from checkkit import fresh_session  # noqa: F401  (autouse)
from launchkit import GANG_SPEC, ONE, TWO, Recorder, admin, fleet_fixture, settings, skymagic_pods

from skymagic.errors import ProvisionFailedError
from skymagic.gpus.inventory import Inventory, show_gpus
from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet

fleet = fleet_fixture(GANG_SPEC)

NEW_GROUP = {"name": "h100-new", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512}
NO_SCALE_UP = "pod didn't trigger scale-up: 1 max node group size reached"


def launch(
    fleet: Fleet,
    *contexts: str,
    nodes: int,
    rec: Recorder,
    name: str,
    timeout: float = 5.0,
    snapshot: Inventory | None = None,
    body: str = "echo ran",
) -> LaunchResult:
    """Launch H100:8 on `nodes` nodes, planned while `one` had both nodes free: without a
    `snapshot` of that, one is taken and then all but one node's room is taken away."""
    if snapshot is None:
        snapshot = show_gpus(settings(ONE, TWO))
        fleet.add_pods(ONE, count=3 - nodes, gpu="H100", gpus=8, namespace="team-x")
    fleet.clear_requests()
    seen = snapshot
    result = launch_task(
        parse_task(body, gpus="H100:8", num_nodes=nodes, name=name),
        settings(*contexts),
        LaunchControls(detach=True, provision_timeout=timeout),
        observer=rec,
        inventory_fn=lambda _s, _i: seen,
    )
    assert isinstance(result, LaunchResult)
    return result


def nodes_of(fleet: Fleet, cluster: str) -> dict[str, str]:
    items, _ = admin(fleet, cluster).list_items(
        "/api/v1/pods", {"labelSelector": "skymagic.dev/managed=true"}
    )
    return {i["metadata"]["name"]: i["spec"].get("nodeName", "") for i in items}


def autoscaler_events(fleet: Fleet, cluster: str) -> list[dict[str, Any]]:
    items, _ = admin(fleet, cluster).list_items("/api/v1/events")
    return [e for e in items if e.get("source", {}).get("component") == "cluster-autoscaler"]


def test_a_gang_waits_while_the_autoscaler_adds_its_node(fleet: Fleet) -> None:
    # Past the 1.5 s grace a FailedScheduling alone gets, well within provision_timeout.
    fleet.set_autoscaler(ONE, NEW_GROUP, max_nodes=1, delay_s=2.5)
    rec = Recorder()
    result = launch(fleet, ONE, nodes=2, rec=rec, name="grow")

    assert [(a.context, a.outcome) for a in result.attempts] == [(ONE, "running")]
    placed = nodes_of(fleet, ONE)
    assert placed["grow-1"] == "h100-new-0" and placed["grow"] in ("h100-0", "h100-1")
    assert f"{ONE}: the cluster autoscaler is adding a node" in rec.messages
    (event,) = autoscaler_events(fleet, ONE)
    assert (event["reason"], event["type"]) == ("TriggeredScaleUp", "Normal")
    assert event["message"] == "pod triggered scale-up: [{h100-new 0->1 (max: 1)}]"
    assert event["involvedObject"]["name"] == "grow-1"


def test_a_gang_the_autoscaler_will_not_grow_fails_over_at_once(fleet: Fleet) -> None:
    fleet.set_autoscaler(ONE, NEW_GROUP, max_nodes=0)
    result = launch(fleet, ONE, TWO, nodes=2, rec=Recorder(), name="capped")

    first, second = result.attempts
    assert (first.context, first.outcome) == (ONE, "unschedulable")
    assert first.reason.startswith(f"no node is coming (cluster autoscaler: rank 1: {NO_SCALE_UP})")
    assert (second.context, second.outcome) == (TWO, "running")
    assert skymagic_pods(fleet) == {TWO: ["capped", "capped-1"]}  # nothing left in ONE


def test_a_scale_up_that_never_arrives_times_out_from_the_scale_up(fleet: Fleet) -> None:
    fleet.set_autoscaler(ONE, NEW_GROUP, max_nodes=4, delay_s=600)
    result = launch(fleet, ONE, TWO, nodes=2, rec=Recorder(), name="slow", timeout=3.0)

    first, second = result.attempts
    assert (first.context, first.outcome) == (ONE, "timeout")
    assert first.reason.startswith("only 1 of 2 pods scheduled within provision_timeout (3 s)")
    assert first.reason.endswith("after the cluster autoscaler triggered a scale-up")
    assert (second.context, second.outcome) == (TWO, "running")
    assert skymagic_pods(fleet) == {TWO: ["slow", "slow-1"]}


def test_a_single_pod_waits_for_the_scale_up_and_fails_over_on_its_refusal(fleet: Fleet) -> None:
    """The one rule a gang follows is a single pod's."""
    fleet.set_autoscaler(ONE, NEW_GROUP, max_nodes=1, delay_s=2.5)
    snapshot = show_gpus(settings(ONE, TWO))  # both nodes of ONE free here ...
    fleet.add_pods(ONE, count=2, gpu="H100", gpus=8, namespace="team-x")  # ... none now
    rec = Recorder()
    grown = launch(fleet, ONE, nodes=1, rec=rec, name="solo", snapshot=snapshot, body="sleep 60")
    assert [(a.context, a.outcome) for a in grown.attempts] == [(ONE, "running")]
    assert nodes_of(fleet, ONE) == {"solo": "h100-new-0"}
    assert f"{ONE}: the cluster autoscaler is adding a node" in rec.messages

    # The group is at its maximum now: the next pod that cannot be placed is refused.
    with pytest.raises(ProvisionFailedError) as info:
        launch(fleet, ONE, nodes=1, rec=Recorder(), name="solo2", snapshot=snapshot)
    ((ctx, reason),) = info.value.failures
    assert (ctx, reason) == (ONE, f"no node is coming (cluster autoscaler: {NO_SCALE_UP})")
    assert "solo2" not in nodes_of(fleet, ONE)
