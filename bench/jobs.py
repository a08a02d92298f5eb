"""Managed jobs: recovery speed after a preemption, and what the controller costs.

    .venv/bin/python bench/jobs.py [--runs 5] [--jobs 100] [--watch-s 30] [--out bench/results/jobs.json]

Simulated fleets over real HTTPS, `runtime: simulate` (a job's `sleep infinity` runs until its
pod is deleted), containers start 0.2 s after binding (the simulator's default: the
"container start" of the goal).

1. Preemption to Running elsewhere: contexts [a, b], one H100:8 node each; a job runs in a;
   `Fleet.preempt_node(a)`; measured from the preemption call to (i) the new pod's Running
   event in b, seen by a watch of our own, and (ii) the job's RUNNING in the jobs database.
   Goal: under 2 s plus the container start. Each run then cancels the job and gives a its
   node back (not timed).
2. The controller at rest and under churn: `--jobs` jobs (H100:1) spread over 4 contexts
   (pinned `--infra k8s/cN`, a quarter each), each context with enough 8-GPU nodes. Measured:
   time to submit them all and to have all RUNNING; then the controller's CPU (user + system
   time from /proc over `--watch-s` seconds of watching), resident memory, threads; then one
   node in c0 is preempted (8 jobs) and the time until all are RUNNING again, with the CPU it
   took; then cancelling everything.
3. Waiting for capacity: contexts [a, b], one H100:8 node each, both held by someone else's
   pod; a job waits (PENDING, nothing created); b's pod is removed through the simulator;
   measured from that call to the job's pod Running in b (our own watch) and to RUNNING in
   the database. Goal: under 1 s plus the container start (SkyPilot's controller retries a
   whole launch after a 60 s-and-growing backoff). Then `--waiting` jobs wait at once on the
   same full contexts: the controller's threads, CPU and memory while they wait (one shared
   inventory watch, not one per job), and the pods created meanwhile (goal: 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from skymagic import jobs
from skymagic.core.client import ClientSettings, ContextClient, clear_clients
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.targets import Settings
from skymagic.jobs import JobStatus, process
from skymagic.jobs.model import LABEL_JOB_ID
from skymagic.sim import Fleet

CONTAINER_START_S = 0.2
_H100 = {"name": "h100", "gpu": "H100", "gpus": 8, "cpu": 192, "memory_gb": 1800}


def _cluster(name: str, nodes: int) -> dict[str, Any]:
    return {
        "name": name,
        "pod_start_s": CONTAINER_START_S,
        "node_removal_s": 0.2,
        "pod_gc_s": 1.0,
        "nodes": [{**_H100, "count": nodes}],
    }


def _settings(*contexts: str) -> Settings:
    return Settings(client=ClientSettings(request_timeout=5.0), allowed_contexts=contexts)


def _admin(fleet: Fleet, cluster: str) -> ContextClient:
    kc = load_kubeconfig([fleet.kubeconfig])
    return ContextClient(kc.resolve(cluster), ClientSettings(request_timeout=5.0))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


class RunningWatch:
    """The time the first pod of job `job_id` turns Running in one cluster (our own watch)."""

    def __init__(self, fleet: Fleet, cluster: str, job_id: int) -> None:
        self.client = _admin(fleet, cluster)
        self.selector = f"{LABEL_JOB_ID}={job_id}"
        self.at: float | None = None
        _items, self.rv = self.client.list_items("/api/v1/pods", {"labelSelector": self.selector})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        query = {"labelSelector": self.selector, "resourceVersion": self.rv}
        for event in self.client.watch("/api/v1/pods", query, timeout_seconds=60):
            if (event["object"].get("status") or {}).get("phase") == "Running":
                self.at = time.time()
                return

    def wait(self, timeout: float) -> float | None:
        self.thread.join(timeout)
        self.client.close()
        return self.at


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def _one_recovery(fleet: Fleet, i: int) -> tuple[float | None, float, float]:
    """One job in a, preempted: (Running event in b, RUNNING in the database, preemption)."""
    job = jobs.launch("sleep infinity", gpus="H100:8", name=f"r{i}", settings=_settings("a", "b"))
    _wait(lambda: job.status == JobStatus.RUNNING, 30, "the job RUNNING in a")
    watch = RunningWatch(fleet, "b", job.id)
    t0 = time.time()
    fleet.preempt_node("a", "h100")
    seen = watch.wait(30)
    _wait(
        lambda: job.status == JobStatus.RUNNING and job.record().recoveries == 1,
        30,
        "the job RUNNING in b",
    )
    store = jobs.controller().store
    running = [e.t for e in store.events(job.id) if e.status == "RUNNING"]
    jobs.cancel([str(job.id)], wait_s=30)
    fleet.add_nodes("a", **_H100)
    return seen, running[-1], t0


def recovery(runs: int) -> dict[str, Any]:
    spec = {"clusters": [_cluster("a", 1), _cluster("b", 1)]}
    watch_s: list[float] = []
    db_s: list[float] = []
    with Fleet(spec) as fleet:
        os.environ["KUBECONFIG"] = fleet.kubeconfig
        for i in range(runs + 1):  # the first run is cold (controller start, TLS set-up)
            seen, running_at, t0 = _one_recovery(fleet, i)
            if i:  # warm runs only
                watch_s.append((seen or float("nan")) - t0)
                db_s.append(running_at - t0)
    return {
        "runs": runs,
        "pod_running_in_b_median_s": round(statistics.median(watch_s), 3),
        "pod_running_in_b_max_s": round(max(watch_s), 3),
        "job_running_in_db_median_s": round(statistics.median(db_s), 3),
        "job_running_in_db_max_s": round(max(db_s), 3),
        "container_start_s": CONTAINER_START_S,
        "goal": f"< 2 s + container start ({2 + CONTAINER_START_S:g} s)",
    }


def scale(n_jobs: int, watch_s: float) -> dict[str, Any]:
    contexts = [f"c{i}" for i in range(4)]
    per = -(-n_jobs // len(contexts))
    nodes = -(-per // 8) + 1  # a spare node per context
    spec = {"clusters": [_cluster(c, nodes) for c in contexts]}
    out: dict[str, Any] = {"jobs": n_jobs, "contexts": 4, "nodes_per_context": nodes}
    with Fleet(spec) as fleet:
        os.environ["KUBECONFIG"] = fleet.kubeconfig
        settings = _settings(*contexts)
        t0 = time.monotonic()
        submitted = [
            jobs.launch(
                "sleep infinity",
                gpus="H100:1",
                name=f"j{i}",
                infra=f"k8s/{contexts[i % len(contexts)]}",
                settings=settings,
            )
            for i in range(n_jobs)
        ]
        out["submit_all_s"] = round(time.monotonic() - t0, 2)
        store = jobs.controller().store

        def running() -> int:
            return sum(1 for j in store.jobs() if j.status == JobStatus.RUNNING)

        _wait(lambda: running() == n_jobs, 600, "every job RUNNING")
        out["all_running_s"] = round(time.monotonic() - t0, 2)
        pid = process.status().pid
        assert pid is not None
        time.sleep(2)  # let the last log followers and watches settle
        cpu0, w0 = _cpu_s(pid), time.monotonic()
        time.sleep(watch_s)
        cpu1, w1 = _cpu_s(pid), time.monotonic()
        st = _status(pid)
        out["watching"] = {
            "seconds": round(w1 - w0, 1),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (w1 - w0), 2),
            "rss_mb": round(st["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(st["VmHWM"] / 1024, 1),
            "threads": st["Threads"],
        }
        # Churn: one node of c0 preempted; its jobs recover (c0 has a spare node).
        victims = [j.id for j in submitted if j.record().status == JobStatus.RUNNING]
        node = "h100-0"
        on_node = [
            a.job_id
            for a in (store.latest_attempts().values())
            if a.context == "c0" and a.node == node and a.job_id in victims
        ]
        cpu0, t1 = _cpu_s(pid), time.monotonic()
        fleet.preempt_node("c0", node)

        def recovered() -> bool:
            recs = {j.id: j for j in store.jobs()}
            return all(
                recs[i].status == JobStatus.RUNNING and recs[i].recoveries == 1 for i in on_node
            )

        _wait(recovered, 120, "the preempted node's jobs RUNNING again")
        out["preempt_one_node"] = {
            "jobs_on_it": len(on_node),
            "all_running_again_s": round(time.monotonic() - t1, 2),
            "cpu_s": round(_cpu_s(pid) - cpu0, 2),
        }
        t2 = time.monotonic()
        jobs.cancel(all=True)
        _wait(
            lambda: all(j.status == JobStatus.CANCELLED for j in store.jobs()), 600, "all cancelled"
        )
        out["cancel_all_s"] = round(time.monotonic() - t2, 2)
        out["final_rss_mb"] = round(_status(pid)["VmRSS"] / 1024, 1)
    return out


def _fill(fleet: Fleet, *clusters: str) -> None:
    for cluster in clusters:
        fleet.add_pods(cluster, count=1, gpu="H100", gpus=8, namespace="others")


def _waits(job: jobs.Job) -> bool:
    rec = job.record()
    return rec.status == JobStatus.PENDING and rec.details.startswith("waiting for capacity")


def _one_wait(fleet: Fleet, i: int) -> tuple[float | None, float, float]:
    """One job waiting on full a and b; b freed: (Running event in b, RUNNING in db, freed)."""
    _fill(fleet, "a", "b")
    job = jobs.launch("sleep infinity", gpus="H100:8", name=f"w{i}", settings=_settings("a", "b"))
    _wait(lambda: _waits(job), 30, "the job waiting for capacity")
    watch = RunningWatch(fleet, "b", job.id)
    t0 = time.time()
    fleet.remove_pods("b", namespace="others")
    seen = watch.wait(30)
    _wait(lambda: job.status == JobStatus.RUNNING, 30, "the job RUNNING in b")
    store = jobs.controller().store
    running = [e.t for e in store.events(job.id) if e.status == "RUNNING"]
    jobs.cancel([str(job.id)], wait_s=30)
    fleet.remove_pods("a", namespace="others")
    return seen, running[-1], t0


def waiting(runs: int, n_waiting: int, watch_s: float) -> dict[str, Any]:
    spec = {"clusters": [_cluster("a", 1), _cluster("b", 1)]}
    watch: list[float] = []
    db: list[float] = []
    out: dict[str, Any] = {"runs": runs}
    with Fleet(spec) as fleet:
        os.environ["KUBECONFIG"] = fleet.kubeconfig
        for i in range(runs + 1):  # the first run is cold (controller start, TLS set-up)
            seen, running_at, t0 = _one_wait(fleet, i)
            if i:
                watch.append((seen or float("nan")) - t0)
                db.append(running_at - t0)
        out.update(
            {
                "freed_to_pod_running_median_s": round(statistics.median(watch), 3),
                "freed_to_pod_running_max_s": round(max(watch), 3),
                "freed_to_job_running_in_db_median_s": round(statistics.median(db), 3),
                "container_start_s": CONTAINER_START_S,
                "goal": f"< 1 s + container start ({1 + CONTAINER_START_S:g} s)",
            }
        )
        # Many jobs waiting at once on the same full contexts.
        _fill(fleet, "a", "b")
        pid = process.status().pid
        assert pid is not None
        idle = _status(pid)
        fleet.clear_requests()
        many = [
            jobs.launch("sleep infinity", gpus="H100:8", name=f"m{i}", settings=_settings("a", "b"))
            for i in range(n_waiting)
        ]
        _wait(lambda: all(_waits(j) for j in many), 120, "every job waiting")
        time.sleep(2)
        cpu0, w0 = _cpu_s(pid), time.monotonic()
        time.sleep(watch_s)
        cpu1, w1 = _cpu_s(pid), time.monotonic()
        st = _status(pid)
        posts = sum(
            1
            for c in ("a", "b")
            for r in fleet.requests(c)
            if r.get("method") == "POST" and str(r.get("path", "")).endswith("/pods")
        )
        out["many_waiting"] = {
            "jobs": n_waiting,
            "seconds": round(w1 - w0, 1),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (w1 - w0), 2),
            "rss_mb": round(st["VmRSS"] / 1024, 1),
            "threads": st["Threads"],
            "threads_with_no_job_waiting": idle["Threads"],
            "pod_creations_while_waiting": posts,  # (a plan that fits nowhere creates none)
        }
        jobs.cancel(all=True, wait_s=60)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm recovery runs (>= 1)")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--watch-s", type=float, default=30.0)
    parser.add_argument("--waiting", type=int, default=50, help="jobs waiting at once")
    parser.add_argument("--out", default="bench/results/jobs.json")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="skymagic-bench-")
    os.environ["HOME"] = home
    os.environ.pop("SKYPILOT_CONFIG", None)
    os.environ.setdefault("SKYMAGIC_USER", "bench")
    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
    }  # fmt: skip
    for part, run in (
        ("recovery", lambda: recovery(args.runs)),
        ("controller_100_jobs_4_contexts", lambda: scale(args.jobs, args.watch_s)),
        ("waiting_for_capacity", lambda: waiting(args.runs, args.waiting, args.watch_s / 3)),
    ):
        os.environ["SKYMAGIC_JOBS_DIR"] = tempfile.mkdtemp(prefix=f"skymagic-jobs-{part}-")
        clear_clients()
        try:
            results[part] = run()
        finally:
            process.stop()
    rec = results["recovery"]
    ok = rec["pod_running_in_b_median_s"] < 2 + CONTAINER_START_S
    wait = results["waiting_for_capacity"]
    waited_ok = wait["freed_to_pod_running_median_s"] < 1 + CONTAINER_START_S
    print(json.dumps(results, indent=2))
    print(
        f"preemption -> Running in b: median {rec['pod_running_in_b_median_s']} s "
        f"(job RUNNING in the database: {rec['job_running_in_db_median_s']} s), "
        f"goal {rec['goal']}: {'met' if ok else 'MISSED'}"
    )
    print(
        f"capacity freed -> waiting job's pod Running: median "
        f"{wait['freed_to_pod_running_median_s']} s, goal {wait['goal']}: "
        f"{'met' if waited_ok else 'MISSED'}; {wait['many_waiting']['jobs']} jobs waiting: "
        f"{wait['many_waiting']['threads']} controller threads, "
        f"{wait['many_waiting']['pod_creations_while_waiting']} pods created while waiting"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok and waited_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
