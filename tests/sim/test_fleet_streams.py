"""Exec, attach and port-forward on the simulated fleet (issue #14, simulator side): the
official client's `kubernetes.stream` and the real kubectl over WebSocket and SPDY.

Cluster `local` reports v1.31 (gcloud's kubectl dispatcher then runs kubectl 1.31: exec over
WebSocket v5, port-forward as SPDY tunnelled in WebSocket); cluster `spdy` reports v1.29
(kubectl 1.29: SPDY for everything); `sim` runs nothing and answers exec from its rules.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_kubectl
from kubernetes import client
from kubernetes.stream import portforward, stream
from kubernetes.stream.ws_client import WSClient
from simkit import api_client, kubectl, pod_manifest, raw, wait_for

from skymagic.sim import Fleet
from skymagic.sim.podexec import set_winsize

NODES = [{"count": 1, "name": "box", "cpu": 16, "memory_gb": 64}]
RBAC = [
    # alice may do anything with pods but not exec, attach or port-forward into them.
    {"user": "alice", "rules": [{"verbs": ["*"], "resources": ["pods", "pods/log"]}]},
    # bob may `get` pods/exec (what a WebSocket GET asked for before 1.35) but not `create`.
    {
        "user": "bob",
        "rules": [
            {"verbs": ["get", "list"], "resources": ["pods"]},
            {"verbs": ["get"], "resources": ["pods/exec"]},
        ],
    },
    # carol may exec.
    {
        "user": "carol",
        "rules": [
            {"verbs": ["get", "list"], "resources": ["pods"]},
            {"verbs": ["get", "create"], "resources": ["pods/exec"]},
        ],
    },
]
SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "local",
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": NODES,
            "users": [
                {"name": u, "context": f"local-{u}", "auth": "token"}
                for u in ("alice", "bob", "carol")
            ],
            "rbac": RBAC,
        },
        {"name": "spdy", "runtime": "local", "version": "v1.29.2", "pod_start_s": 0.05,
         "nodes": NODES},
        {
            "name": "sim",
            "runtime": "simulate",
            "pod_start_s": 0.05,
            "nodes": NODES,
            "exec": [
                {"match": "nvidia-smi -L", "stdout": "GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)\n"},
                {"match": "sh -c 'exit [0-9]+'", "stderr": "bye\n", "exit_code": 9},
            ],
        },
    ]
}  # fmt: skip
BOTH = ("local", "spdy")
SERVER = (
    "echo hello from $HOSTNAME > index.html; "
    f'exec {sys.executable} -u -m http.server "$PORT_8080" --bind 127.0.0.1'
)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


def v1(fleet: Fleet, context: str = "local") -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, context))


def running(api: client.CoreV1Api, body: dict[str, Any], ns: str = "default") -> str:
    name = body["metadata"]["name"]
    api.create_namespaced_pod(ns, body)
    wait_for(lambda: api.read_namespaced_pod(name, ns).status.phase == "Running", what=name)
    return name


@pytest.fixture(scope="module")
def box(fleet: Fleet) -> str:
    """A long-running pod named `box` in every cluster."""
    for context in ("local", "spdy", "sim"):
        body = pod_manifest("box", command=["sleep", "infinity"])
        body["spec"]["containers"][0]["env"] = [{"name": "GREETING", "value": "hi there"}]
        running(v1(fleet, context), body)
    return "box"


@pytest.fixture(scope="module")
def web(fleet: Fleet) -> str:
    """A pod `web` serving HTTP on its declared port 8080 (local runtime: on $PORT_8080)."""
    for context in ("local", "spdy", "sim"):
        # (a simulated pod runs for default_duration_s unless told otherwise)
        forever = {"sim.skymagic.dev/duration": "inf"}
        body = pod_manifest("web", command=["sh", "-c", SERVER], annotations=forever)
        body["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}]
        api = v1(fleet, context)
        running(api, body)
        if context != "sim":
            wait_for(
                lambda api=api: "Serving HTTP" in api.read_namespaced_pod_log("web", "default"),
                what="the web server to listen",
            )
    return "web"


def ws_exec(api: client.CoreV1Api, pod: str, command: list[str], **kw: Any) -> WSClient:
    opts = {"stderr": True, "stdin": False, "stdout": True, "tty": False, **kw}
    ws: WSClient = stream(
        api.connect_get_namespaced_pod_exec,
        pod,
        "default",
        command=command,
        _preload_content=False,
        **opts,
    )
    return ws


def finish(ws: WSClient, timeout: float = 10) -> tuple[str, str, dict[str, Any]]:
    """Run to the end: (stdout, stderr, the error channel's Status)."""
    ws.run_forever(timeout=timeout)
    assert not ws.is_open(), "the server did not end the session"
    out, err = ws.read_channel(1), ws.read_channel(2)
    status = json.loads(ws.peek_channel(3))  # left for ws.returncode
    return out, err, status


# -- the official client ------------------------------------------------------------------


def test_exec_stdout_stderr_and_success(fleet: Fleet, box: str) -> None:
    api = v1(fleet)
    out = stream(
        api.connect_get_namespaced_pod_exec,
        box,
        "default",
        command=["sh", "-c", "echo out; echo err >&2"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert sorted(out.splitlines()) == ["err", "out"]
    ws = ws_exec(api, box, ["sh", "-c", "printf 'a\\nb'; printf oops >&2"])
    assert ws.subprotocol == "v5.channel.k8s.io"
    out, err, status = finish(ws)
    assert (out, err) == ("a\nb", "oops")
    assert status == {"metadata": {}, "status": "Success"}
    assert ws.returncode == 0


def test_exec_exit_code_is_the_kubelet_status(fleet: Fleet, box: str) -> None:
    ws = ws_exec(v1(fleet), box, ["sh", "-c", "exit 3"])
    _, _, status = finish(ws)
    assert status == {
        "metadata": {},
        "status": "Failure",
        # v5 goes through the API server's stream translator, which words it so.
        "message": "command terminated with non-zero exit code: command terminated with exit "
        "code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    assert ws.returncode == 3
    # Death by a signal is 128 + its number, as a container runtime reports it.
    _, _, status = finish(ws_exec(v1(fleet), box, ["sh", "-c", "kill -9 $$"]))
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


def test_exec_v4_protocol_gets_the_kubelet_wording(fleet: Fleet, box: str) -> None:
    api = api_client(fleet, "local")
    headers = {"sec-websocket-protocol": "v4.channel.k8s.io"}
    ws = _raw_ws(api, box, ["sh", "-c", "echo x; exit 4"], headers)
    assert ws.subprotocol == "v4.channel.k8s.io"
    out, _, status = finish(ws)
    assert out == "x\n"
    assert status["message"] == (
        "command terminated with non-zero exit code: error executing command "
        "[sh -c echo x; exit 4], exit code 4"
    )
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


def _raw_ws(
    api: client.ApiClient, pod: str, command: list[str], headers: dict[str, str]
) -> WSClient:
    from kubernetes.stream.ws_client import get_websocket_url

    cfg = api.configuration
    query = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "true")]
    url = get_websocket_url(f"{cfg.host}/api/v1/namespaces/default/pods/{pod}/exec", query)
    auth = cfg.auth_settings()["BearerToken"]["value"]
    return WSClient(cfg, url, {"authorization": auth, **headers}, capture_all=True)


def test_exec_stdin_round_trip_with_close_signal(fleet: Fleet, box: str) -> None:
    payload = os.urandom(300_000)
    ws = ws_exec(v1(fleet), box, ["sh", "-c", "cat > got.bin; wc -c < got.bin"], stdin=True)
    ws.write_stdin(payload)
    ws.close_channel(0)  # v5: end of stdin, so `cat` ends
    out, err, status = finish(ws)
    assert (out.strip(), err, status["status"]) == (str(len(payload)), "", "Success")
    pod_dir = Path(fleet.state_dir) / "clusters" / "0" / "pods" / "default_box"
    assert (pod_dir / "got.bin").read_bytes() == payload


def test_exec_runs_in_the_pod_home_with_the_pod_env(fleet: Fleet, box: str, web: str) -> None:
    api = v1(fleet)
    out, _, _ = finish(ws_exec(api, box, ["sh", "-c", 'pwd; echo "$HOME|$GREETING|$HOSTNAME"']))
    cwd, env = out.splitlines()
    assert cwd.endswith("/pods/default_box")
    assert env == f"{cwd}|hi there|box"
    # A declared containerPort is a loopback port of the pod's own, in its environment.
    out, _, _ = finish(ws_exec(api, web, ["sh", "-c", "echo $PORT_8080"]))
    assert 1024 < int(out) < 65536


def test_exec_tty_and_resize(fleet: Fleet, box: str) -> None:
    ws = ws_exec(v1(fleet), box, ["sh"], stdin=True, tty=True, stderr=False)
    ws.write_channel(4, json.dumps({"Width": 123, "Height": 45}))
    ws.write_stdin("tty; stty size; echo $TERM; exit 6\n")
    out, _, status = finish(ws)
    assert "/dev/pts/" in out and "45 123" in out and "xterm" in out
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "6"}]


