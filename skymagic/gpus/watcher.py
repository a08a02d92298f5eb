"""A live inventory: list each context once, then follow watch events (the dashboard's source)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from skymagic.core.client import ContextClient, iter_lines
from skymagic.core.targets import Settings, Targets, resolve_targets
from skymagic.errors import (
    GoneError,
    RequestTimeoutError,
    SkymagicError,
)
from skymagic.gpus.counting import (
    NodeInfo,
    Usage,
    parse_node,
    pod_binding_cached,
)
from skymagic.gpus.inventory import (
    _DECODE_LOCK,
    NODES_PATH,
    POD_FIELD_SELECTOR,
    PODS_PATH,
    Inventory,
    _build,
    _ContextData,
    _gc_paused,
    _list_nodes,
    _pod_query,
)

if TYPE_CHECKING:
    import urllib3

__all__ = ["InventoryWatcher"]


class _Stop(Exception):
    """The watcher was closed."""


@dataclass
class _WatchState:
    """One context's live view: nodes by name, resource-holding pods by uid."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    nodes_synced: bool = False
    pods_synced: bool = False
    nodes_error: SkymagicError | None = None
    pods_error: SkymagicError | None = None
    latency_ms: float = 0.0

    def set_pod(self, key: str, binding: tuple[str, dict[str, float]] | None) -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            self.usage.add(old[0], old[1], -1.0)
        if binding is not None:
            self.pods[key] = binding
            self.usage.add(binding[0], binding[1])

    def reset_pods(self, pods: dict[str, tuple[str, dict[str, float]]]) -> None:
        self.pods = pods
        self.usage = Usage()
        for node, req in pods.values():
            self.usage.add(node, req)


def _pod_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


_Event = tuple[str, str, Any]  # (context, kind, payload)


