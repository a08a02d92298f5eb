"""One job's state machine: what happens next, decided from what the caches and workers say.

Per job the supervisor keeps a `Run` (`runstate.py`) and, after every change that concerns
it, calls `step`, which decides from the caches (level-triggered, like a Kubernetes
controller):

- **running**: `disruption.py` says the attempt finished -> wait for its log to be complete,
  then SUCCEEDED, or FAILED / FAILED_SETUP unless a restart on errors is left; disrupted ->
  RECOVERING.
- **clearing** (RECOVERING or CANCELLING): the old pod must be confirmed gone before anything
  new is created, so a job never has two copies. A terminal pod is deleted (its containers
  have stopped); a live one is deleted gracefully and waited for; once its node is gone it is
  force-deleted (nothing can be running there any more). A pod on an unreachable node that
  stays is waited for: relaunching then could run two copies.
- **launching** (`attempts.py`): the launch's outcome decides: the pod runs; no room now ->
  wait for capacity (PENDING on a first launch, RECOVERING on a recovery); a first launch that
  can never fit -> FAILED_NO_RESOURCE at once (a recovery waits even then: a preempted node's
  replacement may join); a recovery's other failures -> retry with a doubling backoff.

The worker results that concern a job's pod (deleted, confirmed) and the log follower's end
arrive here too, since each only moves the job along its states. An unexpected error in one
job's step fails that job alone (FAILED_CONTROLLER, `guard`).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from skymagic.jobs import workers
from skymagic.jobs.attempts import Attempts
from skymagic.jobs.caches import ClusterCaches
from skymagic.jobs.capacity import CapacityWatch, Fits, Waits
from skymagic.jobs.classify import pod_verdict
from skymagic.jobs.disruption import Detector
from skymagic.jobs.inbox import Inbox
from skymagic.jobs.model import SETUP_FAILED_MARKER, JobStatus
from skymagic.jobs.runstate import Run, launch_selector, record_status
from skymagic.jobs.store import JobStore

__all__ = ["Lifecycle"]

log = logging.getLogger("skymagic.jobs")

_FINISH_WAIT_S = 10.0  # a finished pod's log gets this long to be complete
_MAX_RETRY_S = 30.0
_RETRY_CLEAR_S = 2.0  # a failed delete or confirm is tried again after this


class Lifecycle:
    """Moves each active job through its states (see the module docstring)."""

    def __init__(
        self,
        store: JobStore,
        runs: dict[int, Run],
        *,
        inbox: Inbox,
        caches: ClusterCaches,
        capacity: CapacityWatch,
        detector: Detector,
        attempts: Attempts,
    ) -> None:
        self.store = store
        self.runs = runs  # the supervisor's active jobs: a finished one is removed here
        self.inbox = inbox
        self.caches = caches
        self.capacity = capacity
        self.detector = detector
        self.attempts = attempts

    def guard(self, run: Run, fn: Callable[..., None], *args: Any) -> None:
        """Run one job's step; an unexpected error fails that job (FAILED_CONTROLLER) only."""
        try:
            fn(*args)
        except Exception as exc:
            log.error("job %s: %s", run.id, traceback.format_exc())
            self.finish(run, JobStatus.FAILED_CONTROLLER, f"{type(exc).__name__}: {exc}")

    def _status(self, run: Run, status: JobStatus, message: str = "", **fields: Any) -> None:
        record_status(self.store, run, status, message, **fields)

    # -- the per-job steps -----------------------------------------------------------------
    def step(self, run: Run) -> None:
        """Decide the job's next move from what is known now (safe to call any time)."""
        if run.phase == "new":
            if run.rec.cancel_requested:
                self.finish(run, JobStatus.CANCELLED, "cancelled before it started")
            else:
                self.attempts.launch(run)
        elif run.phase == "running":
            self._check_running(run)
        elif run.phase == "finishing":
            self._check_finishing(run)
        elif run.phase == "clearing":
            self._check_clearing(run)

    def _check_running(self, run: Run) -> None:
        seen = self.detector.observe(run)
        if seen.recheck_in is not None:
            self.inbox.timer(seen.recheck_in, run.id, "node_grace")
        if seen.kind == "disrupted":
            self.recover(run, seen.reason)
        elif seen.kind == "finished":
            run.phase, run.verdict = "finishing", seen.verdict
            run.finish_by = time.monotonic() + _FINISH_WAIT_S
            self.inbox.timer(_FINISH_WAIT_S, run.id, "finish")
            self._check_finishing(run)
        elif (
            seen.kind == "fine"
            and seen.verdict is not None
            and seen.verdict.kind == "running"
            and run.rec.status != JobStatus.RUNNING
        ):
            self._status(run, JobStatus.RUNNING, f"running in {run.context} on node {run.node}")

    def _check_finishing(self, run: Run) -> None:
        verdict = run.verdict
        if verdict is None or (not run.log_done and time.monotonic() < run.finish_by):
            return
        if verdict.kind == "succeeded":
            self.store.end_attempt(run.id, run.attempt, "succeeded", "")
            self.finish(run, JobStatus.SUCCEEDED, "")
            return
        setup_failed = SETUP_FAILED_MARKER in self._log_tail(run)
        what = "setup failed" if setup_failed else "failed"
        reason = f"{what}: {verdict.reason}"
        if run.rec.restarts_on_errors < run.recovery.max_restarts_on_errors:
            self.recover(run, reason, user_error=True)
            return
        self.store.end_attempt(run.id, run.attempt, what, verdict.reason)
        status = JobStatus.FAILED_SETUP if setup_failed else JobStatus.FAILED
        self.finish(run, status, reason)

    def _log_tail(self, run: Run) -> str:
        path = self.store.log_path(run.id, run.attempt)
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def recover(self, run: Run, reason: str, *, user_error: bool = False) -> None:
        """The attempt is over and the job goes on: clear the old pod, then relaunch."""
        outcome = "failed" if user_error else "preempted"
        if not user_error and "deleted" in reason:
            outcome = "lost"
        self.store.end_attempt(run.id, run.attempt, outcome, reason)
        log.info("job %s attempt %s: %s: %s", run.id, run.attempt, outcome, reason)
        if run.rec.cancel_requested:
            self.begin_cancel(run)
            return
        restarts = run.rec.restarts_on_errors + (1 if user_error else 0)
        message = reason
        if user_error:
            message += (
                f"; restart {restarts} of {run.recovery.max_restarts_on_errors} "
                "(max_restarts_on_errors)"
            )
        self._status(
            run,
            JobStatus.RECOVERING,
            message,
            recoveries=run.rec.recoveries + 1,
            restarts_on_errors=restarts,
            last_failure=reason,
        )
        run.phase, run.after_clear = "clearing", "relaunch"
        run.node_bad_since = None
        self._check_clearing(run)

    def begin_cancel(self, run: Run) -> None:
        """The user cancelled: clear the job's pod (now, or once its launch reports)."""
        if run.phase == "done":
            return
        if run.rec.status != JobStatus.CANCELLING:
            self._status(run, JobStatus.CANCELLING, "cancel requested")
        if run.phase == "launching":
            run.cancel_after_launch = True  # the launch's pod is cleared when it reports
            return
        if run.phase in ("new", "retry_wait", "waiting", "discovering") or run.attempt == 0:
            if run.phase == "discovering":
                run.cancel_after_launch = True  # decided once we know where its pods are
                return
            self.finish(run, JobStatus.CANCELLED, "cancelled")
            return
        if run.phase in ("running", "finishing"):
            self.store.end_attempt(run.id, run.attempt, "cancelled", "cancelled by the user")
        run.phase, run.after_clear = "clearing", "cancel"
        self._check_clearing(run)

    def _check_clearing(self, run: Run) -> None:
        """Delete the old pod and wait until it is confirmed gone; then relaunch or finish."""
        state, pod = self.detector.pod_state(run)
        if state == "gone":
            self._cleared(run)
            return
        if state == "unknown" or pod is None or run.client is None:
            self.confirm(run)
            return
        ready, _since = self.detector.node_state(run)
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if terminal and not run.delete_sent:
            self._delete(run, 0)  # its containers have stopped: the API removes it at once
        elif ready == "gone" and not run.force_sent:
            run.force_sent = True
            self._delete(run, 0)  # the node is gone: nothing can run there any more
        elif not run.delete_sent and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._delete(run, None)  # graceful: the kubelet stops it and confirms

    def _delete(self, run: Run, grace: int | None) -> None:
        run.delete_sent = True
        assert run.client is not None
        self.inbox.io(
            workers.delete_pod,
            run.id,
            run.client,
            run.namespace,
            run.pod,
            run.uid,
            grace,
        )

    def confirm(self, run: Run) -> None:
        """Ask the API whether the current attempt's pod still exists (once at a time)."""
        if run.confirming or run.client is None or not run.uid:
            return
        run.confirming = True
        self.inbox.io(workers.confirm, run.id, run.client, run.namespace, run.pod, run.uid)

    def _cleared(self, run: Run) -> None:
        if run.follower is not None:
            run.follower.stop()
        if run.after_clear == "cancel" or run.rec.cancel_requested:
            self.finish(run, JobStatus.CANCELLED, "cancelled")
        else:
            self.attempts.launch(run)

    def finish(self, run: Run, status: JobStatus, reason: str) -> None:
        """The job ends in `status`: clean up what its launches made, stop watching it."""
        failed = status not in (JobStatus.SUCCEEDED, JobStatus.CANCELLED)
        fields = {"last_failure": reason} if failed and reason else {}
        self._status(run, status, reason, **fields)
        run.phase = "done"
        self.capacity.drop(run.id)
        if run.client is not None and run.namespace:
            self.inbox.io(
                workers.cleanup,
                run.id,
                run.client,
                run.namespace,
                launch_selector(run),
            )
        if run.follower is not None and not run.log_done:
            run.follower.stop()
        self.runs.pop(run.id, None)
        self.caches.drop_unused(
            {(r.client.server, r.namespace) for r in self.runs.values() if r.client}
        )

    # -- what arrives for a job ----------------------------------------------------------------
    def on_log_done(self, job_id: int, attempt: int) -> None:
        """An attempt's log follower reached the end of the log."""
        self.store.log_complete(job_id, attempt)
        run = self.runs.get(job_id)
        if run is not None and run.follower_attempt == attempt:
            run.log_done = True
            self.guard(run, self.step, run)

    def on_launched(self, run: Run, res: workers.Launched) -> None:
        """A launch reported: its pod runs, or what the job does without one."""
        if res.pod is None or res.client is None:
            log.info("job %s attempt %s: launch failed: %s", run.id, res.attempt, res.message)
            first = run.attempt == 0
            if run.cancel_after_launch or run.rec.cancel_requested:
                self.finish(run, JobStatus.CANCELLED, "cancelled")
            elif res.no_resource and res.wait_on and (res.may_fit_later or not first):
                self.attempts.wait_for_capacity(run, res)
            elif first:
                status = JobStatus.FAILED_CONTROLLER if res.bug else JobStatus.FAILED_NO_RESOURCE
                self.finish(run, status, res.message)
            else:
                self.capacity.drop(run.id)
                run.phase = "retry_wait"
                self.store.set_status(
                    run.id,
                    JobStatus.RECOVERING,
                    f"{res.message}; retrying in {run.retry_s:g} s",
                    last_failure=res.message,
                )
                self.inbox.timer(run.retry_s, run.id, "retry")
                run.retry_s = min(run.retry_s * 2, _MAX_RETRY_S)
            return
        self.capacity.drop(run.id)
        self.attempts.take_pod(run, res.context, res.client, res.pod, res.attempt)
        self._status(
            run,
            JobStatus.RUNNING if pod_verdict(res.pod).kind != "pending" else run.rec.status,
            f"attempt {res.attempt} in {res.context} on node {run.node}",
        )
        if run.cancel_after_launch or run.rec.cancel_requested:
            self.begin_cancel(run)
            return
        self.step(run)

    def on_capacity(self, ev: Fits | Waits) -> None:
        """A waiting job fits now (launch it), or its waiting line changed (show it)."""
        run = self.runs.get(ev.job_id)
        if run is None or run.phase != "waiting":
            if isinstance(ev, Fits):
                self.capacity.drop(ev.job_id)  # it ended meanwhile: the next may go
            return
        if isinstance(ev, Fits):
            log.info("job %s: capacity appeared: launching", run.id)
            self.guard(run, self.attempts.launch, run, ev.inventory)
        else:  # the live line: the job's details, not a status change (no event)
            self.store.update(run.id, details=ev.text)

    def on_deleted(self, run: Run, res: workers.Deleted) -> None:
        """A delete of the job's pod answered."""
        if res.uid != run.uid:
            return
        if res.gone:
            run.gone = True
        elif res.error:
            log.warning("job %s: deleting pod %s: %s", run.id, run.pod, res.error)
            run.delete_sent = run.force_sent = False
            self.inbox.timer(_RETRY_CLEAR_S, run.id, "clear")
            return
        self.step(run)

    def on_confirmed(self, run: Run, res: workers.Confirmed) -> None:
        """The API said whether the job's pod exists (a deletion the watch may have missed)."""
        run.confirming = False
        if res.uid != run.uid:
            return
        if res.gone:
            run.gone = True
        elif res.pod is not None and run.client is not None:
            cache = self.caches.pods.get((run.client.server, run.namespace))
            if cache is not None and run.pod not in cache.pods:
                cache.pods[run.pod] = res.pod
        elif res.error:
            self.inbox.timer(_RETRY_CLEAR_S, run.id, "confirm")
        self.step(run)
