"""What a job's pod and node say, as plain verdicts (pure functions, no I/O).

The line the controller must draw: the user's own program failing (FAILED, restarted only up to
max_restarts_on_errors) versus the infrastructure taking the pod away (always recovered).
Kubernetes says which in a few places, all read here:

- pod `status.reason` set by the kubelet: `Terminated` (graceful node shutdown, e.g. a spot
  preemption notice), `NodeShutdown` / `Shutdown` (rejected or stopped on a node shutting
  down, older kubelets), `Evicted` (node-pressure eviction), `NodeLost`, `Preempting`
  (a higher-priority pod took its place), `UnexpectedAdmissionError`;
- the pod condition `DisruptionTarget=True` (Kubernetes 1.26+), whatever ended the pod:
  TerminationByKubelet, PreemptionByScheduler, DeletionByTaintManager, EvictionByEvictionAPI,
  DeletionByPodGC;
- a deletion the controller did not ask for (`deletionTimestamp` set, or the pod gone).

Everything else that ends Failed is the user's: its exit code decides.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["DISRUPTION_REASONS", "PodVerdict", "node_ready", "not_ready_since", "pod_verdict"]

DISRUPTION_REASONS = frozenset(
    {
        "Terminated",
        "NodeShutdown",
        "Shutdown",
        "Evicted",
        "NodeLost",
        "Preempting",
        "UnexpectedAdmissionError",
    }
)


@dataclass(frozen=True)
class PodVerdict:
    """kind: pending | running | succeeded | failed (the user's) | disrupted | deleting."""

    kind: str
    reason: str = ""
    exit_code: int | None = None


def _disruption(pod: dict[str, Any]) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            reason = str(cond.get("reason") or "DisruptionTarget")
            message = str(cond.get("message") or "")
            return f"{reason}: {message}" if message else reason
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return dict(term)
    return None


def pod_verdict(pod: dict[str, Any]) -> PodVerdict:
    """What the pod's current state means for its job."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    where = (pod.get("spec") or {}).get("nodeName") or ""
    on_node = f" (node {where})" if where else ""
    if phase == "Succeeded":
        return PodVerdict("succeeded", "", 0)
    if phase == "Failed":
        reason = str(status.get("reason") or "")
        disruption = _disruption(pod)
        if reason in DISRUPTION_REASONS or disruption:
            text = f"{reason}: {status.get('message')}" if reason else str(disruption)
            if reason and not status.get("message"):
                text = reason
            return PodVerdict("disrupted", text + on_node)
        term = _terminated(pod) or {}
        code = int(term.get("exitCode", 1) or 0)
        why = f"exit code {code}"
        if term.get("reason") == "OOMKilled":
            why += " (OOMKilled: the container ran out of memory)"
        elif reason:
            why += f" ({reason}: {status.get('message') or ''})".replace(": )", ")")
        return PodVerdict("failed", why, code)
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        disruption = _disruption(pod)
        why = (
            f"pod is being deleted by someone else ({disruption})"
            if disruption
            else ("pod is being deleted by someone else")
        )
        return PodVerdict("deleting", why + on_node)
    if phase == "Running":
        return PodVerdict("running")
    return PodVerdict("pending")


def node_ready(node: dict[str, Any]) -> tuple[str, float | None]:
    """The node's Ready status ("True", "False", "Unknown") and when it last changed (epoch)."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown")), _epoch(cond.get("lastTransitionTime"))
    return "Unknown", None


def not_ready_since(stamp: float | None, now: float) -> float:
    """When a node's NotReady spell began, for counting its grace from `stamp` (the Ready
    condition's lastTransitionTime, epoch).

    Kubernetes stamps it to the second, truncated: the change came up to a second after the
    stamp. The latest it can have been is taken, and never later than `now` (a server clock
    ahead of ours), so a job is never called disrupted "NotReady for over N s" before N s have
    surely passed (with a 1 s grace, a truncated stamp made a node that had just gone
    NotReady look a second old, ahead of the pod's own end that explains it).
    """
    if stamp is None:
        return now
    return min(stamp + 1.0, now)


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