def test_exec_of_a_missing_command_is_an_internal_error(fleet: Fleet, box: str) -> None:
    _, _, status = finish(ws_exec(v1(fleet), box, ["no-such-cmd", "x"]))
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert 'exec: "no-such-cmd": executable file not found in $PATH' in status["message"]


def test_exec_processes_die_with_their_pod(fleet: Fleet) -> None:
    api = v1(fleet)
    name = running(api, pod_manifest("short", command=["sleep", "infinity"]))
    # The background child keeps stdout open: the session still ends soon after sh exits.
    started = time.monotonic()
    out, _, status = finish(ws_exec(api, name, ["sh", "-c", "sleep 300 & echo $!"]))
    assert status["status"] == "Success" and time.monotonic() - started < 8
    pid = int(out)
    os.kill(pid, 0)  # still running after the client left, as in a real container
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, what="the exec'd process to die with its pod")


def test_attach_follows_the_container_output(fleet: Fleet) -> None:
    api = v1(fleet)
    script = "sleep 0.5; for i in 1 2 3; do echo tick $i; sleep 0.2; done"
    name = running(api, pod_manifest("ticker", command=["sh", "-c", script]))
    ws: WSClient = stream(
        api.connect_get_namespaced_pod_attach,
        name,
        "default",
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    out, _, status = finish(ws)
    assert out == "tick 1\ntick 2\ntick 3\n"
    assert status == {"metadata": {}, "status": "Success"}


def test_simulated_pods_answer_from_the_spec(fleet: Fleet, box: str) -> None:
    api = v1(fleet, "sim")
    out, err, status = finish(ws_exec(api, box, ["nvidia-smi", "-L"]))
    assert (out, err, status["status"]) == (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)\n",
        "",
        "Success",
    )
    out, err, status = finish(ws_exec(api, box, ["sh", "-c", "exit 1"]))
    assert (out, err) == ("", "bye\n")
    assert status["details"]["causes"][0]["message"] == "9"
    out, _, status = finish(ws_exec(api, box, ["echo", "a", "b"]))
    assert (out, status["status"]) == ("a b\n", "Success")
    ws = ws_exec(api, box, ["cat"], stdin=True)
    ws.write_stdin(b"echoed back")
    ws.close_channel(0)
    out, _, status = finish(ws)
    assert (out, status["status"]) == ("echoed back", "Success")
    out, err, status = finish(ws_exec(api, box, ["python", "train.py"]))
    assert "nothing runs 'python train.py' here" in err
    assert status["details"]["causes"][0]["message"] == "127"


