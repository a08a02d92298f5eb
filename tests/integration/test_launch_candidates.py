"""Accelerator candidates and spot against a simulated fleet: the plan shows a row per
context x candidate, the launch creates a pod only where the stated rule picks."""

from __future__ import annotations

import json

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
)
from launchkit import FREE, LAUNCH_SPEC, NOGPU, Recorder, fleet_fixture, pod, settings, writes

from skymagic.launches import LaunchControls, LaunchResult, Plan, launch_task, parse_task
from skymagic.sim import Fleet

fleet = fleet_fixture(
    {
        **LAUNCH_SPEC,
        "clusters": [
            *LAUNCH_SPEC["clusters"],
            {
                "name": "spot",
                "pod_start_s": 0.05,
                "nodes": [{"name": "h100-spot", "gpu": "H100", "gpus": 8, "spot": "karpenter"}],
            },
        ],
    }
)


def test_dry_run_shows_a_row_per_context_and_candidate(fleet: Fleet) -> None:
    body = (
        "resources:\n  accelerators: {H100: 4, A100-80GB: 4}\n  cpus: 1\n  memory: 1\nrun: echo\n"
    )
    task = parse_task(body, name="c")
    plan = launch_task(task, settings(NOGPU, FREE), LaunchControls(dry_run=True))
    assert isinstance(plan, Plan)
    rows = [(r.context, r.task.gpu if r.task else None, r.fits, r.chosen) for r in plan.rows]
    assert rows == [
        (NOGPU, "H100", False, False),
        (NOGPU, "A100-80GB", True, True),
        (FREE, "H100", True, False),
        (FREE, "A100-80GB", False, False),
    ]
    assert "2 candidates, any_of" in str(plan)


@pytest.mark.parametrize(
    ("form", "where", "gpu_label"),
    [
        ("{H100: 4, A100-80GB: 4}", NOGPU, "A100-80GB"),  # any_of: first fit, context order
        ("[H100:4, A100-80GB:4]", FREE, "H100"),  # ordered: H100 anywhere before A100-80GB
    ],
)
def test_a_launch_picks_by_the_stated_rule(
    fleet: Fleet, form: str, where: str, gpu_label: str
) -> None:
    fleet.clear_requests()
    body = f"resources:\n  accelerators: {form}\n  cpus: 1\n  memory: 1\nrun: sleep 30\n"
    task = parse_task(body, name="c")
    result = launch_task(
        task, settings(NOGPU, FREE), LaunchControls(detach=True), observer=Recorder()
    )
    assert isinstance(result, LaunchResult) and result.context == where
    made = pod(fleet, where, "c")
    assert made["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert gpu_label in json.dumps(made["spec"]["affinity"])
    other = FREE if where == NOGPU else NOGPU
    assert writes(fleet, where) == 1 and writes(fleet, other) == 0


def test_use_spot_lands_only_on_spot_nodes(fleet: Fleet) -> None:
    """FREE has H100s but no spot nodes: the plan skips it (the pod's affinity admits no node
    there) and the launch goes to the cluster whose nodes carry Karpenter's spot label."""
    body = "resources:\n  accelerators: H100:1\n  use_spot: true\nrun: sleep 30\n"
    rec = Recorder()
    result = launch_task(
        parse_task(body, name="s"),
        settings(FREE, "spot"),
        LaunchControls(detach=True, provision_timeout=3),
        observer=rec,
    )
    assert isinstance(result, LaunchResult) and result.context == "spot"
    assert [(a.outcome, a.pod_created) for a in rec.attempts] == [
        ("skipped", False),
        ("running", True),
    ]
    assert rec.attempts[0].reason == "no such GPU on spot nodes: H100 only on 1 on-demand node"
    assert pod(fleet, "spot", "s")["spec"]["nodeName"] == "h100-spot"
