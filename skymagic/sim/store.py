"""One simulated cluster's object store: what etcd plus the API server's watch cache do.

Why it looks like this: list throughput must be limited by bytes, not per-object Python work,
so every object keeps its JSON encoding (orjson) next to the dict, and a list response is a
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

import orjson

__all__ = ["KINDS", "Entry", "ExpiredError", "KindInfo", "Store", "Watcher", "now_rfc3339"]


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


@dataclass
class Watcher:
    """A live watch: a queue of encoded events plus the filter deciding what it sees."""

    resource: str
    namespace: str | None
    matches: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    # Keys this watcher currently believes exist, so an object that stops matching its
    # selector is sent as DELETED and one that starts matching as ADDED (as the API server does).
    seen: set[str] = field(default_factory=set)

    def offer(self, key: str, etype: str, raw: bytes, obj: dict[str, Any]) -> None:
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return
        if etype == "DELETED":
            if key in self.seen:
                self.seen.discard(key)
                self.queue.put_nowait(_event("DELETED", raw))
            return
        if self.matches(obj):
            self.queue.put_nowait(_event("MODIFIED" if key in self.seen else "ADDED", raw))
            self.seen.add(key)
        elif key in self.seen:
            self.seen.discard(key)
            self.queue.put_nowait(_event("DELETED", raw))


def _event(etype: str, raw: bytes) -> bytes:
    return b'{"type":"' + etype.encode() + b'","object":' + raw + b"}\n"


def object_key(resource: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return _key(meta.get("namespace") if KINDS[resource].namespaced else None, meta["name"])


def _key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def encode_continue(rv: int, last_key: str) -> str:
    payload = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(payload).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise ValueError("continue key is not valid") from None


class Store:
    """Objects of one cluster, keyed by resource then "namespace/name", plus change history."""

    def __init__(self, history: int = 20000) -> None:
        self.rv = 1
        self.objects: dict[str, dict[str, Entry]] = {r: {} for r in KINDS}
        self._sorted: dict[str, list[str] | None] = dict.fromkeys(KINDS)
        self.history: deque[tuple[int, str, bytes, dict[str, Any]]] = deque()
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

    def iter_namespace(self, resource: str, namespace: str | None) -> Iterator[Entry]:
        table = self.objects[resource]
        keys = self.sorted_keys(resource)
        if namespace and KINDS[resource].namespaced:
            prefix = namespace + "/"
            i = bisect.bisect_left(keys, prefix)
            while i < len(keys) and keys[i].startswith(prefix):
                yield table[keys[i]]
                i += 1
        else:
            for k in keys:
                yield table[k]

    def list_objects(
        self,
        resource: str,
        namespace: str | None,
        matches: Callable[[dict[str, Any]], bool] | None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[list[bytes], list[dict[str, Any]], int, str | None, int | None]:
        """Return (raw items, objects, list resourceVersion, continue token, remaining)."""
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
        table = self.objects[resource]
        keys = self.sorted_keys(resource)
        lo, hi = 0, len(keys)
        if namespace and KINDS[resource].namespaced:
            lo = bisect.bisect_left(keys, namespace + "/")
            hi = bisect.bisect_left(keys, namespace + "/\U0010ffff")
        if start:
            lo = max(lo, bisect.bisect_left(keys, start))
        raws: list[bytes] = []
        objs: list[dict[str, Any]] = []
        i = lo
        while i < hi:
            entry = table[keys[i]]
            i += 1
            if matches is None or matches(entry.obj):
                raws.append(entry.raw)
                objs.append(entry.obj)
                if limit and len(raws) >= limit:
                    break
        token = None
        remaining = None
        if limit and len(raws) >= limit and i < hi:
            token = encode_continue(list_rv, keys[i - 1])
            if matches is None:
                remaining = hi - i
        return raws, objs, list_rv, token, remaining

    # -- writes ------------------------------------------------------------------------
    def _bump(self) -> int:
        self.rv += 1
        return self.rv

    def _record(self, rv: int, resource: str, etype: str, key: str, entry: Entry) -> None:
        self.history.append((rv, resource, _event(etype, entry.raw), entry.obj))
        while len(self.history) > self.history_limit:
            old_rv = self.history.popleft()[0]
            self.compacted_rv = old_rv
        for w in self.watchers:
            if w.resource == resource:
                w.offer(key, etype, entry.raw, entry.obj)
        for listener in self.listeners:
            listener(resource, etype, entry.obj)

    def compact(self) -> None:
        """Forget all history (like an etcd compaction): older continue tokens now get 410."""
        self.history.clear()
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
        existed = key in table
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        obj.setdefault("apiVersion", "v1")
        obj.setdefault("kind", info.kind)
        rv = self._bump()
        meta["resourceVersion"] = str(rv)
        entry = Entry(obj, orjson.dumps(obj))
        table[key] = entry
        if not existed:
            self._sorted[resource] = None
        if record:
            self._record(rv, resource, etype or ("MODIFIED" if existed else "ADDED"), key, entry)
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
        rv = self._bump()
        entry.obj["metadata"]["resourceVersion"] = str(rv)
        entry = Entry(entry.obj, orjson.dumps(entry.obj))
        self._record(rv, resource, "DELETED", key, entry)
        return entry

    # -- watches -----------------------------------------------------------------------
    def events_since(
        self,
        resource: str,
        rv: int,
        namespace: str | None,
        matches: Callable[[dict[str, Any]], bool],
    ) -> list[bytes]:
        """History after `rv`, or ExpiredError when it has been compacted away."""
        if rv < self.compacted_rv:
            raise ExpiredError(f"too old resource version: {rv} ({self.compacted_rv})")
        out = []
        for ev_rv, res, raw, obj in self.history:
            if ev_rv <= rv or res != resource:
                continue
            if namespace and obj["metadata"].get("namespace") != namespace:
                continue
            if matches(obj):
                out.append(raw)
        return out
