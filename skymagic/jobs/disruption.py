"""Is a running job's pod still doing its work? The watch-driven half of recovery.

The watches (`caches.py`: this database's job pods per namespace, the nodes per cluster) say
what changed; this module says which jobs a change concerns and what their pod and its node
now mean:

- **finished**: the pod ended Succeeded or Failed (the state machine then waits for the log);
- **disrupted**: the pod is disrupted (reason Terminated/NodeShutdown/Evicted...,
  DisruptionTarget), deleted or being deleted by someone else, its node deleted, or its node
  NotReady longer than the grace time;
- **fine**: none of these (yet); a NotReady node asks to be looked at again when its grace
  time ends.

It only observes (and keeps the `Run`'s node facts current): `lifecycle.py` acts on what it
reports, so detection can be read and changed apart from the clearing and relaunching that
follow it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from skymagic.core.watch import Listed
from skymagic.jobs.caches import ALL_NODES, ClusterCaches, uid_of
from skymagic.jobs.classify import PodVerdict, not_ready_since, pod_verdict
from skymagic.jobs.model import LABEL_JOB_ID
from skymagic.jobs.runstate import Run

__all__ = ["Detector", "Observation"]


@dataclass(frozen=True)
class Observation:
    """What a running job's pod and node mean now (see the module docstring)."""

    kind: str  # "unknown" (its pod not seen yet) | "finished" | "disrupted" | "fine"
    reason: str = ""  # disrupted: why, for the job's status and the attempt's row
    verdict: PodVerdict | None = None  # finished and fine: the pod's
    recheck_in: float | None = None  # its node just went NotReady: look again after this


class Detector:
    """Applies watch events to the caches and reads a job's pod and node from them."""

    def __init__(self, caches: ClusterCaches, runs: dict[int, Run], node_grace_s: float) -> None:
        self.caches = caches
        self.runs = runs  # the supervisor's active jobs, read only
        self.node_grace_s = node_grace_s

    # -- which jobs an event concerns --------------------------------------------------------
    def on_pods(self, pkey: tuple[str, str], ev: Any) -> list[tuple[Run, bool]]:
        """Apply a pod watch event; the jobs to look at again, each with "confirm first"
        (a re-list no longer shows its pod: a deletion missed while not watching, so the
        API is asked)."""
        cache = self.caches.apply_pods(pkey, ev)
        if cache is None:
            return []
        if isinstance(ev, Listed):
            touched = []
            for run in self._runs_on(pkey):
                live = cache.pods.get(run.pod)
                missed = (
                    bool(run.uid) and not run.gone and (live is None or uid_of(live) != run.uid)
                )
                touched.append((run, missed))
            return touched
        obj = ev.object
        job_id = int((obj["metadata"].get("labels") or {}).get(LABEL_JOB_ID, "0") or 0)
        owner = self.runs.get(job_id)
        if owner is not None and owner.uid == uid_of(obj):
            return [(owner, False)]
        return []

    def on_nodes(self, server: str, ev: Any) -> list[Run]:
        """Apply a node watch event; the jobs whose node it may have changed."""
        node = self.caches.apply_nodes(server, ev)
        if node is None:
            return []
        return [
            run
            for run in self.runs.values()
            if run.client and run.client.server == server and node in (ALL_NODES, run.node)
        ]

    def _runs_on(self, pkey: tuple[str, str]) -> list[Run]:
        return [
            r
            for r in self.runs.values()
            if r.client is not None and (r.client.server, r.namespace) == pkey
        ]

    # -- what the caches say of a job ---------------------------------------------------------
    def pod_state(self, run: Run) -> tuple[str, dict[str, Any] | None]:
        """("gone", None) | ("unknown", None) | ("live", pod) for the current attempt's pod."""
        if run.gone or not run.uid:
            return ("gone", None) if run.gone or run.attempt == 0 else ("unknown", None)
        if run.client is None:
            return "unknown", None
        state, pod = self.caches.pod_state(run.client, run.namespace, run.pod, run.uid)
        if state == "gone":
            run.gone = True
        return state, pod

    def node_state(self, run: Run) -> tuple[str, float | None]:
        """("gone" | "True" | "False" | "Unknown" | "unknown", since) for the pod's node."""
        if run.client is None:
            return "unknown", None
        return self.caches.node_state(run.client, run.node)

    def observe(self, run: Run) -> Observation:
        """A running job: has its attempt finished, been disrupted, or is it fine?"""
        state, pod = self.pod_state(run)
        if state == "gone":
            return Observation("disrupted", "the pod was deleted by someone else (not skymagic)")
        if pod is None:
            return Observation("unknown")
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if node and node != run.node:
            run.node = node
        verdict = pod_verdict(pod)
        if verdict.kind in ("succeeded", "failed"):
            return Observation("finished", verdict=verdict)
        if verdict.kind in ("disrupted", "deleting"):
            return Observation("disrupted", verdict.reason)
        ready, since = self.node_state(run)
        if ready == "gone":
            return Observation(
                "disrupted", f"node {run.node} was deleted (its VM is gone: preempted?)"
            )
        recheck = None
        if ready in ("False", "Unknown"):
            if run.node_bad_since is None:
                run.node_bad_since = not_ready_since(since, time.time())
                due = run.node_bad_since + self.node_grace_s - time.time()
                recheck = max(due, 0.0) + 0.01
            if time.time() - run.node_bad_since >= self.node_grace_s:
                return Observation(
                    "disrupted",
                    f"node {run.node} NotReady (Ready={ready}) for over {self.node_grace_s:g} s",
                    recheck_in=recheck,
                )
        else:
            run.node_bad_since = None
        return Observation("fine", verdict=verdict, recheck_in=recheck)
