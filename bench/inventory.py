"""GPU inventory benchmark: skymagic vs SkyPilot 0.14.1 vs the floor, on one simulated fleet.

    .venv/bin/python bench/inventory.py [--fleet small|large|scaling|all] [--runs N]

For each fleet it starts `skymagic.sim.Fleet(spec)` once and measures, each tool in its OWN
process (so peak RSS is per tool), against that same running fleet:

* skymagic  `skymagic.gpus.inventory.show_gpus(settings)` (bench/_skymagic_runner.py), and one
            call taken apart afterwards (download, decode, tally, build);
* watcher   the live inventory's first view: `InventoryWatcher(settings)` to its first
            `snapshot()`; afterwards 1,000 pod changes/s across the contexts while it follows
            them (bench/_watcher_runner.py; large fleet only);
* skypilot  what `sky gpus list --infra k8s` computes: all-contexts realtime GPU availability
            plus per-node info for each context, in-process through its own entry points
            (sky.core.realtime_kubernetes_gpu_availability and sky.provision.kubernetes.utils.
            get_kubernetes_node_info; bench/_skypilot_runner.py, run by SkyPilot's own venv,
            bench/.venv-skypilot, created here from PyPI if missing);
* byte-floor       concurrent raw HTTPS GETs of the same two lists per context with the same
                   page size, bodies read and dropped (bench/_floor_runner.py);
* orjson-floor(-gc) the same, each page decoded into dicts with orjson (GC off / on);
* one-thread       a probe (large fleet): skymagic's own decoding and counting, with every
                   list read by one thread on non-blocking sockets (bench/_one_thread_runner.py):
                   what skymagic would take without GIL hand-offs between reading threads.

Every tool of a fleet starts at once, each in its own process, and the tools then take turns:
one warm-up round and N timed rounds of one call each, each round in another order, so that
every ratio compares calls made seconds apart on a shared machine (bench/_rounds.py); ratios
are the medians of the per-round ratios. The fleet's request logs give the API
requests each tool made per context per call. SkyPilot's per-context GPU totals and free
counts are compared with skymagic's (and with the truth computed from the fleet spec); every
difference is printed and explained by a SkyPilot fault, or flagged UNEXPLAINED.
Results: bench/results/inventory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SKY_VENV = BENCH / ".venv-skypilot"
SKY_VERSION = "0.14.1"
RESULTS = BENCH / "results" / "inventory.json"
GZIP = [False]  # --gzip: skymagic, the watcher and the floors ask for gzip'd lists
TOOLS = (
    "skymagic",
    "watcher",
    "skypilot",
    "byte-floor",
    "orjson-floor",
    "orjson-floor-gc",
    "one-thread",
)
RUNNERS = {
    "skymagic": "_skymagic_runner.py",
    "watcher": "_watcher_runner.py",
    "skypilot": "_skypilot_runner.py",
    "byte-floor": "_floor_runner.py",
    "orjson-floor": "_floor_runner.py",
    "orjson-floor-gc": "_floor_runner.py",
    "one-thread": "_one_thread_runner.py",  # a probe: skymagic's decoding on one reading thread
}

sys.path.insert(0, str(ROOT))

from skymagic.core.client import ClientSettings  # noqa: E402
from skymagic.sim import Fleet  # noqa: E402

# --- fleets -----------------------------------------------------------------------------------

H100_GFD = {
    "gpu": "H100",
    "gpus": 8,
    "labels": "gfd",
    "cpu": 192,
    "memory_gb": 1800,
    "taint_gpu": True,
}
CPU_NODE = {"cpu": 32, "memory_gb": 128}


def _gpu_nodes(name: str, count: int, gpu: str, gpus: int, labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "count": count,
        "gpu": gpu,
        "gpus": gpus,
        "labels": labels,
        "cpu": 192 if gpus >= 8 else 48,
        "memory_gb": 1800 if gpus >= 8 else 192,
        "taint_gpu": True,
    }


def small_spec() -> dict[str, Any]:
    """3 contexts x 20 nodes x 200 pods, three label schemes, one context mixing two."""
    return {
        "clusters": [
            {
                "name": "small-gfd-h100",
                "auth": "token",
                "nodes": [
                    _gpu_nodes("h100", 16, "H100", 8, "gfd"),
                    {"name": "cpu", "count": 4, **CPU_NODE},
                ],
                "pods": [
                    {"count": 40, "name": "train", "gpu": "H100", "gpus": 1, "namespace": "team-a"},
                    {
                        "count": 10,
                        "name": "done",
                        "gpu": "H100",
                        "gpus": 2,
                        "phase": "Succeeded",
                        "namespace": "team-a",
                    },
                    {"count": 150, "name": "web"},
                ],
            },
            {
                "name": "small-gke-h100-l4",
                "auth": "token",
                "nodes": [
                    _gpu_nodes("gke-h100", 8, "H100", 8, "gke"),
                    _gpu_nodes("gke-l4", 8, "L4", 1, "gke"),
                    {"name": "gke-cpu", "count": 4, **CPU_NODE},
                ],
                "pods": [
                    {"count": 16, "name": "train", "gpu": "H100", "gpus": 2, "namespace": "ml"},
                    {
                        "count": 6,
                        "name": "warm",
                        "gpu": "H100",
                        "gpus": 1,
                        "init_gpus": 4,
                        "namespace": "ml",
                    },
                    {"count": 4, "name": "infer", "gpu": "L4", "gpus": 1, "namespace": "serve"},
                    {"count": 174, "name": "web"},
                ],
            },
            {
                "name": "small-mixed-a100",
                "auth": "token",
                "nodes": [
                    _gpu_nodes("kp-a100", 10, "A100-80GB", 4, "karpenter"),
                    _gpu_nodes("gfd-a100", 6, "A100-80GB", 8, "gfd"),
                    {"name": "cpu", "count": 4, **CPU_NODE},
                ],
                "pods": [
                    {
                        "count": 12,
                        "name": "finetune",
                        "gpu": "A100-80GB",
                        "gpus": 2,
                        "namespace": "team-b",
                    },
                    {"count": 188, "name": "web"},
                ],
            },
        ]
    }


def _large_cluster(name: str, gpu: str, labels: str) -> dict[str, Any]:
    """1,000 nodes (960 with 8 GPUs, 40 CPU-only), 25,000 live + 25,000 completed pods."""
    return {
        "name": name,
        "auth": "token",
        "nodes": [_gpu_nodes("gpu", 960, gpu, 8, labels), {"name": "cpu", "count": 40, **CPU_NODE}],
        "pods": [
            {"count": 1000, "name": "dist", "gpu": gpu, "gpus": 2, "namespace": "ml"},
            {"count": 5000, "name": "train", "gpu": gpu, "gpus": 1, "namespace": "ml"},
            {"count": 19000, "name": "web", "namespace": "apps"},
            {
                "count": 10000,
                "name": "batch",
                "gpu": gpu,
                "gpus": 1,
                "phase": "Succeeded",
                "namespace": "ml",
            },
            {"count": 15000, "name": "cron", "phase": "Succeeded", "namespace": "apps"},
        ],
    }


def large_spec() -> dict[str, Any]:
    return {
        "clusters": [
            _large_cluster("large-gfd-h100-a", "H100", "gfd"),
            _large_cluster("large-gfd-h100-b", "H100", "gfd"),
            _large_cluster("large-gke-h100", "H100", "gke"),
            _large_cluster("large-gfd-a100", "A100-80GB", "gfd"),
        ]
    }


SCALING_PODS = (5_000, 25_000, 100_000)


def scaling_spec() -> dict[str, Any]:
    """One context per size (each measured alone): 1,000 nodes, N live pods."""
    clusters = []
    for n in SCALING_PODS:
        gpu_pods = min(n // 5, 7000)
        clusters.append(
            {
                "name": f"scale-{n // 1000}k",
                "auth": "token",
                "nodes": [
                    _gpu_nodes("gpu", 960, "H100", 8, "gfd"),
                    {"name": "cpu", "count": 40, **CPU_NODE},
                ],
                "pods": [
                    {
                        "count": gpu_pods,
                        "name": "train",
                        "gpu": "H100",
                        "gpus": 1,
                        "namespace": "ml",
                    },
                    {"count": n - gpu_pods, "name": "web", "namespace": "apps"},
                ],
            }
        )
    return {"clusters": clusters}


def expected_from_spec(spec: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """Ground truth per context and GPU (all nodes ready and schedulable in these fleets):
    total = sum of node GPUs; used = per live bound pod max(app GPUs, init GPUs)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for c in spec["clusters"]:
        per: dict[str, dict[str, int]] = {}
        for g in c.get("nodes", []):
            if g.get("gpu"):
                e = per.setdefault(g["gpu"], {"total": 0, "free": 0, "nodes": 0})
                e["total"] += g.get("count", 1) * g["gpus"]
                e["nodes"] += g.get("count", 1)
        for p in c.get("pods", []):
            if p.get("gpu") and p.get("phase", "Running") == "Running":
                used = max(p.get("gpus", 0), p.get("init_gpus", 0)) * p.get("count", 1)
                per[p["gpu"]]["free"] -= used
        for e in per.values():
            e["free"] += e["total"]
        out[c["name"]] = per
    return out


