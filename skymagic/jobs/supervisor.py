"""The controller's loop: one thread that owns every active job's state.

Everything that happens arrives on one queue (`inbox.py`) and is applied by one thread, so a
job has exactly one writer: the watches (job pods per namespace, nodes per cluster;
`caches.py`), the pool workers (launch, delete, confirm, discover, clean up; `workers.py`),
the log followers (`logfiles.py`), capacity (`capacity.py`), timers, and wake-ups (a client
submitted or cancelled a job). This module only wires the collaborators together and routes
each event to the one that acts on it; each has one job:

- `adoption.py`: jobs picked up from the database; a restarted controller re-adopts running
  ones by their labels in every allowed context.
- `disruption.py`: which jobs a watch event concerns, and whether a running job's pod has
  finished or been disrupted (preempted, evicted, deleted, its node gone or NotReady too long).
- `lifecycle.py`: each job's state machine (level-triggered from the caches): recover, clear
  the old pod before anything new (never two copies), cancel, finish.
- `attempts.py`: launching an attempt, waiting for capacity, taking a pod as the attempt.

The collaborators share plain objects passed in explicitly (the store, the `runs` dict, the
caches, the inbox), never state inherited from one class.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from skymagic.jobs import workers
from skymagic.jobs.adoption import Adoption
from skymagic.jobs.attempts import Attempts
from skymagic.jobs.caches import ClusterCaches, describe
from skymagic.jobs.capacity import CapacityWatch
from skymagic.jobs.disruption import Detector
from skymagic.jobs.inbox import Inbox
from skymagic.jobs.lifecycle import Lifecycle
from skymagic.jobs.model import JobStatus, job_selector
from skymagic.jobs.runstate import Run
from skymagic.jobs.store import JobStore

__all__ = ["Supervisor"]

log = logging.getLogger("skymagic.jobs")

_RESCAN_S = 5.0  # the database is re-read this often even without a wake-up


class Supervisor:
    """Runs the jobs of one database until stopped (see the module docstring)."""

    def __init__(
        self,
        store: JobStore,
        *,
        node_grace_s: float = 60.0,
        idle_exit_s: float | None = 600.0,
        launch_workers: int = 8,
    ) -> None:
        self.store = store
        self.idle_exit_s = idle_exit_s
        self.inbox = Inbox(launch_workers)
        self.runs: dict[int, Run] = {}
        self.caches = ClusterCaches(self.inbox.post, job_selector(store.db_id))
        self.capacity = CapacityWatch(lambda ev: self.inbox.post(("capacity", ev)))
        self.detector = Detector(self.caches, self.runs, node_grace_s)
        self.attempts = Attempts(store, self.inbox, self.caches, self.capacity)
        self.lifecycle = Lifecycle(
            store,
            self.runs,
            inbox=self.inbox,
            caches=self.caches,
            capacity=self.capacity,
            detector=self.detector,
            attempts=self.attempts,
        )
        self.adoption = Adoption(
            store, self.runs, inbox=self.inbox, lifecycle=self.lifecycle, attempts=self.attempts
        )
        self._stop = threading.Event()
        self._idle_since = time.monotonic()

    # -- the loop --------------------------------------------------------------------------
    def wake(self) -> None:
        """Re-read the database now (a client submitted or cancelled a job). Signal-safe."""
        self.inbox.post(("wake",))

    def stop(self) -> None:
        self._stop.set()
        self.inbox.post(("stop",))

    def run(self) -> None:
        """Until stop() or, with no active job for idle_exit_s, idle exit."""
        self.adoption.scan()
        next_scan = time.monotonic() + _RESCAN_S
        while not self._stop.is_set():
            now = time.monotonic()
            timer = self.inbox.next_timer()
            event = self.inbox.get(min(next_scan, timer if timer is not None else next_scan) - now)
            if event is not None:
                try:
                    self._dispatch(event)
                except Exception:  # a bug must not end the loop (and every job's watch)
                    log.exception("event %s", describe(event))
            self._fire_timers()
            if time.monotonic() >= next_scan:
                self.adoption.scan()
                next_scan = time.monotonic() + _RESCAN_S
            if self.runs:
                self._idle_since = time.monotonic()
            elif (
                self.idle_exit_s is not None
                and time.monotonic() - self._idle_since > self.idle_exit_s
            ):
                log.info("no active job for %.0f s: exiting", self.idle_exit_s)
                break
        self.capacity.close()
        self.caches.stop()
        for r in self.runs.values():
            if r.follower is not None:
                r.follower.stop()
        # Deletions and clean-ups already sent get a moment to finish; launches do not (the
        # next controller finds their pods by label).
        self.inbox.shutdown()

    def _dispatch(self, event: Any) -> None:
        kind = event[0]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event %s", describe(event))
        if kind == "wake":
            self.adoption.scan()
        elif kind == "pods":
            for run, confirm in self.detector.on_pods(event[1], event[2]):
                if confirm:
                    self.lifecycle.confirm(run)  # missed while not watching: ask the API
                self.lifecycle.guard(run, self.lifecycle.step, run)
        elif kind == "nodes":
            for run in self.detector.on_nodes(event[1], event[2]):
                self.lifecycle.guard(run, self.lifecycle.step, run)
        elif kind == "log_done":
            self.lifecycle.on_log_done(event[1], event[2])
        elif kind == "result":
            self._on_result(event[1])
        elif kind == "capacity":
            self.lifecycle.on_capacity(event[1])

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while (due := self.inbox.pop_due(now)) is not None:
            job_id, kind = due
            run = self.runs.get(job_id)
            if run is None:
                continue
            if kind == "retry" and run.phase == "retry_wait":
                self.lifecycle.guard(run, self.attempts.launch, run)
            elif kind == "discover" and run.phase == "discovering":
                self.lifecycle.guard(run, self.adoption.discover, run)
            elif kind == "confirm":
                self.lifecycle.confirm(run)
            else:
                self.lifecycle.step(run)

    def _on_result(self, result: Any) -> None:
        """A worker's answer, to the job it concerns (a bug in a worker fails that job)."""
        if isinstance(result, tuple):  # ("bug", job_id, message)
            run = self.runs.get(int(result[1]))
            if run is not None:
                self.lifecycle.finish(run, JobStatus.FAILED_CONTROLLER, str(result[2]))
            return
        run = self.runs.get(result.job_id)
        if isinstance(result, workers.CleanedUp):
            if result.error:
                log.warning("job %s cleanup: %s", result.job_id, result.error)
            return
        if run is None:
            if isinstance(result, workers.Launched):
                self.attempts.discard(result)
            return
        handlers: dict[type, Callable[..., None]] = {
            workers.Launched: self.lifecycle.on_launched,
            workers.Deleted: self.lifecycle.on_deleted,
            workers.Confirmed: self.lifecycle.on_confirmed,
            workers.Discovered: self.adoption.on_discovered,
        }
        self.lifecycle.guard(run, handlers[type(result)], run, result)
