"""Free GPUs over time, per context and GPU type, since the dashboard opened (pure).

Why: a card says how many GPUs are free now; someone who keeps the dashboard open all day
also wants to know whether capacity is coming or going. Each refresh records every card's
free count (`record`); `series` hands the chart widget one line per (context, GPU), cut to
the filters and thinned to at most `points` per line, with the change over the window. The
dashboard records from its own refreshes (the watcher keeps no history), so the chart starts
when the dashboard opens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from skymagic.ui.dashboard.view import ALL, Filters

__all__ = ["FreeHistory"]

Key = tuple[str, str]  # (context, GPU)


class FreeHistory:
    """(time, free) samples per (context, GPU); `free` None where it was unknown."""

    def __init__(self, max_samples: int = 5000) -> None:
        self.max_samples = max_samples
        self._samples: dict[Key, deque[tuple[float, int | None]]] = {}
        self._totals: dict[Key, int] = {}

    def record(self, at: float, cards: Iterable[Mapping[str, Any]]) -> None:
        """One sample per GPU row of each card (the view's cards, before filters)."""
        for card in cards:
            for g in card.get("gpus", []):
                key = (str(card["context"]), str(g["gpu"]))
                samples = self._samples.setdefault(key, deque(maxlen=self.max_samples))
                if samples and samples[-1][0] >= at:
                    continue  # the same fetch seen twice
                samples.append((at, g.get("free")))
                self._totals[key] = int(g.get("total") or 0)

    def __len__(self) -> int:
        return max((len(s) for s in self._samples.values()), default=0)

    def series(self, filters: Filters, *, points: int = 120) -> list[dict[str, Any]]:
        """The chart's lines after `filters` (context and GPU; min_free is per node: ignored).

        Each: {context, gpu, total, points: [[t, free], ...] (t in seconds since the epoch,
        free None for a gap), change: free now minus free at the window's start (None when
        either is unknown)}. Lines keep the order they first appeared in (failover order).
        """
        out = []
        for (ctx, gpu), samples in self._samples.items():
            if filters.context not in (ALL, ctx) or filters.gpu not in (ALL, gpu):
                continue
            thinned = _thin(list(samples), points)
            first = next((f for _t, f in samples if f is not None), None)
            last = samples[-1][1] if samples else None
            out.append(
                {
                    "context": ctx,
                    "gpu": gpu,
                    "total": self._totals.get((ctx, gpu), 0),
                    "points": [[round(t, 3), f] for t, f in thinned],
                    "change": None if first is None or last is None else last - first,
                }
            )
        return out


def _thin(samples: list[tuple[float, int | None]], points: int) -> list[tuple[float, int | None]]:
    """At most `points` samples: the last of each equal time slice, the newest always kept."""
    if len(samples) <= points or points < 2:
        return samples
    start, end = samples[0][0], samples[-1][0]
    width = (end - start) / (points - 1) or 1.0
    slices: dict[int, tuple[float, int | None]] = {}
    for t, f in samples:
        slices[int((t - start) / width)] = (t, f)
    return list(slices.values())
