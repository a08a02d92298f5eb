"""`Fleet`: start a simulated fleet in its own process and control it from Python.

```python
with Fleet("demo") as fleet:             # a path, YAML text, a dict, a FleetSpec, or "demo"
    os.environ["KUBECONFIG"] = fleet.kubeconfig
    fleet.cordon("my-h100-cluster", "h100-node-0")
    fleet.set_faults("my-a100-cluster", blackhole=True)
    fleet.requests("my-h100-cluster")     # what each API server was asked, for assertions
```
`Fleet.attach(state_dir)` reconnects to a fleet started in the background (`skymagic sim up`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from skymagic.errors import SimError
from skymagic.sim.spec import FleetSpec, load_fleet_spec

__all__ = ["DEMO_SPEC", "Fleet", "default_state_dir", "demo_spec_path"]

DEMO_SPEC = "demo"


def demo_spec_path() -> str:
    """The demo fleet spec that ships in the package."""
    return str(resources.files("skymagic.sim").joinpath("demo.yaml"))


def default_state_dir() -> Path:
    """Where `skymagic sim up` keeps a background fleet (override: SKYMAGIC_SIM_DIR)."""
    return Path(os.environ.get("SKYMAGIC_SIM_DIR") or Path.home() / ".skymagic" / "sim")


def _spec_to_dict(spec: FleetSpec) -> dict[str, Any]:
    return {"clusters": [asdict(c) for c in spec.clusters]}


class Fleet:
    """A running simulated fleet (one process, one HTTPS API server per cluster)."""

    def __init__(
        self,
        spec: str | os.PathLike[str] | Mapping[str, Any] | FleetSpec = DEMO_SPEC,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        ports: Mapping[str, int] | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        source = demo_spec_path() if spec == DEMO_SPEC else spec
        self.spec = load_fleet_spec(source)
        self._own_dir = state_dir is None
        self.state_dir = (
            Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="skymagic-sim-"))
        )
        self._kubeconfig_opt = str(kubeconfig) if kubeconfig else None
        self._ports = dict(ports or {})
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, *, detach: bool = False) -> Fleet:
        """Start the fleet process and wait until every API server listens."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready_path = self.state_dir / "ready.json"
        with contextlib.suppress(FileNotFoundError):
            ready_path.unlink()
        data = _spec_to_dict(self.spec)
        data["_options"] = {"kubeconfig": self._kubeconfig_opt, "ports": self._ports}
        (self.state_dir / "spec.json").write_bytes(msgspec.json.encode(data))
        log_path = self.state_dir / "fleet.log"
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "skymagic.sim.serve", str(self.state_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not ready_path.exists():
            if self.proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [
                    "(no output)"
                ]
                raise SimError(
                    f"the simulated fleet exited during start-up: {tail[0]} (log: {log_path})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise SimError(
                    f"the simulated fleet did not start within {self.startup_timeout:.0f} s "
                    f"(log: {log_path})"
                )
            time.sleep(0.02)
        self.ready = msgspec.json.decode(ready_path.read_bytes())
        return self

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str] | None = None) -> Fleet:
        """Reconnect to a fleet running in the background."""
        d = Path(state_dir) if state_dir else default_state_dir()
        ready_path = d / "ready.json"
        if not ready_path.exists():
            raise SimError(
                f"no simulated fleet is running in {d}; start one with `skymagic sim up`"
            )
        ready = msgspec.json.decode(ready_path.read_bytes())
        spec = msgspec.json.decode((d / "spec.json").read_bytes())
        spec.pop("_options", None)
        fleet = cls(spec, state_dir=d)
        fleet._own_dir = False
        fleet.ready = ready
        return fleet

    def alive(self) -> bool:
        pid = self.ready.get("pid")
        if not pid:
            return False
        try:
            os.kill(int(pid), 0)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Shut the fleet down (local subprocesses of pods included) and remove temp state."""
        if self.ready and self.alive():
            with contextlib.suppress(SimError, OSError):
                self._call("shutdown", {}, timeout=5)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        elif self.ready.get("pid"):
            pid = int(self.ready["pid"])
            deadline = time.monotonic() + 10
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.alive():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self.ready = {}
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- facts -----------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> str:
        return str(self.ready["kubeconfig"])

    @property
    def contexts(self) -> list[str]:
        return list(self.ready["contexts"])

    @property
    def clusters(self) -> list[str]:
        return [c.name for c in self.spec.clusters]

    def port(self, cluster: str) -> int:
        return int(self.ready["clusters"][cluster])

    def server(self, cluster: str) -> str:
        return f"https://127.0.0.1:{self.port(cluster)}"

    # -- control ---------------------------------------------------------------------------
    def _call(self, op: str, args: dict[str, Any], timeout: float = 60) -> Any:
        if not self.ready:
            raise SimError("the simulated fleet is not running")
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ready['control_port']}/{op}",
            data=msgspec.json.encode(args),
            headers={"X-Sim-Key": self.ready["control_key"], "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return msgspec.json.decode(resp.read())["result"]
        except urllib.error.HTTPError as exc:
            detail = msgspec.json.decode(exc.read() or b"{}").get("error", str(exc))
            raise SimError(f"simulated fleet: {op}: {detail}") from None
        except OSError as exc:
            raise SimError(f"simulated fleet control channel unreachable: {exc}") from None

    def status(self) -> dict[str, Any]:
        return dict(self._call("status", {}))

    def requests(self, cluster: str) -> list[dict[str, Any]]:
        """Every request this cluster answered: method, path, query, user, code, bytes; an
        impersonated one also the `impersonator` and the `groups` it asked for."""
        return list(self._call("requests", {"cluster": cluster}))

    def clear_requests(self, cluster: str | None = None) -> None:
        for name in [cluster] if cluster else self.clusters:
            self._call("clear_requests", {"cluster": name})

    def set_faults(self, cluster: str, **faults: Any) -> dict[str, Any]:
        """Change faults at run time: down, blackhole, latency_ms, error_rate, token_ttl_s,
        corrupt + corrupt_path (a malformed 200 body for GETs of that path; see spec.Faults)."""
        return dict(self._call("faults", {"cluster": cluster, "faults": faults}))

    def cordon(self, cluster: str, node: str) -> None:
        self._call("node", {"cluster": cluster, "node": node, "action": "cordon"})

    def uncordon(self, cluster: str, node: str) -> None:
        self._call("node", {"cluster": cluster, "node": node, "action": "uncordon"})

    def set_ready(self, cluster: str, node: str, ready: bool) -> None:
        self._call(
            "node", {"cluster": cluster, "node": node, "action": "ready" if ready else "not_ready"}
        )

    def remove_node(self, cluster: str, node: str) -> None:
        self._call("node", {"cluster": cluster, "node": node, "action": "remove"})

    def preempt_node(self, cluster: str, node: str) -> list[str]:
        """A spot preemption: graceful node shutdown, then the node is deleted (sim/nodelife.py).

        Returns once the node's pods are Failed (reason `Terminated`); the node goes
        `node_removal_s` later, its pods `pod_gc_s` after that.
        """
        return list(self._call("preempt_node", {"cluster": cluster, "node": node}))

    def lose_node(self, cluster: str, node: str) -> None:
        """The node's kubelet stops answering: NotReady (Unknown), unreachable taints, evictions.

        `set_ready(cluster, node, True)` brings it back; `remove_node` deletes it (pod GC).
        """
        self._call("lose_node", {"cluster": cluster, "node": node})

    def add_nodes(self, cluster: str, **group: Any) -> list[str]:
        """Add nodes (NodeGroup keys: name, count, gpu, gpus, labels, cpu, memory_gb, ...)."""
        return list(self._call("add_nodes", {"cluster": cluster, "group": group}))

    def set_autoscaler(
        self,
        cluster: str,
        group: dict[str, Any] | None,
        *,
        max_nodes: int = 1,
        delay_s: float = 1.0,
    ) -> dict[str, Any]:
        """A cluster autoscaler growing node group `group` (NodeGroup keys; None: off).

        Each pod the scheduler finds Unschedulable gets cluster-autoscaler's verdict as an
        Event: TriggeredScaleUp when a new node of the group would take it and the group has
        fewer than `max_nodes` nodes (the nodes join `delay_s` later), NotTriggerScaleUp
        otherwise (sim/autoscaler.py).
        """
        args = {"cluster": cluster, "group": group, "max_nodes": max_nodes, "delay_s": delay_s}
        return dict(self._call("autoscaler", args))

    def add_pods(self, cluster: str, **group: Any) -> list[str]:
        """Add running load bound to nodes with room (PodGroup keys: count, gpu, gpus, ...)."""
        return list(self._call("add_pods", {"cluster": cluster, "group": group}))

    def remove_pods(
        self,
        cluster: str,
        *,
        namespace: str | None = None,
        prefix: str | None = None,
        count: int | None = None,
    ) -> list[str]:
        return list(
            self._call(
                "remove_pods",
                {"cluster": cluster, "namespace": namespace, "prefix": prefix, "count": count},
            )
        )

    def delete_pods(
        self, cluster: str, names: list[str], *, namespace: str = "default"
    ) -> list[str]:
        """Delete pods by name at once (grace 0: one DELETED event each); the names deleted.

        Unlike `remove_pods` (a scan of every pod for a prefix), each name is one lookup, so
        benchmarks can churn pods on a cluster of 100,000.
        """
        return list(
            self._call("delete_pods", {"cluster": cluster, "namespace": namespace, "names": names})
        )

    def compact(self, cluster: str) -> int:
        """Drop the watch/continue history: older continue tokens and resourceVersions get 410."""
        return int(self._call("compact", {"cluster": cluster}))

    def mint_token(
        self, cluster: str, user: str, groups: list[str] | None = None, ttl_s: float | None = None
    ) -> str:
        """A bearer token the fleet accepts for `user` (tests use it to act as other users)."""
        return str(
            self._call(
                "mint_token",
                {"cluster": cluster, "user": user, "groups": groups or [], "ttl_s": ttl_s},
            )
        )
