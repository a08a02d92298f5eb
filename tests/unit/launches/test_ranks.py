"""Status rows per launch from per-pod rows (ranks.py)."""

from __future__ import annotations

from typing import Any

from skymagic.launches.ranks import launch_rows, rank_of


def pod_row(name: str, rank: int, n: int, status: str, node: str = "n") -> dict[str, Any]:
    return {
        "name": name,
        "rank": rank,
        "num_nodes": n,
        "context": "c",
        "namespace": "default",
        "status": status,
        "gpus": "8 (nvidia.com/gpu)" if not status.startswith("Orphaned") else "",
        "node": f"{node}{rank}",
        "launched_by": "u",
    }


def test_a_gang_is_one_row_with_its_ranks_counted() -> None:
    rows = launch_rows([pod_row("g", 1, 2, "Running"), pod_row("g", 0, 2, "Running")])
    assert [(r["name"], r["status"], r["nodes"], r["node"], r["gpus"]) for r in rows] == [
        ("g", "Running", "2/2 running", "n0, n1", "2x 8 (nvidia.com/gpu)")
    ]


def test_any_failed_rank_fails_the_launch_and_a_missing_rank_shows() -> None:
    [failed] = launch_rows([pod_row("g", 0, 2, "Running"), pod_row("g", 1, 2, "Failed")])
    assert (failed["status"], failed["nodes"]) == ("Failed", "1/2 running")
    [partial] = launch_rows([pod_row("g", 0, 2, "Running")])
    assert (partial["status"], partial["nodes"]) == ("Running", "1/2 running")
    [pending] = launch_rows([pod_row("g", 0, 2, "Running"), pod_row("g", 1, 2, "Pending")])
    assert pending["status"] == "Pending"


def test_single_pods_and_orphans_keep_their_own_rows() -> None:
    rows = launch_rows(
        [
            pod_row("one", 0, 1, "Succeeded"),
            pod_row("gone", 0, 1, "Orphaned (service)"),
            pod_row("gone", 0, 1, "Orphaned (secret)"),
        ]
    )
    assert [(r["name"], r["status"], r["nodes"]) for r in rows] == [
        ("one", "Succeeded", "0/1 running"),
        ("gone", "Orphaned (service)", ""),
        ("gone", "Orphaned (secret)", ""),
    ]


def test_rank_labels() -> None:
    assert rank_of({}) == (0, 1)
    assert rank_of({"skymagic.dev/rank": "1", "skymagic.dev/num-nodes": "4"}) == (1, 4)
    assert rank_of({"skymagic.dev/rank": "x"}) == (0, 1)
