"""Fake exec plugins at the process boundary, and a small real HTTPS server that records requests.

The plugin is a real executable Python script: its behaviour comes from behavior.json beside
it (read at each run, so a test can change it between runs); every run appends its pid to
runs.log and its inputs to last.json. Nothing inside skymagic is mocked.
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.entries import ResolvedContext
from skymagic.core.kubeconfig import load_kubeconfig

V1B1 = "client.authentication.k8s.io/v1beta1"
V1 = "client.authentication.k8s.io/v1"

PLUGIN = """#!{python}
import json, os, sys, time
from datetime import datetime, timedelta, timezone
here = {here!r}
beh = json.load(open(os.path.join(here, "behavior.json")))
with open(os.path.join(here, "runs.log"), "a") as f:
    f.write(str(os.getpid()) + "\\n")
n = len(open(os.path.join(here, "runs.log")).read().splitlines())
seen = {{
    "argv": sys.argv[1:],
    "info": json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "null")),
    "env": {{k: os.environ.get(k) for k in beh.get("show_env", [])}},
    "stdin": sys.stdin.read() if not sys.stdin.isatty() else "<tty>",
}}
with open(os.path.join(here, "last.json"), "w") as f:
    json.dump(seen, f)
if beh.get("stderr"):
    sys.stderr.write(beh["stderr"])
    sys.stderr.flush()
time.sleep(beh.get("sleep", 0))
if "stdout" in beh:
    sys.stdout.write(beh["stdout"])
    sys.exit(beh.get("exit", 0))
status = {{"token": beh.get("token_prefix", "tok-") + str(n)}}
if "expires_in" in beh:
    exp = datetime.now(timezone.utc) + timedelta(seconds=beh["expires_in"])
    status["expirationTimestamp"] = exp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
api_version = beh.get("apiVersion") or json.loads(os.environ["KUBERNETES_EXEC_INFO"])["apiVersion"]
print(json.dumps({{"apiVersion": api_version, "kind": "ExecCredential", "status": status}}))
sys.exit(beh.get("exit", 0))
"""


class FakePlugin:
    """One fake plugin executable in its own directory, put first on PATH."""

    def __init__(self, root: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = root / f"bin-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / name
        self.path.write_text(PLUGIN.format(python=sys.executable, here=str(self.dir)))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.behave()
        monkeypatch.setenv("PATH", f"{self.dir}{os.pathsep}{os.environ.get('PATH', '')}")

    def behave(self, **beh: Any) -> None:
        (self.dir / "behavior.json").write_text(json.dumps(beh))

    @property
    def pids(self) -> list[int]:
        log = self.dir / "runs.log"
        return [int(p) for p in log.read_text().split()] if log.exists() else []

    @property
    def runs(self) -> int:
        return len(self.pids)

    @property
    def seen(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "last.json").read_text())
        return data


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def kubeconfig(
    tmp_path: Path,
    *,
    users: dict[str, dict[str, Any]],
    clusters: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, tuple[str, str]] | None = None,
    name: str = "config",
) -> Path:
    """A kubeconfig file; contexts default to one per user on cluster "cl"."""
    clusters = clusters or {"cl": {"server": "https://k.example:6443"}}
    contexts = contexts or {u: ("cl", u) for u in users}
    doc = {
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [
            {"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()
        ],
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def resolved(
    tmp_path: Path,
    user: dict[str, Any],
    cluster: dict[str, Any] | None = None,
    name: str = "config",
) -> ResolvedContext:
    """The one context "ctx" of a fresh kubeconfig with this user (and cluster)."""
    path = kubeconfig(
        tmp_path,
        users={"u": user},
        clusters={"cl": cluster or {"server": "https://k.example:6443"}},
        contexts={"ctx": ("cl", "u")},
        name=name,
    )
    return load_kubeconfig([str(path)]).resolve("ctx")


# --------------------------------------------------------------------------- a recording server

Handler = Callable[[str, dict[str, list[str]]], tuple[int, dict[str, Any]]]


@contextmanager
def recording_server(
    handler: Handler, *, tls: bool = True
) -> Iterator[tuple[str, list[dict[str, Any]], bytes]]:
    """A threaded HTTP(S) server on 127.0.0.1: yields (base URL, request log, CA PEM).

    Each request's path and every header value (repeated headers kept) go into the log;
    ``handler(path, headers)`` gives the status and JSON body.
    """
    from skymagic.sim.certs import FleetCA

    log: list[dict[str, Any]] = []

    class _H(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers: dict[str, list[str]] = {}
            for k, v in self.headers.items():
                headers.setdefault(k.lower(), []).append(v)
            log.append({"method": self.command, "path": self.path, "headers": headers})
            code, body = handler(self.path, headers)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
    ca_pem = b""
    if tls:
        ca = FleetCA.create()
        cert, key = ca.issue_server_cert()
        ca_pem = ca.cert_pem
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        from skymagic.core.execplugin import load_cert_pair

        load_cert_pair(ctx, cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", log, ca_pem
    finally:
        server.shutdown()
        server.server_close()
