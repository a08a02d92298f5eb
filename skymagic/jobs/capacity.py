"""Managed jobs waiting for capacity: the controller's side of `--retry-until-up`.

What SkyPilot's jobs controller does (sky/jobs/recovery_strategy.py): a launch that finds no
resources is retried after a backoff (60 s at first, growing), each retry a whole `sky.launch`
(optimizer, failover, provisioning). The first launch retries forever (`_launch(max_retry=None)`;
older versions gave up after three tries with FAILED_NO_RESOURCE) and the job is PENDING
during the backoff; a recovery retries forever too (FAILOVER: the same region first, then
anywhere, 60 s apart). Only a request no cloud can ever place (its optimizer finds no feasible
resources) fails at once. So a job waits up to a minute or more after GPUs free up, and every
retry provisions against full clusters again.

Here the wait is the launch's own (`launches/wait.py`: an `InventoryWatcher` over the allowed
contexts, the plan re-made from its live snapshot) shared by every waiting job: one watcher per
group of jobs that launch in the same contexts with the same settings, so a hundred waiting
jobs cost one list and two watches per context, not a hundred. Nothing is created while a job
waits. On every change, each waiting job (oldest first) is planned against the snapshot; the
moment one fits, `Fits` hands it back to the supervisor (`lifecycle.py`), which launches it
through the usual placement with that snapshot as its inventory (no re-list). One hand-off per
group at a time: the next job is judged once the first one's launch has reported, so two
waiting jobs do not race each other for the same GPUs; a launch that loses a race anyway
(someone else's pod) comes back here. Meanwhile `Waits` says what a job waits for and the best
there is now (at most every LINE_EVERY_S, and only when it changed), for its details.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skymagic.core.targets import Settings, Targets
from skymagic.launches.plan import make_plan
from skymagic.launches.task import Task
from skymagic.launches.wait import best_now, wanted

if TYPE_CHECKING:
    from skymagic.gpus.inventory import Inventory
    from skymagic.gpus.watcher import InventoryWatcher

__all__ = ["LINE_EVERY_S", "CapacityWatch", "Fits", "Waits", "waiting_text"]

log = logging.getLogger("skymagic.jobs")

LINE_EVERY_S = 2.0  # a waiting job's details line changes at most this often
_TICK_S = 1.0  # how long a group sleeps without news (a throttled line is then posted)
_SYNC_S = 30.0  # a group judges nothing until its contexts have listed once (or this passed)
_RETRY_S = 5.0  # a group's watch that failed (a bug) is made again after this


@dataclass(frozen=True, repr=False)
class Fits:
    """Job `job_id` fits now: launch it, planning from `inventory` (the snapshot it fits in)."""

    job_id: int
    inventory: Inventory

    def __repr__(self) -> str:  # (the controller's debug log: not the whole inventory)
        return f"Fits(job {self.job_id})"


@dataclass(frozen=True)
class Waits:
    """What job `job_id` waits for now (its details, as the queue shows them)."""

    job_id: int
    text: str


def waiting_text(task: Task, best: str) -> str:
    """'waiting for capacity for H100:8 (x2 nodes): best now b 6/8 free on h100-0'."""
    return f"waiting for capacity for {wanted(task)}: best now {best}"


@dataclass
class _Waiter:
    job_id: int
    task: Task
    text: str = ""  # the last text posted
    posted_at: float = 0.0
    due: str = ""  # a changed text held back by the throttle


class _Group:
    """Jobs launching in the same contexts with the same settings, and their one watcher."""

    def __init__(
        self, name: str, settings: Settings, targets: Targets, post: Callable[[Any], None]
    ) -> None:
        self.settings, self.targets, self.post = settings, targets, post
        self.contexts = list(targets.contexts)
        self.jobs: dict[int, _Waiter] = {}
        self.handed: int | None = None  # the job handed to the supervisor, until it reports
        self.dirty = True  # judge again even without a watch event (the jobs changed)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: InventoryWatcher | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- called by CapacityWatch (under its lock) --------------------------------------------
    def nudge(self) -> None:
        with self.lock:
            self.dirty = True
            watcher = self._watcher
        if watcher is not None:
            watcher.wake()

    def close(self) -> None:
        """Stop the group's thread and watcher without waiting for them (the supervisor's
        loop calls this: a watcher's close joins its threads)."""
        self._stop.set()
        with self.lock:
            watcher = self._watcher
        if watcher is not None:
            threading.Thread(target=watcher.close, name=f"{self.thread.name}-close").start()

    # -- the group's thread ------------------------------------------------------------------
    def _run(self) -> None:
        """Follow the contexts until closed; a failure (a bug) is logged and the watch made
        again after _RETRY_S, so waiting jobs are never left without one."""
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:
                log.exception("capacity watch for %s", ", ".join(self.contexts))
                self.dirty = True
                self._stop.wait(_RETRY_S)

    def _follow(self) -> None:
        from skymagic.gpus.watcher import InventoryWatcher

        watcher = InventoryWatcher(self.settings, targets=self.targets, wait=0)
        with self.lock:
            self._watcher = watcher
        try:
            if self._stop.is_set():
                return
            # Until every context has listed, "nothing fits" only means "not read yet".
            watcher.wait_synced(_SYNC_S)
            while not self._stop.is_set():
                changed = watcher.wait_change(_TICK_S)
                with self.lock:
                    dirty, self.dirty = self.dirty, False
                    jobs = [] if self.handed is not None else sorted(self.jobs.items())
                if self._stop.is_set():
                    return
                if changed or dirty:
                    self._judge(watcher.snapshot(refresh=False), [w for _i, w in jobs])
                self._post_due([w for _i, w in jobs])
        finally:
            with self.lock:
                self._watcher = None
            watcher.close()

    def _judge(self, snap: Inventory, jobs: list[_Waiter]) -> None:
        """Oldest first: hand off the first job that fits; note what the others wait for."""
        now = time.monotonic()
        for w in jobs:
            plan = make_plan(w.task, self.contexts, snap, excluded=self.targets.excluded)
            if plan.candidates:
                with self.lock:
                    if w.job_id not in self.jobs or self.handed is not None:
                        return
                    self.handed = w.job_id
                    del self.jobs[w.job_id]
                self.post(Fits(w.job_id, snap))
                return
            text = waiting_text(w.task, best_now(w.task, snap, self.contexts)[1])
            if text != w.text:
                w.due = text
        self._post_due(jobs, now)

    def _post_due(self, jobs: list[_Waiter], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self.lock:
            jobs = [w for w in jobs if self.jobs.get(w.job_id) is w]  # (not handed off)
        for w in jobs:
            if w.due and w.due != w.text and (not w.text or now - w.posted_at >= LINE_EVERY_S):
                w.text, w.due, w.posted_at = w.due, "", now
                self.post(Waits(w.job_id, w.text))


class CapacityWatch:
    """Every job waiting for capacity in one controller; `post` receives `Fits` and `Waits`.

    Thread-safe: the supervisor's loop calls `wait` and `drop`; each group's thread posts.
    """

    def __init__(self, post: Callable[[Any], None]) -> None:
        self.post = post
        self._groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _Group] = {}
        self._lock = threading.Lock()
        self._names = itertools.count(1)

    def wait(self, job_id: int, task: Task, settings: Settings, targets: Targets) -> None:
        """Job `job_id` waits until `task` fits in `targets` (again, after a lost race).

        `task` as the launch plans it (after the admin policy: `targets.task` when set)."""
        key = (repr(settings), tuple(targets.contexts), tuple(sorted(targets.excluded)))
        with self._lock:
            self._remove(job_id, keep=key)
            group = self._groups.get(key)
            if group is None:
                name = f"skymagic-capacity-{next(self._names)}"
                group = self._groups[key] = _Group(name, settings, targets, self.post)
                group.thread.start()
            with group.lock:
                group.jobs[job_id] = _Waiter(job_id, task)
        group.nudge()

    def drop(self, job_id: int) -> None:
        """Job `job_id` no longer waits (it launched, failed, or was cancelled)."""
        with self._lock:
            group = self._remove(job_id)
        if group is not None:
            group.nudge()

    def waiting(self) -> list[int]:
        """The jobs waiting now (not those handed off), for tests and the controller log."""
        with self._lock:
            return sorted(i for g in self._groups.values() for i in g.jobs)

    def close(self) -> None:
        with self._lock:
            groups = list(self._groups.values())
            self._groups.clear()
        for group in groups:
            group.close()

    def _remove(self, job_id: int, keep: Any = None) -> _Group | None:
        """Take the job out of its group (under self._lock); a group left empty is closed,
        unless it is `keep` (the job is about to wait in it again: its watcher stays)."""
        for key, group in list(self._groups.items()):
            with group.lock:
                found = job_id in group.jobs or group.handed == job_id
                group.jobs.pop(job_id, None)
                if group.handed == job_id:
                    group.handed = None
                empty = not group.jobs and group.handed is None
            if found and empty and key != keep:
                del self._groups[key]
                group.close()
                return None
            if found:
                return group
        return None
