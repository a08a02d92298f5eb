"""Hand-made inventories for the dashboard's unit tests (the dtypes a real `show_gpus` gives).

Counts are nullable Int64 (NA where the pods could not be read), so the unknown-free paths are
the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from skymagic.gpus.inventory import Inventory

NODE_COLS = [
    *("context", "node", "gpu", "resource", "gpu_total", "gpu_free", "status", "taints"),
    "jobs",
]


def node(
    ctx: str,
    name: str,
    gpu: str | None = None,
    total: int = 0,
    free: int | None = 0,
    *,
    resource: str = "nvidia.com/gpu",
    status: str = "Healthy",
    taints: str = "",
    jobs: str = "",
) -> dict[str, Any]:
    return {
        "context": ctx,
        "node": name,
        "gpu": gpu,
        "resource": resource if gpu else None,
        "gpu_total": total if gpu else 0,
        "gpu_free": free if gpu else 0,
        "status": status,
        "taints": taints,
        "jobs": jobs,
    }


def inventory(
    nodes: list[dict[str, Any]],
    *,
    contexts: list[str],
    errors: Sequence[tuple[str, str, str]] = (),
    latency: dict[str, float] | None = None,
) -> Inventory:
    """An Inventory whose by_context rows are summed from `nodes`, like show_gpus does."""
    frame_ = pd.DataFrame(nodes, columns=NODE_COLS)
    for col in ("gpu_total", "gpu_free"):
        frame_[col] = frame_[col].astype("Int64")
    frame_["gpu"] = pd.Series([n["gpu"] for n in nodes], dtype=object)
    ctx_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for n in nodes:
        if n["gpu"] is None:
            continue
        row = ctx_rows.setdefault(
            (n["context"], n["gpu"]),
            {"context": n["context"], "gpu": n["gpu"], "gpu_total": 0, "gpu_free": 0},
        )
        row["gpu_total"] += n["gpu_total"]
        row["gpu_free"] = (
            None
            if row["gpu_free"] is None or n["gpu_free"] is None
            else row["gpu_free"] + n["gpu_free"]
        )
    by_context = pd.DataFrame(
        list(ctx_rows.values()), columns=["context", "gpu", "gpu_total", "gpu_free"]
    )
    for col in ("gpu_total", "gpu_free"):
        by_context[col] = by_context[col].astype("Int64")
    return Inventory(
        nodes=frame_,
        by_context=by_context,
        summary=pd.DataFrame(),
        errors=pd.DataFrame(list(errors), columns=["context", "kind", "message"]),
        fetched_at=1_700_000_000.0,
        latency_ms=latency if latency is not None else dict.fromkeys(contexts, 12.34),
        contexts=contexts,
    )


def jobs_inventory() -> Inventory:
    """Nodes held by managed jobs (the `jobs` column as `counting.node_rows` writes it)."""
    return inventory(
        [
            node("a", "a-0", "H100", 8, 0, jobs="5"),
            node("a", "a-1", "H100", 8, 8),
            # two resources of one node, held by different jobs: one cell names them all
            node("b", "b-mix", "L4", 2, 1, resource="nvidia.com/gpu", jobs="3"),
            node(
                "b",
                "b-mix",
                "A100-80GB (MIG 1g.10gb)",
                7,
                5,
                resource="nvidia.com/mig-1g.10gb",
                jobs="3, 12 (attempt 2)",
            ),
            node("b", "b-cpu", jobs="9"),  # a CPU-only node runs a job too (shown with --all)
        ],
        contexts=["a", "b"],
    )
