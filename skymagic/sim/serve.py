"""The fleet process: `python -m skymagic.sim.serve STATE_DIR`.

It runs in its own process so the API servers never compete for the GIL with the client under
test. It reads STATE_DIR/spec.json, mints the fleet CA, serves one HTTPS API server per cluster,
writes the kubeconfig, and answers a small JSON control channel (plain HTTP on loopback,
guarded by a random key) through which `Fleet` changes the fleet at run time. It writes
STATE_DIR/ready.json when every server listens, and exits on the control `shutdown` op or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import ssl
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec
import yaml

from skymagic.sim.apiserver import ApiServer
from skymagic.sim.certs import FleetCA
from skymagic.sim.cluster import SimCluster
from skymagic.sim.http import HTTPServer, Request, Response, json_response
from skymagic.sim.spec import ClusterSpec, FleetSpec, NodeGroup, PodGroup, load_fleet_spec
from skymagic.sim.tokens import TokenMinter

__all__ = ["FleetProcess", "main"]


def _server_ssl(ca: FleetCA, workdir: Path) -> ssl.SSLContext:
    cert, key = ca.issue_server_cert()
    cert_path = workdir / "server.crt"
    key_path = workdir / "server.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    os.chmod(key_path, 0o600)
    ca_path = workdir / "ca.crt"
    ca_path.write_bytes(ca.cert_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    ctx.load_verify_locations(cafile=str(ca_path))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class FleetProcess:
    """Everything the fleet process owns."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        spec_data = msgspec.json.decode((state_dir / "spec.json").read_bytes())
        self.options = spec_data.pop("_options", {})
        self.spec: FleetSpec = load_fleet_spec(spec_data)
        self.secret = secrets.token_bytes(32)
        secret_path = state_dir / "token-secret"
        secret_path.write_bytes(self.secret)
        os.chmod(secret_path, 0o600)
        self.minter = TokenMinter(self.secret)
        self.ca = FleetCA.create()
        self.clusters: dict[str, SimCluster] = {}
        self.servers: dict[str, HTTPServer] = {}
        self.control: HTTPServer | None = None
        self.control_key = secrets.token_hex(16)
        self.done = asyncio.Event()

    async def start(self) -> None:
        ssl_ctx = _server_ssl(self.ca, self.state_dir)
        fixed_ports = self.options.get("ports") or {}
        for i, cspec in enumerate(self.spec.clusters):
            workdir = self.state_dir / "clusters" / str(i)
            workdir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "ttl").mkdir(exist_ok=True)
            (self.state_dir / "ttl" / str(i)).write_text(str(cspec.faults.token_ttl_s))
            cluster = SimCluster(cspec, i, workdir)
            cluster.load()
            api = ApiServer(cluster, self.minter, self._port_getter(cspec.name))
            server = HTTPServer(
                api.handle, ssl_context=ssl_ctx, port=int(fixed_ports.get(cspec.name, 0))
            )
            await server.start()
            await cluster.start()
            if cspec.faults.down:
                await server.stop()
            server.blackhole = cspec.faults.blackhole
            self.clusters[cspec.name] = cluster
            self.servers[cspec.name] = server
        self.control = HTTPServer(self._control)
        await self.control.start()
        kubeconfig = self.options.get("kubeconfig") or str(self.state_dir / "kubeconfig")
        self._write_kubeconfig(kubeconfig)
        ready = {
            "pid": os.getpid(),
            "kubeconfig": kubeconfig,
            "control_port": self.control.port,
            "control_key": self.control_key,
            "clusters": {n: s.port for n, s in self.servers.items()},
            "contexts": self.context_names(),
        }
        _atomic_write(self.state_dir / "ready.json", msgspec.json.encode(ready))

    def _port_getter(self, name: str) -> Callable[[], int]:
        return lambda: self.servers[name].port

    def context_names(self) -> list[str]:
        names = []
        for c in self.spec.clusters:
            names.append(c.name)
            names.extend(u.context for u in c.users)
        return names

    def _user_entry(
        self, cspec: ClusterSpec, index: int, user: str, groups: list[str], auth: str
    ) -> dict[str, Any]:
        if auth == "token":
            return {"token": self.minter.mint(user, groups, ttl_s=None)}
        if auth == "client-cert":
            import base64

            cert, key = self.ca.issue_client_cert(user, groups)
            return {
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode(),
            }
        args = [
            "-m",
            "skymagic.sim.exec_plugin",
            "--secret-file",
            str(self.state_dir / "token-secret"),
            "--user",
            user,
            "--ttl-file",
            str(self.state_dir / "ttl" / str(index)),
        ]
        for g in groups:
            args += ["--group", g]
        return {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": sys.executable,
                "args": args,
                "installHint": "the fleet's plugin ships with skymagic: pip install skymagic",
                "provideClusterInfo": False,
                "interactiveMode": "Never",
            }
        }

    def _write_kubeconfig(self, path: str) -> None:
        import base64

        ca_data = base64.b64encode(self.ca.cert_pem).decode()
        clusters, users, contexts = [], [], []
        for i, cspec in enumerate(self.spec.clusters):
            port = self.servers[cspec.name].port
            clusters.append(
                {
                    "name": cspec.name,
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority-data": ca_data,
                    },
                }
            )
            entries = [(cspec.name, cspec.user, list(cspec.groups), cspec.auth)]
            entries += [(u.context, u.name, list(u.groups), u.auth) for u in cspec.users]
            for ctx_name, user, groups, auth in entries:
                user_key = f"{ctx_name}-{user}"
                users.append(
                    {"name": user_key, "user": self._user_entry(cspec, i, user, groups, auth)}
                )
                contexts.append(
                    {
                        "name": ctx_name,
                        "context": {
                            "cluster": cspec.name,
                            "user": user_key,
                            "namespace": cspec.namespace,
                        },
                    }
                )
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": clusters,
            "users": users,
            "contexts": contexts,
            "current-context": contexts[0]["name"] if contexts else "",
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(Path(path), yaml.safe_dump(doc, sort_keys=False).encode(), mode=0o600)

    # -- control channel -------------------------------------------------------------------
    async def _control(self, req: Request) -> Response:
        if req.headers.get("x-sim-key") != self.control_key:
            return json_response(403, {"error": "bad control key"})
        op = req.path.strip("/")
        args: dict[str, Any] = msgspec.json.decode(req.body) if req.body else {}
        try:
            result = await self._apply(op, args)
        except (KeyError, ValueError, TypeError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return json_response(400, {"error": str(msg)})
        return json_response(200, {"ok": True, "result": result})

    def _cluster(self, args: dict[str, Any]) -> SimCluster:
        name = args.get("cluster")
        if name not in self.clusters:
            raise KeyError(f"no cluster named {name!r}; clusters: {', '.join(self.clusters)}")
        return self.clusters[str(name)]

    async def _apply(self, op: str, args: dict[str, Any]) -> Any:
        if op == "status":
            return {
                name: {
                    "port": self.servers[name].port,
                    "listening": self.servers[name].listening,
                    "faults": asdict(c.faults),
                    "nodes": len(c.store.objects["nodes"]),
                    "pods": len(c.store.objects["pods"]),
                    "resourceVersion": c.store.rv,
                }
                for name, c in self.clusters.items()
            }
        if op == "shutdown":
            self.done.set()
            return None
        cluster = self._cluster(args)
        name = cluster.spec.name
        if op == "requests":
            return list(cluster.requests)
        if op == "clear_requests":
            cluster.requests.clear()
            return None
        if op == "faults":
            changes = dict(args.get("faults") or {})
            result = cluster.set_faults(**changes)
            server = self.servers[name]
            if "down" in changes:
                if cluster.faults.down and server.listening:
                    await server.stop()
                elif not cluster.faults.down and not server.listening:
                    await server.start()
            server.blackhole = cluster.faults.blackhole
            (self.state_dir / "ttl" / str(cluster.index)).write_text(
                str(cluster.faults.token_ttl_s)
            )
            return result
        if op == "node":
            node = str(args["node"])
            action = args["action"]
            if action == "cordon":
                cluster.set_node(node, cordoned=True)
            elif action == "uncordon":
                cluster.set_node(node, cordoned=False)
            elif action == "not_ready":
                cluster.set_node(node, ready=False)
            elif action == "ready":
                cluster.set_node(node, ready=True)
            elif action == "remove":
                cluster.remove_node(node)
            else:
                raise ValueError(f"unknown node action {action!r}")
            return None
        if op == "preempt_node":
            return await cluster.nodelife.preempt(str(args["node"]))
        if op == "lose_node":
            cluster.node(str(args["node"]))
            cluster.nodelife.lose(str(args["node"]))
            return None
        if op == "add_nodes":
            return cluster.add_nodes(NodeGroup(**args["group"]))
        if op == "autoscaler":
            return cluster.autoscaler.configure(
                args.get("group"), int(args.get("max_nodes", 1)), float(args.get("delay_s", 1.0))
            )
        if op == "add_pods":
            return cluster.add_pods(PodGroup(**args["group"]))
        if op == "remove_pods":
            return cluster.remove_pods(args.get("namespace"), args.get("prefix"), args.get("count"))
        if op == "delete_pods":
            ns = str(args.get("namespace") or "default")
            gone = [cluster.delete_pod(ns, str(n), 0.0) for n in args.get("names") or ()]
            return [g["metadata"]["name"] for g in gone if g is not None]
        if op == "compact":
            cluster.store.compact()
            return cluster.store.rv
        if op == "mint_token":
            return self.minter.mint(
                str(args["user"]), list(args.get("groups") or []), args.get("ttl_s")
            )
        raise ValueError(f"unknown control op {op!r}")

    async def stop(self) -> None:
        for cluster in self.clusters.values():
            await cluster.stop()
        for server in self.servers.values():
            await server.stop()
        if self.control:
            await self.control.stop()


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


async def _amain(state_dir: Path) -> None:
    fleet = FleetProcess(state_dir)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, fleet.done.set)
    await fleet.start()
    try:
        await fleet.done.wait()
    finally:
        await fleet.stop()
        with contextlib.suppress(FileNotFoundError):
            (state_dir / "ready.json").unlink()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m skymagic.sim.serve STATE_DIR", file=sys.stderr)
        return 2
    asyncio.run(_amain(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
