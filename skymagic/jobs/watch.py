"""List, then watch one resource of one context, for the controller (client-go's reflector).

The controller follows a few things per context, each with one of these on its own thread:
the job pods of its database (a label selector) in a namespace, and the nodes. The loop:

* list (the sink gets `Listed`: the items and the list's resourceVersion), then watch from
  that resourceVersion with bookmarks; every change goes to the sink as `Changed`;
* a watch the server ends (timeoutSeconds, a connection that broke off) is opened again from
  the last resourceVersion seen, without a re-list; a 410 Gone re-lists at once;
* any other failure goes to the sink as `Failed`, then the loop waits with doubling backoff
  and lists again (the next `Listed` tells the sink what it missed meanwhile);
* `stop()` ends the loop at the next event or when the open watch ends (watch_timeout_s).

The same shape as the WatchDriver other parts of skymagic use (Listed / Changed / Failed), so
the controller can move onto one shared implementation without changing its sinks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import GoneError, SkymagicError

__all__ = ["Changed", "Failed", "Listed", "WatchLoop"]


@dataclass(frozen=True)
class Listed:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class Changed:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    error: SkymagicError


WatchEvent = Listed | Changed | Failed


class WatchLoop:
    """Lists and watches `path` on one context, feeding `sink` until stopped (run on a thread)."""

    def __init__(
        self,
        client: ContextClient,
        path: str,
        sink: Callable[[WatchEvent], None],
        *,
        query: Mapping[str, str] | None = None,
        pick: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        watch_timeout_s: int = 60,
        retry_s: float = 1.0,
        max_retry_s: float = 30.0,
    ) -> None:
        self.client = client
        self.path = path
        self.query = dict(query or {})
        self.pick = pick
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._sink = sink
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self.run, name=f"watch-{client.name}-{path}", daemon=True
        )

    def start(self) -> WatchLoop:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        backoff = self.retry_s
        while not self._stop.is_set():
            try:
                items, rv = self.client.list_items(self.path, self.query, pick=self.pick)
                if self._stop.is_set():
                    return
                self._sink(Listed(items, rv))
                backoff = self.retry_s
                self._follow(rv)
                continue
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
        """Watch from `rv` again and again; return on a 410 (re-list) or on stop."""
        while not self._stop.is_set():
            started = time.monotonic()
            changes = 0
            query = {**self.query, "resourceVersion": rv, "allowWatchBookmarks": "true"}
            try:
                for event in self.client.watch(
                    self.path, query, timeout_seconds=self.watch_timeout_s
                ):
                    obj = event.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    etype = str(event.get("type", ""))
                    if etype in ("ADDED", "MODIFIED", "DELETED"):
                        changes += 1
                        self._sink(Changed(etype, self.pick(obj) if self.pick else obj))
                    if self._stop.is_set():
                        return
            except GoneError:
                return
            if not changes and time.monotonic() - started < 1.0 and self._stop.wait(1.0):
                return  # a server that ends every watch at once must not spin this loop
