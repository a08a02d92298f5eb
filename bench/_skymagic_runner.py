"""Run skymagic's inventory (`skymagic.gpus.inventory.show_gpus`) in its own process; print JSON.

Executed by bench/inventory.py with skymagic's python. One timed call = `show_gpus(settings)`
over every allowed context (no cache). The settings name the fleet's kubeconfig and contexts
explicitly, so neither ~/.kube/config nor ~/.sky/config.yaml matter.

Usage: python _skymagic_runner.py '{"kubeconfig": PATH, "contexts": [...], "runs": N,
                                    "warmup": 1, "limit": null}'
   (limit: the list page size; null = skymagic's default ClientSettings.page_size)
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import sys
import time
from dataclasses import replace
from typing import Any


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _num(value: Any) -> float | None:
    """A DataFrame cell as a plain number (None for missing/NaN)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _summarise(inv: Any) -> dict[str, Any]:
    gpus: dict[str, dict[str, Any]] = {}
    for row in inv.by_context.to_dict("records"):
        req = row.get("requestable_qty_per_node")
        gpus.setdefault(str(row["context"]), {})[str(row["gpu"])] = {
            "total": _num(row.get("gpu_total")),
            "free": _num(row.get("gpu_free")),
            "requestable": [int(q) for q in req] if isinstance(req, list | tuple) else req,
            "nodes": _num(row.get("nodes")),
        }
    nodes: dict[str, dict[str, list[Any]]] = {}
    node_rows: dict[str, int] = {}
    for row in inv.nodes.to_dict("records"):
        ctx = str(row["context"])
        node_rows[ctx] = node_rows.get(ctx, 0) + 1
        gpu = row.get("gpu")
        if gpu is None or (isinstance(gpu, float) and math.isnan(gpu)):
            continue
        nodes.setdefault(ctx, {})[str(row["node"])] = [
            str(gpu),
            row.get("gpu_label"),
            row.get("label_scheme"),
            _num(row.get("gpu_total")),
            _num(row.get("gpu_free")),
            row.get("status"),
        ]
    errors = [
        {k: (None if v is None else str(v)) for k, v in r.items()}
        for r in inv.errors.to_dict("records")
    ]
    return {"gpus": gpus, "nodes": nodes, "node_rows": node_rows, "errors": errors}


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
    runs = int(args.get("runs", 3))
    warmup = int(args.get("warmup", 1))

    t_import = time.perf_counter()
    try:
        from skymagic.core.targets import Settings
        from skymagic.gpus.inventory import show_gpus
    except ImportError as exc:
        print(json.dumps({"tool": "skymagic", "error": f"cannot import: {exc}"}))
        return 0
    import_s = time.perf_counter() - t_import
    gc.collect()
    gc.freeze()
    settings = Settings(kubeconfig=(args["kubeconfig"],), allowed_contexts=tuple(contexts))
    if args.get("limit"):
        from skymagic.core.client import ClientSettings

        settings = replace(settings, client=ClientSettings(page_size=int(args["limit"])))
    rss_before_mb = _current_rss_mb()

    windows: list[dict[str, Any]] = []
    inv: Any = None
    error = None
    for i in range(warmup + runs):
        w0 = time.time()
        t0 = time.perf_counter()
        try:
            inv = show_gpus(settings)
        except Exception as exc:  # report, do not hide: the driver prints it
            error = f"{type(exc).__name__}: {exc}"
            break
        dt = time.perf_counter() - t0
        windows.append({"start": w0, "end": time.time(), "wall_s": dt, "warmup": i < warmup})
    out: dict[str, Any] = {
        "tool": "skymagic",
        "import_s": import_s,
        "limit": settings.client.page_size,
        "windows": windows,
        "rss_before_mb": rss_before_mb,
        "peak_rss_mb": _rss_mb(),
        "error": error,
    }
    if inv is not None:
        out.update(_summarise(inv))
        latency = getattr(inv, "latency_ms", None)
        if isinstance(latency, dict):
            out["latency_ms"] = {str(k): _num(v) for k, v in latency.items()}
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
