"""Helpers for the launch tests: a fleet with every skip reason, and looks at what it holds.

Each cluster of LAUNCH_SPEC is one situation the plan must tell apart, so the fleet's own
request logs show exactly where a launch created something:

- `free`, `free2`: free H100s plus a CPU node, `runtime: local` (commands really run);
- `full`: H100s that tests fill with `add_pods` (none free now);
- `small`: 2 H100 per node (not enough per node for H100:4);
- `nogpu`: only A100-80GB (no such GPU for H100);
- `down`: connection refused (unreachable);
- users of `free`: `free-carol` may do nothing (forbidden), `free-bob` may list but not create.
"""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.targets import Settings
from skymagic.launches import Attempt, Plan
from skymagic.launches.podspec import LABEL_MANAGED
from skymagic.sim import Fleet

FREE, FREE2, FULL, SMALL, NOGPU, DOWN = "free", "free2", "full", "small", "nogpu", "down"
CAROL = "free-carol"  # may not list anything, nor create pods: forbidden
BOB = "free-bob"  # may list nodes and pods, may not create pods
USER = "tester"

_H100 = {"name": "h100", "gpu": "H100", "gpus": 8, "cpu": 192, "memory_gb": 1800}
_CPU = {"name": "cpu", "cpu": 8, "memory_gb": 32}

LAUNCH_SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": FREE,
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [{**_H100, "taint_gpu": True}, _CPU],
            "users": [
                {"name": "carol", "context": CAROL, "auth": "token", "groups": []},
                {"name": "bob", "context": BOB, "auth": "token", "groups": []},
            ],
            "rbac": [
                {"user": "carol", "rules": []},
                {
                    "user": "bob",
                    "rules": [{"verbs": ["get", "list", "watch"], "resources": ["nodes", "pods"]}],
                },
            ],
        },
        {
            "name": FREE2,
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [{**_H100, "taint_gpu": True}, _CPU],
        },
        {"name": FULL, "pod_start_s": 0.05, "nodes": [{**_H100, "taint_gpu": True}]},
        {"name": SMALL, "nodes": [{**_H100, "gpus": 2}]},
        {"name": NOGPU, "nodes": [{"name": "a100", "gpu": "A100-80GB", "gpus": 4}]},
        {"name": DOWN, "faults": {"down": True}},
    ]
}
CLUSTERS = [c["name"] for c in LAUNCH_SPEC["clusters"]]