def live_pods_from_spec(spec: dict[str, Any]) -> dict[str, dict[str, int]]:
    out = {}
    for c in spec["clusters"]:
        nodes = sum(g.get("count", 1) for g in c.get("nodes", []))
        live = sum(
            p.get("count", 1)
            for p in c.get("pods", [])
            if p.get("phase", "Running") not in ("Succeeded", "Failed")
        )
        total = sum(p.get("count", 1) for p in c.get("pods", []))
        out[c["name"]] = {"nodes": nodes, "live_pods": live, "all_pods": total}
    return out


# --- SkyPilot's environment -------------------------------------------------------------------


def _sky_python() -> Path:
    return SKY_VENV / "bin" / "python"


def ensure_skypilot(log: list[str]) -> tuple[Path | None, str | None]:
    """SkyPilot 0.14.1 in its own venv (installed from PyPI if missing) and socat/nc on PATH."""
    py = _sky_python()
    probe = [str(py), "-c", "import sky; print(sky.__version__)"]
    ok = (
        py.exists()
        and subprocess.run(probe, check=False, capture_output=True, text=True).stdout.strip()
    )
    if ok != SKY_VERSION:
        log.append(f"installing skypilot[kubernetes]=={SKY_VERSION} into {SKY_VENV}")
        print(
            f"... installing skypilot[kubernetes]=={SKY_VERSION} into {SKY_VENV} (once)", flush=True
        )
        if not py.exists():
            base = getattr(sys, "_base_executable", sys.executable)
            r = subprocess.run(
                [base, "-m", "venv", str(SKY_VENV)], check=False, capture_output=True, text=True
            )
            if r.returncode:
                return None, f"python -m venv {SKY_VENV} failed: {r.stderr.strip()[-500:]}"
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", f"skypilot[kubernetes]=={SKY_VERSION}"],
            check=False,
            capture_output=True,
            text=True,
        )
        if r.returncode:
            return None, f"pip install skypilot[kubernetes]=={SKY_VERSION} failed: " + (
                r.stderr.strip()[-800:]
            )
        got = subprocess.run(probe, check=False, capture_output=True, text=True)
        if got.stdout.strip() != SKY_VERSION:
            return None, f"import sky failed after install: {got.stderr.strip()[-500:]}"
    missing = [t for t in ("socat", "nc") if shutil.which(t) is None]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print(
                "... apt-get install -y socat netcat-openbsd (SkyPilot's check needs them)",
                flush=True,
            )
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "socat", "netcat-openbsd"],
                check=False,
                capture_output=True,
            )
        missing = [t for t in ("socat", "nc") if shutil.which(t) is None]
        if missing:
            return None, (
                f"{' and '.join(missing)} not on PATH: SkyPilot's check would "
                "silently disable Kubernetes (apt-get install socat netcat-openbsd)"
            )
    return py, None


