"""Measure an empty exec round trip against the simulated fleet (not a test: run it).

    PYTHONPATH=. .venv/bin/python tests/sim/measure_exec.py [RUNS]

Prints the median and minimum of `kubectl exec POD -- true` (kubectl 1.31 over WebSocket, and
kubectl 1.29 over SPDY, as gcloud's dispatcher picks them by server version), of `kubectl get
--raw /version` beside it (kubectl's own start-up cost), and of the official client's
`kubernetes.stream` exec of `true` with one reused ApiClient.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kubernetes import client
from kubernetes.stream import stream
from simkit import api_client, pod_manifest, wait_for

from skymagic.sim import Fleet

NODES = [{"count": 1, "name": "box", "cpu": 8, "memory_gb": 32}]
SPEC = {
    "clusters": [
        {"name": "local", "runtime": "local", "pod_start_s": 0.05, "nodes": NODES},
        {"name": "spdy", "runtime": "local", "version": "v1.29.2", "pod_start_s": 0.05,
         "nodes": NODES},
        {"name": "sim", "runtime": "simulate", "pod_start_s": 0.05, "nodes": NODES},
    ]
}  # fmt: skip


def timed(fn: Callable[[], object], runs: int) -> str:
    fn()  # warm caches (kubectl discovery, the client's pool)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return f"median {statistics.median(samples) * 1e3:6.1f} ms, min {min(samples) * 1e3:6.1f} ms"


def main(runs: int) -> None:
    with Fleet(SPEC) as fleet:
        for context in ("local", "spdy", "sim"):
            v1 = client.CoreV1Api(api_client(fleet, context))
            v1.create_namespaced_pod("default", pod_manifest("box"))
            wait_for(
                lambda v1=v1: v1.read_namespaced_pod("box", "default").status.phase == "Running"
            )
        cache = str(fleet.state_dir / "kubectl-cache")
        for context in ("local", "spdy", "sim"):
            base = ["kubectl", "--kubeconfig", fleet.kubeconfig, "--context", context,
                    "--cache-dir", cache]  # fmt: skip
            for label, argv in (
                ("kubectl exec -- true", [*base, "exec", "box", "--", "true"]),
                ("kubectl get --raw /version", [*base, "get", "--raw", "/version"]),
            ):

                def run(argv: list[str] = argv) -> None:
                    subprocess.run(argv, check=True, capture_output=True)

                print(f"{context:5} {label:27} {timed(run, runs)}")
        for context in ("local", "sim"):
            v1 = client.CoreV1Api(api_client(fleet, context))

            def exec_true_py(v1: client.CoreV1Api = v1) -> None:
                ws = stream(v1.connect_get_namespaced_pod_exec, "box", "default",
                            command=["true"], stdout=True, stderr=True, stdin=False, tty=False,
                            _preload_content=False)  # fmt: skip
                ws.run_forever(timeout=10)
                assert ws.returncode == 0

            print(f"{context:5} {'python stream exec true':27} {timed(exec_true_py, runs)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