# Multi-node launches: two clusters of two 8-H100 nodes each, both `runtime: local` (every
# rank is a real process with a loopback pod IP; the fleet answers the headless Service's
# names, skymagic/sim/netnames.py).
ONE, TWO = "one", "two"
_H100_PAIR = {"name": "h100", "count": 2, "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512}
GANG_SPEC: dict[str, Any] = {
    "clusters": [
        {"name": name, "runtime": "local", "pod_start_s": 0.05, "nodes": [_H100_PAIR]}
        for name in (ONE, TWO)
    ]
}


def settings(*contexts: str, timeout: float = 2.0) -> Settings:
    """Settings allowing `contexts` in this failover order (the config file is read too)."""
    return Settings(
        client=ClientSettings(request_timeout=timeout, retries=0), allowed_contexts=contexts
    )


def admin(fleet: Fleet, cluster: str) -> ContextClient:
    """A fresh admin client for `cluster` (its own context in the fleet's kubeconfig)."""
    kc = load_kubeconfig([fleet.kubeconfig])
    return ContextClient(kc.resolve(cluster), ClientSettings(request_timeout=5.0))


def labelled(fleet: Fleet, kind: str = "pods") -> dict[str, list[str]]:
    """skymagic-labelled objects of `kind` per reachable cluster, as namespace/name."""
    out: dict[str, list[str]] = {}
    for cluster in CLUSTERS:
        if cluster == DOWN:
            continue
        client = admin(fleet, cluster)
        try:
            items, _ = client.list_items(
                f"/api/v1/{kind}", {"labelSelector": f"{LABEL_MANAGED}=true"}
            )
        finally:
            client.close()
        names = [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items]
        if names:
            out[cluster] = names
    return out


def get(fleet: Fleet, cluster: str, path: str) -> dict[str, Any]:
    client = admin(fleet, cluster)
    try:
        return client.get_json(path)
    finally:
        client.close()


def pod(fleet: Fleet, cluster: str, name: str, ns: str = "default") -> dict[str, Any]:
    return get(fleet, cluster, f"/api/v1/namespaces/{ns}/pods/{name}")


def writes(fleet: Fleet, cluster: str, method: str = "POST", what: str = "/pods") -> int:
    """How many `method` requests to paths ending in `what` the cluster answered."""
    return sum(
        1
        for r in fleet.requests(cluster)
        if r.get("method") == method and str(r.get("path", "")).endswith(what)
    )


def secret_text(secret: dict[str, Any], key: str = "config") -> str:
    return base64.b64decode(secret["data"][key]).decode()


class Recorder:
    """A LaunchObserver that keeps everything it was told (and its text, for leak checks)."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.progress: list[tuple[str, str, float]] = []
        self.attempts: list[Attempt] = []
        self.log: list[str] = []
        self.messages: list[str] = []
        self.text = io.StringIO()

    def on_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.text.write(f"{plan}\n")

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        self.progress.append((context, phase, elapsed))
        self.text.write(f"{context} {phase}\n")

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self.text.write(f"{attempt}\n")

    def on_log(self, line: str) -> None:
        self.log.append(line)
        self.text.write(line + "\n")

    def on_message(self, text: str) -> None:
        self.messages.append(text)
        self.text.write(text + "\n")


class InterruptAt(Recorder):
    """Raises KeyboardInterrupt (a user pressing Stop) at the first matching event."""

    def __init__(self, *, phase: str | None = None, on_log: bool = False) -> None:
        super().__init__()
        self.phase = phase
        self.at_log = on_log
        self.fired = False

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        super().on_progress(context, phase, elapsed)
        if self.phase and phase == self.phase and not self.fired:
            self.fired = True
            raise KeyboardInterrupt

    def on_log(self, line: str) -> None:
        super().on_log(line)
        if self.at_log and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


# --- managed jobs ---------------------------------------------------------------------------
JOB_A, JOB_B = "a", "b"
JOB_GPU_NODE = "h100"


def jobs_spec() -> dict[str, Any]:
    """Two clusters `a` and `b`, one 8-GPU H100 node each (a node holds one H100:8 job) and a
    CPU node, `runtime: local` so a job's script really runs, and short Kubernetes timings
    (pod GC, taint tolerations, shutdown grace) so node losses play out in seconds."""

    def cluster(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "runtime": "local",
            "pod_start_s": 0.05,
            "pod_gc_s": 0.5,
            "node_removal_s": 0.2,
            "shutdown_grace_s": 1.0,
            "toleration_s": 1,
            "nodes": [
                {**_H100, "name": JOB_GPU_NODE, "gpus": 8, "cpu": 64, "memory_gb": 512,
                 "taint_gpu": True},
                _CPU,
            ],
        }  # fmt: skip

    return {"clusters": [cluster(JOB_A), cluster(JOB_B)]}


def skymagic_pods(fleet: Fleet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cluster in (ONE, TWO):
        client = admin(fleet, cluster)
        try:
            items, _ = client.list_items("/api/v1/pods", {"labelSelector": f"{LABEL_MANAGED}=true"})
        finally:
            client.close()
        if items:
            out[cluster] = sorted(i["metadata"]["name"] for i in items)
    return out


def fleet_fixture(spec: dict[str, Any]) -> Any:
    """A `fleet` fixture for `spec`: a fresh copy started, KUBECONFIG and the launch user set."""

    @pytest.fixture
    def fleet(
        make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Fleet:
        f = make_fleet(copy.deepcopy(spec))
        monkeypatch.setenv("KUBECONFIG", f.kubeconfig)
        monkeypatch.setenv("SKYMAGIC_USER", USER)
        return f

    return fleet