def sky_env(kubeconfig: str, contexts: list[str], home: str) -> dict[str, str]:
    sky_dir = Path(home) / ".sky"
    sky_dir.mkdir(parents=True, exist_ok=True)
    allowed = ", ".join(json.dumps(c) for c in contexts)
    (sky_dir / "config.yaml").write_text(
        f"allowed_clouds: [kubernetes]\nkubernetes:\n  allowed_contexts: [{allowed}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYPILOT_", "VIRTUAL_ENV"))}
    env.update(
        HOME=home, KUBECONFIG=kubeconfig, SKYPILOT_DISABLE_USAGE_COLLECTION="1", DO_NOT_TRACK="1"
    )
    return env


# --- running one tool -------------------------------------------------------------------------


def _command(
    tool: str,
    fleet: Fleet,
    contexts: list[str],
    runs: int,
    sky_py: Path | None,
    home: str,
    page_size: int | None,
    churn: dict[str, float] | None,
) -> tuple[list[str], dict[str, str]]:
    args = {
        "kubeconfig": fleet.kubeconfig,
        "contexts": contexts,
        "runs": runs,
        "warmup": 1,
        "rounds": True,
        "limit": page_size or ClientSettings().page_size,
        "gc": tool == "orjson-floor-gc",
        "decode": "none" if tool == "byte-floor" else "orjson",
        "state_dir": str(fleet.state_dir),
        "churn": churn,
        "breakdown": tool == "skymagic",
        "gzip": GZIP[0] and tool != "skypilot",
    }
    if tool == "skypilot":
        assert sky_py is not None
        return [str(sky_py), str(BENCH / RUNNERS[tool]), json.dumps(args)], sky_env(
            fleet.kubeconfig, contexts, home
        )
    env = dict(os.environ, HOME=home, KUBECONFIG=fleet.kubeconfig)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return [sys.executable, str(BENCH / RUNNERS[tool]), json.dumps(args)], env


