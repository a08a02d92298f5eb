"""Selector matching in the simulated API server: field and label selectors over 100,000 pods.

    .venv/bin/python bench/sim_selectors.py [--pods 100000] [--runs 5]
                                            [--out bench/results/sim_selectors.json]

The simulator filters a list in process before it encodes it, so this is part of the "first"
time of a filtered list in bench/sim_throughput.py. Measured: the best of `--runs` passes of
`status.phase!=Succeeded,status.phase!=Failed` (what skymagic asks for; a quarter each of
Running, Pending, Succeeded, Failed pods, so half are kept), of an empty label selector (every
pod matches) and of `app=web,tier!=batch` (half have app=web). The tests check what these
selectors keep (tests/sim/test_leaf_selectors.py); how fast is measured here only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from skymagic.sim.selectors import parse_field_selector, parse_label_selector

PHASES = ("Running", "Pending", "Succeeded", "Failed")


def make_pods(count: int) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {
                "name": f"p{i}",
                "namespace": "default",
                "labels": {"app": "web" if i % 2 else "db", "tier": "front"},
            },
            "spec": {"nodeName": f"n{i % 50}"},
            "status": {"phase": PHASES[i % 4]},
        }
        for i in range(count)
    ]


def best_of(runs: int, fn: Any) -> tuple[float, int]:
    best = float("inf")
    kept = 0
    for _ in range(runs):
        start = time.perf_counter()
        kept = fn()
        best = min(best, time.perf_counter() - start)
    return best, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="bench/results/sim_selectors.json")
    args = parser.parse_args()

    pods = make_pods(args.pods)
    field = parse_field_selector("status.phase!=Succeeded,status.phase!=Failed", "Pod")
    empty = parse_label_selector("")
    labels = parse_label_selector("app=web,tier!=batch")
    cases = {
        "field status.phase!=Succeeded,status.phase!=Failed": lambda: sum(
            1 for p in pods if field.matches(p)
        ),
        "label (empty)": lambda: sum(1 for p in pods if empty.matches(p["metadata"]["labels"])),
        "label app=web,tier!=batch": lambda: sum(
            1 for p in pods if labels.matches(p["metadata"]["labels"])
        ),
    }
    results = []
    for name, fn in cases.items():
        seconds, kept = best_of(args.runs, fn)
        results.append(
            {
                "selector": name,
                "pods": args.pods,
                "kept": kept,
                "best_ms": round(seconds * 1000, 1),
                "ns_per_pod": round(seconds * 1e9 / args.pods),
            }
        )
        print(
            f"{name:55} kept {kept:>7,}  {seconds * 1000:7.1f} ms  {results[-1]['ns_per_pod']} ns/pod"
        )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "runs": args.runs,
                "results": results,
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
