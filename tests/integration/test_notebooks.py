"""The notebooks are executed documentation: each runs end to end in a real kernel (nbclient)
against the simulated fleet, and any error output fails the suite. README's main-job command
(`skymagic demo`) is exercised too, from a subprocess, as a newcomer would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from skymagic.ui.demo import NOTEBOOKS, find_notebook, run_notebook

REPO = Path(__file__).resolve().parents[2]


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for cell in nb.cells for o in cell.get("outputs", [])]


def text_of(nb: Any) -> str:
    parts = []
    for o in outputs(nb):
        if o.get("output_type") == "stream":
            parts.append(str(o.get("text", "")))
        for key in ("text/plain", "text/html"):
            if key in o.get("data", {}):
                parts.append(str(o["data"][key]))
    return "\n".join(parts)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No kubeconfig and no config: each notebook starts its own simulated fleet."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "KUBECONFIG": "", "SKYPILOT_CONFIG": "", "SKYMAGIC_USER": "nbtest"}


def test_notebooks_are_stored_without_outputs() -> None:
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(str(find_notebook(name)), as_version=4)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors(name: str, clean_env: dict[str, str]) -> None:
    nb = run_notebook(find_notebook(name), clean_env, timeout=300)
    errors = [o for o in outputs(nb) if o.get("output_type") == "error"]
    assert errors == [], (
        f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else ""
    )
    text = text_of(nb)
    if name == "quickstart.ipynb":
        assert "Allowed contexts" in text and "Kubernetes per-node GPU availability" in text
        assert "Considered resources" in text and "Hello World" in text
        # Failover: the full H100 cluster is skipped for a free one, with the reason shown.
        assert "none free now" in text
        assert "Hello World from gke_my-project_us-central2-b_my-tpu-cluster" in text
        assert "TPU job running in pod tpu-job" in text
        # A two-node launch: what would fit instead, then a gang whose ranks both report.
        assert "H100:8 x2 nodes fits nowhere now" in text and "L4:1 x2 nodes" in text
        assert "(rank=1) rank 1 of 2, master ddp.ddp-nodes:29500" in text
        assert "(rank=0) rank 0 of 2, master ddp.ddp-nodes:29500" in text
    elif name == "inventory-analysis.ipynb":
        assert "Cordoned" in text and "delta_free" in text
        assert any("image/png" in o.get("data", {}) for o in outputs(nb))
    elif name == "real-clusters.ipynb":
        assert "gke-gcloud-auth-plugin" in text and "`aws` was not found" in text
        assert "allowed context 'my-old-cluster' is not in the kubeconfig" in text
        assert "my-h100-cluster: enabled." in text
    else:
        assert name == "dev-pods-and-jobs.ipynb", f"{name}: say what its outputs must show"
        dev_pod_and_job_story(text)


def dev_pod_and_job_story(text: str) -> None:
    """What the dev-pod and managed-job notebook must show, in order of its story."""
    # The workdir arrives in the pod, a re-run sends only the changed file and runs there.
    assert "my-h100-cluster: sent 2 changed file(s)" in text and "(0 unchanged)" in text
    assert "train.py: 100 rows in data.csv, the last one 99,0.0100" in text  # %%sky_exec
    assert "my-h100-cluster: sent 1 changed file(s)" in text and "(1 unchanged)" in text
    assert "'dev' is already running in my-h100-cluster: running the new body there" in text
    assert "train.py: 150 rows in data.csv, the last one 149,0.0067" in text
    # The pod's web server answers through the kernel's port-forward; status shows it.
    assert "150 rows; the last: 149,0.0067" in text
    assert re.search(r"idle \d+s, stops in (29|30)m", text), "no autostop in %sky_status"
    # The managed job: preempted on my-h100-cluster, recovered on the next context.
    gke = "gke_my-project_us-central2-b_my-tpu-cluster"
    # Every status change is printed, from the job's history: a short RECOVERING included.
    assert "job train: RUNNING    attempt 1 in my-h100-cluster" in text
    assert "job train: RECOVERING Terminated: Pod was terminated" in text
    assert f"job train: RUNNING    attempt 2 in {gke}" in text
    assert f"recovered from my-h100-cluster to {gke} after 1 recovery: Terminated" in text
    first = text.index("attempt 1 on context 'my-h100-cluster'")
    ended = text.index("=== attempt 1 ended", first)
    second = text.index(f"attempt 2 on context '{gke}'", ended)
    assert "step 2" in text[first:ended] and "step 2" in text[second:]
    assert f"attempt 2 on {gke}, recoveries so far: 1" in text
    assert "job train: CANCELLED" in text
    assert "jobs controller stopped: True" in text


def test_readme_main_command_runs_the_quickstart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SKYPILOT_CONFIG")}
    env["HOME"] = str(tmp_path)
    out_dir = tmp_path / "rendered"
    proc = subprocess.run(
        [sys.executable, "-m", "skymagic", "demo", "--output-dir", str(out_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = out_dir / "quickstart.html"
    assert html.exists() and "Hello World" in html.read_text()
    assert f"Rendered quickstart: {html}" in proc.stdout
    # The key tables are printed to the terminal too.
    assert "Allowed contexts:" in proc.stdout and "Considered resources" in proc.stdout
