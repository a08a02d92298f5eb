"""Test-only helper: a plain-HTTP server that captures what the real kubectl sends.

It serves just enough legacy discovery (/api, /api/v1, /apis) for kubectl to resolve core
resources, records every request (method, path, headers, body) and answers a
SelfSubjectAccessReview with JSON `allowed: true`. Used to record tests/sim/data/ssar_*.bin
(run this file directly) and by a live test when kubectl is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

_API = {
    "kind": "APIVersions",
    "versions": ["v1"],
    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
}
_API_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {
            "name": n,
            "singularName": s,
            "namespaced": ns,
            "kind": k,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }
        for n, s, ns, k in [("pods", "pod", True, "Pod"), ("nodes", "node", False, "Node")]
    ]
    + [
        {
            "name": "pods/log",
            "singularName": "",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["get"],
        }
    ],
}
_APIS = {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


class Capture:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        cap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, obj: Any, code: int = 200) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                cap.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                return body

            def do_GET(self) -> None:
                self._record()
                path = self.path.split("?")[0]
                if path == "/api":
                    self._send(_API)
                elif path == "/api/v1":
                    self._send(_API_V1)
                elif path == "/apis":
                    self._send(_APIS)
                else:
                    self._send(
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                        },
                        404,
                    )

            def do_POST(self) -> None:
                self._record()
                self._send(
                    {
                        "kind": "SelfSubjectAccessReview",
                        "apiVersion": "authorization.k8s.io/v1",
                        "metadata": {},
                        "spec": {},
                        "status": {"allowed": True},
                    },
                    201,
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        port = self.server.server_address[1]
        with tempfile.TemporaryDirectory() as d:
            cfg = Path(d) / "config"
            cfg.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "cap",
                        "clusters": [
                            {"name": "cap", "cluster": {"server": f"http://127.0.0.1:{port}"}}
                        ],
                        "users": [{"name": "cap", "user": {"token": "capture"}}],
                        "contexts": [{"name": "cap", "context": {"cluster": "cap", "user": "cap"}}],
                    }
                )
            )
            env = {**os.environ, "HOME": d}
            return subprocess.run(
                [KUBECTL, "--kubeconfig", str(cfg), "--cache-dir", str(Path(d) / "cache"), *args],
                capture_output=True,
                check=False,
                text=True,
                timeout=60,
                env=env,
            )

    def ssar_bodies(self) -> list[bytes]:
        return [
            r["body"]
            for r in self.requests
            if r["method"] == "POST" and "selfsubjectaccessreviews" in r["path"]
        ]


CASES = {
    "ssar_list_pods_all_namespaces.bin": ["auth", "can-i", "list", "pods", "--all-namespaces"],
    "ssar_get_pods_log_team_a.bin": [
        "auth",
        "can-i",
        "get",
        "pods",
        "--subresource=log",
        "-n",
        "team-a",
    ],
    "ssar_nonresource_healthz.bin": ["auth", "can-i", "get", "/healthz"],
    "ssar_delete_pod_named.bin": ["auth", "can-i", "delete", "pod/web-1", "-n", "default"],
}


if __name__ == "__main__":
    out = Path(__file__).parent / "data"
    out.mkdir(exist_ok=True)
    for fname, args in CASES.items():
        with Capture() as cap:
            res = cap.kubectl(*args)
            bodies = cap.ssar_bodies()
            print(
                fname, res.returncode, res.stdout.strip(), res.stderr.strip()[:300], file=sys.stderr
            )
            if bodies:
                print(
                    " headers:",
                    next(r["headers"] for r in cap.requests if r["method"] == "POST"),
                    file=sys.stderr,
                )
                (out / fname).write_bytes(bodies[0])