def _get_through(pf: Any, port: int, path: str = "/index.html") -> bytes:
    sock = pf.socket(port)
    sock.settimeout(10)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_portforward_reaches_the_pod_server(fleet: Fleet, web: str) -> None:
    api = v1(fleet)
    pf = portforward(api.connect_get_namespaced_pod_portforward, web, "default", ports="8080")
    reply = _get_through(pf, 8080)
    assert reply.startswith(b"HTTP/1.0 200 OK") and reply.endswith(b"hello from web\n")
    assert pf.error(8080) is None
    # A simulated pod's declared port answers with a page of its own.
    pf = portforward(
        v1(fleet, "sim").connect_get_namespaced_pod_portforward, web, "default", ports="8080"
    )
    assert _get_through(pf, 8080).endswith(b"simulated pod web: port 8080\n")


def test_portforward_to_a_closed_port_reports_the_kubelet_error(fleet: Fleet, box: str) -> None:
    port = _free_port()
    pf = portforward(
        v1(fleet).connect_get_namespaced_pod_portforward, box, "default", ports=str(port)
    )
    sock = pf.socket(port)
    sock.settimeout(10)
    assert sock.recv(10) == b""
    uid = v1(fleet).read_namespaced_pod(box, "default").metadata.uid
    assert pf.error(port) == (
        f"error forwarding port {port} to pod box_default, uid {uid}: failed to connect to "
        f"localhost:{port} inside the pod: dial tcp4 127.0.0.1:{port}: connect: connection "
        "refused"
    )


# -- refusals before the upgrade -----------------------------------------------------------


