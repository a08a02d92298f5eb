"""`skymagic sim up / status / down` as a user runs them: subprocesses, a background fleet,
state in SKYMAGIC_SIM_DIR (issue #2)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

SPEC = """\
clusters:
  - name: cli-a
    nodes: [{count: 2, name: gpu, gpu: H100, gpus: 8}]
    pods: [{count: 3, name: job, gpu: H100, gpus: 2, namespace: ml}]
  - name: cli-b
    auth: client-cert
    nodes: [{count: 1, name: cpu}]
"""


@pytest.fixture
def sim_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["SKYMAGIC_SIM_DIR"] = str(tmp_path / "sim")
    env["HOME"] = str(tmp_path / "home")
    env.pop("KUBECONFIG", None)
    (tmp_path / "home").mkdir()
    yield env
    # Always take the background fleet down, whatever the test did.
    subprocess.run(
        [sys.executable, "-m", "skymagic", "sim", "down"], env=env, timeout=60, check=False
    )


def sim(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skymagic", "sim", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def exported_kubeconfig(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("export KUBECONFIG=")]
    assert len(lines) == 1, stdout
    return lines[0].split("=", 1)[1]


def test_up_status_down_with_a_spec_and_kubeconfig_path(
    sim_env: dict[str, str], tmp_path: Path
) -> None:
    spec = tmp_path / "fleet.yaml"
    spec.write_text(SPEC)
    target = tmp_path / "out" / "fleet.kubeconfig"
    up = sim(sim_env, "up", str(spec), "--kubeconfig", str(target))
    assert up.returncode == 0, up.stderr
    assert exported_kubeconfig(up.stdout) == str(target)
    assert target.exists()
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    # The fleet outlives the `up` process: a client can use it now.
    for context, nodes in (("cli-a", 2), ("cli-b", 1)):
        api = config.new_client_from_config(config_file=str(target), context=context)
        assert len(client.CoreV1Api(api).list_node().items) == nodes
    pods = client.CoreV1Api(
        config.new_client_from_config(config_file=str(target), context="cli-a")
    ).list_namespaced_pod("ml")
    assert len(pods.items) == 3

    status = sim(sim_env, "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("cli-a: up on https://127.0.0.1:")
    assert "2 nodes, 3 pods" in lines[0]
    assert lines[1].startswith("cli-b: up on https://127.0.0.1:") and "1 nodes" in lines[1]
    assert exported_kubeconfig(status.stdout) == str(target)

    # A second `up` reuses the running fleet instead of starting another.
    again = sim(sim_env, "up", str(spec), "--kubeconfig", str(target))
    assert again.returncode == 0 and "already running" in again.stdout

    down = sim(sim_env, "down")
    assert down.returncode == 0 and down.stdout.strip() == "simulated fleet stopped"
    after = sim(sim_env, "status")
    assert after.returncode != 0
    assert "no simulated fleet is running" in (after.stdout + after.stderr)
    assert sim(sim_env, "down").stdout.strip() == "no simulated fleet is running"


def exported(stdout: str) -> dict[str, str]:
    """The `export NAME=VALUE` lines, read the way a shell would (values may be quoted)."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            (out[name],) = shlex.split(value)
    return out


def test_up_defaults_to_the_demo_fleet(sim_env: dict[str, str]) -> None:
    up = sim(sim_env, "up")
    assert up.returncode == 0, up.stderr
    kubeconfig = exported_kubeconfig(up.stdout)
    # a config of the fleet's own allows every context; the user's ~/.sky is untouched
    exports = exported(up.stdout)
    config_file = Path(exports["SKYPILOT_CONFIG"])
    assert config_file.parent == Path(sim_env["SKYMAGIC_SIM_DIR"])
    assert "allowed_contexts:" in config_file.read_text()
    assert not (Path(sim_env["HOME"]) / ".sky").exists()
    assert "%env SKYPILOT_CONFIG=" in up.stdout  # the notebook form too
    # what a newcomer then sees: every demo context enabled, in the fleet's order
    checked = subprocess.run(
        [sys.executable, "-m", "skymagic", "check", "-o", "json"],
        env={**sim_env, **exports},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert [(c["context"], c["enabled"]) for c in report["contexts"]] == [
        ("my-h100-cluster", True),
        ("gke_my-project_us-central2-b_my-tpu-cluster", True),
        ("my-a100-cluster", True),
    ]
    assert report["other_contexts"] == []
    assert kubeconfig == str(Path(sim_env["SKYMAGIC_SIM_DIR"]) / "kubeconfig")
    contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    assert [c["name"] for c in contexts] == [
        "my-h100-cluster",
        "gke_my-project_us-central2-b_my-tpu-cluster",
        "my-a100-cluster",
    ]
    assert current["name"] == "my-h100-cluster"
    status = sim(sim_env, "status")
    assert status.stdout.count(": up on https://127.0.0.1:") == 3
    assert sim(sim_env, "down").returncode == 0


def test_bad_spec_fails_with_one_line(sim_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("clusters:\n  - name: x\n    nodez: []\n")
    up = sim(sim_env, "up", str(spec))
    assert up.returncode != 0
    assert "unknown key 'nodez'" in up.stderr
    assert "Traceback" not in up.stderr
