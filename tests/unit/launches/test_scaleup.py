"""Keep waiting or fail over (scaleup.StartRule): the one rule for a pod and a gang's ranks."""

from __future__ import annotations

from skymagic.launches.scaleup import FAILED_SCHEDULING_GRACE_S, StartRule

FULL = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."


def test_an_unschedulable_pod_fails_over_after_the_grace_when_nothing_answers() -> None:
    rule = StartRule.starting(10.0, now=0.0)
    rule.event("FailedScheduling", FULL, 1.0)
    assert rule.verdict(1.0 + FAILED_SCHEDULING_GRACE_S - 0.01, bound=False) is None
    assert rule.verdict(1.0 + FAILED_SCHEDULING_GRACE_S, bound=False) == ("unschedulable", FULL)


def test_a_triggered_scale_up_keeps_waiting_past_later_failures_until_its_own_deadline() -> None:
    rule = StartRule.starting(10.0, now=0.0)
    rule.event("FailedScheduling", FULL, 1.0)
    assert rule.event("TriggeredScaleUp", "pod triggered scale-up: [{g 0->1 (max: 2)}]", 2.0)
    assert rule.event("TriggeredScaleUp", "again", 2.0) is None  # said once
    rule.event("FailedScheduling", FULL + " (again)", 4.0)  # the scheduler retries: no grace
    assert rule.verdict(11.9, bound=False) is None  # 2.0 + 10 s
    outcome, reason = rule.verdict(12.0, bound=False) or ("", "")
    assert outcome == "timeout" and reason.endswith("triggered a scale-up")


def test_no_scale_up_fails_over_at_once_but_never_a_bound_attempt() -> None:
    rule = StartRule.starting(10.0, now=0.0)
    rule.event(
        "NotTriggerScaleUp", "pod didn't trigger scale-up: 1 max node group size reached", 0.5
    )
    assert rule.verdict(0.5, bound=True) is None
    assert rule.verdict(0.5, bound=False) == (
        "unschedulable",
        "no node is coming (cluster autoscaler: pod didn't trigger scale-up: 1 max node "
        "group size reached)",
    )


def test_the_provision_timeout_without_any_event() -> None:
    rule = StartRule.starting(3.0, now=5.0)
    assert rule.verdict(7.9, bound=False) is None
    assert rule.verdict(8.0, bound=False) == (
        "timeout",
        "not scheduled within provision_timeout (3 s)",
    )
    assert rule.wait(7.9, bound=False) <= 0.11