def test_errors_before_the_upgrade_are_status_objects(fleet: Fleet, box: str) -> None:
    api = api_client(fleet, "local")
    path = "/api/v1/namespaces/default/pods/{}/exec"
    code, body, _ = raw(api, "GET", path.format("nope"), {"command": "true"})
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'pods "nope" not found')
    code, body, _ = raw(api, "GET", path.format(box), {"command": "true"})
    assert (code, body["message"]) == (400, "Upgrade request required")
    code, body, _ = raw(api, "GET", path.format(box), {"command": "true", "container": "x"})
    assert (code, body["message"]) == (400, "container x is not valid for pod box")
    code, body, _ = raw(api, "GET", path.format(box), {"stdout": "true"})
    assert code == 400 and "at least 1 command" in body["message"]
    core = v1(fleet)
    pending = pod_manifest("stuck", node_selector={"no-such": "label"})
    core.create_namespaced_pod("default", pending)
    code, body, _ = raw(api, "GET", path.format("stuck"), {"command": "true"})
    assert (code, body["message"]) == (400, "pod stuck does not have a host assigned")
    done = pod_manifest("done", command=["true"])
    core.create_namespaced_pod("default", done)
    wait_for(lambda: core.read_namespaced_pod("done", "default").status.phase == "Succeeded")
    code, body, _ = raw(api, "GET", path.format("done"), {"command": "true"})
    assert (code, body["message"]) == (
        400,
        "cannot exec into a container in a completed pod; current phase is Succeeded",
    )


def test_rbac_guards_exec_attach_and_portforward(fleet: Fleet, box: str) -> None:
    path = f"/api/v1/namespaces/default/pods/{box}/"
    alice = api_client(fleet, "local-alice")
    for sub, query in (("exec", {"command": "true"}), ("attach", {}), ("portforward", {})):
        code, body, _ = raw(alice, "POST", path + sub, query)
        assert code == 403, (sub, body)
        assert body["message"] == (
            f'pods "box" is forbidden: User "alice" cannot create resource "pods/{sub}" in API '
            'group "" in the namespace "default"'
        )
    # `get` on pods/exec is not enough for a WebSocket GET: it needs `create` too.
    bob = api_client(fleet, "local-bob")
    code, body, _ = raw(bob, "GET", path + "exec", {"command": "true"})
    assert code == 403 and 'cannot create resource "pods/exec"' in body["message"]
    carol = client.CoreV1Api(api_client(fleet, "local-carol"))
    _, _, status = finish(ws_exec(carol, box, ["true"]))
    assert status["status"] == "Success"
    code, body, _ = raw(api_client(fleet, "local-carol"), "POST", path + "portforward")
    assert code == 403


def test_discovery_lists_the_stream_subresources(fleet: Fleet) -> None:
    _, body, _ = raw(api_client(fleet, "local"), "GET", "/api/v1")
    found = {r["name"]: r for r in body["resources"]}
    for sub, kind in (("exec", "PodExecOptions"), ("attach", "PodAttachOptions")):
        assert found[f"pods/{sub}"]["kind"] == kind
        assert found[f"pods/{sub}"]["verbs"] == ["create", "get"]
    assert found["pods/portforward"]["kind"] == "PodPortForwardOptions"


# -- the real kubectl ----------------------------------------------------------------------


