"""Attach with stdin reaches the pod's main process, as a kubelet's container runtime does it.

A container started with `stdin: true` keeps its stdin open for attach (containerd's
ContainerIO.Attach): every attach's stdin is written to it, and with `stdinOnce: true` the end
of the first attach's stdin closes it, so the process reads EOF. Without `stdin: true` the
process reads /dev/null and an attach's stdin goes nowhere (kubectl warns only about a tty).
Driven by the real kubectl (WebSocket v5 on `local`, SPDY on `spdy`) and the official client.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_kubectl
from kubernetes import client
from kubernetes.stream import stream
from kubernetes.stream.ws_client import WSClient
from simkit import api_client, kubectl, pod_manifest, wait_for

from skymagic.sim import Fleet

NODES = [{"count": 1, "name": "box", "cpu": 16, "memory_gb": 64}]
SPEC: dict[str, Any] = {
    "clusters": [
        {"name": "local", "runtime": "local", "pod_start_s": 0.05, "nodes": NODES},
        {"name": "spdy", "runtime": "local", "version": "v1.29.2", "pod_start_s": 0.05,
         "nodes": NODES},
    ]
}  # fmt: skip
ECHO = 'while read l; do echo "got:$l"; done; echo eof'


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


def v1(fleet: Fleet, context: str = "local") -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, context))


def running(api: client.CoreV1Api, name: str, script: str, **container: Any) -> str:
    body = pod_manifest(name, command=["sh", "-c", script])
    body["spec"]["containers"][0].update(container)
    api.create_namespaced_pod("default", body)
    wait_for(lambda: api.read_namespaced_pod(name, "default").status.phase == "Running", what=name)
    return name


def phase(api: client.CoreV1Api, name: str) -> str:
    return str(api.read_namespaced_pod(name, "default").status.phase)


def attach(api: client.CoreV1Api, name: str) -> WSClient:
    ws: WSClient = stream(
        api.connect_get_namespaced_pod_attach,
        name,
        "default",
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    return ws


def read_until(ws: WSClient, text: str, timeout: float = 10) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    while text not in out:
        assert time.monotonic() < deadline, f"no {text!r} from the attach; got {out!r}"
        ws.update(timeout=0.2)
        out += ws.read_stdout() if ws.peek_stdout() else ""
    return out


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("context", ["local", "spdy"])
def test_kubectl_attach_i_feeds_the_main_process_and_stdin_once_ends_it(
    fleet: Fleet, context: str
) -> None:
    api = v1(fleet, context)
    name = running(api, "reader", ECHO, stdin=True, stdinOnce=True)
    proc = kubectl(fleet, context, "attach", "-i", name, input="a\nb\n", timeout=60)
    # kubectl's stdin ended, so (stdinOnce) did the container's: the loop ended, then the pod.
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "got:a\ngot:b\neof\n"
    wait_for(lambda: phase(api, name) == "Succeeded", what="the pod to end after stdin's end")
    assert api.read_namespaced_pod_log(name, "default") == "got:a\ngot:b\neof\n"
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)


def test_official_client_attach_stdin_stays_open_between_attaches_without_stdin_once(
    fleet: Fleet,
) -> None:
    api = v1(fleet)
    name = running(api, "keeper", ECHO, stdin=True)
    first = attach(api, name)
    first.write_stdin("one\n")
    assert "got:one" in read_until(first, "got:one")
    first.close()  # the attach ends; the container's stdin does not (no stdinOnce)
    second = attach(api, name)
    second.write_stdin("two\n")
    assert "got:two" in read_until(second, "got:two")
    second.close()
    assert phase(api, name) == "Running"
    assert api.read_namespaced_pod_log(name, "default") == "got:one\ngot:two\n"
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)


def test_official_client_attach_with_stdin_once_ends_the_input_when_it_leaves(
    fleet: Fleet,
) -> None:
    api = v1(fleet)
    name = running(api, "once", ECHO, stdin=True, stdinOnce=True)
    ws = attach(api, name)
    ws.write_stdin("only\n")
    read_until(ws, "got:only")
    ws.close()  # the first attach's end closes the container's stdin: the loop reads EOF
    wait_for(lambda: phase(api, name) == "Succeeded", what="the pod to end after stdin's end")
    assert api.read_namespaced_pod_log(name, "default") == "got:only\neof\n"
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)


@needs_kubectl
@pytest.mark.kubectl
def test_attach_stdin_to_a_container_without_stdin_goes_nowhere(fleet: Fleet) -> None:
    api = v1(fleet)
    # The process reads only once kubectl's attach arrived: an attach only sees output from
    # its start, and kubectl starting late on a loaded machine would find the pod ended.
    script = (
        "while [ ! -e ~/go ]; do sleep 0.05; done; "
        'if read l; then echo "got:$l"; else echo "no stdin"; fi'
    )
    name = running(api, "deaf", script)
    attached: list[subprocess.CompletedProcess[str]] = []
    attacher = threading.Thread(
        target=lambda: attached.append(
            kubectl(fleet, "local", "attach", "-i", name, input="lost\n", timeout=60, check=False)
        ),
        daemon=True,
    )
    attacher.start()
    wait_for(
        lambda: [
            r for r in fleet.requests("local") if r.get("path", "").endswith(f"/{name}/attach")
        ],
        timeout=60,
        what="kubectl's attach request",
    )
    (Path(fleet.state_dir) / "clusters" / "0" / "pods" / f"default_{name}" / "go").touch()
    attacher.join(90)
    (proc,) = attached
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "no stdin\n"  # the process read /dev/null, as on a real node
    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
