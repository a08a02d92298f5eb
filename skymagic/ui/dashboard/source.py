"""Where a dashboard's data comes from: `DashboardSource`, and `LiveInventory`, the default.

`LiveInventory` follows each context with an `InventoryWatcher` (list once, then watches: a
refresh reads memory, not the cluster). A context the watcher cannot follow right now (an
error row: watch forbidden, a broken connection in backoff) is re-listed with `show_gpus` on
that refresh and its rows replace the watcher's (`replace_contexts`, which also recounts the
summary); its mode says "list" instead of "watch". `watch=False` re-lists every context every
time, like `%sky_show_gpus`. A click's pods come from the `gpus.pods` operation. Nothing here
talks to an API server itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from skymagic.core.targets import Settings

if TYPE_CHECKING:
    from skymagic.gpus.inventory import Inventory
    from skymagic.gpus.pods import PodRow
    from skymagic.gpus.watcher import InventoryWatcher

__all__ = ["DashboardSource", "LiveInventory"]


class DashboardSource(Protocol):
    """Where a Dashboard gets its data (tests and the benchmark inject their own)."""

    def fetch(self) -> Inventory:
        """The current inventory (may block: it runs on the timer thread)."""
        ...

    def modes(self) -> Mapping[str, str]:
        """How each context was read on the last fetch: 'watch' or 'list'."""
        ...

    def pods(self, context: str, nodes: Sequence[str], resources: Sequence[str]) -> list[PodRow]:
        """Live pods on `nodes` of `context` that request any of `resources`."""
        ...

    def close(self) -> None:
        """Stop background work (watches)."""
        ...


class LiveInventory:
    """The dashboard's default source: watches per context, a re-list where a watch fails."""

    def __init__(
        self, settings: Settings | None = None, infra: str | None = None, *, watch: bool = True
    ) -> None:
        from skymagic.core.targets import resolve_targets
        from skymagic.gpus.watcher import InventoryWatcher

        self.settings = settings or Settings()
        self.infra = infra
        self.watcher: InventoryWatcher | None = None
        if watch:
            self.watcher = InventoryWatcher(self.settings, infra, wait=0)
            self.contexts: list[str] = list(self.watcher.contexts)
        else:
            targets = resolve_targets(self.settings, infra, operation="gpus")
            self.contexts = list(targets.contexts)
        self._modes: dict[str, str] = dict.fromkeys(self.contexts, "watch" if watch else "list")
        self._synced = False

    def _budget(self) -> float:
        return self.settings.client.request_timeout * 3 + 1.0

    def fetch(self) -> Inventory:
        """The watcher's picture, with the contexts it cannot follow now re-listed."""
        from skymagic.gpus.inventory import replace_contexts, show_gpus

        if self.watcher is None:
            return show_gpus(self.settings, self.infra)
        if not self._synced:
            self.watcher.wait_synced(self._budget())
            self._synced = True
        snap = self.watcher.snapshot()
        failing = [c for c in dict.fromkeys(snap.errors["context"]) if c in self.contexts]
        modes = dict.fromkeys(self.contexts, "watch")
        modes.update(dict.fromkeys(failing, "list"))
        self._modes = modes
        if not failing:
            return snap
        relisted = show_gpus(dataclasses.replace(self.settings, allowed_contexts=tuple(failing)))
        return replace_contexts(snap, relisted, failing)

    def modes(self) -> Mapping[str, str]:
        return dict(self._modes)

    def pods(self, context: str, nodes: Sequence[str], resources: Sequence[str]) -> list[PodRow]:
        from skymagic.gpus.pods import pods_on_nodes

        return pods_on_nodes(self.settings, context, nodes, resources)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
