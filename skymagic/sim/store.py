"""One simulated cluster's object store: what etcd plus the API server's watch cache do.

Why it looks like this: list throughput must be limited by bytes, not per-object Python work,
so every object keeps its JSON encoding (msgspec) next to the dict, and a list response is a
join of ready-made bytes. resourceVersion is one monotonic counter per cluster; a bounded
history of changes serves watches from a resourceVersion and decides when a continue token or
a watch resourceVersion is too old (410 Gone), like etcd compaction.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = [
    "KINDS",
    "Change",
    "Entry",
    "ExpiredError",
    "KindInfo",
    "Store",
    "Watcher",
    "now_rfc3339",
]


@dataclass(frozen=True)
class KindInfo:
    """How one resource is served."""

    resource: str  # plural, as in the URL
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")


KINDS: dict[str, KindInfo] = {
    k.resource: k
    for k in (
        KindInfo("pods", "Pod", True, ("po",)),
        KindInfo("nodes", "Node", False, ("no",)),
        KindInfo("events", "Event", True, ("ev",)),
        KindInfo("namespaces", "Namespace", False, ("ns",)),
        KindInfo("secrets", "Secret", True),
        KindInfo("serviceaccounts", "ServiceAccount", True, ("sa",)),
        KindInfo("services", "Service", True, ("svc",)),
        KindInfo("configmaps", "ConfigMap", True, ("cm",)),
    )
}


def now_rfc3339(t: float | None = None) -> str:
    """Kubernetes timestamps: UTC, second precision, 'Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


class ExpiredError(Exception):
    """A continue token or watch resourceVersion older than the kept history."""

    def __init__(self, message: str, fresh_continue: str | None = None) -> None:
        super().__init__(message)
        self.fresh_continue = fresh_continue


@dataclass
class Entry:
    obj: dict[str, Any]
    raw: bytes


Matcher = Callable[[dict[str, Any]], bool]


def _event(etype: str, raw: bytes) -> bytes:
    return b'{"type":"' + etype.encode() + b'","object":' + raw + b"}\n"


@dataclass
class Watcher:
    """A live watch: a queue of encoded events plus the filter deciding what it sees.

    Events are filtered the way the API server's watch cache does it (cacheWatcher): the
    selector is applied to the new object AND to the previous one, so an object that starts
    matching arrives as ADDED, one that stops matching as DELETED (carrying its previous
    content with the new resourceVersion), and one that matches before and after as MODIFIED.
    """

    resource: str
    namespace: str | None
    matches: Matcher | None = None
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        if self.namespace is not None and change.namespace != self.namespace:
            return
        event = change.event_for(self.matches)
        if event is not None:
            self.queue.put_nowait(event)


@dataclass
class Change:
    """One recorded change: the event as everybody without a selector sees it, plus what
    selector-filtered watchers need (the new object and the previous encoding)."""

    rv: int
    resource: str
    etype: str
    namespace: str | None
    raw: bytes  # the object after the change (for DELETED: the deleted object, new rv)
    prev_raw: bytes | None  # its encoding before the change (None for ADDED)
    obj: dict[str, Any] | None = None  # the live dict right after the change, if still exact
    event: bytes = b""

    def __post_init__(self) -> None:
        if not self.event:
            self.event = _event(self.etype, self.raw)

    def current(self) -> dict[str, Any]:
        if self.obj is not None:
            return self.obj
        decoded: dict[str, Any] = msgspec.json.decode(self.raw)
        return decoded

    def event_for(self, matches: Matcher | None) -> bytes | None:
        """The event a watcher with this filter gets for this change (None: nothing)."""
        if matches is None:
            return self.event
        if self.etype == "DELETED":
            return self.event if matches(self.current()) else None
        now = matches(self.current())
        before = self.prev_raw is not None and matches(msgspec.json.decode(self.prev_raw))
        if now:
            return self.event if before or self.etype == "ADDED" else _event("ADDED", self.raw)
        if before:
            assert self.prev_raw is not None
            prev = msgspec.json.decode(self.prev_raw)
            prev["metadata"]["resourceVersion"] = str(self.rv)
            return _event("DELETED", msgspec.json.encode(prev))
        return None


