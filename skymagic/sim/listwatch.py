"""Lists and watches of a collection: selectors, pagination (`limit`/`continue`, 410 for an
expired token), kubectl's server-side tables, and watch streams from a resourceVersion.

List bodies are assembled from the objects' stored JSON bytes, never re-encoded; a big
unpaginated list keeps its encoded items while the resource is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from skymagic.sim import tables
from skymagic.sim.http import Request, Response, json_response
from skymagic.sim.selectors import parse_field_selector, parse_label_selector
from skymagic.sim.status import HTTPStatus, status_body
from skymagic.sim.store import KINDS, ExpiredError, Matcher, Store, Watcher

__all__ = ["KIND_BY_RESOURCE", "ListWatch", "list_body", "matcher"]

KIND_BY_RESOURCE = {r: k.kind for r, k in KINDS.items()}
# Only lists this big are worth keeping encoded; at most this much is kept per cluster.
_CACHE_MIN_BYTES = 1 << 20
_CACHE_MAX_BYTES = 1 << 30


def matcher(resource: str, q: dict[str, str]) -> Matcher | None:
    """The request's label and field selectors as one test (None: every object)."""
    label = q.get("labelSelector", "")
    field = q.get("fieldSelector", "")
    if not label and not field:
        return None
    ls = parse_label_selector(label) if label else None
    fs = parse_field_selector(field, KIND_BY_RESOURCE[resource]) if field else None
    if ls is None and fs is not None:
        return fs.matches

    def matches(obj: dict[str, Any]) -> bool:
        if ls is not None and not ls.matches(obj["metadata"].get("labels")):
            return False
        return fs is None or fs.matches(obj)

    return matches


def list_body(
    resource: str, raws: list[bytes], rv: int, token: str | None, remaining: int | None
) -> Response:
    """A JSON list of the stored objects `raws`, with its metadata."""
    meta = b'{"resourceVersion":"%d"' % rv
    if token:
        meta += b',"continue":"' + token.encode() + b'"'
    if remaining is not None:
        meta += b',"remainingItemCount":%d' % remaining
    meta += b"}"
    kind = KIND_BY_RESOURCE[resource].encode() + b"List"
    head = b'{"kind":"' + kind + b'","apiVersion":"v1","metadata":' + meta + b',"items":['
    # One copy of the items: the envelope rides on the first and last item.
    if not raws:
        body = head + b"]}"
    elif len(raws) == 1:
        body = head + raws[0] + b"]}"
    else:
        parts = raws[:]
        parts[0] = head + parts[0]
        parts[-1] = parts[-1] + b"]}"
        body = b",".join(parts)
    return Response(200, body)


