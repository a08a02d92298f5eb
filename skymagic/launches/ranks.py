"""Status rows for multi-node launches: one row per launch, or one per rank (`--ranks`).

A gang's pods carry the rank and node-count labels (rendezvous.py). `%sky_status` folds them
into one row per launch whose `nodes` says how many ranks run (`2/2 running`), whose status
is the gang's (any rank failed: Failed; all alike: that; else the least advanced) and whose
`node` lists the Kubernetes nodes in rank order. A single-pod launch is a gang of one.
Pure: per-pod rows in, rows out.
"""

from __future__ import annotations

from typing import Any

from skymagic.launches.rendezvous import LABEL_NUM_NODES, LABEL_RANK

__all__ = ["launch_rows", "rank_of"]

# When ranks disagree, the launch shows the first of these that any rank is in.
_PRECEDENCE = ("Failed", "Terminating", "Pending (unschedulable)", "Pending", "Unknown", "Running")


def rank_of(labels: dict[str, Any]) -> tuple[int, int]:
    """(rank, num_nodes) from a pod's labels; a single-pod launch is rank 0 of 1."""
    try:
        return int(labels.get(LABEL_RANK, 0)), max(1, int(labels.get(LABEL_NUM_NODES, 1)))
    except (TypeError, ValueError):
        return 0, 1


def _gang_status(statuses: list[str], expected: int) -> str:
    if len(set(statuses)) == 1 and len(statuses) == expected:
        return statuses[0]
    for status in _PRECEDENCE:
        if status in statuses:
            return status
    return statuses[0] if statuses else "Unknown"


def launch_rows(pod_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold per-pod rows (with `rank` and `num_nodes`) into one row per launch, in order."""
    groups: dict[tuple[str, str, str, str, int], list[dict[str, Any]]] = {}
    for i, row in enumerate(pod_rows):
        # A Service or Secret left without its pod keeps a row of its own.
        alone = i if str(row["status"]).startswith("Orphaned") else -1
        key = (row["context"], row["namespace"], row["name"], row["launched_by"], alone)
        groups.setdefault(key, []).append(row)
    out = []
    for rows in groups.values():
        rows.sort(key=lambda r: int(r.get("rank", 0)))
        n = max(int(r.get("num_nodes", 1)) for r in rows)
        statuses = [str(r["status"]) for r in rows]
        running = statuses.count("Running")
        head = dict(rows[0])
        head["status"] = _gang_status(statuses, n)
        orphaned = all(st.startswith("Orphaned") for st in statuses)  # a Service, a Secret
        head["nodes"] = "" if orphaned else f"{running}/{n} running"
        head["node"] = ", ".join(str(r["node"]) for r in rows if r["node"])
        if n > 1 and head.get("gpus"):
            head["gpus"] = f"{n}x {head['gpus']}"
        out.append(head)
    return out
