"""Starting a job's next attempt, and making a pod the job's current attempt.

An attempt is one pod of the job. Its Task (`jobspec.attempt_task`: the same
SKYPILOT_TASK_ID, the recovery count and previous context in its environment, the job's
labels) is launched through `launch_task` on the inbox's launch pool, the same context first
under FAILOVER, last under EAGER_NEXT_REGION; with no room anywhere now, the job waits for
capacity (`capacity.py`). Once a pod exists (launched, or found by `adoption.py`), it gets its
attempt row, its watches and cache entry, and a log follower writing its log file.

Nothing here decides whether a job should launch or what a launch's outcome means:
`lifecycle.py` does, and calls in here.
"""

from __future__ import annotations

from typing import Any

from skymagic.core.client import ContextClient
from skymagic.jobs import workers
from skymagic.jobs.caches import ClusterCaches, uid_of
from skymagic.jobs.capacity import CapacityWatch
from skymagic.jobs.inbox import Inbox
from skymagic.jobs.jobspec import attempt_task, provision_timeout_from_json
from skymagic.jobs.logfiles import LogFollower
from skymagic.jobs.model import LABEL_JOB_ATTEMPT, LABEL_JOB_ID, LABEL_JOBS_DB, JobStatus
from skymagic.jobs.runstate import Run, launch_selector, record_status
from skymagic.jobs.store import JobStore
from skymagic.launches.controls import LaunchControls
from skymagic.launches.podspec import LABEL_LAUNCH, LABEL_USER, selector_for
from skymagic.launches.wait import wanted

__all__ = ["Attempts"]


class Attempts:
    """Launches attempts and takes their pods, through explicit collaborators."""

    def __init__(
        self,
        store: JobStore,
        inbox: Inbox,
        caches: ClusterCaches,
        capacity: CapacityWatch,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.caches = caches
        self.capacity = capacity

    def launch(self, run: Run, inventory: Any = None) -> None:
        """Launch the job's next attempt (its result arrives as `workers.Launched`)."""
        first = run.attempt == 0
        attempt = run.attempt + 1
        previous = run.context if not first else ""
        labels = {
            LABEL_JOBS_DB: self.store.db_id,
            LABEL_JOB_ID: str(run.id),
            LABEL_JOB_ATTEMPT: str(attempt),
        }
        task = attempt_task(
            run.task,
            job_id=run.id,
            job_name=run.rec.name,
            launch_name=run.rec.launch_name,
            task_id=run.rec.task_id,
            attempt=attempt,
            recoveries=run.rec.recoveries,
            previous_context=previous,
            labels=labels,
        )
        if first and run.rec.status != JobStatus.STARTING:
            record_status(self.store, run, JobStatus.STARTING, "launching")
        elif not first:
            self.store.set_status(run.id, JobStatus.RECOVERING, f"relaunching (attempt {attempt})")
        failover = run.recovery.strategy == "FAILOVER"
        leftovers = None
        if run.client is not None and run.namespace:
            leftovers = (run.client, run.namespace, launch_selector(run))
        run.phase = "launching"
        controls = LaunchControls(
            provision_timeout=provision_timeout_from_json(run.rec.settings),
            prefer_context=previous if failover and previous else None,
            avoid_context=previous if not failover and previous else None,
        )
        self.inbox.launch(
            workers.launch,
            run.id,
            attempt,
            task,
            run.settings,
            controls,
            leftovers=leftovers,
            inventory=inventory,
        )

    def wait_for_capacity(self, run: Run, res: workers.Launched) -> None:
        """No room now: wait (capacity.py) as PENDING, or RECOVERING after a first attempt."""
        assert res.wait_on is not None
        task, targets = res.wait_on
        run.phase = "waiting"
        status = JobStatus.PENDING if run.attempt == 0 else JobStatus.RECOVERING
        reasons = res.message.removeprefix("no room: ")
        record_status(
            self.store,
            run,
            status,
            f"waiting for capacity for {wanted(task)}: nothing is created until an allowed "
            f"context can take it ({reasons})",
            last_failure=res.message,
        )
        self.capacity.wait(run.id, task, run.settings, targets)

    def take_pod(
        self, run: Run, context: str, client: ContextClient, pod: dict[str, Any], attempt: int
    ) -> None:
        """Make `pod` the job's current attempt: database row, watches, cache, log follower."""
        meta = pod["metadata"]
        run.attempt, run.context, run.client = attempt, context, client
        run.namespace, run.pod, run.uid = meta["namespace"], meta["name"], uid_of(pod)
        run.node = (pod.get("spec") or {}).get("nodeName") or ""
        run.phase, run.gone, run.delete_sent, run.force_sent = "running", False, False, False
        run.node_bad_since, run.retry_s, run.verdict = None, 1.0, None
        known = {a.attempt: a for a in self.store.attempts(run.id)}
        if attempt not in known or known[attempt].pod_uid != run.uid:
            self.store.start_attempt(
                run.id,
                attempt,
                context=context,
                namespace=run.namespace,
                pod=run.pod,
                pod_uid=run.uid,
                node=run.node,
            )
        self.caches.ensure(client, run.namespace)
        self.caches.remember(client, run.namespace, pod)
        self.follow_log(run)

    def follow_log(self, run: Run) -> None:
        """Copy the current attempt's log into its file (one follower per attempt)."""
        if run.client is None or (run.follower_attempt == run.attempt and not run.log_done):
            return
        if run.follower is not None:
            run.follower.stop()
        run.log_done, run.follower_attempt = False, run.attempt
        job_id, attempt = run.id, run.attempt
        inbox = self.inbox
        run.follower = LogFollower(
            run.client,
            run.namespace,
            run.pod,
            self.store.log_path(job_id, attempt),
            lambda: inbox.post(("log_done", job_id, attempt)),
        ).start()

    def discard(self, res: workers.Launched) -> None:
        """The job ended while launching: what its launch made must not stay."""
        if res.pod is None:
            return
        labels = res.pod["metadata"].get("labels") or {}
        launch, user = labels.get(LABEL_LAUNCH), labels.get(LABEL_USER)
        if res.client is not None and launch and user:
            self.inbox.io(
                workers.cleanup,
                res.job_id,
                res.client,
                res.pod["metadata"]["namespace"],
                selector_for(launch, user),
            )
