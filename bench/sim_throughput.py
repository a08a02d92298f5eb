"""Simulated fleet throughput: start-up of a 5,000-node / 100,000-pod cluster and full lists.

    .venv/bin/python bench/sim_throughput.py [--nodes 5000] [--pods 100000] [--runs 5]
                                             [--out bench/results/sim_throughput.json]

One cluster: 80% of the nodes have 8 H100s (GFD labels, tainted), the rest are CPU nodes; 30% of
the pods hold one GPU each, 60% are CPU pods and 10% have Succeeded. It reports the fleet's
start-up time (process start to every server listening), then for the full node list, the full
pod list and the pod list with the non-terminal field selector
(`status.phase!=Succeeded,status.phase!=Failed`, what skymagic asks for) the MEDIAN over
`--runs` runs (after one warm-up) of the time to the last byte, as MB/s and objects/s, and the
time to the first byte (the server's own work before it sends). The first request of each list
is reported apart ("first"): the server then filters and joins the items, and keeps the encoded
items while the resource is unchanged, so later identical lists only send them. Clients: a raw keep-alive
HTTPS connection (http.client, reading into one reused buffer, so client-side allocation is
not measured) and curl (a new process and TLS connection per run) when installed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from skymagic.sim import Fleet

NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
TARGETS = (
    ("nodes", "/api/v1/nodes?resourceVersion=0", b'"kind":"Node"'),
    ("pods", "/api/v1/pods?resourceVersion=0", b'"kind":"Pod"'),
    (
        "pods, non-terminal",
        "/api/v1/pods?resourceVersion=0&fieldSelector="
        + NON_TERMINAL.replace("!=", "%21%3D").replace(",", "%2C"),
        b'"kind":"Pod"',
    ),
)


def fleet_spec(nodes: int, pods: int) -> dict[str, Any]:
    gpu_nodes = nodes * 4 // 5
    gpu_pods = min(pods * 3 // 10, gpu_nodes * 8)
    done = pods // 10
    return {
        "clusters": [
            {
                "name": "big",
                "nodes": [
                    {"count": gpu_nodes, "name": "gpu", "gpu": "H100", "gpus": 8, "labels": "gfd",
                     "cpu": 192, "memory_gb": 1800, "taint_gpu": True},
                    {"count": nodes - gpu_nodes, "name": "cpu", "cpu": 32, "memory_gb": 128},
                ],
                "pods": [
                    {"count": gpu_pods, "name": "train", "gpu": "H100", "gpus": 1, "namespace": "ml"},
                    {"count": pods - gpu_pods - done, "name": "svc", "namespace": "web"},
                    {"count": done, "name": "batch", "namespace": "web", "phase": "Succeeded"},
                ],
            }
        ]
    }  # fmt: skip


class RawClient:
    """One keep-alive HTTPS connection; a response is read into a reused buffer."""

    def __init__(self, port: int, cafile: str, token: str) -> None:
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.ctx, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.buf = bytearray(4 << 20)

    def get(self, path: str, keep: bool = False) -> tuple[float, float, int, bytes]:
        """(seconds to first byte, seconds to last byte, body bytes, body if keep)."""
        view = memoryview(self.buf)
        start = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        first = time.perf_counter() - start
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}: {resp.read()[:300]!r}")
        size = 0
        kept = bytearray() if keep else None
        while True:
            n = resp.readinto(view)
            if not n:
                break
            size += n
            if kept is not None:
                kept += view[:n]
        return first, time.perf_counter() - start, size, bytes(kept or b"")


def curl_get(url: str, cafile: str, token: str) -> tuple[float, float, int]:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--cacert", cafile,
         "-H", f"Authorization: Bearer {token}", "-H", "Accept: application/json",
         "-w", "%{time_starttransfer} %{time_total} %{size_download} %{time_appconnect}", url],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout.split()  # fmt: skip
    ttfb, total, size, connected = float(out[0]), float(out[1]), int(out[2]), float(out[3])
    # Leave out process start and the TLS handshake: time from request to last byte.
    return ttfb - connected, total - connected, size


def summarize(
    name: str, client: str, runs: list[tuple[float, float, int]], objects: int
) -> dict[str, Any]:
    total = statistics.median(r[1] for r in runs)
    size = runs[0][2]
    return {
        "target": name,
        "client": client,
        "objects": objects,
        "mb": round(size / 1e6, 1),
        "ttfb_s": round(statistics.median(r[0] for r in runs), 3),
        "median_s": round(total, 3),
        "mb_per_s": round(size / 1e6 / total, 1),
        "objects_per_s": round(objects / total),
        "runs": [round(r[1], 3) for r in runs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="bench/results/sim_throughput.json")
    args = parser.parse_args()

    start = time.perf_counter()
    fleet = Fleet(fleet_spec(args.nodes, args.pods)).start()
    startup = time.perf_counter() - start
    results: list[dict[str, Any]] = []
    try:
        status = fleet.status()["big"]
        print(
            f"fleet of {status['nodes']:,} nodes and {status['pods']:,} pods started in "
            f"{startup:.1f} s"
        )
        with open(fleet.kubeconfig) as fh:
            token = yaml.safe_load(fh)["users"][0]["user"]["token"]
        cafile = str(fleet.state_dir / "ca.crt")
        raw = RawClient(fleet.port("big"), cafile, token)
        curl = shutil.which("curl")
        for name, path, marker in TARGETS:
            first_ttfb, first, _, body = raw.get(path, keep=True)  # warm-up, object count
            objects = body.count(marker)
            del body
            runs = [raw.get(path)[:3] for _ in range(args.runs)]
            results.append(summarize(name, "http.client keep-alive", runs, objects))
            results[-1]["first_s"] = round(first, 3)
            results[-1]["first_ttfb_s"] = round(first_ttfb, 3)
            if curl:
                url = fleet.server("big") + path
                curl_get(url, cafile, token)
                runs = [curl_get(url, cafile, token) for _ in range(args.runs)]
                results.append(summarize(name, "curl", runs, objects))
    finally:
        fleet.stop()

    header = (
        "target", "client", "objects", "MB", "first", "first byte", "median", "MB/s", "objects/s",
    )  # fmt: skip
    rows = [
        (
            r["target"], r["client"], f"{r['objects']:,}", f"{r['mb']:.1f}",
            f"{r['first_s']:.3f} s" if "first_s" in r else "", f"{r['ttfb_s']:.3f} s",
            f"{r['median_s']:.3f} s", f"{r['mb_per_s']:.0f}", f"{r['objects_per_s']:,}",
        )
        for r in results
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "nodes": args.nodes,
                "pods": args.pods,
                "runs": args.runs,
                "startup_s": round(startup, 2),
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
