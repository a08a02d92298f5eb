"""A live inventory: list each context once, then follow watch events (the dashboard's source).

Two `WatchDriver`s per context (nodes, pods) run on background threads and queue what they see
as `live` events; `refresh()` applies the queue to the pure `LiveState` reducer; `snapshot()`
builds an Inventory from that state, so a dashboard redraws from memory instead of re-reading
the cluster. The drivers own the list/watch/410/backoff rules (`skymagic.core.watch`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from skymagic.core.client import ContextClient, client_for
from skymagic.core.targets import Settings, Targets, resolve_targets
from skymagic.core.watch import Changed, DriverEvent, Listed, WatchDriver
from skymagic.errors import SkymagicError
from skymagic.gpus.counting import (
    ContextData,
    NodeInfo,
    job_of,
    parse_node,
    pod_binding_cached,
    pod_key,
)
from skymagic.gpus.inventory import Inventory, build_inventory
from skymagic.gpus.lists import (
    NODES_PATH,
    POD_FIELD_SELECTOR,
    PODS_PATH,
    PodBindings,
    list_nodes,
    list_pod_bindings,
)
from skymagic.gpus.live import (
    ListFailed,
    LiveEvent,
    LiveState,
    NodeDeleted,
    NodeSet,
    NodesListed,
    PodSet,
    PodsListed,
)
from skymagic.gpus.wire import Node, Pod, decode_node, decode_pod

__all__ = ["InventoryWatcher"]


def _nodes_by_name(client: ContextClient) -> tuple[dict[str, NodeInfo], str]:
    nodes, rv = list_nodes(client)
    return {n.name: n for n in nodes}, rv


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
        targets: Targets | None = None,
    ) -> None:
        self.settings = settings or Settings()
        # `targets`: an operation's own resolution (a launch waiting for capacity follows
        # exactly the contexts it may launch in, as its admin policy left them).
        self.targets: Targets = targets or resolve_targets(self.settings, infra, operation="gpus")
        self.contexts: list[str] = list(self.targets.contexts)
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self._lock = threading.RLock()
        self._queue: deque[LiveEvent] = deque()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._state = LiveState(self.contexts)
        self._drivers: list[WatchDriver[Any]] = []
        self._threads: list[threading.Thread] = []
        self._setup_errors: dict[str, SkymagicError] = {}
        # every driver shares the watcher's timing and its stop event
        self._new_driver = functools.partial(
            WatchDriver, watch_timeout_s=watch_timeout_s, retry_s=retry_s, stop_event=self._stop
        )
        for ctx in self.contexts:
            try:
                # the session's cached client: keep-alive connections shared with show_gpus
                client = client_for(self.targets.kubeconfig.resolve(ctx), self.settings.client)
            except SkymagicError as exc:
                self._setup_errors[ctx] = exc
                continue
            self._add(ctx, "nodes", self._nodes_driver(client))
            self._add(ctx, "pods", self._pods_driver(client))
        for t in self._threads:
            t.start()
        budget = wait if wait is not None else self.settings.client.request_timeout * 3 + 1.0
        if budget > 0:
            self.wait_synced(budget)

    # -- the drivers: events in, live events out -------------------------------------------------
    def _add(self, ctx: str, what: str, driver: WatchDriver[Any]) -> None:
        self._drivers.append(driver)
        self._threads.append(
            threading.Thread(target=driver.run, name=f"skymagic-watch-{what}-{ctx}", daemon=True)
        )

    def _nodes_driver(self, client: ContextClient) -> WatchDriver[dict[str, NodeInfo]]:
        ctx = client.name

        def sink(event: DriverEvent[dict[str, NodeInfo]]) -> None:
            if isinstance(event, Listed):
                self._emit(NodesListed(ctx, event.items, event.took_s))
            elif isinstance(event, Changed):
                node: Node = event.object
                if event.type == "DELETED":
                    self._emit(NodeDeleted(ctx, node.metadata.name if node.metadata else ""))
                else:
                    self._emit(NodeSet(ctx, parse_node(node)))
            else:
                self._emit(ListFailed(ctx, "nodes", event.error))

        return self._new_driver(
            client, NODES_PATH, lister=_nodes_by_name, sink=sink, decode_object=decode_node
        )

    def _pods_driver(self, client: ContextClient) -> WatchDriver[PodBindings]:
        ctx = client.name

        def sink(event: DriverEvent[PodBindings]) -> None:
            if isinstance(event, Listed):
                self._emit(PodsListed(ctx, event.items.bindings, event.items.jobs))
            elif isinstance(event, Changed):
                pod: Pod = event.object
                binding = None if event.type == "DELETED" else pod_binding_cached(pod)
                self._emit(PodSet(ctx, pod_key(pod), binding, job_of(pod.metadata)))
            else:
                self._emit(ListFailed(ctx, "pods", event.error))

        query = {"fieldSelector": POD_FIELD_SELECTOR}
        return self._new_driver(
            client,
            PODS_PATH,
            lister=list_pod_bindings,
            sink=sink,
            query=query,
            decode_object=decode_pod,
        )

    def _emit(self, event: LiveEvent) -> None:
        self._queue.append(event)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> InventoryWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every background thread (interrupting open watches)."""
        self._stop.set()
        for driver in self._drivers:
            driver.stop()
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

    def wake(self) -> None:
        """End a `wait_change` or `wait_for` wait early (its caller has news of its own)."""
        self._notify()

    def wait_change(self, timeout: float) -> int:
        """Block until watch events are queued (or `timeout`, or close()); apply them all.

        Returns how many were applied: 0 means nothing changed, so a caller re-deciding from
        the snapshot (jobs waiting for capacity) need not rebuild it.
        """
        with self._changed:
            if not self._queue and not self._stop.is_set():
                self._changed.wait(max(0.0, timeout))
        return self.refresh()

    def _all_settled(self) -> bool:
        with self._lock:
            return all(
                st.settled or ctx in self._setup_errors for ctx, st in self._state.contexts.items()
            )

    # -- applying events ---------------------------------------------------------------------
    def refresh(self) -> int:
        """Apply every queued event; returns how many were applied."""
        applied = 0
        with self._lock:
            while self._queue:
                self._state.apply(self._queue.popleft())
                applied += 1
        return applied

    def snapshot(
        self, gpu: str | None = None, *, all_nodes: bool = False, refresh: bool = True
    ) -> Inventory:
        """An Inventory of the current state (after applying queued events by default)."""
        if refresh:
            self.refresh()
        outcomes: list[tuple[str, ContextData | None, SkymagicError | None, str | None]] = []
        latency: dict[str, float] = {}
        with self._lock:
            for ctx in self.contexts:
                latency[ctx] = self._state.contexts[ctx].latency_ms
                view = self._setup_errors.get(ctx) or self._state.view(ctx)
                if isinstance(view, SkymagicError):
                    outcomes.append((ctx, None, view, None))
                else:
                    outcomes.append((ctx, view, None, None))
        return build_inventory(
            self.contexts,
            outcomes,
            latency,
            gpu=gpu,
            all_nodes=all_nodes,
            warnings=self.targets.warnings,
        )
