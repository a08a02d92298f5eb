"""Your code in the pod, and a command there: skymagic beside kubectl on the same fleet.

    PYTHONPATH=. .venv/bin/python bench/pod_work.py [--mb 200] [--files 10000] [--runs 10]

One simulated cluster (runtime: local, real HTTPS, Kubernetes 1.31: exec over WebSocket v5)
with one running dev pod. Measured:

- Copy: a workdir of `--files` files totalling `--mb` MB (half random bytes, half text-like,
  so gzip has something to do and something not to), sent into the pod:
  skymagic's send_files (gzip'd tar over one exec, what a launch does), cold (nothing in the
  pod) and again with nothing changed (the manifest says so: only the manifest travels),
  beside `kubectl cp DIR POD:DIR` (uncompressed tar over exec) into a fresh folder.
- Exec round trip: an empty command (`true`): skymagic.exec_command (locating the pod by
  name across the allowed contexts, then the exec with its activity wrapper), the bare
  exec_stream on a known pod, and `kubectl exec POD -- true` (a new process each time, so its
  start-up is in the figure, as it is for a user typing it).

Medians over `--runs` (the copy: over 3 runs). Figures go to stdout as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skymagic.core.client import clear_clients
from skymagic.core.podstreams import exec_stream
from skymagic.core.targets import Settings
from skymagic.launches import launch
from skymagic.launches.exec import exec_command
from skymagic.launches.files import collect_files, send_files
from skymagic.launches.pods import find_pod
from skymagic.launches.task import Task
from skymagic.sim import Fleet

SPEC = {
    "clusters": [
        {
            "name": "box",
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [{"name": "cpu", "cpu": 16, "memory_gb": 64}],
        }
    ]
}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def make_workdir(root: Path, total_mb: int, nfiles: int) -> None:
    per = total_mb * 2**20 // nfiles
    text = (b"def f(x):\n    return x * 2  # some source-like text\n" * (per // 48 + 1))[:per]
    for i in range(nfiles):
        d = root / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        data = os.urandom(per) if i % 2 else text
        (d / f"f{i:05d}.bin").write_bytes(data)


def median_time(fn: Callable[[], Any], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workdir": {"mb": args.mb, "files": args.files},
    }
    with tempfile.TemporaryDirectory() as tmp, Fleet(SPEC) as fleet:
        os.environ["KUBECONFIG"] = fleet.kubeconfig
        os.environ["HOME"] = tmp
        settings = Settings(allowed_contexts=("box",))
        launch("", name="dev", settings=settings, detach=True)
        live = find_pod("dev", settings)
        kubectl = [KUBECTL, "--kubeconfig", fleet.kubeconfig, "--context", "box",
                   "--cache-dir", str(Path(tmp) / "kcache")]  # fmt: skip
        src = Path(tmp) / "work"
        make_workdir(src, args.mb, args.files)
        task = Task(name="dev", workdir=str(src))
        t0 = time.perf_counter()
        files = collect_files(task)
        scan_s = time.perf_counter() - t0
        pod_home = Path(fleet.state_dir) / "clusters" / "0" / "pods" / "default_dev"

        def fresh_copy() -> Any:
            shutil.rmtree(pod_home / "sky_workdir", ignore_errors=True)
            shutil.rmtree(pod_home / ".sky" / "manifests", ignore_errors=True)
            return send_files(live.client, live.namespace, live.name, files)

        copies = []
        for _ in range(3):
            t0 = time.perf_counter()
            report = fresh_copy()
            copies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        unchanged = send_files(live.client, live.namespace, live.name, files)
        unchanged_s = time.perf_counter() - t0

        def kubectl_cp() -> None:
            shutil.rmtree(pod_home / "kcp", ignore_errors=True)
            subprocess.run([*kubectl, "cp", str(src), "dev:kcp"], check=True,
                           capture_output=True)  # fmt: skip

        kcp = median_time(kubectl_cp, 3)
        same = sum(1 for _ in (pod_home / "kcp").rglob("*.bin")) == args.files
        out["copy"] = {
            "scan_s": round(scan_s, 3),
            "skymagic_cold_s": round(statistics.median(copies), 3),
            "skymagic_wire_mb": round(report.sent_bytes / 2**20, 1),
            "skymagic_unchanged_s": round(unchanged_s, 3),
            "skymagic_unchanged_wire_bytes": unchanged.sent_bytes,
            "kubectl_cp_s": round(kcp, 3),
            "kubectl_cp_complete": same,
        }
        clear_clients()
        exec_command("dev", "true", settings)  # warm: TLS, the client pool
        out["exec"] = {
            "skymagic_exec_by_name_ms": round(
                median_time(lambda: exec_command("dev", "true", settings), args.runs) * 1e3, 1
            ),
            "exec_stream_known_pod_ms": round(
                median_time(
                    lambda: exec_stream(live.client, live.namespace, live.name, ["true"]),
                    args.runs,
                )
                * 1e3,
                1,
            ),
            "kubectl_exec_ms": round(
                median_time(
                    lambda: subprocess.run([*kubectl, "exec", "dev", "--", "true"], check=True),
                    args.runs,
                )
                * 1e3,
                1,
            ),
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