class InventoryWatcher:
    """A live inventory: list once per context, then follow watch events.

    Background threads (two per context: nodes, pods) list, then watch from the list's
    resourceVersion and queue what they see; `refresh()` applies the queue; `snapshot()` gives
    an Inventory of the current state. A 410 Gone (history compacted) re-lists; a failed
    context is retried with backoff and shows as an error row meanwhile. Thread-safe.
    `close()` stops the threads (also on `with InventoryWatcher(...) as w:` exit).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        infra: str | None = None,
        *,
        watch_timeout_s: int = 60,
        retry_s: float = 2.0,
        wait: float | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.targets: Targets = resolve_targets(self.settings, infra, operation="gpus")
        self.contexts: list[str] = list(self.targets.contexts)
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self._lock = threading.RLock()
        self._queue: deque[_Event] = deque()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._states: dict[str, _WatchState] = {c: _WatchState() for c in self.contexts}
        self._responses: set[urllib3.BaseHTTPResponse] = set()
        self._threads: list[threading.Thread] = []
        self._setup_errors: dict[str, SkymagicError] = {}
        for ctx in self.contexts:
            try:
                client = ContextClient(self.targets.kubeconfig.resolve(ctx), self.settings.client)
            except SkymagicError as exc:
                self._setup_errors[ctx] = exc
                continue
            for kind, target in (("nodes", self._run_nodes), ("pods", self._run_pods)):
                t = threading.Thread(
                    target=self._guard,
                    args=(target, client),
                    name=f"skymagic-watch-{kind}-{ctx}",
                    daemon=True,
                )
                self._threads.append(t)
        for t in self._threads:
            t.start()
        budget = wait if wait is not None else self.settings.client.request_timeout * 3 + 1.0
        if budget > 0:
            self.wait_synced(budget)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> InventoryWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every background thread (interrupting open watches)."""
        self._stop.set()
        with self._lock:
            responses = list(self._responses)
        for resp in responses:
            with contextlib.suppress(Exception):
                resp.shutdown()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._notify()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until every context has listed once (or failed); True if all have."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self.refresh()
                if self._all_settled():
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._changed.wait(min(left, 0.25))

    def wait_for(self, predicate: Callable[[Inventory], bool], timeout: float) -> Inventory:
        """Refresh until `predicate(snapshot)` holds or `timeout` passes; the last snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if predicate(snap) or time.monotonic() >= deadline:
                return snap
            with self._changed:
                self._changed.wait(min(0.25, max(0.0, deadline - time.monotonic())))

    def _all_settled(self) -> bool:
        with self._lock:
            for ctx, st in self._states.items():
                if ctx in self._setup_errors:
                    continue
                nodes_done = st.nodes_synced or st.nodes_error is not None
                pods_done = st.pods_synced or st.pods_error is not None
                if not (nodes_done and pods_done):
                    return False
            return True

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _emit(self, ctx: str, kind: str, payload: Any) -> None:
        self._queue.append((ctx, kind, payload))
        self._notify()

    # -- background threads -----------------------------------------------------------------
    def _guard(self, target: Callable[[ContextClient], None], client: ContextClient) -> None:
        try:
            target(client)
        except _Stop:
            return
        except Exception as exc:  # a bug must show as an error row, not a silently dead thread
            kind = "nodes_error" if target == self._run_nodes else "pods_error"
            self._emit(
                client.name,
                kind,
                SkymagicError(f"internal error: {type(exc).__name__}: {exc}", context=client.name),
            )

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stop

    def _run_nodes(self, client: ContextClient) -> None:
        ctx = client.name
        backoff = self.retry_s
        while not self._stop.is_set():
            try:
                start = time.monotonic()
                nodes, rv = _list_nodes(client)
                self._emit(
                    ctx, "nodes_reset", ({n.name: n for n in nodes}, time.monotonic() - start)
                )
                backoff = self.retry_s
                while not self._stop.is_set():
                    rv = self._watch(client, NODES_PATH, {}, rv, self._node_event)
            except _Stop:
                raise
            except GoneError:
                continue  # history compacted: list again
            except SkymagicError as exc:
                if self._stop.is_set():
                    raise _Stop from None
                self._emit(ctx, "nodes_error", exc)
                self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _run_pods(self, client: ContextClient) -> None:
        ctx = client.name
        backoff = self.retry_s
        while not self._stop.is_set():
            try:
                pods: dict[str, tuple[str, dict[str, float]]] = {}
                rv = ""
                with _gc_paused():
                    for page in client.list_pages(PODS_PATH, _pod_query()):
                        if self._stop.is_set():
                            raise _Stop
                        if not page.body:
                            pods.clear()
                            continue
                        rv = page.resource_version or rv
                        with _DECODE_LOCK:  # see _DECODE_LOCK: one decoded page at a time
                            for item in orjson.loads(page.body).get("items") or ():
                                binding = pod_binding_cached(item)
                                if binding is not None:
                                    pods[_pod_key(item)] = binding
                self._emit(ctx, "pods_reset", pods)
                backoff = self.retry_s
                query = {"fieldSelector": POD_FIELD_SELECTOR}
                while not self._stop.is_set():
                    rv = self._watch(client, PODS_PATH, query, rv, self._pod_event)
            except _Stop:
                raise
            except GoneError:
                continue
            except SkymagicError as exc:
                if self._stop.is_set():
                    raise _Stop from None
                self._emit(ctx, "pods_error", exc)
                self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _node_event(self, ctx: str, etype: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if etype == "DELETED":
            self._emit(ctx, "node_del", name)
        else:
            self._emit(ctx, "node_set", parse_node(obj))

    def _pod_event(self, ctx: str, etype: str, obj: dict[str, Any]) -> None:
        binding = None if etype == "DELETED" else pod_binding_cached(obj)
        self._emit(ctx, "pod_set", (_pod_key(obj), binding))

    def _watch(
        self,
        client: ContextClient,
        path: str,
        query: dict[str, str],
        rv: str,
        handle: Callable[[str, str, dict[str, Any]], None],
    ) -> str:
        """One watch request from `rv`; returns the last resourceVersion seen."""
        q: dict[str, Any] = {
            **query,
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self.watch_timeout_s,
        }
        resp = client.request(
            "GET", path, query=q, stream=True, read_timeout=self.watch_timeout_s + 5
        )
        with self._lock:
            self._responses.add(resp)
        try:
            if self._stop.is_set():
                raise _Stop
            for line in iter_lines(resp):
                event = orjson.loads(line)
                etype = str(event.get("type", ""))
                obj = event.get("object") or {}
                if etype == "ERROR":
                    code = int(obj.get("code") or 500)
                    if code == 410:
                        raise GoneError(str(obj.get("message", "gone")), context=client.name)
                    raise SkymagicError(
                        f"watch {path}: {obj.get('message', 'error')}", context=client.name
                    )
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                if new_rv:
                    rv = str(new_rv)
                if etype != "BOOKMARK":
                    handle(client.name, etype, obj)
        except SkymagicError:
            raise
        except Exception as exc:
            if self._stop.is_set():
                raise _Stop from None
            raise RequestTimeoutError(
                f"watch {path} broke off: {type(exc).__name__}", context=client.name
            ) from None
        finally:
            with self._lock:
                self._responses.discard(resp)
            with contextlib.suppress(Exception):
                resp.release_conn()
        if self._stop.is_set():
            raise _Stop
        return rv

    # -- applying events ---------------------------------------------------------------------
    def refresh(self) -> int:
        """Apply every queued event; returns how many were applied."""
        applied = 0
        with self._lock:
            while self._queue:
                ctx, kind, payload = self._queue.popleft()
                st = self._states[ctx]
                applied += 1
                if kind == "nodes_reset":
                    st.nodes, took = payload
                    st.nodes_synced = True
                    st.nodes_error = None
                    st.latency_ms = took * 1000
                elif kind == "nodes_error":
                    st.nodes_error = payload
                elif kind == "node_set":
                    st.nodes[payload.name] = payload
                elif kind == "node_del":
                    st.nodes.pop(payload, None)
                elif kind == "pods_reset":
                    st.reset_pods(payload)
                    st.pods_synced = True
                    st.pods_error = None
                elif kind == "pods_error":
                    st.pods_error = payload
                elif kind == "pod_set":
                    st.set_pod(*payload)
        return applied

    def snapshot(
        self, gpu: str | None = None, *, all_nodes: bool = False, refresh: bool = True
    ) -> Inventory:
        """An Inventory of the current state (after applying queued events by default)."""
        if refresh:
            self.refresh()
        outcomes: list[tuple[str, _ContextData | None, SkymagicError | None, str | None]] = []
        latency: dict[str, float] = {}
        with self._lock:
            for ctx in self.contexts:
                setup = self._setup_errors.get(ctx)
                st = self._states[ctx]
                latency[ctx] = st.latency_ms
                if setup is not None:
                    outcomes.append((ctx, None, setup, None))
                elif not st.nodes_synced:
                    err = st.nodes_error or RequestTimeoutError(
                        "no node list yet (still listing)", context=ctx
                    )
                    outcomes.append((ctx, None, err, None))
                else:
                    usage: Usage | None = None
                    if st.pods_synced and st.pods_error is None:
                        usage = Usage()
                        usage.by_node = {n: dict(v) for n, v in st.usage.by_node.items()}
                    pods_error = st.pods_error
                    if pods_error is None and not st.pods_synced:
                        pods_error = RequestTimeoutError(
                            "no pod list yet (still listing)", context=ctx
                        )
                    data = _ContextData(
                        nodes=list(st.nodes.values()), usage=usage, pods_error=pods_error
                    )
                    outcomes.append((ctx, data, None, None))
        return _build(
            self.contexts,
            outcomes,
            latency,
            gpu=gpu,
            all_nodes=all_nodes,
            warnings=self.targets.warnings,
        )
