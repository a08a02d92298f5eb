"""Check latency for 1, 5 and 20 contexts: is `%sky_check`'s fan-out really parallel?

    .venv/bin/python bench/check.py [--runs 5] [--out bench/results/check.json]

One simulated fleet with 20 small clusters (token, client-cert and exec auth in turn, two
labelled GPU nodes each) over real HTTPS. For n in (1, 5, 20) it checks the first n contexts:
one cold run (no cached clients or exec credentials: TLS set-up, exec plugin processes) and
`--runs` warm runs (a notebook session's second `%sky_check`), and reports medians, the median
per context, and the 20-context / 1-context ratio. Sequential checking (SkyPilot) would make
that ratio about 20; a parallel fan-out keeps it near 1 once requests take network time. It
runs twice: on loopback (0 ms), where the simulator, one process serving all 20 clusters,
is the bottleneck, and with a 50 ms `latency_ms` fault on every request (a remote cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from skymagic.core.auth import clear_credential_cache
from skymagic.core.client import ClientSettings, clear_clients
from skymagic.core.targets import Settings
from skymagic.health import check
from skymagic.sim import Fleet

AUTHS = ("token", "client-cert", "exec")
SIZES = (1, 5, 20)
# 0 ms: loopback, where the one-process simulator's CPU is the limit; 50 ms: a realistic
# round trip to a remote cluster, where the fan-out's parallelism shows.
LATENCIES_MS = (0, 50)


def fleet_spec(n: int) -> dict[str, Any]:
    return {
        "clusters": [
            {
                "name": f"ctx-{i:02d}",
                "auth": AUTHS[i % len(AUTHS)],
                "nodes": [
                    {"count": 2, "name": "gpu", "gpu": "H100", "gpus": 8, "labels": "gfd"},
                    {"count": 1, "name": "cpu"},
                ],
            }
            for i in range(n)
        ]
    }


def one_run(settings: Settings, *, cold: bool) -> float:
    if cold:
        clear_clients()
        clear_credential_cache()
    started = time.perf_counter()
    report = check(settings)
    elapsed = time.perf_counter() - started
    bad = [c.context for c in report.contexts if not c.enabled]
    if bad:
        raise SystemExit(f"bench: contexts not enabled: {bad}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "check.json"))
    args = parser.parse_args()

    os.environ["HOME"] = tempfile.mkdtemp(prefix="skymagic-bench-home-")
    os.environ.pop("SKYPILOT_CONFIG", None)
    results: dict[str, Any] = {
        "benchmark": "check latency",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "latency_ms": {},
    }
    with Fleet(fleet_spec(max(SIZES))) as fleet:
        os.environ["KUBECONFIG"] = fleet.kubeconfig
        for latency in LATENCIES_MS:
            for name in fleet.clusters:
                fleet.set_faults(name, latency_ms=latency)
            print(f"\n# {latency} ms added per API request")
            print(f"{'contexts':>8}  {'cold s':>7}  {'median s':>8}  {'per ctx ms':>10}  runs")
            sizes: dict[str, Any] = {}
            for n in SIZES:
                settings = Settings(
                    client=ClientSettings(request_timeout=5.0),
                    allowed_contexts=tuple(fleet.contexts[:n]),
                )
                cold = one_run(settings, cold=True)
                warm = [one_run(settings, cold=False) for _ in range(args.runs)]
                med = statistics.median(warm)
                sizes[str(n)] = {
                    "cold_s": round(cold, 4),
                    "median_s": round(med, 4),
                    "per_context_median_ms": round(med / n * 1000, 2),
                    "runs_s": [round(w, 4) for w in warm],
                }
                print(
                    f"{n:>8}  {cold:>7.3f}  {med:>8.3f}  {med / n * 1000:>10.1f}  "
                    f"{', '.join(f'{w:.3f}' for w in warm)}"
                )
            ratio = round(sizes["20"]["median_s"] / sizes["1"]["median_s"], 2)
            ratio_cold = round(sizes["20"]["cold_s"] / sizes["1"]["cold_s"], 2)
            results["latency_ms"][str(latency)] = {
                "sizes": sizes,
                "ratio_20_to_1": ratio,
                "ratio_20_to_1_cold": ratio_cold,
            }
            print(
                f"20 contexts / 1 context: {ratio}x warm, {ratio_cold}x cold "
                "(checking one after another would be ~20x)"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
