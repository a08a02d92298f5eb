"""orjson against msgspec on the JSON work skymagic and its simulator do (no network).

    .venv/bin/python bench/json_libs.py      # [--pods 25000] [--runs 7]; writes bench/results/json_libs.json

Pods are the simulator's own start-up pods (objects.build_pod: ~2.5 KB each, as on a real
cluster), one in five holding a GPU. Best of N runs, the cyclic GC paused while timing (as the
inventory and the floors run), so the figures compare the libraries, not the collector.

* inventory: one PodList page of all the pods decoded by `orjson.loads` (dicts), by
  `msgspec.json.decode` (dicts), and by skymagic's typed decoder (`gpus.wire.decode_pod_list`:
  only the fields the counting reads), then the page tallied (`counting.Usage.add_pods`);
* simulator: encoding each pod on its own (what `store.put` does for every object) and
  decoding a pod template into a dict (what `objects.PodStamper` does per start-up pod).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import orjson  # noqa: E402

from skymagic.gpus.counting import Usage  # noqa: E402
from skymagic.gpus.wire import decode_pod_list  # noqa: E402
from skymagic.sim import objects  # noqa: E402
from skymagic.sim.spec import NodeGroup, PodGroup  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "json_libs.json"


def best(fn: Callable[[], Any], runs: int) -> float:
    times = []
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            del out
    finally:
        gc.enable()
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=25_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args(argv)
    node = objects.build_node(
        NodeGroup(name="gpu", gpu="H100", gpus=8, labels="gfd"), 0, 0, "v1.30.0"
    )
    gpu, web = PodGroup(name="train", gpu="H100", gpus=1), PodGroup(name="web")
    pods = [
        objects.build_pod(
            gpu if i % 5 == 0 else web,
            i,
            node=node,
            gpu_resource="nvidia.com/gpu" if i % 5 == 0 else None,
            pod_ip="10.0.0.1",
        )
        for i in range(a.pods)
    ]
    page = msgspec.json.encode(
        {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": pods}
    )
    assert page == orjson.dumps(
        {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": pods}
    ), "the two encoders must write the same bytes"
    template = msgspec.json.encode(pods[0])
    n, mb = a.pods, len(page) / 1e6

    def tally() -> Usage:
        usage = Usage()
        usage.add_pods(decode_pod_list(page))
        return usage

    cases: list[tuple[str, str, Callable[[], Any], int]] = [
        ("inventory", "orjson.loads (dicts)", lambda: orjson.loads(page), n),
        ("inventory", "msgspec.json.decode (dicts)", lambda: msgspec.json.decode(page), n),
        ("inventory", "msgspec typed (gpus.wire)", lambda: decode_pod_list(page), n),
        ("inventory", "msgspec typed + tally", tally, n),
        ("simulator", "orjson.dumps per pod", lambda: [orjson.dumps(p) for p in pods], n),
        (
            "simulator",
            "msgspec.json.encode per pod",
            lambda: [msgspec.json.encode(p) for p in pods],
            n,
        ),
        ("simulator", "orjson.loads template", lambda: [orjson.loads(template) for _ in pods], n),
        (
            "simulator",
            "msgspec.json.decode template",
            lambda: [msgspec.json.decode(template) for _ in pods],
            n,
        ),
    ]
    rows = []
    print(f"{n:,} pods, page {mb:.1f} MB, best of {a.runs}")
    for group, name, fn, count in cases:
        s = best(fn, a.runs)
        rows.append(
            {"group": group, "case": name, "s": s, "us_per_pod": s / count * 1e6, "mb_s": mb / s}
        )
        print(f"  {group:<9} {name:<30} {s * 1000:8.1f} ms  {s / count * 1e6:6.2f} us/pod")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(
        msgspec.json.format(
            msgspec.json.encode(
                {
                    "generated_at": time.time(),
                    "python": platform.python_version(),
                    "msgspec": msgspec.__version__,
                    "orjson": orjson.__version__,
                    "pods": n,
                    "page_mb": mb,
                    "runs": a.runs,
                    "median_of_cases_s": statistics.median(r["s"] for r in rows),
                    "cases": rows,
                }
            ),
            indent=2,
        )
    )
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
