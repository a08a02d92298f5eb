"""The live inventory (`InventoryWatcher`, the dashboard's source) in its own process; print JSON.

Executed by bench/inventory.py with skymagic's python, against the same running fleet.

1. First view: one timed call = a new `InventoryWatcher(settings)` (lists every context, opens
   the watches) up to its first `snapshot()` (the Inventory the dashboard first draws), then
   `close()` (not timed). One warm-up, then N calls.
2. Churn: one watcher follows the fleet while the main thread changes pods at `rate` changes
   per second for `seconds`, ten ticks a second round-robin over the contexts (two control
   calls per tick: the simulator's control channel, not the watcher, limits how many ticks a
   second a loaded machine manages): each tick adds a batch of running
   pods to one context (`Fleet.add_pods`, one ADDED event each) and deletes that context's
   previous batch by name (`Fleet.delete_pods`, grace 0: one DELETED each). A poller applies
   the queued events every 5 ms (`refresh()`), while another thread builds the dashboard's
   view of the state (`snapshot()`) once a second, as the dashboard's timer does. The lag of a tick
   is the time from the fleet confirming its changes (the control call returned: every change
   of the tick is committed and its watch event written) until the watcher had applied as many
   events as were confirmed up to and including that tick (events of different contexts may be
   applied in another order, so this is the lag of "that many changes", not of those exact
   pods). Also: how long each `snapshot()` took during the churn.

Usage: python _watcher_runner.py '{"kubeconfig": PATH, "contexts": [...], "runs": N,
         "warmup": 1, "limit": 2000, "state_dir": DIR, "churn": {"rate": 1000, "seconds": 10}}'
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import _rounds


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def churn(
    watcher: Any, fleet: Any, contexts: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    """Drive `rate` pod changes/s for `seconds`; measure how far behind the watcher applies."""
    ticks_per_s = 10.0  # round-robin: each of 4 contexts changes 2.5 times a second
    batch = max(1, round(rate / ticks_per_s / 2))  # adds + deletes per tick = 2 * batch
    sent: list[tuple[float, int]] = []  # (sent at, cumulative changes sent)
    applied: list[tuple[float, int]] = []  # (applied at, cumulative changes applied)
    stop = threading.Event()
    views: list[float] = []
    errors: list[str] = []

    def poll() -> None:
        total = 0
        while not stop.is_set():
            n = watcher.refresh()
            if n:
                total += n
                applied.append((time.monotonic(), total))
            time.sleep(0.005)
        n = watcher.refresh()
        if n:
            applied.append((time.monotonic(), total + n))

    def view() -> None:  # the dashboard's timer: a new view of the state once a second
        while not stop.wait(1.0):
            t0 = time.perf_counter()
            watcher.snapshot(refresh=False)
            views.append(time.perf_counter() - t0)

    poller = threading.Thread(target=poll, daemon=True)
    viewer = threading.Thread(target=view, daemon=True)
    poller.start()
    viewer.start()
    previous: dict[str, list[str]] = {}
    cumulative = 0
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        due = start + tick / ticks_per_s
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ctx = contexts[tick % len(contexts)]
        name = f"churn{tick:06d}x"
        try:
            added = fleet.add_pods(
                ctx, count=batch, name=name, namespace="churn", cpu=0.01, memory_gb=0.01
            )
            changes = len(added)
            if ctx in previous:
                changes += len(fleet.delete_pods(ctx, previous[ctx], namespace="churn"))
        except Exception as exc:  # report, do not hide
            errors.append(f"{type(exc).__name__}: {exc}")
            break
        confirmed = time.monotonic()
        previous[ctx] = added
        cumulative += changes
        sent.append((confirmed, cumulative))
        tick += 1
    send_s = time.monotonic() - start
    deadline = time.monotonic() + 30
    while (not applied or applied[-1][1] < cumulative) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    poller.join(5)
    viewer.join(5)
    lags: list[float] = []
    j = 0
    for t_sent, total in sent:
        while j < len(applied) and applied[j][1] < total:
            j += 1
        if j == len(applied):
            break
        lags.append(applied[j][0] - t_sent)
    for ctx, names in previous.items():  # leave the fleet as it was
        fleet.delete_pods(ctx, names, namespace="churn")
    return {
        "target_rate": rate,
        "achieved_rate": cumulative / send_s if send_s else 0.0,
        "seconds": send_s,
        "changes": cumulative,
        "applied": applied[-1][1] if applied else 0,
        "batch": batch,
        "ticks": tick,
        "lag_p50_ms": 1000 * statistics.median(lags) if lags else None,
        "lag_p99_ms": 1000 * _pct(lags, 0.99) if lags else None,
        "lag_max_ms": 1000 * max(lags) if lags else None,
        "unapplied_batches": len(sent) - len(lags),
        "snapshot_median_ms": 1000 * statistics.median(views) if views else None,
        "errors": errors,
    }


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
    try:
        from skymagic.core.client import ClientSettings
        from skymagic.core.targets import Settings
        from skymagic.gpus.watcher import InventoryWatcher
        from skymagic.sim import Fleet
    except ImportError as exc:
        print(json.dumps({"tool": "watcher", "error": f"cannot import: {exc}"}))
        return 0
    gc.collect()
    gc.freeze()
    settings = Settings(kubeconfig=(args["kubeconfig"],), allowed_contexts=tuple(contexts))
    if args.get("limit") or args.get("gzip"):
        page_size = int(args.get("limit") or ClientSettings().page_size)
        client = ClientSettings(page_size=page_size, gzip_lists=bool(args.get("gzip")))
        settings = replace(settings, client=client)
    rss_before_mb = _current_rss_mb()

    def first_view() -> None:
        watcher = InventoryWatcher(settings, wait=120)
        try:
            snap = watcher.snapshot()
        finally:
            watcher.close()
        if not snap.errors.empty:
            raise RuntimeError("; ".join(str(m) for m in snap.errors["message"]))

    windows = _rounds.calls(args, first_view)
    error = _rounds.first_error(windows)
    out: dict[str, Any] = {
        "tool": "watcher",
        "windows": windows,
        "rss_before_mb": rss_before_mb,
        "peak_rss_mb": _rss_mb(),
        "error": error,
    }
    spec = args.get("churn")
    if spec and args.get("state_dir") and error is None:
        fleet = Fleet.attach(args["state_dir"])
        with InventoryWatcher(settings, wait=120) as watcher:
            out["churn"] = churn(
                watcher, fleet, contexts, float(spec["rate"]), float(spec["seconds"])
            )
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