def object_key(resource: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return _key(meta.get("namespace") if KINDS[resource].namespaced else None, meta["name"])


def _key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def encode_continue(rv: int, last_key: str) -> str:
    payload = msgspec.json.encode({"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(payload).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise ValueError("continue key is not valid") from None


class Store:
    """Objects of one cluster, keyed by resource then "namespace/name", plus change history."""

    def __init__(self, history: int = 20000) -> None:
        self.rv = 1
        self.objects: dict[str, dict[str, Entry]] = {r: {} for r in KINDS}
        # Keys in list order, and the entries in the same order (entries are updated in place
        # on modification, so both only go stale when an object is added or deleted).
        self._sorted: dict[str, list[str] | None] = dict.fromkeys(KINDS)
        self._entries: dict[str, list[Entry] | None] = dict.fromkeys(KINDS)
        # Bumped on every change of a resource (recorded or not): caches of list results
        # are valid while it stays the same.
        self.generation: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.history: deque[Change] = deque()
        self.history_limit = history
        self.compacted_rv = 1
        self.watchers: list[Watcher] = []
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []

    # -- reads -------------------------------------------------------------------------
    def get(self, resource: str, namespace: str | None, name: str) -> Entry | None:
        return self.objects[resource].get(_key(namespace, name))

    def sorted_keys(self, resource: str) -> list[str]:
        keys = self._sorted[resource]
        if keys is None:
            keys = sorted(self.objects[resource])
            self._sorted[resource] = keys
        return keys

    def sorted_entries(self, resource: str) -> list[Entry]:
        """The entries in key order (aligned with sorted_keys)."""
        entries = self._entries[resource]
        if entries is None:
            table = self.objects[resource]
            entries = [table[k] for k in self.sorted_keys(resource)]
            self._entries[resource] = entries
        return entries

    def _span(self, resource: str, namespace: str | None) -> tuple[list[str], int, int]:
        keys = self.sorted_keys(resource)
        if namespace and KINDS[resource].namespaced:
            return (
                keys,
                bisect.bisect_left(keys, namespace + "/"),
                bisect.bisect_left(keys, namespace + "/\U0010ffff"),
            )
        return keys, 0, len(keys)

    def iter_namespace(self, resource: str, namespace: str | None) -> Iterator[Entry]:
        _, lo, hi = self._span(resource, namespace)
        yield from self.sorted_entries(resource)[lo:hi]

    def list_objects(
        self,
        resource: str,
        namespace: str | None,
        matches: Matcher | None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[list[Entry], int, str | None, int | None]:
        """Return (entries, list resourceVersion, continue token, remaining item count).

        Per-object work is kept to slicing and, with a selector, one predicate call: a list of
        100,000 pods must cost little more than joining their encodings.
        """
        list_rv = self.rv
        start = ""
        if continue_token:
            token_rv, start = decode_continue(continue_token)
            if token_rv < self.compacted_rv:
                raise ExpiredError(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list.",
                    fresh_continue=encode_continue(self.rv, start.rstrip("\x00")),
                )
            list_rv = token_rv
        keys, lo, hi = self._span(resource, namespace)
        if start:
            lo = max(lo, bisect.bisect_left(keys, start))
        entries = self.sorted_entries(resource)
        chosen: list[Entry]
        if matches is None:
            end = min(hi, lo + limit) if limit else hi
            chosen = entries[lo:end]
            i = end
        elif not limit:
            chosen = [e for e in entries[lo:hi] if matches(e.obj)]
            i = hi
        else:
            chosen = []
            i = lo
            while i < hi:
                entry = entries[i]
                i += 1
                if matches(entry.obj):
                    chosen.append(entry)
                    if len(chosen) >= limit:
                        break
        token = None
        remaining = None
        if limit and len(chosen) >= limit and i < hi:
            token = encode_continue(list_rv, keys[i - 1])
            if matches is None:
                remaining = hi - i
        return chosen, list_rv, token, remaining

    # -- writes ------------------------------------------------------------------------
    def _bump(self) -> int:
        self.rv += 1
        return self.rv

    def _record(
        self, rv: int, resource: str, etype: str, key: str, entry: Entry, prev_raw: bytes | None
    ) -> None:
        namespace = entry.obj["metadata"].get("namespace") if KINDS[resource].namespaced else None
        change = Change(rv, resource, etype, namespace, entry.raw, prev_raw, entry.obj)
        for w in self.watchers:
            if w.resource == resource:
                w.offer(change)
        # The live dict may be changed in place later: history keeps only encodings.
        change.obj = None
        self.history.append(change)
        while len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv
        for listener in self.listeners:
            listener(resource, etype, entry.obj)

    def compact(self) -> None:
        """Forget all history (like an etcd compaction): older continue tokens now get 410.

        The revision moves on first, as it always has in a real cluster by the time etcd
        compacts (leases and events are written constantly), so that every continue token and
        resourceVersion handed out before the compaction is too old afterwards.
        """
        self.history.clear()
        self.rv += 1
        self.compacted_rv = self.rv

    def put(
        self, resource: str, obj: dict[str, Any], *, record: bool = True, etype: str | None = None
    ) -> Entry:
        """Create or replace an object, stamping uid/resourceVersion/creationTimestamp."""
        meta = obj.setdefault("metadata", {})
        info = KINDS[resource]
        ns = meta.get("namespace") if info.namespaced else None
        if not info.namespaced:
            meta.pop("namespace", None)
        key = _key(ns, meta["name"])
        table = self.objects[resource]
        old = table.get(key)
        existed = old is not None
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        obj.setdefault("apiVersion", "v1")
        obj.setdefault("kind", info.kind)
        rv = self._bump()
        self.generation[resource] += 1
        meta["resourceVersion"] = str(rv)
        raw = msgspec.json.encode(obj)
        prev_raw = None
        if old is not None:
            prev_raw = old.raw
            old.obj, old.raw = obj, raw  # in place: the sorted entry list stays valid
            entry = old
        else:
            entry = Entry(obj, raw)
            table[key] = entry
            self._sorted[resource] = None
            self._entries[resource] = None
        if record:
            etype = etype or ("MODIFIED" if existed else "ADDED")
            self._record(rv, resource, etype, key, entry, prev_raw)
        return entry

    def bulk_load(self, resource: str, objs: Iterable[dict[str, Any]]) -> None:
        """Start-up load: no history, no watch events (nothing is watching yet)."""
        for obj in objs:
            self.put(resource, obj, record=False)
        self.compacted_rv = self.rv

    def touch(self, resource: str, obj: dict[str, Any]) -> Entry:
        """Re-encode an object changed in place and announce it as MODIFIED."""
        return self.put(resource, obj)

    def delete(self, resource: str, namespace: str | None, name: str) -> Entry | None:
        key = _key(namespace if KINDS[resource].namespaced else None, name)
        entry = self.objects[resource].pop(key, None)
        if entry is None:
            return None
        self._sorted[resource] = None
        self._entries[resource] = None
        self.generation[resource] += 1
        rv = self._bump()
        entry.obj["metadata"]["resourceVersion"] = str(rv)
        prev_raw = entry.raw
        entry = Entry(entry.obj, msgspec.json.encode(entry.obj))
        self._record(rv, resource, "DELETED", key, entry, prev_raw)
        return entry

    # -- watches -----------------------------------------------------------------------
    def events_since(
        self,
        resource: str,
        rv: int,
        namespace: str | None,
        matches: Matcher | None,
    ) -> list[bytes]:
        """History after `rv`, filtered like a live watch, or ExpiredError when compacted away."""
        if rv < self.compacted_rv:
            raise ExpiredError(f"too old resource version: {rv} ({self.compacted_rv})")
        out = []
        for change in self.history:
            if change.rv <= rv or change.resource != resource:
                continue
            if namespace and change.namespace != namespace:
                continue
            event = change.event_for(matches)
            if event is not None:
                out.append(event)
        return out
