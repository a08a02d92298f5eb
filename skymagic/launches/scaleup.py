"""Keep waiting for a Pending pod, or fail over: one rule for a single pod and a gang's ranks.

A created pod that the scheduler cannot place (FailedScheduling, or PodScheduled False with
reason Unschedulable) usually means another user took the room since the inventory was read;
the attempt fails over after a short grace, left for a cluster autoscaler to answer. The
autoscaler's answer decides, as cluster-autoscaler reports it in Events on the pod:

- `TriggeredScaleUp` ("pod triggered scale-up: [{pool 2->3 (max: 4)}]"): a node is coming.
  Keep waiting: the grace is cancelled, the scheduler's further FailedScheduling events no
  longer start one, and the deadline moves to provision_timeout after the scale-up.
- `NotTriggerScaleUp` ("pod didn't trigger scale-up: 1 max node group size reached"): no node
  is coming. Fail over at once, with the autoscaler's words as the reason.

With no autoscaler, nothing answers and the grace runs out. Every pod bound: nothing to wait
for. Pure and clock-free: callers pass `now` (time.monotonic()).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAILED_SCHEDULING_GRACE_S", "NOT_TRIGGERED", "TRIGGERED", "StartRule"]

FAILED_SCHEDULING_GRACE_S = 1.5  # time for a cluster autoscaler to answer a FailedScheduling
TRIGGERED = "TriggeredScaleUp"
NOT_TRIGGERED = "NotTriggerScaleUp"


@dataclass
class StartRule:
    """The wait for one attempt's pods to be bound, and the verdict when it must end.

    `deadline` starts at the attempt's start plus provision_timeout.
    """

    provision_timeout: float
    deadline: float
    failed_at: float | None = None  # the grace after an unschedulable verdict ends here
    failed_msg: str = ""
    refused: str = ""  # NotTriggerScaleUp's message: fail over now
    scaling: bool = False  # a scale-up was triggered for the attempt

    @classmethod
    def starting(cls, provision_timeout: float, now: float) -> StartRule:
        return cls(provision_timeout, now + provision_timeout)

    def unschedulable(self, message: str, now: float) -> None:
        """The scheduler could not place a pod: start the grace, unless a node is coming."""
        if self.scaling or self.failed_at is not None:
            return
        self.failed_msg = message
        self.failed_at = now + min(FAILED_SCHEDULING_GRACE_S, self.provision_timeout)

    def event(self, reason: str, message: str, now: float) -> str | None:
        """An Event on one of the attempt's pods; returns a line for the user, or None."""
        if reason == "FailedScheduling":
            self.unschedulable(message, now)
        elif reason == TRIGGERED:
            first = not self.scaling
            self.scaling = True
            self.failed_at = None
            self.deadline = max(self.deadline, now + self.provision_timeout)
            return "the cluster autoscaler is adding a node" if first else None
        elif reason == NOT_TRIGGERED and not self.refused:
            self.refused = message or "pod didn't trigger scale-up"
            return None
        return None

    def all_bound(self) -> None:
        """Every pod has a node: whatever was said before no longer matters."""
        self.failed_at = None

    def verdict(self, now: float, bound: bool) -> tuple[str, str] | None:
        """(outcome, reason) when the attempt must end now; None: keep waiting.

        `bound`: every pod of the attempt has a node (a bound pod is never failed here).
        """
        if bound:
            return None
        if self.refused:
            return "unschedulable", f"no node is coming (cluster autoscaler: {self.refused})"
        if self.failed_at is not None and now >= self.failed_at:
            return "unschedulable", self.failed_msg
        if now >= self.deadline:
            what = " after the cluster autoscaler triggered a scale-up" if self.scaling else ""
            return (
                "timeout",
                f"not scheduled within provision_timeout ({self.provision_timeout:g} s){what}",
            )
        return None

    def wait(self, now: float, bound: bool, most: float = 0.25) -> float:
        """How long a caller may block before the verdict can change by the clock."""
        wait = most
        if not bound:
            wait = min(wait, max(0.0, self.deadline - now))
        if self.failed_at is not None:
            wait = min(wait, max(0.0, self.failed_at - now))
        return max(wait, 0.01)
