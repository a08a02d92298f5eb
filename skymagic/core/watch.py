"""List, then watch: follow one resource of one context until told to stop.

The shape of client-go's reflector, small: list (the caller decodes the pages into whatever
it keeps), then watch from the list's resourceVersion with bookmarks on, and hand every change
to a sink as a typed event. The loop's rules, each learnt from running against real and
simulated API servers:

* a watch the server ends (its `timeoutSeconds`, or a connection that broke off) is opened
  again from the last resourceVersion seen, without a re-list;
* a 410 Gone (the history was compacted past that resourceVersion) re-lists at once;
* any other failure is reported to the sink (`Failed`), then waits with doubling backoff
  (from `retry_s` up to `max_retry_s`) and lists again: the next `Listed` clears the error;
* a watch that ends at once with nothing in it waits a moment before the next one, so a
  misbehaving server cannot spin the loop;
* every read is bounded: the watch's read timeout is its `timeoutSeconds` plus a few seconds;
* `stop()` (or setting the shared stop event and calling `stop()`) ends the loop promptly: the
  open watch is closed under the blocked reader.

The driver never touches the sink's state: a sink usually queues the events for a reducer
that runs on another thread (`skymagic.gpus.watcher`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from skymagic.core.client import ContextClient
from skymagic.core.streams import WatchStream
from skymagic.errors import GoneError, SkymagicError

__all__ = ["Changed", "DriverEvent", "Failed", "Listed", "WatchDriver"]

T = TypeVar("T")

CHANGE_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})


@dataclass(frozen=True)
class Listed(Generic[T]):
    """A (re-)list finished: what the lister made of it, its resourceVersion, how long it took."""

    items: T
    resource_version: str
    took_s: float


@dataclass(frozen=True)
class Changed:
    """One watch event: type ADDED, MODIFIED or DELETED, and the object as the driver's
    `decode_object` read it (a plain dict by default)."""

    type: str
    object: Any


@dataclass(frozen=True)
class Failed:
    """The list or watch failed; the driver backs off and lists again."""

    error: SkymagicError


DriverEvent = Listed[T] | Changed | Failed


class WatchDriver(Generic[T]):
    """Lists and watches `path` on one context, feeding `sink` until stopped.

    `lister(client)` performs the list and returns (what it kept, the list's resourceVersion);
    `query` holds the selectors the watch shares with the list (e.g. a fieldSelector);
    `decode_object` reads each event's object from its JSON (default: a plain dict). Run it
    on a thread of its own: `run()` returns only after `stop()`.
    """

    def __init__(
        self,
        client: ContextClient,
        path: str,
        *,
        lister: Callable[[ContextClient], tuple[T, str]],
        sink: Callable[[DriverEvent[T]], None],
        query: Mapping[str, str] | None = None,
        decode_object: Callable[[msgspec.Raw], Any] | None = None,
        watch_timeout_s: int = 60,
        retry_s: float = 2.0,
        max_retry_s: float = 30.0,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.path = path
        self.query = dict(query or {})
        self.decode_object = decode_object
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._lister = lister
        self._sink = sink
        self._stop = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop the loop; an open watch is closed so a blocked read returns at once."""
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def run(self) -> None:
        """List, watch, re-watch, re-list on 410, back off on errors; until stopped."""
        backoff = self.retry_s
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                items, rv = self._lister(self.client)
                if self._stop.is_set():
                    return
                self._sink(Listed(items, rv, time.monotonic() - started))
                backoff = self.retry_s
                self._follow(rv)
                continue  # _follow returns on a 410 (re-list now) or on stop
            except SkymagicError as exc:
                error = exc
            except Exception as exc:  # a bug must show as an error, not a silently dead loop
                error = SkymagicError(
                    f"internal error following {self.path}: {type(exc).__name__}: {exc}",
                    context=self.client.name,
                )
            if self._stop.is_set():
                return
            self._sink(Failed(error))
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_retry_s)

    def _follow(self, rv: str) -> None:
        """Watch from `rv` again and again; return on a 410 (the caller re-lists) or on stop."""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                rv, events = self._watch_once(rv)
            except GoneError:
                return
            quick_and_empty = events == 0 and time.monotonic() - started < 1.0
            if quick_and_empty and self._stop.wait(min(self.retry_s, 1.0)):
                return  # (the pause keeps a server that ends every watch at once from spinning us)

    def _watch_once(self, rv: str) -> tuple[str, int]:
        """One watch request from `rv`: (the last resourceVersion seen, changes passed on)."""
        query = {**self.query, "resourceVersion": rv, "allowWatchBookmarks": "true"}
        stream = self.client.open_watch(
            self.path, query, timeout_seconds=self.watch_timeout_s, decode_object=self.decode_object
        )
        with self._lock:
            self._stream = stream
        changes = 0
        try:
            if self._stop.is_set():  # stop() ran before the stream was registered
                return rv, changes
            for event in stream.events():
                if event.resource_version:
                    rv = event.resource_version
                if event.type in CHANGE_TYPES:  # BOOKMARK only moves the resourceVersion on
                    changes += 1
                    self._sink(Changed(event.type, event.object))
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return rv, changes
