"""How a job comes under the loop's care: picked up from the database, or re-adopted.

The database is where clients submit and cancel (`api.py`); `scan` turns each active job
there that the loop does not know yet into a `Run`, and hands on cancel requests. A new job
(PENDING) simply starts. Any other state means a controller ran it before this one
(a restart, even after SIGKILL), so the clusters are asked first: every allowed context is
searched for the job's pods by label (`workers.discover`), and the database says what was
going on. The newest attempt's pod is taken back (an older one is removed: never two
copies); a pod that vanished while no controller ran is recovered; a job that never got a
pod is launched.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from skymagic.jobs import workers
from skymagic.jobs.attempts import Attempts
from skymagic.jobs.caches import uid_of
from skymagic.jobs.inbox import Inbox
from skymagic.jobs.jobspec import settings_from_json, task_from_json
from skymagic.jobs.lifecycle import Lifecycle
from skymagic.jobs.model import LABEL_JOB_ATTEMPT, JobRecovery, JobStatus, job_selector
from skymagic.jobs.runstate import Run
from skymagic.jobs.store import JobRecord, JobStore

__all__ = ["Adoption"]

log = logging.getLogger("skymagic.jobs")

_LOOK_AGAIN_S = 5.0  # a context that could not be searched is searched again after this


class Adoption:
    """Brings the database's active jobs into `runs` and finds where their pods are."""

    def __init__(
        self,
        store: JobStore,
        runs: dict[int, Run],
        *,
        inbox: Inbox,
        lifecycle: Lifecycle,
        attempts: Attempts,
    ) -> None:
        self.store = store
        self.runs = runs  # the supervisor's active jobs: a picked-up one is added here
        self.inbox = inbox
        self.lifecycle = lifecycle
        self.attempts = attempts

    def scan(self) -> None:
        """Pick up new jobs and cancel requests from the database."""
        guard = self.lifecycle.guard
        for rec in self.store.jobs(active_only=True):
            run = self.runs.get(rec.id)
            if run is None:
                try:
                    run = self._run_of(rec)
                except Exception as exc:  # e.g. a stored task this version cannot read
                    self.store.set_status(
                        rec.id, JobStatus.FAILED_CONTROLLER, f"cannot read the job: {exc}"
                    )
                    continue
                self.runs[rec.id] = run
                if rec.status == JobStatus.PENDING:
                    guard(run, self.lifecycle.step, run)
                else:
                    guard(run, self.discover, run)
                continue
            if rec.cancel_requested and not run.cancel_seen:
                run.rec, run.cancel_seen = rec, True
                guard(run, self.lifecycle.begin_cancel, run)

    def _run_of(self, rec: JobRecord) -> Run:
        run = Run(
            rec,
            task_from_json(rec.task),
            settings_from_json(rec.settings),
            JobRecovery.parse(json.loads(rec.recovery)),
        )
        attempts = self.store.attempts(rec.id)
        if attempts:
            last = attempts[-1]
            run.attempt, run.context, run.namespace = last.attempt, last.context, last.namespace
            run.pod, run.uid, run.node = last.pod, last.pod_uid, last.node
        return run

    def discover(self, run: Run) -> None:
        """Search every allowed context for the job's pods (the answer: `on_discovered`)."""
        run.phase = "discovering"
        self.inbox.io(
            workers.discover,
            run.id,
            run.settings,
            job_selector(self.store.db_id, run.id),
        )

    def on_discovered(self, run: Run, res: workers.Discovered) -> None:
        """A restarted controller (or a lost launch): where are the job's pods, by label?"""
        if res.message:
            log.warning("job %s: cannot look for its pods: %s", run.id, res.message)
            self.inbox.timer(_LOOK_AGAIN_S, run.id, "discover")
            return
        found = sorted(res.pods, key=lambda f: _attempt_of(f.pod), reverse=True)
        if found:
            best, extras = found[0], found[1:]
            for extra in extras:  # never two copies: an older attempt's pod must go
                meta = extra.pod["metadata"]
                log.warning(
                    "job %s: removing stray pod %s in %s", run.id, meta["name"], extra.context
                )
                self.inbox.io(
                    workers.delete_pod,
                    run.id,
                    extra.client,
                    meta["namespace"],
                    meta["name"],
                    uid_of(extra.pod),
                    0,
                )
            recovering = run.rec.status == JobStatus.RECOVERING
            old_attempt = _attempt_of(best.pod) <= run.attempt and _ended(self.store, run)
            self.attempts.take_pod(run, best.context, best.client, best.pod, _attempt_of(best.pod))
            if run.rec.status == JobStatus.CANCELLING or run.cancel_after_launch:
                run.phase, run.after_clear = "clearing", "cancel"
            elif recovering and old_attempt:
                run.phase, run.after_clear = "clearing", "relaunch"  # it was being cleared
            self.lifecycle.step(run)
            return
        if run.context and run.context in res.errors:
            log.warning("job %s: %s unreachable; looking again", run.id, run.context)
            self.inbox.timer(_LOOK_AGAIN_S, run.id, "discover")
            return
        if run.rec.status == JobStatus.CANCELLING or run.cancel_after_launch:
            self.lifecycle.finish(run, JobStatus.CANCELLED, "cancelled")
        elif run.attempt and not _ended(self.store, run):
            run.gone = True
            run.phase = "running"
            self.lifecycle.recover(run, "the pod disappeared while the controller was not running")
        else:
            self.attempts.launch(run)


def _attempt_of(pod: dict[str, Any]) -> int:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    try:
        return int(labels.get(LABEL_JOB_ATTEMPT, "0"))
    except ValueError:
        return 0


def _ended(store: JobStore, run: Run) -> bool:
    """Whether the database already closed the job's current attempt (it was being cleared)."""
    attempts = store.attempts(run.id)
    last = attempts[-1] if attempts else None
    return last is not None and last.attempt == run.attempt and last.ended_at is not None