class Runner:
    """One tool's runner process, answering one call at a time (bench/_rounds.py)."""

    def __init__(self, tool: str, cmd: list[str], env: dict[str, str], home: str) -> None:
        self.tool = tool
        self.error: str | None = None
        self.result: dict[str, Any] | None = None
        self.sim_cpu: list[float] = []
        self._err = open(Path(home) / "stderr.txt", "w+")  # noqa: SIM115 (closed in finish)
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next_json(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.error = f"no answer within {timeout:.0f} s"
                return None
            if line is None:
                self._err.seek(0)
                tail = self._err.read().strip().splitlines()[-6:]
                self.error = f"exit {self.proc.wait()}: " + " | ".join(tail)
                return None
            if line.startswith("{"):
                value: dict[str, Any] = json.loads(line)
                return value

    def ready(self, timeout: float) -> bool:
        return self.error is None and self._next_json(timeout) is not None

    def call(self, command: str, fleet: Fleet, timeout: float) -> None:
        if self.error is not None:
            return
        assert self.proc.stdin is not None
        cpu0 = _sim_cpu(fleet)
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._next_json(timeout)
        cpu1 = _sim_cpu(fleet)
        if answer is not None and cpu0 is not None and cpu1 is not None and command == "go":
            self.sim_cpu.append(cpu1 - cpu0)
        if answer is not None and (answer.get("window") or {}).get("error"):
            self.error = answer["window"]["error"]

    def finish(self, timeout: float) -> dict[str, Any]:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write("end\n")
                self.proc.stdin.close()
            while self.result is None:
                value = self._next_json(timeout)
                if value is None:
                    break
                if "tool" in value:
                    self.result = value
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"
            self.proc.kill()
        finally:
            self._err.close()
        res = self.result or {"tool": self.tool}
        if self.error and not res.get("error"):
            res["error"] = self.error
        if self.sim_cpu:
            res["sim_cpu_s_per_call"] = statistics.median(self.sim_cpu)
        return res


def run_tools(
    tools: list[str],
    fleet: Fleet,
    contexts: list[str],
    runs: int,
    sky_py: Path | None,
    timeout: float,
    page_size: int | None = None,
    churn: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every tool in its own process, all started at once, then one warm-up round and `runs`
    timed rounds of one call each, each round in another order (see bench/_rounds.py)."""
    homes = {t: tempfile.mkdtemp(prefix=f"bench-{t}-home-") for t in tools}
    fleet.clear_requests()
    runners: dict[str, Runner] = {}
    try:
        setups: dict[str, tuple[float, float]] = {}
        for t in tools:  # one after another, so each one's set-up requests are its own
            cmd, env = _command(t, fleet, contexts, runs, sky_py, homes[t], page_size, churn)
            started = time.time()
            runners[t] = Runner(t, cmd, env, homes[t])
            runners[t].ready(timeout)
            setups[t] = (started, time.time())
        for i in range(runs + 1):
            order = tools[i % len(tools) :] + tools[: i % len(tools)]
            print(f"    round {i or 'warm-up'}: " + ", ".join(order), flush=True)
            for t in order:
                runners[t].call("warmup" if i == 0 else "go", fleet, timeout)
        out = {t: runners[t].finish(timeout) for t in tools}
    finally:
        for r in runners.values():
            if r.proc.poll() is None:
                r.proc.kill()
        for h in homes.values():
            shutil.rmtree(h, ignore_errors=True)
    for t, res in out.items():
        res["requests"] = _request_stats(fleet, contexts, res.get("windows") or [], setups.get(t))
    return out


def _sim_cpu(fleet: Fleet) -> float | None:
    """CPU seconds the simulator process has used (user + system), from /proc."""
    try:
        assert fleet.proc is not None
        fields = Path(f"/proc/{fleet.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AssertionError, OSError, IndexError, ValueError):
        return None


def _request_stats(
    fleet: Fleet,
    contexts: list[str],
    windows: list[dict[str, Any]],
    setup: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Per context: API requests per timed call (count, bytes, what), and set-up requests
    (those before the tool said it was ready; tools start one after another)."""
    timed = [w for w in windows if not w.get("warmup")]
    out: dict[str, Any] = {}
    for ctx in contexts:
        reqs = [r for r in fleet.requests(ctx) if "method" in r]
        in_timed = [
            r for r in reqs if any(w["start"] - 0.001 <= r["t"] <= w["end"] + 0.001 for w in timed)
        ]
        in_any = [
            r
            for r in reqs
            if any(w["start"] - 0.001 <= r["t"] <= w["end"] + 0.001 for w in windows)
        ]
        n = max(len(timed), 1)
        kinds: dict[str, int] = {}
        for r in in_timed:
            q = r.get("query") or {}
            shown = {k: ("..." if k == "continue" else v) for k, v in q.items()}
            key = r["path"] + (
                "?" + "&".join(f"{k}={shown[k]}" for k in sorted(shown)) if shown else ""
            )
            kinds[key] = kinds.get(key, 0) + 1
        out[ctx] = {
            "per_call": len(in_timed) / n,
            "bytes_per_call": sum(r["bytes"] for r in in_timed) / n,
            "setup_requests": (
                sum(1 for r in reqs if setup[0] <= r["t"] <= setup[1])
                if setup
                else len(reqs) - len(in_any)
            ),
            "errors": sum(1 for r in in_timed if r["code"] >= 400),
            "kinds_per_call": {k: v / n for k, v in sorted(kinds.items())},
        }
    return out


def _walls(res: dict[str, Any]) -> list[float]:
    return [w["wall_s"] for w in res.get("windows") or [] if not w.get("warmup")]


def timing(res: dict[str, Any]) -> dict[str, float] | None:
    walls = [w["wall_s"] for w in res.get("windows") or [] if not w.get("warmup")]
    if not walls:
        return None
    cpus = [w["cpu_s"] for w in res.get("windows") or [] if not w.get("warmup") and "cpu_s" in w]
    return {
        "cpu_median_s": statistics.median(cpus) if cpus else None,
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs": len(walls),
    }


# --- correctness ------------------------------------------------------------------------------


def cross_check(
    sm: dict[str, Any],
    sky: dict[str, Any],
    truth: dict[str, dict[str, dict[str, int]]],
    contexts: list[str],
) -> list[dict[str, Any]]:
    """One row per context and group of GPU names (paired through the nodes both tools saw).

    Names are paired by node: the same node is `H100` to skymagic and `H100-80GB` to SkyPilot.
    Totals and free counts are compared as each tool reported them, never adjusted; each
    difference gets the SkyPilot fault that explains it, or UNEXPLAINED.
    """
    rows: list[dict[str, Any]] = []
    sm_gpus, sky_gpus = sm.get("gpus") or {}, sky.get("gpus") or {}
    sm_nodes, sky_nodes = sm.get("nodes") or {}, sky.get("node_gpus") or {}
    for ctx in contexts:
        pairs: dict[str, set[str]] = {}  # skymagic name -> SkyPilot names ("" = no GPU)
        unseen: dict[str, dict[str, Any]] = {}
        sky_by_node = sky_nodes.get(ctx) or {}
        for node, (gpu, _label, scheme, total, _free, _status) in (sm_nodes.get(ctx) or {}).items():
            sky_name = (sky_by_node.get(node) or [None])[0] or ""
            pairs.setdefault(gpu, set()).add(sky_name)
            if not sky_name:
                u = unseen.setdefault(gpu, {"nodes": 0, "gpus": 0, "schemes": set()})
                u["nodes"] += 1
                u["gpus"] += int(total or 0)
                u["schemes"].add(scheme)
        labels: dict[str, set[str]] = {}
        schemes_seen: dict[str, set[str]] = {}
        for node, (gpu, label, scheme, *_rest) in (sm_nodes.get(ctx) or {}).items():
            labels.setdefault(gpu, set()).add(str(label))
            if (sky_by_node.get(node) or [None])[0]:
                schemes_seen.setdefault(gpu, set()).add(str(scheme))
        names = sorted(set(sm_gpus.get(ctx, {})) | set(pairs))
        sky_claimed: set[str] = set()
        for gpu in names:
            sky_names = sorted(n for n in pairs.get(gpu, set()) if n)
            sky_claimed.update(sky_names)
            s = sm_gpus.get(ctx, {}).get(gpu) or {}
            k_total = sum((sky_gpus.get(ctx, {}).get(n) or {}).get("total", 0) for n in sky_names)
            k_free = sum((sky_gpus.get(ctx, {}).get(n) or {}).get("free", 0) for n in sky_names)
            t = truth.get(ctx, {}).get(gpu)
            row = {
                "context": ctx,
                "skymagic_gpu": gpu,
                "skypilot_gpu": "+".join(sky_names) or "-",
                "skymagic_total": s.get("total"),
                "skymagic_free": s.get("free"),
                "skypilot_total": k_total if sky_names else None,
                "skypilot_free": k_free if sky_names else None,
                "truth_total": t["total"] if t else None,
                "truth_free": t["free"] if t else None,
                "labels": sorted(labels.get(gpu, set())),
                "notes": [],
            }
            notes = row["notes"]
            if t and (s.get("total") != t["total"] or s.get("free") != t["free"]):
                notes.append(
                    f"SKYMAGIC DIFFERS FROM THE FLEET SPEC (truth {t['total']} total, "
                    f"{t['free']} free)"
                )
            if sky_names and sky_names != [gpu]:
                notes.append(
                    f"name: label {'/'.join(row['labels'])} is '{'+'.join(sky_names)}' to "
                    f"SkyPilot, '{gpu}' to skymagic: {_naming_fault(sky_names, gpu)}"
                )
            miss = unseen.get(gpu)
            if miss:
                seen = ", ".join(sorted(schemes_seen.get(gpu, set()))) or "none"
                notes.append(
                    f"SkyPilot sees no GPU on {miss['nodes']} nodes ({miss['gpus']} GPUs, "
                    f"label scheme {', '.join(sorted(miss['schemes']))}): it reads ONE label "
                    f"scheme per context (here {seen}; skypilot-org/skypilot#8311)"
                )
            d_total = (s.get("total") or 0) - (k_total if sky_names else 0)
            d_free = (s.get("free") or 0) - (k_free if sky_names else 0)
            explained_total = miss["gpus"] if miss else 0
            if d_total != explained_total:
                notes.append(f"UNEXPLAINED total difference {d_total:+d}")
            if d_free:
                init = _init_gap(ctx, gpu)
                missing_free = _free_on(sm_nodes.get(ctx) or {}, sky_by_node, gpu)
                if init and d_free == -init + missing_free:
                    notes.append(
                        f"free: SkyPilot counts {init} GPUs as free that init containers "
                        "request: it sums app containers only, not max(app, init) "
                        "(the scheduler's effective request: kubernetes.io/docs/concepts/workloads/pods/"
                        "init-containers/#resource-sharing-within-containers)"
                        + (
                            f"; plus {missing_free} free on nodes it does not see"
                            if missing_free
                            else ""
                        )
                    )
                elif d_free == missing_free and missing_free:
                    notes.append(
                        f"free: {missing_free} free GPUs are on the nodes SkyPilot "
                        "does not see (above)"
                    )
                else:
                    notes.append(f"UNEXPLAINED free difference {d_free:+d}")
            row["match"] = not notes
            rows.append(row)
        for n, v in sorted((sky_gpus.get(ctx) or {}).items()):
            if n not in sky_claimed:
                rows.append(
                    {
                        "context": ctx,
                        "skymagic_gpu": "-",
                        "skypilot_gpu": n,
                        "skymagic_total": None,
                        "skymagic_free": None,
                        "skypilot_total": v["total"],
                        "skypilot_free": v["free"],
                        "truth_total": None,
                        "truth_free": None,
                        "labels": [],
                        "notes": ["UNEXPLAINED: SkyPilot reports a GPU skymagic has not"],
                        "match": False,
                    }
                )
    return rows


def spec_check(
    sm: dict[str, Any], truth: dict[str, dict[str, dict[str, int]]], contexts: list[str]
) -> list[dict[str, Any]]:
    """Without SkyPilot: skymagic's per-context totals and free counts against the spec."""
    rows: list[dict[str, Any]] = []
    for ctx in contexts:
        have = (sm.get("gpus") or {}).get(ctx) or {}
        for gpu in sorted(set(have) | set(truth.get(ctx, {}))):
            s, t = have.get(gpu) or {}, truth.get(ctx, {}).get(gpu)
            notes = []
            if not t or s.get("total") != t["total"] or s.get("free") != t["free"]:
                notes.append("SKYMAGIC DIFFERS FROM THE FLEET SPEC")
            rows.append(
                {
                    "context": ctx,
                    "skymagic_gpu": gpu,
                    "skypilot_gpu": "-",
                    "skymagic_total": s.get("total"),
                    "skymagic_free": s.get("free"),
                    "skypilot_total": None,
                    "skypilot_free": None,
                    "truth_total": t["total"] if t else None,
                    "truth_free": t["free"] if t else None,
                    "labels": [],
                    "notes": notes,
                    "match": not notes,
                }
            )
    return rows


_SPEC_INIT: dict[str, dict[str, int]] = {}


def _naming_fault(sky_names: list[str], gpu: str) -> str:
    """Which SkyPilot naming fault (skypilot-org/skypilot#9035, fuzzy GPU names) a pair shows."""
    if any(n.endswith("-80GB") and not gpu.endswith("-80GB") for n in sky_names):
        return (
            "SkyPilot keeps GFD's memory suffix (NVIDIA-H100-80GB-HBM3 -> H100-80GB) but calls "
            "GKE's H100 80GB 'H100', so one card gets two names in its aggregate table "
            "(skypilot-org/skypilot#9035)"
        )
    if gpu.endswith(("-80GB", "-32GB")) and any(not n.endswith("GB") for n in sky_names):
        return (
            "SkyPilot drops the memory size and gives an 80 GB card the 40 GB card's name, "
            "which must never match: an A100-80GB request on a 40 GB card fails at run time "
            "(skypilot-org/skypilot#9035)"
        )
    return "SkyPilot names the same card another way (skypilot-org/skypilot#9035)"


def _init_gap(ctx: str, gpu: str) -> int:
    """GPUs that live pods' init containers request beyond their app containers (from spec)."""
    return _SPEC_INIT.get(ctx, {}).get(gpu, 0)


def _free_on(sm_nodes: dict[str, list[Any]], sky_by_node: dict[str, Any], gpu: str) -> int:
    return int(
        sum(
            (v[4] or 0)
            for node, v in sm_nodes.items()
            if v[0] == gpu and not (sky_by_node.get(node) or [None])[0]
        )
    )


def _remember_init(spec: dict[str, Any]) -> None:
    for c in spec["clusters"]:
        for p in c.get("pods", []):
            if (
                p.get("gpu")
                and p.get("init_gpus", 0) > p.get("gpus", 0)
                and p.get("phase", "Running") == "Running"
            ):
                per = _SPEC_INIT.setdefault(c["name"], {})
                per[p["gpu"]] = per.get(p["gpu"], 0) + (p["init_gpus"] - p["gpus"]) * p["count"]


def aggregate_names(sky: dict[str, Any]) -> dict[str, int]:
    """SkyPilot's aggregate table: GPU name -> number of contexts reporting it."""
    out: dict[str, int] = {}
    for per in (sky.get("gpus") or {}).values():
        for n in per:
            out[n] = out.get(n, 0) + 1
    return out


# --- printing ---------------------------------------------------------------------------------


def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    return format(v, spec) if spec else str(v)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def report_fleet(name: str, result: dict[str, Any], goals: bool) -> None:
    tools = result["tools"]
    print(f"\n=== fleet {name}: {result['shape_text']} ===")
    rows = []
    for tool in TOOLS:
        res = tools.get(tool)
        if res is None:
            continue
        t = timing(res)
        reqs = res.get("requests") or {}
        per_call = sorted({v["per_call"] for v in reqs.values()})
        mb = [v["bytes_per_call"] / 1e6 for v in reqs.values()]
        setup = sorted({v["setup_requests"] for v in reqs.values()})
        rows.append(
            [
                tool,
                _fmt(t and t["median_s"], ".3f"),
                _fmt(t and t["min_s"], ".3f"),
                _fmt(t and t["runs"]),
                _fmt(res.get("peak_rss_mb"), ".0f"),
                "/".join(f"{x:g}" for x in per_call) or "-",
                f"{statistics.mean(mb):.1f}" if mb else "-",
                "/".join(str(x) for x in setup) or "-",
                res.get("error") or "",
            ]
        )
    print_table(
        [
            "tool",
            "median s",
            "min s",
            "N",
            "peak RSS MB",
            "req/ctx/call",
            "MB/ctx/call",
            "setup req/ctx",
            "error",
        ],
        rows,
    )
    print("CPU seconds per call (median): client process, simulator process (all its clusters)")
    for tool in TOOLS:
        res = tools.get(tool) or {}
        t = timing(res) or {}
        if t.get("cpu_median_s") is not None or res.get("sim_cpu_s_per_call") is not None:
            print(
                f"  {tool:<16} client {_fmt(t.get('cpu_median_s'), '.3f')} s, simulator "
                f"{_fmt(res.get('sim_cpu_s_per_call'), '.3f')} s"
            )
    bd = (tools.get("skymagic") or {}).get("breakdown")
    if bd:
        print(
            "skymagic, one call taken apart (each phase alone): "
            + ", ".join(
                f"{k} {v['wall_s']:.3f} s wall / {v['cpu_s']:.3f} s CPU" for k, v in bd.items()
            )
        )
    if "one_thread_same_counts" in result:
        same = result["one_thread_same_counts"]
        print(
            f"one-thread probe: GPU totals and free counts {'equal' if same else 'DIFFER from'} skymagic's"
        )
    r = result.get("ratios") or {}
    if r:
        parts = [f"{k} = {v:.3f}" for k, v in r.items() if v is not None]
        print("ratios: " + ", ".join(parts))
    if goals and result.get("goals"):
        for g in result["goals"]:
            print(f"goal  {g['goal']:<56} {g['value']}  {'PASS' if g['pass'] else 'FAIL'}")
    c = (tools.get("watcher") or {}).get("churn")
    if c:
        print(
            "churn: "
            + ", ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in c.items()
            )
        )
    for tool in TOOLS:
        res = tools.get(tool) or {}
        for ctx, v in sorted((res.get("requests") or {}).items())[:1]:
            kinds = "; ".join(f"{k} x{n:g}" for k, n in v["kinds_per_call"].items())
            print(f"{tool} requests per call on {ctx}: {kinds}")


def report_check(rows: list[dict[str, Any]], sky: dict[str, Any]) -> None:
    print("\ncorrectness: skymagic vs SkyPilot 0.14.1 (realtime availability) vs fleet spec")
    table = [
        [
            r["context"],
            r["skymagic_gpu"],
            r["skypilot_gpu"],
            f"{_fmt(r['skymagic_total'], '.0f')}/{_fmt(r['skymagic_free'], '.0f')}",
            f"{_fmt(r['skypilot_total'])}/{_fmt(r['skypilot_free'])}",
            f"{_fmt(r['truth_total'])}/{_fmt(r['truth_free'])}",
            "same" if r["match"] else "DIFF",
        ]
        for r in rows
    ]
    print_table(
        [
            "context",
            "skymagic GPU",
            "SkyPilot GPU",
            "skymagic tot/free",
            "SkyPilot tot/free",
            "spec tot/free",
            "",
        ],
        table,
    )
    for r in rows:
        for note in r["notes"]:
            print(f"  {r['context']} {r['skymagic_gpu']}: {note}")
    names = aggregate_names(sky)
    if names:
        print(
            "  SkyPilot's aggregate table would list: "
            + ", ".join(f"{n} ({c} ctx)" for n, c in sorted(names.items()))
        )


# --- fleets, end to end -----------------------------------------------------------------------


def bench_fleet(
    name: str,
    spec: dict[str, Any],
    runs: int,
    sky_py: Path | None,
    sky_error: str | None,
    tools: tuple[str, ...],
    groups: list[list[str]] | None = None,
    page_size: int | None = None,
    churn: dict[str, float] | None = None,
) -> dict[str, Any]:
    _remember_init(spec)
    truth = expected_from_spec(spec)
    shape = live_pods_from_spec(spec)
    t0 = time.perf_counter()
    print(
        f"\n... starting fleet {name} ({sum(v['all_pods'] for v in shape.values()):,} pods)",
        flush=True,
    )
    out: dict[str, Any] = {}
    with Fleet(spec, startup_timeout=600) as fleet:
        start_s = time.perf_counter() - t0
        print(f"... fleet {name} up in {start_s:.1f} s", flush=True)
        for contexts in groups or [fleet.contexts]:
            key = name if groups is None else contexts[0]
            res: dict[str, Any] = {
                "contexts": contexts,
                "fleet_start_s": start_s,
                "shape": {c: shape[c] for c in contexts},
                "tools": {},
            }
            chosen = [t for t in TOOLS if t in tools]
            for tool in chosen:
                if tool == "skypilot" and sky_py is None:
                    res["tools"][tool] = {"tool": tool, "error": sky_error}
            chosen = [t for t in chosen if t not in res["tools"]]
            print(f"... {key}: {', '.join(chosen)} (1 warm-up + {runs} rounds)", flush=True)
            res["tools"].update(
                run_tools(chosen, fleet, contexts, runs, sky_py, 1800, page_size, churn)
            )
            for tool in chosen:
                t = timing(res["tools"][tool])
                err = res["tools"][tool].get("error")
                print(
                    f"    {tool}: "
                    + (f"median {t['median_s']:.3f} s" if t else "")
                    + (f" ERROR {err}" if err else ""),
                    flush=True,
                )
            _finish(res, truth)
            out[key] = res
    return out


GOALS = (
    # (goal, ratio key, limit)
    ("large fleet: skymagic / byte floor <= 1.5x", "time skymagic/byte-floor", 1.5),
    ("large fleet: skymagic / SkyPilot 0.14.1 <= 0.07", "time skymagic/SkyPilot", 0.07),
    ("large fleet: peak RSS skymagic / SkyPilot <= 0.6", "peak RSS skymagic/SkyPilot", 0.6),
    ("dashboard first view (watcher) / byte floor <= 1.5x", "time watcher/byte-floor", 1.5),
)
LAG_GOAL_MS = 100.0


def _finish(res: dict[str, Any], truth: dict[str, Any]) -> None:
    tools = res["tools"]
    med = {k: (timing(v) or {}).get("median_s") for k, v in tools.items()}
    rss = {k: v.get("peak_rss_mb") for k, v in tools.items()}
    ratios: dict[str, float | None] = {}
    pairs = [
        ("skymagic", "byte-floor"),
        ("skymagic", "orjson-floor"),
        ("skymagic", "orjson-floor-gc"),
        ("skymagic", "skypilot"),
        ("watcher", "byte-floor"),
        ("orjson-floor", "byte-floor"),
        ("one-thread", "byte-floor"),
        ("one-thread", "skymagic"),
    ]
    for a, b in pairs:
        if med.get(a) and med.get(b):
            # calls of the same round were made seconds apart: the median of their ratios
            # is steadier on a shared machine than the ratio of the medians
            wa, wb = _walls(tools[a]), _walls(tools[b])
            paired = [x / y for x, y in zip(wa, wb, strict=False) if y]
            ratio = statistics.median(paired) if len(wa) == len(wb) and paired else None
            ratios[f"time {a}/{'SkyPilot' if b == 'skypilot' else b}"] = ratio or med[a] / med[b]
    if rss.get("skymagic") and rss.get("skypilot"):
        ratios["peak RSS skymagic/SkyPilot"] = rss["skymagic"] / rss["skypilot"]
    if rss.get("skymagic") and rss.get("byte-floor"):
        ratios["peak RSS skymagic/byte-floor"] = rss["skymagic"] / rss["byte-floor"]
    res["ratios"] = ratios
    goals = []
    for goal, key, limit in GOALS:
        v = ratios.get(key)
        if v is not None:
            goals.append({"goal": goal, "value": f"{v:.3f}", "pass": v <= limit})
    c = (tools.get("watcher") or {}).get("churn")
    if c and c.get("lag_p99_ms") is not None:
        kept_up = c["achieved_rate"] >= 0.95 * c["target_rate"] and c["applied"] >= c["changes"]
        goals.append(
            {
                "goal": f"{c['target_rate']:,.0f} pod changes/s over {len(res['contexts'])} "
                f"contexts applied < {LAG_GOAL_MS:.0f} ms behind (p99)",
                "value": f"p50 {c['lag_p50_ms']:.0f} ms, p99 {c['lag_p99_ms']:.0f} ms, max "
                f"{c['lag_max_ms']:.0f} ms at {c['achieved_rate']:,.0f}/s",
                "pass": kept_up and c["lag_p99_ms"] < LAG_GOAL_MS,
            }
        )
    res["goals"] = goals
    sm, sky = tools.get("skymagic") or {}, tools.get("skypilot") or {}
    if sm.get("gpus") is not None and sky.get("gpus") is not None:
        res["check"] = cross_check(sm, sky, truth, res["contexts"])
    elif sm.get("gpus") is not None:
        res["check"] = spec_check(sm, truth, res["contexts"])
    probe = (tools.get("one-thread") or {}).get("gpus_total_free")
    if probe is not None and sm.get("gpus") is not None:
        mine = {
            c: {g: [v["total"], v["free"]] for g, v in gpus.items()}
            for c, gpus in sm["gpus"].items()
        }
        res["one_thread_same_counts"] = probe == mine
    floor = tools.get("orjson-floor") or {}
    if floor.get("items"):
        res["floor_items"] = floor["items"]


def _shape_text(shape: dict[str, dict[str, int]]) -> str:
    n = len(shape)
    nodes = {v["nodes"] for v in shape.values()}
    live = {v["live_pods"] for v in shape.values()}
    allp = {v["all_pods"] for v in shape.values()}
    return (
        f"{n} context(s) x {'/'.join(f'{x:,}' for x in sorted(nodes))} nodes, "
        f"{'/'.join(f'{x:,}' for x in sorted(live))} live pods "
        f"({'/'.join(f'{x:,}' for x in sorted(allp))} in all) per context"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fleet", choices=("small", "large", "scaling", "all"), default="all")
    ap.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs per tool after one warm-up (default: small 5, large 5, scaling 3)",
    )
    ap.add_argument("--no-skypilot", action="store_true", help="skymagic and the floors only")
    ap.add_argument(
        "--churn-rate",
        type=float,
        default=1000.0,
        help="pod changes per second across the large fleet's contexts while the watcher "
        "follows them (0: no churn test)",
    )
    ap.add_argument("--churn-seconds", type=float, default=10.0)
    ap.add_argument(
        "--no-skypilot-scaling",
        action="store_true",
        help="leave SkyPilot out of the scaling series (saves about 2 minutes)",
    )
    ap.add_argument(
        "--page-size",
        type=int,
        default=None,
        help="list page size (limit) for skymagic and the floor "
        "(default: skymagic's ClientSettings.page_size)",
    )
    ap.add_argument(
        "--gzip",
        action="store_true",
        help="skymagic, the watcher and the floors ask for gzip'd lists (Accept-Encoding: gzip; "
        "the simulator compresses as kube-apiserver does); SkyPilot's client never asks",
    )
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    GZIP[0] = a.gzip

    setup_log: list[str] = []
    sky_py: Path | None = None
    sky_error: str | None = "skipped (--no-skypilot)"
    if not a.no_skypilot:
        sky_py, sky_error = ensure_skypilot(setup_log)
        if sky_error:
            print(f"!!! SkyPilot unavailable: {sky_error}\n    (continuing: skymagic vs floor)")
    all_tools = TOOLS
    churn = {"rate": a.churn_rate, "seconds": a.churn_seconds} if a.churn_rate > 0 else None
    fleets = ["small", "large", "scaling"] if a.fleet == "all" else [a.fleet]
    ps = a.page_size
    t_all = time.perf_counter()
    results: dict[str, Any] = {}
    for f in fleets:
        if f == "small":
            tools = tuple(t for t in all_tools if t not in ("watcher", "one-thread"))
            results.update(
                bench_fleet("small", small_spec(), a.runs or 5, sky_py, sky_error, tools, None, ps)
            )
        elif f == "large":
            results.update(
                bench_fleet(
                    "large",
                    large_spec(),
                    a.runs or 5,
                    sky_py,
                    sky_error,
                    all_tools,
                    None,
                    ps,
                    churn,
                )
            )
        else:
            tools = ("skymagic", "byte-floor", "orjson-floor")
            if not a.no_skypilot_scaling:
                tools = (*tools, "skypilot")
            spec = scaling_spec()
            groups = [[c["name"]] for c in spec["clusters"]]
            results.update(
                bench_fleet("scaling", spec, a.runs or 3, sky_py, sky_error, tools, groups, ps)
            )
    total_s = time.perf_counter() - t_all

    print("\n" + "=" * 100)
    print(
        f"GPU inventory benchmark ({platform.node()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, SkyPilot {SKY_VERSION}); total {total_s:.0f} s"
    )
    for key, res in results.items():
        res["shape_text"] = _shape_text(res["shape"])
        if key.startswith("scale-"):
            continue
        report_fleet(key, res, goals=(key == "large"))
        if res.get("check"):
            report_check(res["check"], res["tools"].get("skypilot") or {})
    scale = [(k, v) for k, v in results.items() if k.startswith("scale-")]
    if scale:
        print("\n=== scaling: one context, 1,000 nodes, N live pods (median of the timed runs) ===")
        rows = []
        shown = ("skymagic", "byte-floor", "orjson-floor", "skypilot")
        for k, v in scale:
            pods = next(iter(v["shape"].values()))["live_pods"]
            row = [k, f"{pods:,}"]
            per_k: dict[str, float] = {}
            for tool in shown:
                t = timing(v["tools"].get(tool) or {})
                rss = (v["tools"].get(tool) or {}).get("peak_rss_mb")
                if t:
                    per_k[tool] = t["median_s"] / pods * 1000 * 1000
                row += [
                    _fmt(t and t["median_s"], ".3f"),
                    _fmt(per_k.get(tool), ".1f"),
                    _fmt(rss, ".0f"),
                ]
            ratio = (
                per_k["skymagic"] / per_k["byte-floor"]
                if "skymagic" in per_k and "byte-floor" in per_k
                else None
            )
            v["per_1k_pods_ms"] = per_k
            row.append(_fmt(ratio, ".2f"))
            rows.append(row)
        hdr = ["context", "live pods"]
        for tool in shown:
            hdr += [f"{tool} s", f"{tool} ms/1k pods", f"{tool} RSS MB"]
        hdr.append("skymagic/byte-floor")
        print_table(hdr, rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": time.time(),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "skypilot_version": SKY_VERSION,
        "skypilot_error": sky_error if sky_py is None else None,
        "setup": setup_log,
        "total_s": total_s,
        "page_size": a.page_size or ClientSettings().page_size,
        "fleets": results,
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
