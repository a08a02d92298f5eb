"""Tainted GPU pools in the plan, against a simulated fleet over real HTTPS.

Cluster `pool` has two H100 nodes: one taken by another team's pod, and the only free one
tainted `dedicated=ml:NoSchedule` (a pool reserved for ML pods). Cluster `spare` has a free
untainted H100 node. The plan counts a node only when the pod it will create tolerates the
node's NoSchedule/NoExecute taints (kube-scheduler's TaintToleration rule; the simulator's
scheduler applies the same), so a pod without the toleration skips `pool` with the taint as
its reason, and one with a `config.kubernetes.pod_config` toleration lands on the tainted
node without a pod created anywhere else.
"""

from __future__ import annotations

from typing import Any

from checkkit import fresh_session  # noqa: F401  (autouse)
from launchkit import Recorder, admin, fleet_fixture, settings, writes

from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet

POOL, SPARE = "pool", "spare"
_H100 = {"gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512, "replicas": 1}
_ML = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
SPEC: dict[str, Any] = {
    "clusters": [
        {"name": POOL, "pod_start_s": 0.05, "nodes": [
            {**_H100, "name": "h100-busy"},
            {**_H100, "name": "h100-ml", "taints": [_ML]},
        ]},
        {"name": SPARE, "pod_start_s": 0.05, "nodes": [{**_H100, "name": "h100"}]},
    ]
}  # fmt: skip

fleet = fleet_fixture(SPEC)

PLAIN = """\
resources:
  accelerators: H100:8
run: sleep 30
"""

TOLERATING = """\
resources:
  accelerators: H100:8
config:
  kubernetes:
    pod_config:
      spec:
        tolerations:
          - key: dedicated
            operator: Equal
            value: ml
            effect: NoSchedule
run: sleep 30
"""


def launch(body: str, rec: Recorder, name: str) -> LaunchResult:
    result = launch_task(
        parse_task(body, name=name),
        settings(POOL, SPARE),
        # Far beyond the test's own bound: an attempt that waited for it would show as a
        # created pod and a timeout outcome.
        LaunchControls(detach=True, provision_timeout=60.0),
        observer=rec,
    )
    assert isinstance(result, LaunchResult)
    return result


def pods_in(fleet: Fleet, cluster: str) -> dict[str, str]:
    items, _ = admin(fleet, cluster).list_items("/api/v1/pods")
    return {i["metadata"]["name"]: str(i["spec"].get("nodeName", "")) for i in items}


def fill_busy_node(fleet: Fleet) -> None:
    """Another team's H100:8 pod on the untainted node (it does not tolerate the taint)."""
    fleet.add_pods(POOL, count=1, gpu="H100", gpus=8, namespace="team-x")
    placed = pods_in(fleet, POOL)
    assert len(placed) == 1 and next(iter(placed.values())).startswith("h100-busy")


def test_a_pod_without_the_toleration_skips_the_tainted_pool_naming_the_taint(
    fleet: Fleet,
) -> None:
    fill_busy_node(fleet)
    fleet.clear_requests()
    rec = Recorder()
    result = launch(PLAIN, rec, "plain")

    assert result.status == "Running" and result.context == SPARE
    outcomes = [(a.context, a.outcome, a.pod_created) for a in result.attempts]
    assert outcomes == [(POOL, "skipped", False), (SPARE, "running", True)]
    assert writes(fleet, POOL) == 0  # never tried there
    assert rec.plan is not None
    first = rec.plan.rows[0]
    assert (first.context, first.fits) == (POOL, False)
    assert first.reason == (
        "none free now: best node has 0 H100 free, needs 8; 1 node with room has taint "
        "dedicated=ml:NoSchedule the pod does not tolerate "
        "(tolerate it in config.kubernetes.pod_config spec.tolerations)"
    )


def test_a_pod_config_toleration_lands_on_the_tainted_node_and_nowhere_else(
    fleet: Fleet,
) -> None:
    fill_busy_node(fleet)
    fleet.clear_requests()
    rec = Recorder()
    result = launch(TOLERATING, rec, "ml")

    assert result.status == "Running" and result.context == POOL
    outcomes = [(a.context, a.outcome, a.pod_created) for a in result.attempts]
    assert outcomes == [(POOL, "running", True)]
    assert pods_in(fleet, POOL)[result.name].startswith("h100-ml")
    assert writes(fleet, SPARE) == 0 and pods_in(fleet, SPARE) == {}
    assert rec.plan is not None and rec.plan.rows[0].fits and rec.plan.rows[0].chosen
