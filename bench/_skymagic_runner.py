"""Run skymagic's inventory (`skymagic.gpus.inventory.show_gpus`) in its own process; print JSON.

Executed by bench/inventory.py with skymagic's python. One timed call = `show_gpus(settings)`
over every allowed context (no cache). The settings name the fleet's kubeconfig and contexts
explicitly, so neither ~/.kube/config nor ~/.sky/config.yaml matter.

With "breakdown": true, after the timed calls (and after peak RSS is read), one more call is
taken apart, each phase on its own over the same lists so that its wall and CPU time can be
read: download (the pages read and dropped), decode (every page kept, then decoded into the
typed structs), tally (the decoded pods counted) and build (the Inventory's DataFrames).

Usage: python _skymagic_runner.py '{"kubeconfig": PATH, "contexts": [...], "runs": N,
                                    "warmup": 1, "limit": null, "breakdown": false,
                                    "gzip": false}'
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

import _rounds


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


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def breakdown(settings: Any) -> dict[str, dict[str, float]]:
    """One call taken apart: each phase alone, its wall and CPU seconds."""
    from skymagic.core.fanout import fan_out
    from skymagic.core.targets import resolve_targets
    from skymagic.gpus import lists
    from skymagic.gpus.counting import ContextData, Usage, parse_node
    from skymagic.gpus.inventory import build_inventory
    from skymagic.gpus.wire import decode_node_list, decode_pod_usage_list

    targets = resolve_targets(settings, None, operation="gpus")
    out: dict[str, dict[str, float]] = {}

    def timed(name: str, fn: Any) -> Any:
        gc.collect()
        c0, t0 = _cpu(), time.perf_counter()
        value = fn()
        out[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0}
        return value

    def pages(client: Any, keep: bool) -> tuple[list[bytes], list[bytes]]:
        got: tuple[list[bytes], list[bytes]] = ([], [])
        for i, (path, query) in enumerate(
            ((lists.NODES_PATH, lists._NODE_QUERY), (lists.PODS_PATH, lists._POD_QUERY))
        ):
            for page in client.list_pages(path, query):
                if keep:
                    got[i].append(bytes(page.body))
        return got

    timed("download", lambda: fan_out(targets, lambda c: pages(c, False), settings))
    kept = {r.context: r.value for r in fan_out(targets, lambda c: pages(c, True), settings)}
    decoded = timed(
        "decode",
        lambda: {
            ctx: (
                [n for b in nb for n in decode_node_list(b)],
                [decode_pod_usage_list(b) for b in pb],
            )
            for ctx, (nb, pb) in kept.items()
        },
    )
    kept.clear()

    def tally() -> dict[str, ContextData]:
        data = {}
        for ctx, (nodes, pages_) in decoded.items():
            usage = Usage()
            for items in pages_:
                usage.add_pods(items)
            data[ctx] = ContextData(nodes=[parse_node(n) for n in nodes], usage=usage)
        return data

    data = timed("tally", tally)
    decoded.clear()
    outcomes = [(ctx, d, None, None) for ctx, d in data.items()]
    timed(
        "build",
        lambda: build_inventory(list(data), outcomes, {}, gpu=None, all_nodes=False),
    )
    return out


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
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
    if args.get("limit") or args.get("gzip"):
        from skymagic.core.client import ClientSettings

        page_size = int(args.get("limit") or ClientSettings().page_size)
        client = ClientSettings(page_size=page_size, gzip_lists=bool(args.get("gzip")))
        settings = replace(settings, client=client)
    rss_before_mb = _current_rss_mb()

    result: dict[str, Any] = {}

    def one_call() -> None:
        result["inv"] = show_gpus(settings)

    windows = _rounds.calls(args, one_call)
    error = _rounds.first_error(windows)
    inv = result.get("inv")
    out: dict[str, Any] = {
        "tool": "skymagic",
        "import_s": import_s,
        "limit": settings.client.page_size,
        "windows": windows,
        "rss_before_mb": rss_before_mb,
        "peak_rss_mb": _rss_mb(),
        "error": error,
    }
    if args.get("breakdown") and error is None:
        w0 = time.time()
        out["breakdown"] = breakdown(settings)
        # its requests are neither a timed call nor set-up (two passes over every list)
        windows.append({"start": w0, "end": time.time(), "warmup": True, "breakdown": True})
    if inv is not None:
        out.update(_summarise(inv))
        latency = getattr(inv, "latency_ms", None)
        if isinstance(latency, dict):
            out["latency_ms"] = {str(k): _num(v) for k, v in latency.items()}
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
