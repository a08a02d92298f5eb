"""Run SkyPilot 0.14.1's `sky gpus list --infra k8s` work in-process and print JSON timings.

Executed by bench/inventory.py with SkyPilot's own virtual environment's python (never
imported by skymagic). The caller sets HOME (a scratch home whose ~/.sky/config.yaml allows the
fleet's contexts), KUBECONFIG, SKYPILOT_DISABLE_USAGE_COLLECTION=1 and DO_NOT_TRACK=1 (without
them every call tries to post usage data to the internet).

One timed call = what `sky gpus list --infra k8s` computes: all-contexts realtime GPU
availability (one thread per context), then the per-node info of each context one after
another. The API server clears its request-level caches per request, so we do too.

Usage: python _skypilot_runner.py '{"contexts": [...], "runs": N, "warmup": 1}'
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
from typing import Any

import _rounds


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
    t_import = time.perf_counter()
    import sky
    import sky.check
    import sky.core
    from sky.clouds import cloud as sky_cloud
    from sky.provision.kubernetes import utils as kutils
    from sky.utils import annotations

    annotations.is_on_api_server = False
    import_s = time.perf_counter() - t_import
    gc.collect()
    gc.freeze()

    t_check = time.perf_counter()
    enabled = sky.check.get_cached_enabled_clouds_or_refresh(sky_cloud.CloudCapability.COMPUTE)
    check_s = time.perf_counter() - t_check
    enabled_names = [str(c) for c in enabled]
    rss_before_mb = _current_rss_mb()

    def one_call() -> tuple[Any, dict[str, Any]]:
        annotations.clear_request_level_cache()
        avail = sky.core.realtime_kubernetes_gpu_availability(context=None, is_ssh=False)
        per_node = {}
        for ctx in contexts:
            per_node[ctx] = kutils.get_kubernetes_node_info(context=ctx)
        return avail, per_node

    result: dict[str, Any] = {}

    def timed_call() -> None:
        result["avail"], result["per_node"] = one_call()

    windows = _rounds.calls(args, timed_call)
    error = _rounds.first_error(windows)
    avail: Any = result.get("avail")
    per_node: dict[str, Any] = result.get("per_node") or {}

    gpus: dict[str, dict[str, dict[str, int]]] = {}
    for ctx, items in avail or []:
        for item in items:
            gpus.setdefault(ctx, {})[item.gpu] = {
                "total": int(item.capacity),
                "free": int(item.available),
                "requestable": [int(q) for q in item.counts],
            }
    nodes: dict[str, dict[str, Any]] = {}
    node_gpus: dict[str, dict[str, list[Any]]] = {}
    for ctx, info in per_node.items():
        total = free = gpu_nodes = 0
        for name, node in info.node_info_dict.items():
            t = int(node.total.get("accelerator_count", 0) or 0)
            node_gpus.setdefault(ctx, {})[name] = [
                node.accelerator_type,
                t,
                int(node.free.get("accelerators_available", 0) or 0),
            ]
            if t:
                gpu_nodes += 1
                total += t
                free += int(node.free.get("accelerators_available", 0) or 0)
        nodes[ctx] = {
            "nodes": len(info.node_info_dict),
            "gpu_nodes": gpu_nodes,
            "gpu_total": total,
            "gpu_free": free,
        }

    print(
        json.dumps(
            {
                "tool": "skypilot",
                "version": getattr(sky, "__version__", "?"),
                "enabled_clouds": enabled_names,
                "import_s": import_s,
                "check_s": check_s,
                "windows": windows,
                "rss_before_mb": rss_before_mb,
                "peak_rss_mb": _rss_mb(),
                "gpus": gpus,
                "per_node": nodes,
                "node_gpus": node_gpus,
                "error": error,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
