"""The supervisor's inbox: one queue, its timers, and the worker pools that post to it.

Everything that happens to a job arrives on one queue and is taken off by the supervisor's
one loop thread (watch events, worker results, log followers finishing, capacity, wake-ups),
so each job has exactly one writer. The blocking calls (`workers.py`: launch, delete,
confirm, discover, clean up) run on two pools and post their result back as a `("result",
...)` event; timers are a heap the loop fires between events. Kept apart from the decisions
(`lifecycle.py`) so those read as what to do, not as how to wait for it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Inbox"]

log = logging.getLogger("skymagic.jobs")

_IO_WORKERS = 8
_SHUTDOWN_WAIT_S = 5.0  # deletions and clean-ups already sent get this long at exit


class Inbox:
    """The queue the loop drains, the timers it fires, and the pools whose results it gets."""

    def __init__(self, launch_workers: int) -> None:
        self._events: queue.Queue[Any] = queue.Queue()
        self._timers: list[tuple[float, int, int, str]] = []
        self._seq = itertools.count()
        self._launch_pool = ThreadPoolExecutor(launch_workers, thread_name_prefix="launch")
        self._io_pool = ThreadPoolExecutor(_IO_WORKERS, thread_name_prefix="io")
        self._inflight: set[futures.Future[None]] = set()
        self._inflight_lock = threading.Lock()

    # -- events ------------------------------------------------------------------------------
    def post(self, event: Any) -> None:
        """Queue an event for the loop (any thread; signal-safe)."""
        self._events.put(event)

    def get(self, timeout: float) -> Any:
        """The next event, or None after `timeout` seconds without one."""
        try:
            return self._events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    # -- timers ------------------------------------------------------------------------------
    def timer(self, delay: float, job_id: int, kind: str) -> None:
        """Have `pop_due` return (job_id, kind) once `delay` seconds have passed."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), job_id, kind))

    def next_timer(self) -> float | None:
        """When the earliest timer is due (monotonic clock), or None without one."""
        return self._timers[0][0] if self._timers else None

    def pop_due(self, now: float) -> tuple[int, str] | None:
        """The earliest timer due at `now`, removed, or None."""
        if self._timers and self._timers[0][0] <= now:
            _when, _seq, job_id, kind = heapq.heappop(self._timers)
            return job_id, kind
        return None

    # -- the pools ---------------------------------------------------------------------------
    def launch(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a launch on the launch pool; abandoned at shutdown (its pod is found by label)."""
        self._submit(self._launch_pool, fn, *args, **kwargs)

    def io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a delete, confirm, discover or clean-up on the io pool; waited for at shutdown."""
        future = self._submit(self._io_pool, fn, *args, **kwargs)
        with self._inflight_lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _submit(
        self, pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> futures.Future[None]:
        def run() -> None:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # workers return errors; this is a bug in one
                log.exception("worker %s failed", getattr(fn, "__name__", fn))
                result = ("bug", args[0] if args else 0, f"{type(exc).__name__}: {exc}")
            self._events.put(("result", result))

        return pool.submit(run)

    def _done(self, future: futures.Future[None]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)

    def shutdown(self) -> None:
        """Give the io work already sent a moment to finish; drop the launches not started."""
        with self._inflight_lock:
            pending = set(self._inflight)
        futures.wait(pending, timeout=_SHUTDOWN_WAIT_S)
        self._launch_pool.shutdown(wait=False, cancel_futures=True)
        self._io_pool.shutdown(wait=False, cancel_futures=True)
