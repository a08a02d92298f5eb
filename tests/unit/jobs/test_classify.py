"""What a pod's state means for its job: the user's failure versus the infrastructure's.

Each row is a pod as Kubernetes writes it in that situation (the kubelet's graceful node
shutdown, node-pressure eviction, taint eviction, pod GC, a plain non-zero exit, OOM).
"""

from __future__ import annotations

from typing import Any

import pytest

from skymagic.jobs.classify import node_ready, not_ready_since, pod_verdict


def _pod(
    phase: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    exit_code: int | None = None,
    term_reason: str = "Error",
    disruption: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": []}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if exit_code is not None:
        status["containerStatuses"] = [
            {
                "name": "main",
                "state": {"terminated": {"exitCode": exit_code, "reason": term_reason}},
            }
        ]
    if disruption:
        status["conditions"].append(
            {"type": "DisruptionTarget", "status": "True", "reason": disruption, "message": "m"}
        )
    meta: dict[str, Any] = {"name": "p", "uid": "u"}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "n1"}, "status": status}


SHUTDOWN = "Pod was terminated in response to imminent node shutdown."


@pytest.mark.parametrize(
    ("pod", "kind", "reason_part"),
    [
        (_pod("Running"), "running", ""),
        (_pod("Pending"), "pending", ""),
        (_pod("Succeeded", exit_code=0, term_reason="Completed"), "succeeded", ""),
        (_pod("Failed", exit_code=3), "failed", "exit code 3"),
        (
            _pod("Failed", exit_code=137, term_reason="OOMKilled"),
            "failed",
            "OOMKilled: the container ran out of memory",
        ),
        # kubelet graceful node shutdown (spot preemption): even with exit code 0 or 143
        (
            _pod("Failed", reason="Terminated", message=SHUTDOWN, exit_code=143),
            "disrupted",
            f"Terminated: {SHUTDOWN} (node n1)",
        ),
        (
            _pod("Failed", reason="Terminated", message=SHUTDOWN, exit_code=0),
            "disrupted",
            "Terminated",
        ),
        (_pod("Failed", reason="NodeShutdown", message="Pod was rejected"), "disrupted", ""),
        (_pod("Failed", reason="Evicted", message="The node was low on memory."), "disrupted", ""),
        # any DisruptionTarget condition, whatever the reason field says
        (_pod("Failed", exit_code=1, disruption="PreemptionByScheduler"), "disrupted", ""),
        # deleted by someone else: taint eviction, kubectl delete
        (_pod("Running", deleting=True, disruption="DeletionByTaintManager"), "deleting", "Taint"),
        (_pod("Running", deleting=True), "deleting", "someone else"),
    ],
)
def test_pod_verdicts(pod: dict[str, Any], kind: str, reason_part: str) -> None:
    verdict = pod_verdict(pod)
    assert verdict.kind == kind
    assert reason_part in verdict.reason


def test_exit_code_is_kept_for_user_failures() -> None:
    assert pod_verdict(_pod("Failed", exit_code=42)).exit_code == 42


def test_node_ready_reads_the_condition_and_its_time() -> None:
    node = {
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "lastTransitionTime": "2025-01-01T00:00:10Z",
                },
            ]
        }
    }
    status, since = node_ready(node)
    assert status == "Unknown" and since == 1735689610.0
    assert node_ready({"status": {}}) == ("Unknown", None)


def test_a_nodes_not_ready_spell_counts_from_the_latest_its_second_stamp_allows() -> None:
    # Stamped this second (truncated): it may have changed just now, so from now.
    assert not_ready_since(100.0, now=100.4) == 100.4
    assert not_ready_since(100.0, now=105.0) == 101.0  # at most a second after the stamp
    assert not_ready_since(None, now=7.0) == 7.0  # no stamp: from when it was seen
    assert not_ready_since(200.0, now=100.0) == 100.0  # a server clock ahead of ours
