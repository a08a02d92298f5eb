"""Dashboard refresh latency: watches (InventoryWatcher) vs a full re-list (show_gpus).

    .venv/bin/python bench/dashboard.py [--fleet large|small] [--runs N]

Starts the benchmark fleet of bench/inventory.py (large: 4 contexts x 1,000 nodes, 25,000 live
+ 25,000 completed pods per context), then for each mode builds a `Dashboard` over it (auto-refresh
off) whose widgets talk to a comm that JSON-encodes every message, as a kernel would, and times:

* refresh, idle:   `dash.refresh()` with nothing changed in the fleet (N runs, median);
* refresh, churn:  after 40 one-GPU pods were added and one node cordoned in one context:
                   the first refresh that shows all of it (watch: events applied; re-list: one full read);
* change visible:  from the fleet call returning until the grid shows the change, refreshing in
                   a loop (what auto-refresh at a short interval would give);
* the split of a refresh into fetch (source) and render (view model + trait assignment), and the
  bytes sent to the front end.

Results: bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "dashboard.json"
CHURN_PODS = 40  # GPU pods added per churn round (the small fleet has room for them too)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import comm  # noqa: E402
import msgspec  # noqa: E402
from inventory import large_spec, small_spec  # noqa: E402

from skymagic.core.client import ClientSettings, clear_clients  # noqa: E402
from skymagic.core.targets import Settings  # noqa: E402
from skymagic.gpus.inventory import Inventory, show_gpus  # noqa: E402
from skymagic.sim import Fleet  # noqa: E402
from skymagic.ui.dashboard import Dashboard, LiveInventory  # noqa: E402


class JsonComm:
    """A comm that encodes each message like a kernel session would, and counts the bytes."""

    kernel = "bench"
    sent_bytes = 0
    lock = threading.Lock()

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        n = len(json.dumps(data, default=str))
        with JsonComm.lock:
            JsonComm.sent_bytes += n

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


class TimedSource:
    """Wraps a LiveInventory and records how long each fetch took."""

    def __init__(self, inner: LiveInventory) -> None:
        self.inner = inner
        self.fetch_s: list[float] = []

    def fetch(self) -> Inventory:
        t = time.perf_counter()
        inv = self.inner.fetch()
        self.fetch_s.append(time.perf_counter() - t)
        return inv

    def modes(self) -> Any:
        return self.inner.modes()

    def pods(self, context: str, nodes: Any, resources: Any) -> Any:
        return self.inner.pods(context, nodes, resources)

    def close(self) -> None:
        self.inner.close()


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _node_cell(dash: Dashboard, ctx: str, node: str) -> dict[str, Any] | None:
    return next((n for n in dash.grid.nodes if n["context"] == ctx and n["node"] == node), None)


def _settle(dash: Dashboard, ctx: str, free: int | None, timeout: float = 60.0) -> None:
    """Refresh until the context is back to `free` GPUs free (if given), nothing cordoned."""
    deadline = time.monotonic() + timeout
    while True:
        dash.refresh()
        mine = [c for c in dash.grid.nodes if c["context"] == ctx]
        now = sum(c["free"] or 0 for c in mine)
        if free in (None, now) and not any(c["status"] == "Cordoned" for c in mine):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ctx} did not settle: {now} free, want {free}")
        time.sleep(0.05)


def bench_mode(fleet: Fleet, settings: Settings, watch: bool, runs: int) -> dict[str, Any]:
    clear_clients()
    t0 = time.perf_counter()
    source = TimedSource(LiveInventory(settings, watch=watch))
    dash = Dashboard(source, auto_refresh=False, interval=3600)  # type: ignore[arg-type]
    first_s = time.perf_counter() - t0
    cells = len(dash.grid.nodes)
    try:
        # idle refreshes
        idle: list[float] = []
        idle_fetch: list[float] = []
        JsonComm.sent_bytes = 0
        for _ in range(runs):
            n = len(source.fetch_s)
            t = time.perf_counter()
            dash.refresh()
            idle.append(time.perf_counter() - t)
            idle_fetch.append(source.fetch_s[n])
        idle_bytes = JsonComm.sent_bytes // runs

        # churn: pods added and a node cordoned; until the grid shows it all
        churn: list[float] = []
        churn_fetch: list[float] = []
        visible: list[float] = []
        churn_bytes: list[int] = []
        for i in range(max(1, min(runs, 3))):
            # pods added in one context, a node cordoned in another: both must show
            busy_ctx, cordon_ctx = fleet.contexts[0], fleet.contexts[1]
            mine = [c for c in dash.grid.nodes if c["context"] == busy_ctx]
            before = sum(c["free"] or 0 for c in mine)
            node = [c for c in dash.grid.nodes if c["context"] == cordon_ctx][i]["node"]
            gpu = mine[0]["gpu"]
            fleet.add_pods(
                busy_ctx, count=CHURN_PODS, gpu=gpu, gpus=1, name=f"churn{i}", namespace="ml"
            )
            fleet.cordon(cordon_ctx, node)
            changed_at = time.perf_counter()
            refreshes = 0
            JsonComm.sent_bytes = 0
            while True:
                n = len(source.fetch_s)
                t = time.perf_counter()
                dash.refresh()
                took = time.perf_counter() - t
                refreshes += 1
                cell = _node_cell(dash, cordon_ctx, node)
                free = sum(c["free"] or 0 for c in dash.grid.nodes if c["context"] == busy_ctx)
                if (
                    cell is not None
                    and cell["status"] == "Cordoned"
                    and free == before - CHURN_PODS
                ):
                    churn.append(took)
                    churn_fetch.append(source.fetch_s[n])
                    visible.append(time.perf_counter() - changed_at)
                    churn_bytes.append(JsonComm.sent_bytes // refreshes)
                    break
                if time.perf_counter() - changed_at > 60:
                    raise RuntimeError(f"change not seen: {cell}, {free} free of {before}")
            fleet.uncordon(cordon_ctx, node)
            fleet.remove_pods(busy_ctx, prefix=f"churn{i}")
            _settle(dash, busy_ctx, before)
            _settle(dash, cordon_ctx, None)
        modes = set(source.modes().values())
    finally:
        dash.close()
    return {
        "mode": "watch" if watch else "relist",
        "source_modes": sorted(modes),
        "cells": cells,
        "first_view_s": round(first_s, 3),
        "refresh_idle_ms": _ms(idle),
        "refresh_idle_fetch_ms": _ms(idle_fetch),
        "refresh_idle_render_ms": round(_ms(idle) - _ms(idle_fetch), 1),
        "refresh_idle_bytes": idle_bytes,
        "refresh_churn_ms": _ms(churn),
        "refresh_churn_fetch_ms": _ms(churn_fetch),
        "refresh_churn_bytes": int(statistics.median(churn_bytes)),
        "change_visible_ms": _ms(visible),
        "idle_runs_ms": [round(x * 1000, 1) for x in idle],
        "churn_runs_ms": [round(x * 1000, 1) for x in churn],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", choices=("large", "small"), default="large")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    comm.create_comm = JsonComm  # type: ignore[assignment]
    spec = large_spec() if args.fleet == "large" else small_spec()
    t = time.perf_counter()
    print(f"starting the {args.fleet} fleet ...", flush=True)
    with Fleet(spec, startup_timeout=900) as fleet:
        start_s = time.perf_counter() - t
        print(f"fleet up in {start_s:.1f} s: {', '.join(fleet.contexts)}", flush=True)
        settings = Settings(
            client=ClientSettings(request_timeout=30.0, retries=1),
            kubeconfig=(fleet.kubeconfig,),
            allowed_contexts="all",
        )
        # warm-up: the simulator's first read of each list costs more than later ones; do it
        # once so neither mode pays for it
        show_gpus(settings)
        results = {}
        for watch in (True, False):
            name = "watch" if watch else "relist"
            print(f"{name} ...", flush=True)
            results[name] = bench_mode(fleet, settings, watch, args.runs)
            print(json.dumps({k: v for k, v in results[name].items() if "runs" not in k}))
    out = {
        "generated_at": time.time(),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "fleet": args.fleet,
        "contexts": len(spec["clusters"]),
        "fleet_start_s": round(start_s, 1),
        "runs": args.runs,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(msgspec.json.format(msgspec.json.encode(out), indent=2))
    w, r = results["watch"], results["relist"]
    print()
    print(
        "| mode | first view | refresh, idle (fetch + render) | refresh after a change | change visible | bytes to the browser per refresh (idle / change) |"
    )
    print("|---|---|---|---|---|---|")
    for m in (w, r):
        print(
            f"| {m['mode']} | {m['first_view_s']:.2f} s | {m['refresh_idle_ms']:.0f} ms "
            f"({m['refresh_idle_fetch_ms']:.0f} + {m['refresh_idle_render_ms']:.0f}) | "
            f"{m['refresh_churn_ms']:.0f} ms | {m['change_visible_ms']:.0f} ms | "
            f"{m['refresh_idle_bytes'] / 1000:.1f} kB / {m['refresh_churn_bytes'] / 1000:.0f} kB |"
        )
    print(f"\nresults: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
