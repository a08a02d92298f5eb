"""The controller's brain: one loop thread that owns every active job's state.

Everything that happens arrives on one queue and is applied by one thread, so a job has
exactly one writer: the watches (job pods per namespace, nodes per cluster; `watch.py`),
the pool workers (launch, delete, confirm, discover, clean up; `workers.py`), the log
followers (`logfiles.py`), timers, and wake-ups (a client submitted or cancelled a job).

Per job the loop keeps a `Run` and, after every change that concerns it, decides the next
step from what the caches say (level-triggered, like a Kubernetes controller):

- **running**: the pod ends Succeeded or Failed -> wait for the log to be complete, then
  SUCCEEDED, or FAILED / FAILED_SETUP unless a restart on errors is left. The pod disrupted
  (reason Terminated/NodeShutdown/Evicted..., DisruptionTarget), deleted or being deleted by
  someone else, its node deleted, or NotReady longer than the grace time -> RECOVERING.
- **clearing** (RECOVERING or CANCELLING): the old pod must be confirmed gone before anything
  new is created, so a job never has two copies. A terminal pod is deleted (its containers
  have stopped); a live one is deleted gracefully and waited for; once its node is gone it is
  force-deleted (nothing can be running there any more). A pod on an unreachable node that
  stays is waited for: relaunching then could run two copies.
- **launching**: `launch_task` through the job's placement: the same context first if it has
  room (FAILOVER), else failover order.
- **waiting**: no allowed context has room now. The job waits for capacity (`capacity.py`:
  the launch's own watches, shared, nothing created) as PENDING on its first launch and
  RECOVERING on a recovery, its status line saying what it waits for and the best there is
  now, and is launched the moment it fits. A first launch that can never fit (no such GPU,
  too few per node, excluded by policy, everywhere) is FAILED_NO_RESOURCE at once, with what
  would fit; a recovery waits even then (a preempted node's replacement may join).

A restarted controller re-adopts: every active job is looked up by its labels in every allowed
context (`workers.discover`), and the database says what was going on.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import queue
import threading
import time
import traceback
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.targets import Settings
from skymagic.core.watch import Listed
from skymagic.jobs import workers
from skymagic.jobs.caches import ALL_NODES, ClusterCaches, describe, uid_of
from skymagic.jobs.capacity import CapacityWatch, Fits, Waits
from skymagic.jobs.classify import PodVerdict, pod_verdict
from skymagic.jobs.jobspec import (
    attempt_task,
    provision_timeout_from_json,
    settings_from_json,
    task_from_json,
)
from skymagic.jobs.logfiles import LogFollower
from skymagic.jobs.model import (
    LABEL_JOB_ATTEMPT,
    LABEL_JOB_ID,
    LABEL_JOBS_DB,
    SETUP_FAILED_MARKER,
    JobRecovery,
    JobStatus,
    job_selector,
)
from skymagic.jobs.store import JobRecord, JobStore
from skymagic.launches.podspec import LABEL_LAUNCH, LABEL_USER, selector_for
from skymagic.launches.task import Task
from skymagic.launches.wait import wanted

__all__ = ["Supervisor"]

log = logging.getLogger("skymagic.jobs")

_FINISH_WAIT_S = 10.0  # a finished pod's log gets this long to be complete
_RESCAN_S = 5.0  # the database is re-read this often even without a wake-up
_MAX_RETRY_S = 30.0


@dataclass
class Run:
    """The controller's view of one active job."""

    rec: JobRecord
    task: Task
    settings: Settings
    recovery: JobRecovery
    # new|discovering|launching|waiting|running|finishing|clearing|retry_wait|done
    phase: str = "new"
    attempt: int = 0
    context: str = ""
    namespace: str = ""
    pod: str = ""
    uid: str = ""
    node: str = ""
    client: ContextClient | None = None
    verdict: PodVerdict | None = None  # a finished pod's, while its log completes
    finish_by: float = 0.0
    after_clear: str = "relaunch"  # relaunch | cancel
    cancel_seen: bool = False  # the cancel request was acted on
    cancel_after_launch: bool = False
    delete_sent: bool = False
    force_sent: bool = False
    confirming: bool = False
    gone: bool = False  # the current attempt's pod is confirmed gone
    node_bad_since: float | None = None
    retry_s: float = 1.0
    follower: LogFollower | None = None
    follower_attempt: int = 0
    log_done: bool = True

    @property
    def id(self) -> int:
        return self.rec.id


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
        self.node_grace_s = node_grace_s
        self.idle_exit_s = idle_exit_s
        self.events: queue.Queue[Any] = queue.Queue()
        self.runs: dict[int, Run] = {}
        self.caches = ClusterCaches(self.events.put, job_selector(store.db_id))
        self._timers: list[tuple[float, int, int, str]] = []
        self._seq = itertools.count()
        self._launch_pool = ThreadPoolExecutor(launch_workers, thread_name_prefix="launch")
        self._io_pool = ThreadPoolExecutor(8, thread_name_prefix="io")
        self._inflight: set[futures.Future[None]] = set()
        self._inflight_lock = threading.Lock()
        self._stop = threading.Event()
        self._idle_since = time.monotonic()
        self.capacity = CapacityWatch(lambda ev: self.events.put(("capacity", ev)))

    # -- the loop --------------------------------------------------------------------------
    def wake(self) -> None:
        """Re-read the database now (a client submitted or cancelled a job). Signal-safe."""
        self.events.put(("wake",))

    def stop(self) -> None:
        self._stop.set()
        self.events.put(("stop",))

    def run(self) -> None:
        """Until stop() or, with no active job for idle_exit_s, idle exit."""
        self._scan()
        next_scan = time.monotonic() + _RESCAN_S
        while not self._stop.is_set():
            now = time.monotonic()
            wait = min(next_scan, self._timers[0][0] if self._timers else next_scan) - now
            try:
                event = self.events.get(timeout=max(wait, 0.0))
            except queue.Empty:
                event = None
            if event is not None:
                try:
                    self._dispatch(event)
                except Exception:  # a bug must not end the loop (and every job's watch)
                    log.exception("event %s", describe(event))
            self._fire_timers()
            if time.monotonic() >= next_scan:
                self._scan()
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
        with self._inflight_lock:
            pending = set(self._inflight)
        futures.wait(pending, timeout=5.0)
        self._launch_pool.shutdown(wait=False, cancel_futures=True)
        self._io_pool.shutdown(wait=False, cancel_futures=True)

    def _dispatch(self, event: Any) -> None:
        kind = event[0]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event %s", describe(event))
        if kind == "wake":
            self._scan()
        elif kind == "pods":
            self._on_pods(event[1], event[2])
        elif kind == "nodes":
            self._on_nodes(event[1], event[2])
        elif kind == "log_done":
            self._on_log_done(event[1], event[2])
        elif kind == "result":
            self._on_result(event[1])
        elif kind == "capacity":
            self._on_capacity(event[1])

    def _submit(self, pool: ThreadPoolExecutor, fn: Any, *args: Any, **kwargs: Any) -> None:
        def run() -> None:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # workers return errors; this is a bug in one
                log.exception("worker %s failed", getattr(fn, "__name__", fn))
                result = ("bug", args[0] if args else 0, f"{type(exc).__name__}: {exc}")
            self.events.put(("result", result))

        future = pool.submit(run)
        if pool is self._io_pool:
            with self._inflight_lock:
                self._inflight.add(future)
            future.add_done_callback(self._done)

    def _done(self, future: futures.Future[None]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)

    def _timer(self, delay: float, job_id: int, kind: str) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), job_id, kind))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _when, _seq, job_id, kind = heapq.heappop(self._timers)
            run = self.runs.get(job_id)
            if run is None:
                continue
            if kind == "retry" and run.phase == "retry_wait":
                self._guard(run, self._launch, run)
            elif kind == "discover" and run.phase == "discovering":
                self._guard(run, self._discover, run)
            elif kind == "confirm":
                self._confirm(run)
            else:
                self._step(run)

    def _guard(self, run: Run, fn: Any, *args: Any) -> None:
        """Run one job's step; an unexpected error fails that job (FAILED_CONTROLLER) only."""
        try:
            fn(*args)
        except Exception as exc:
            log.error("job %s: %s", run.id, traceback.format_exc())
            self._finish(run, JobStatus.FAILED_CONTROLLER, f"{type(exc).__name__}: {exc}")

    # -- the database ------------------------------------------------------------------------
    def _scan(self) -> None:
        """Pick up new jobs and cancel requests from the database."""
        for rec in self.store.jobs(active_only=True):
            run = self.runs.get(rec.id)
            if run is None:
                try:
                    run = self._adopt(rec)
                except Exception as exc:  # e.g. a stored task this version cannot read
                    self.store.set_status(
                        rec.id, JobStatus.FAILED_CONTROLLER, f"cannot read the job: {exc}"
                    )
                    continue
                self.runs[rec.id] = run
                if rec.status == JobStatus.PENDING:
                    self._guard(run, self._step, run)
                else:
                    self._guard(run, self._discover, run)
                continue
            if rec.cancel_requested and not run.cancel_seen:
                run.rec, run.cancel_seen = rec, True
                self._guard(run, self._begin_cancel, run)

    def _adopt(self, rec: JobRecord) -> Run:
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

    def _status(self, run: Run, status: JobStatus, message: str = "", **fields: Any) -> None:
        self.store.set_status(run.id, status, message, **fields)
        refreshed = self.store.job(run.id)
        if refreshed is not None:
            run.rec = refreshed

    # -- caches (caches.py) -----------------------------------------------------------------
    def _runs_on(self, pkey: tuple[str, str]) -> list[Run]:
        return [
            r
            for r in self.runs.values()
            if r.client is not None and (r.client.server, r.namespace) == pkey
        ]

    def _on_pods(self, pkey: tuple[str, str], ev: Any) -> None:
        cache = self.caches.apply_pods(pkey, ev)
        if cache is None:
            return
        if isinstance(ev, Listed):
            for run in self._runs_on(pkey):
                live = cache.pods.get(run.pod)
                if run.uid and not run.gone and (live is None or uid_of(live) != run.uid):
                    self._confirm(run)  # missed while not watching: ask the API
                self._guard(run, self._step, run)
            return
        obj = ev.object
        job_id = int((obj["metadata"].get("labels") or {}).get(LABEL_JOB_ID, "0") or 0)
        owner = self.runs.get(job_id)
        if owner is not None and owner.uid == uid_of(obj):
            self._guard(owner, self._step, owner)

    def _on_nodes(self, server: str, ev: Any) -> None:
        node = self.caches.apply_nodes(server, ev)
        if node is None:
            return
        for run in [r for r in self.runs.values() if r.client and r.client.server == server]:
            if node in (ALL_NODES, run.node):
                self._guard(run, self._step, run)

    def _pod_state(self, run: Run) -> tuple[str, dict[str, Any] | None]:
        """("gone", None) | ("unknown", None) | ("live", pod) for the current attempt's pod."""
        if run.gone or not run.uid:
            return ("gone", None) if run.gone or run.attempt == 0 else ("unknown", None)
        if run.client is None:
            return "unknown", None
        state, pod = self.caches.pod_state(run.client, run.namespace, run.pod, run.uid)
        if state == "gone":
            run.gone = True
        return state, pod

    def _node_state(self, run: Run) -> tuple[str, float | None]:
        """("gone" | "True" | "False" | "Unknown" | "unknown", since) for the pod's node."""
        if run.client is None:
            return "unknown", None
        return self.caches.node_state(run.client, run.node)

    # -- the per-job steps -----------------------------------------------------------------
    def _step(self, run: Run) -> None:
        if run.phase == "new":
            if run.rec.cancel_requested:
                self._finish(run, JobStatus.CANCELLED, "cancelled before it started")
            else:
                self._launch(run)
        elif run.phase == "running":
            self._check_running(run)
        elif run.phase == "finishing":
            self._check_finishing(run)
        elif run.phase == "clearing":
            self._check_clearing(run)

    def _check_running(self, run: Run) -> None:
        state, pod = self._pod_state(run)
        if state == "gone":
            self._recover(run, "the pod was deleted by someone else (not skymagic)")
            return
        if pod is None:
            return
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if node and node != run.node:
            run.node = node
        verdict = pod_verdict(pod)
        if verdict.kind in ("succeeded", "failed"):
            run.phase, run.verdict = "finishing", verdict
            run.finish_by = time.monotonic() + _FINISH_WAIT_S
            self._timer(_FINISH_WAIT_S, run.id, "finish")
            self._check_finishing(run)
            return
        if verdict.kind in ("disrupted", "deleting"):
            self._recover(run, verdict.reason)
            return
        ready, since = self._node_state(run)
        if ready == "gone":
            self._recover(run, f"node {run.node} was deleted (its VM is gone: preempted?)")
            return
        if ready in ("False", "Unknown"):
            if run.node_bad_since is None:
                run.node_bad_since = min(since or time.time(), time.time())
                due = run.node_bad_since + self.node_grace_s - time.time()
                self._timer(max(due, 0.0) + 0.01, run.id, "node_grace")
            if time.time() - run.node_bad_since >= self.node_grace_s:
                self._recover(
                    run,
                    f"node {run.node} NotReady (Ready={ready}) for over {self.node_grace_s:g} s",
                )
                return
        else:
            run.node_bad_since = None
        if verdict.kind == "running" and run.rec.status != JobStatus.RUNNING:
            self._status(run, JobStatus.RUNNING, f"running in {run.context} on node {run.node}")

    def _check_finishing(self, run: Run) -> None:
        verdict = run.verdict
        if verdict is None or (not run.log_done and time.monotonic() < run.finish_by):
            return
        if verdict.kind == "succeeded":
            self.store.end_attempt(run.id, run.attempt, "succeeded", "")
            self._finish(run, JobStatus.SUCCEEDED, "")
            return
        setup_failed = SETUP_FAILED_MARKER in self._log_tail(run)
        what = "setup failed" if setup_failed else "failed"
        reason = f"{what}: {verdict.reason}"
        if run.rec.restarts_on_errors < run.recovery.max_restarts_on_errors:
            self._recover(run, reason, user_error=True)
            return
        self.store.end_attempt(run.id, run.attempt, what, verdict.reason)
        status = JobStatus.FAILED_SETUP if setup_failed else JobStatus.FAILED
        self._finish(run, status, reason)

    def _log_tail(self, run: Run) -> str:
        path = self.store.log_path(run.id, run.attempt)
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _recover(self, run: Run, reason: str, *, user_error: bool = False) -> None:
        """The attempt is over and the job goes on: clear the old pod, then relaunch."""
        outcome = "failed" if user_error else "preempted"
        if not user_error and "deleted" in reason:
            outcome = "lost"
        self.store.end_attempt(run.id, run.attempt, outcome, reason)
        log.info("job %s attempt %s: %s: %s", run.id, run.attempt, outcome, reason)
        if run.rec.cancel_requested:
            self._begin_cancel(run)
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

    def _begin_cancel(self, run: Run) -> None:
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
            self._finish(run, JobStatus.CANCELLED, "cancelled")
            return
        if run.phase in ("running", "finishing"):
            self.store.end_attempt(run.id, run.attempt, "cancelled", "cancelled by the user")
        run.phase, run.after_clear = "clearing", "cancel"
        self._check_clearing(run)

    def _check_clearing(self, run: Run) -> None:
        """Delete the old pod and wait until it is confirmed gone; then relaunch or finish."""
        state, pod = self._pod_state(run)
        if state == "gone":
            self._cleared(run)
            return
        if state == "unknown" or pod is None or run.client is None:
            self._confirm(run)
            return
        ready, _since = self._node_state(run)
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
        self._submit(
            self._io_pool,
            workers.delete_pod,
            run.id,
            run.client,
            run.namespace,
            run.pod,
            run.uid,
            grace,
        )

    def _confirm(self, run: Run) -> None:
        if run.confirming or run.client is None or not run.uid:
            return
        run.confirming = True
        self._submit(
            self._io_pool, workers.confirm, run.id, run.client, run.namespace, run.pod, run.uid
        )

    def _cleared(self, run: Run) -> None:
        if run.follower is not None:
            run.follower.stop()
        if run.after_clear == "cancel" or run.rec.cancel_requested:
            self._finish(run, JobStatus.CANCELLED, "cancelled")
        else:
            self._launch(run)

    def _launch(self, run: Run, inventory: Any = None) -> None:
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
            self._status(run, JobStatus.STARTING, "launching")
        elif not first:
            self.store.set_status(run.id, JobStatus.RECOVERING, f"relaunching (attempt {attempt})")
        failover = run.recovery.strategy == "FAILOVER"
        leftovers = None
        if run.client is not None and run.namespace:
            leftovers = (run.client, run.namespace, _launch_selector(run))
        run.phase = "launching"
        self._submit(
            self._launch_pool,
            workers.launch,
            run.id,
            attempt,
            task,
            run.settings,
            provision_timeout=provision_timeout_from_json(run.rec.settings),
            prefer=previous if failover and previous else None,
            avoid=previous if not failover and previous else None,
            leftovers=leftovers,
            inventory=inventory,
        )

    def _discover(self, run: Run) -> None:
        run.phase = "discovering"
        self._submit(
            self._io_pool,
            workers.discover,
            run.id,
            run.settings,
            job_selector(self.store.db_id, run.id),
        )

    def _finish(self, run: Run, status: JobStatus, reason: str) -> None:
        failed = status not in (JobStatus.SUCCEEDED, JobStatus.CANCELLED)
        fields = {"last_failure": reason} if failed and reason else {}
        self._status(run, status, reason, **fields)
        run.phase = "done"
        self.capacity.drop(run.id)
        if run.client is not None and run.namespace:
            self._submit(
                self._io_pool,
                workers.cleanup,
                run.id,
                run.client,
                run.namespace,
                _launch_selector(run),
            )
        if run.follower is not None and not run.log_done:
            run.follower.stop()
        self.runs.pop(run.id, None)
        self.caches.drop_unused(
            {(r.client.server, r.namespace) for r in self.runs.values() if r.client}
        )

    def _follow_log(self, run: Run) -> None:
        """Copy the current attempt's log into its file (one follower per attempt)."""
        if run.client is None or (run.follower_attempt == run.attempt and not run.log_done):
            return
        if run.follower is not None:
            run.follower.stop()
        run.log_done, run.follower_attempt = False, run.attempt
        job_id, attempt = run.id, run.attempt
        run.follower = LogFollower(
            run.client,
            run.namespace,
            run.pod,
            self.store.log_path(job_id, attempt),
            lambda: self.events.put(("log_done", job_id, attempt)),
        ).start()

    def _on_log_done(self, job_id: int, attempt: int) -> None:
        self.store.log_complete(job_id, attempt)
        run = self.runs.get(job_id)
        if run is not None and run.follower_attempt == attempt:
            run.log_done = True
            self._guard(run, self._step, run)

    # -- worker results --------------------------------------------------------------------
    def _on_result(self, result: Any) -> None:
        if isinstance(result, tuple):  # ("bug", job_id, message)
            run = self.runs.get(int(result[1]))
            if run is not None:
                self._finish(run, JobStatus.FAILED_CONTROLLER, str(result[2]))
            return
        run = self.runs.get(result.job_id)
        if isinstance(result, workers.CleanedUp):
            if result.error:
                log.warning("job %s cleanup: %s", result.job_id, result.error)
            return
        if run is None:
            if not isinstance(result, workers.Launched) or result.pod is None:
                return
            labels = result.pod["metadata"].get("labels") or {}
            launch, user = labels.get(LABEL_LAUNCH), labels.get(LABEL_USER)
            if result.client is not None and launch and user:
                # The job ended while launching: what the launch made must not stay.
                self._submit(
                    self._io_pool,
                    workers.cleanup,
                    result.job_id,
                    result.client,
                    result.pod["metadata"]["namespace"],
                    selector_for(launch, user),
                )
            return
        handler = {
            workers.Launched: self._on_launched,
            workers.Deleted: self._on_deleted,
            workers.Confirmed: self._on_confirmed,
            workers.Discovered: self._on_discovered,
        }[type(result)]
        self._guard(run, handler, run, result)

    def _on_launched(self, run: Run, res: workers.Launched) -> None:
        if res.pod is None or res.client is None:
            log.info("job %s attempt %s: launch failed: %s", run.id, res.attempt, res.message)
            first = run.attempt == 0
            if run.cancel_after_launch or run.rec.cancel_requested:
                self._finish(run, JobStatus.CANCELLED, "cancelled")
            elif res.no_resource and res.wait_on and (res.may_fit_later or not first):
                self._wait_for_capacity(run, res)
            elif first:
                status = JobStatus.FAILED_CONTROLLER if res.bug else JobStatus.FAILED_NO_RESOURCE
                self._finish(run, status, res.message)
            else:
                self.capacity.drop(run.id)
                run.phase = "retry_wait"
                self.store.set_status(
                    run.id,
                    JobStatus.RECOVERING,
                    f"{res.message}; retrying in {run.retry_s:g} s",
                    last_failure=res.message,
                )
                self._timer(run.retry_s, run.id, "retry")
                run.retry_s = min(run.retry_s * 2, _MAX_RETRY_S)
            return
        self.capacity.drop(run.id)
        self._take_pod(run, res.context, res.client, res.pod, res.attempt)
        self._status(
            run,
            JobStatus.RUNNING if pod_verdict(res.pod).kind != "pending" else run.rec.status,
            f"attempt {res.attempt} in {res.context} on node {run.node}",
        )
        if run.cancel_after_launch or run.rec.cancel_requested:
            self._begin_cancel(run)
            return
        self._step(run)

    def _wait_for_capacity(self, run: Run, res: workers.Launched) -> None:
        """No room now: wait (capacity.py) as PENDING, or RECOVERING after a first attempt."""
        assert res.wait_on is not None
        task, targets = res.wait_on
        run.phase = "waiting"
        status = JobStatus.PENDING if run.attempt == 0 else JobStatus.RECOVERING
        reasons = res.message.removeprefix("no room: ")
        self._status(
            run,
            status,
            f"waiting for capacity for {wanted(task)}: nothing is created until an allowed "
            f"context can take it ({reasons})",
            last_failure=res.message,
        )
        self.capacity.wait(run.id, task, run.settings, targets)

    def _on_capacity(self, ev: Fits | Waits) -> None:
        run = self.runs.get(ev.job_id)
        if run is None or run.phase != "waiting":
            if isinstance(ev, Fits):
                self.capacity.drop(ev.job_id)  # it ended meanwhile: the next may go
            return
        if isinstance(ev, Fits):
            log.info("job %s: capacity appeared: launching", run.id)
            self._guard(run, self._launch, run, ev.inventory)
        else:  # the live line: the job's details, not a status change (no event)
            self.store.update(run.id, details=ev.text)

    def _take_pod(
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
        self._follow_log(run)

    def _on_deleted(self, run: Run, res: workers.Deleted) -> None:
        if res.uid != run.uid:
            return
        if res.gone:
            run.gone = True
        elif res.error:
            log.warning("job %s: deleting pod %s: %s", run.id, run.pod, res.error)
            run.delete_sent = run.force_sent = False
            self._timer(2.0, run.id, "clear")
            return
        self._step(run)

    def _on_confirmed(self, run: Run, res: workers.Confirmed) -> None:
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
            self._timer(2.0, run.id, "confirm")
        self._step(run)

    def _on_discovered(self, run: Run, res: workers.Discovered) -> None:
        """A restarted controller (or a lost launch): where are the job's pods, by label?"""
        if res.message:
            log.warning("job %s: cannot look for its pods: %s", run.id, res.message)
            self._timer(5.0, run.id, "discover")
            return
        found = sorted(res.pods, key=lambda f: _attempt_of(f.pod), reverse=True)
        if found:
            best, extras = found[0], found[1:]
            for extra in extras:  # never two copies: an older attempt's pod must go
                meta = extra.pod["metadata"]
                log.warning(
                    "job %s: removing stray pod %s in %s", run.id, meta["name"], extra.context
                )
                self._submit(
                    self._io_pool,
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
            self._take_pod(run, best.context, best.client, best.pod, _attempt_of(best.pod))
            if run.rec.status == JobStatus.CANCELLING or run.cancel_after_launch:
                run.phase, run.after_clear = "clearing", "cancel"
            elif recovering and old_attempt:
                run.phase, run.after_clear = "clearing", "relaunch"  # it was being cleared
            self._step(run)
            return
        if run.context and run.context in res.errors:
            log.warning("job %s: %s unreachable; looking again", run.id, run.context)
            self._timer(5.0, run.id, "discover")
            return
        if run.rec.status == JobStatus.CANCELLING or run.cancel_after_launch:
            self._finish(run, JobStatus.CANCELLED, "cancelled")
        elif run.attempt and not _ended(self.store, run):
            run.gone = True
            run.phase = "running"
            self._recover(run, "the pod disappeared while the controller was not running")
        else:
            self._launch(run)


def _launch_selector(run: Run) -> str:
    """Everything one job's launches made (pod, Service, Secrets) carries its launch labels."""
    return selector_for(run.rec.launch_name, run.task.user)


def _attempt_of(pod: dict[str, Any]) -> int:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    try:
        return int(labels.get(LABEL_JOB_ATTEMPT, "0"))
    except ValueError:
        return 0


def _ended(store: JobStore, run: Run) -> bool:
    attempts = store.attempts(run.id)
    last = attempts[-1] if attempts else None
    return last is not None and last.attempt == run.attempt and last.ended_at is not None