def kubectl_argv(fleet: Fleet, context: str) -> list[str]:
    cache = str(fleet.state_dir / "kubectl-cache")
    return ["kubectl", "--kubeconfig", fleet.kubeconfig, "--context", context, "--cache-dir", cache]


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", BOTH)
def test_kubectl_exec(fleet: Fleet, box: str, context: str) -> None:
    proc = kubectl(fleet, context, "exec", box, "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                   check=False)  # fmt: skip
    assert (proc.returncode, proc.stdout) == (7, "out\n")
    assert proc.stderr == "err\ncommand terminated with exit code 7\n"
    assert kubectl(fleet, context, "exec", box, "--", "true").returncode == 0
    protocol = "GET" if context == "local" else "POST"  # WebSocket upgrade, or SPDY
    execs = [r for r in fleet.requests(context) if r.get("path", "").endswith("/exec")]
    assert execs[-1]["method"] == protocol and execs[-1]["code"] == 101


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", BOTH)
def test_kubectl_exec_stdin(fleet: Fleet, box: str, context: str) -> None:
    payload = os.urandom(1_000_000)
    proc = subprocess.run(
        [*kubectl_argv(fleet, context), "exec", "-i", box, "--", "sh", "-c", "cat; cat >&2"],
        input=payload + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout == payload + b"\n"


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", BOTH)
def test_kubectl_exec_tty(fleet: Fleet, box: str, context: str) -> None:
    master, slave = pty.openpty()
    set_winsize(slave, 101, 33)
    proc = subprocess.Popen(
        [*kubectl_argv(fleet, context), "exec", "-it", box, "--", "sh"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float = 20) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {seen!r}"
            if select.select([master], [], [], left)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk

    try:
        read_until(b"# " if os.geteuid() == 0 else b"$ ")
        os.write(master, b"tty; stty size; echo T=$TERM; exit 5\r")
        read_until(b"exit code 5")
        assert proc.wait(timeout=20) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert "/dev/pts/" in text and "33 101" in text and "T=xterm" in text


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", BOTH)
def test_kubectl_cp_both_ways(fleet: Fleet, box: str, context: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "nested" / "deeper" / "blob.bin").write_bytes(os.urandom(3_000_000))
    (src / "ünïcødé name.txt").write_text("héllo\n", encoding="utf-8")
    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "run.sh").chmod(0o755)
    dest = f"cp-{uuid.uuid4().hex[:6]}"
    kubectl(fleet, context, "cp", str(src), f"{box}:{dest}", timeout=60)
    out = kubectl(fleet, context, "exec", box, "--", "sh", "-c", f"./{dest}/run.sh").stdout
    assert out == "ran\n"
    back = tmp_path / "back"
    kubectl(fleet, context, "cp", f"{box}:{dest}", str(back), timeout=60)
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file())
    for rel in files:
        assert (back / rel).read_bytes() == (src / rel).read_bytes(), rel


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", BOTH)
def test_kubectl_port_forward(fleet: Fleet, web: str, context: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*kubectl_argv(fleet, context), "port-forward", f"pod/{web}", f"{port}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(b"Forwarding from 127.0.0.1:"), line
        for _ in range(3):  # one SPDY connection, a stream pair per request
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
                assert r.read() == b"hello from web\n"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert b"error" not in err.lower(), err
    forwards = [r for r in fleet.requests(context) if r.get("path", "").endswith("/portforward")]
    assert forwards[-1]["code"] == 101
    assert forwards[-1]["method"] == ("GET" if context == "local" else "POST")


@needs_kubectl
@pytest.mark.kubectl
def test_kubectl_attach_and_auth_can_i(fleet: Fleet) -> None:
    api = v1(fleet)
    script = "sleep 1; echo one; sleep 0.2; echo two"
    name = running(api, pod_manifest("talker", command=["sh", "-c", script]))
    proc = kubectl(fleet, "local", "attach", name, timeout=30)
    assert proc.stdout == "one\ntwo\n"
    for user, answer in (("alice", "no"), ("bob", "no"), ("carol", "yes")):
        proc = kubectl(fleet, f"local-{user}", "auth", "can-i", "create", "pods",
                       "--subresource=exec", check=False)  # fmt: skip
        assert proc.stdout.strip() == answer, user
    proc = kubectl(fleet, "local-alice", "exec", "box", "--", "true", check=False)
    assert proc.returncode == 1
    assert 'User "alice" cannot create resource "pods/exec"' in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_pod(api: client.CoreV1Api, name: str) -> str:
    body = pod_manifest(name, command=["sh", "-c", SERVER])
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    running(api, body)
    wait_for(
        lambda: "Serving HTTP" in api.read_namespaced_pod_log(name, "default"),
        what="the web server to listen",
    )
    return name


def test_streams_end_with_their_pod(fleet: Fleet) -> None:
    api = v1(fleet)
    name = _server_pod(api, "doomed")
    pf = portforward(api.connect_get_namespaced_pod_portforward, name, "default", ports="8080")
    pf.socket(8080).settimeout(10)
    time.sleep(0.3)
    assert pf.connected  # an idle forward stays open
    sim = v1(fleet, "sim")
    running(sim, pod_manifest("doomed", command=["sleep", "infinity"]))
    waiting = ws_exec(sim, "doomed", ["cat"], stdin=True)  # waits for stdin forever
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    sim.delete_namespaced_pod("doomed", "default", grace_period_seconds=0)
    wait_for(lambda: not pf.connected, what="the port-forward to end with its pod")
    _, _, status = finish(waiting)
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


@needs_kubectl
@pytest.mark.kubectl
def test_kubectl_port_forward_ends_with_the_pod(fleet: Fleet) -> None:
    api = v1(fleet)
    name = _server_pod(api, "brief")
    port = _free_port()
    proc = subprocess.Popen(
        [*kubectl_argv(fleet, "local"), "port-forward", f"pod/{name}", f"{port}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"Forwarding from")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
            assert r.read() == b"hello from brief\n"
        api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
        assert proc.wait(timeout=20) == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
    assert b"lost connection to pod" in err, err