class ListWatch:
    """GET on a collection, for one cluster's store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Encoded items of big unpaginated lists, by (resource, namespace, selectors), valid
        # while the resource's generation is unchanged: a repeated full list of 100,000 pods
        # then costs its envelope, not a 260 MB join (and a filter pass) per request.
        self._items_cache: OrderedDict[tuple[str, str, str, str], tuple[int, bytes]] = OrderedDict()
        self._items_cache_bytes = 0

    def list(
        self, req: Request, resource: str, namespace: str | None, matches: Matcher | None
    ) -> Response:
        q = req.query
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise HTTPStatus(400, "BadRequest", f"invalid limit {q.get('limit')!r}") from None
        wants_table = tables.wants_table(req.headers.get("accept"))
        if limit <= 0 and not q.get("continue") and not wants_table:
            return self._full_list(resource, namespace, matches, q)
        try:
            entries, rv, token, remaining = self.store.list_objects(
                resource,
                namespace,
                matches,
                limit=max(limit, 0),
                continue_token=q.get("continue") or None,
            )
        except ExpiredError as exc:
            raise HTTPStatus(
                410, "Expired", str(exc), extra_meta={"continue": exc.fresh_continue}
            ) from None
        except ValueError as exc:
            raise HTTPStatus(400, "BadRequest", f"invalid continue token: {exc}") from None
        if wants_table:
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if token:
                meta["continue"] = token
            if remaining is not None:
                meta["remainingItemCount"] = remaining
            table = tables.to_table(
                KIND_BY_RESOURCE[resource],
                [e.obj for e in entries],
                list_meta=meta,
                now=time.time(),
                include_object=q.get("includeObject", "Metadata"),
            )
            return json_response(200, table)
        return list_body(resource, [e.raw for e in entries], rv, token, remaining)

    def _full_list(
        self, resource: str, namespace: str | None, matches: Matcher | None, q: dict[str, str]
    ) -> Response:
        """An unpaginated JSON list: envelope with the current resourceVersion + the items."""
        store = self.store
        key = (resource, namespace or "", q.get("labelSelector", ""), q.get("fieldSelector", ""))
        generation = store.generation[resource]
        hit = self._items_cache.get(key)
        if hit is not None and hit[0] == generation:
            self._items_cache.move_to_end(key)
            items = hit[1]
        else:
            entries, _, _, _ = store.list_objects(resource, namespace, matches)
            raws = [e.raw for e in entries]
            if raws:
                raws[-1] = raws[-1] + b"]}"
                items = b",".join(raws)
            else:
                items = b"]}"
            self._remember(key, generation, items)
        kind = KIND_BY_RESOURCE[resource].encode() + b"List"
        head = b'{"kind":"%s","apiVersion":"v1","metadata":{"resourceVersion":"%d"},"items":[' % (
            kind,
            store.rv,
        )
        return Response(200, head, tail=items)

    def _remember(self, key: tuple[str, str, str, str], generation: int, items: bytes) -> None:
        old = self._items_cache.pop(key, None)
        if old is not None:
            self._items_cache_bytes -= len(old[1])
        if len(items) < _CACHE_MIN_BYTES:
            return
        self._items_cache[key] = (generation, items)
        self._items_cache_bytes += len(items)
        while self._items_cache_bytes > _CACHE_MAX_BYTES and len(self._items_cache) > 1:
            _, (_, dropped) = self._items_cache.popitem(last=False)
            self._items_cache_bytes -= len(dropped)

    def watch(
        self, resource: str, namespace: str | None, matches: Matcher | None, q: dict[str, str]
    ) -> Response:
        store = self.store
        rv_text = q.get("resourceVersion", "")
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise HTTPStatus(400, "BadRequest", "invalid timeoutSeconds") from None
        watcher = Watcher(resource, namespace if KINDS[resource].namespaced else None, matches)
        initial: list[bytes] = []
        if rv_text in ("", "0"):
            # No resourceVersion: the current state as synthetic ADDED events, then changes.
            for entry in store.iter_namespace(resource, watcher.namespace):
                if matches is None or matches(entry.obj):
                    initial.append(b'{"type":"ADDED","object":' + entry.raw + b"}\n")
        else:
            try:
                rv = int(rv_text)
            except ValueError:
                raise HTTPStatus(
                    400, "BadRequest", f"invalid resourceVersion {rv_text!r}"
                ) from None
            try:
                initial = store.events_since(resource, rv, watcher.namespace, matches)
            except ExpiredError as exc:
                gone = status_body(410, "Expired", str(exc))
                initial = [b'{"type":"ERROR","object":' + msgspec.json.encode(gone) + b"}\n"]
                return Response(200, content_type="application/json", stream=_once(initial))
        store.watchers.append(watcher)
        return Response(
            200,
            content_type="application/json",
            stream=_watch_stream(store.watchers, watcher, initial, timeout),
        )


async def _once(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def _watch_stream(
    registry: list[Watcher], watcher: Watcher, initial: list[bytes], timeout: float
) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + timeout
    try:
        if initial:
            yield b"".join(initial)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = await asyncio.wait_for(watcher.queue.get(), timeout=left)
            except asyncio.TimeoutError:
                return
            if item is None:
                return
            batch = [item]
            while not watcher.queue.empty():
                nxt = watcher.queue.get_nowait()
                if nxt is None:
                    yield b"".join(batch)
                    return
                batch.append(nxt)
            yield b"".join(batch)
    finally:
        if watcher in registry:
            registry.remove(watcher)
