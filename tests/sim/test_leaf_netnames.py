"""The local runtime's cluster-DNS answers (sim/netnames.py), from store events on plain dicts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from skymagic.sim.netnames import NameTable, local_pod_ip, names_env


def pod(name: str, ip: str | None, phase: str = "Running", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": name, "labels": labels},
        "spec": {"hostname": name, "subdomain": "job-nodes"},
        "status": {"phase": phase, **({"podIP": ip} if ip else {})},
    }


def headless(name: str, **selector: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": name},
        "spec": {"clusterIP": "None", "selector": selector},
    }


def test_rank_names_appear_with_their_ip_and_go_when_the_pod_finishes(tmp_path: Path) -> None:
    table = NameTable(tmp_path)
    table.on_change("pods", "ADDED", pod("job", "127.100.0.2", app="job"))
    assert table.path.read_text() == ""  # no headless Service named job-nodes yet
    table.on_change("services", "ADDED", headless("job-nodes", app="job"))
    table.on_change("pods", "MODIFIED", pod("job-1", "127.100.0.3", app="job"))
    lines = table.path.read_text().splitlines()
    assert lines[:2] == [
        "127.100.0.2 job.job-nodes job.job-nodes.default.svc job.job-nodes.default.svc.cluster.local",
        "127.100.0.3 job-1.job-nodes job-1.job-nodes.default.svc "
        "job-1.job-nodes.default.svc.cluster.local",
    ]
    assert lines[2].startswith("127.100.0.2 job-nodes job-nodes.default.svc")
    table.on_change("pods", "MODIFIED", pod("job", "127.100.0.2", phase="Succeeded", app="job"))
    assert "job.job-nodes " not in table.path.read_text()
    table.on_change("services", "DELETED", headless("job-nodes", app="job"))
    assert table.path.read_text() == ""


def test_getent_and_python_in_a_local_pod_honour_the_file(tmp_path: Path) -> None:
    table = NameTable(tmp_path)
    table.on_change("services", "ADDED", headless("job-nodes", app="job"))
    table.on_change("pods", "ADDED", pod("job", "127.100.0.9", app="job"))
    env = names_env(tmp_path, "/usr/bin:/bin")
    getent = subprocess.run(
        ["getent", "hosts", "job.job-nodes"], env=env, capture_output=True, text=True, check=True
    )
    assert getent.stdout.split()[0] == "127.100.0.9"
    py = subprocess.run(
        ["python3", "-c", "import socket; print(socket.gethostbyname('job.job-nodes'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert py.stdout.strip() == "127.100.0.9"
    missing = subprocess.run(
        ["getent", "hosts", "nope.job-nodes"], env=env, capture_output=True, check=False
    )
    assert missing.returncode != 0  # handed to the system's getent, which knows no such name


def test_local_pod_ips_are_distinct_loopback_addresses() -> None:
    ips = {local_pod_ip(3, n) for n in range(2, 1000)}
    assert len(ips) == 998 and all(ip.startswith("127.103.") for ip in ips)
