"""The seed's `%%sky_launch` commands in a real IPython shell and a real notebook (demo fleet).

What a notebook user types, against their own copy of the demo fleet (launches change it):
Hello World on the H100 cluster with the plan shown first, a pinned TPU launch, `--dry-run`
returning the plan DataFrame, `%%sky_launch?` documenting every flag, bad flags as one-line
UsageErrors, and `--format` as the only way `{var}` gets expanded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from checkkit import fresh_clients
from conftest import write_sky_config
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

from skymagic.launches import LaunchResult, down, status
from skymagic.launches.plan import PLAN_COLUMNS
from skymagic.sim import Fleet

H100_CTX = "my-h100-cluster"
TPU_CTX = "gke_my-project_us-central2-b_my-tpu-cluster"
FLAGS = (
    "--gpus",
    "--cpus",
    "--memory",
    "--infra",
    "--image",
    "--env",
    "--ports",
    "--detach",
    "--dry-run",
    "--timeout",
    "--format",
)


@pytest.fixture
def demo(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Fleet:
    fleet = make_fleet("demo")
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    write_sky_config(isolated_env, "kubernetes:\n  allowed_contexts: all\n")
    return fleet


@pytest.fixture
def shell(ipshell: InteractiveShell, demo: Fleet) -> Iterator[InteractiveShell]:
    fresh_clients()
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    yield ipshell
    if not status(all_users=False).frame.empty:
        down([], all_mine=True)
    fresh_clients()


def test_hello_world_shows_the_plan_and_runs_on_the_h100_cluster(
    shell: InteractiveShell,
) -> None:
    with capture_output() as out:
        result = shell.run_cell_magic(
            "sky_launch", "--gpus H100 --infra k8s", "echo 'Hello World'\n"
        )
    assert isinstance(result, LaunchResult)
    assert result.context == H100_CTX and result.status == "Succeeded" and result.exit_code == 0
    text = out.stdout
    plan_at = text.index("Considered resources (1 node):")
    hello_at = text.index("Hello World")
    assert plan_at < hello_at  # the plan is shown before anything runs
    plan_lines = text[plan_at:hello_at].splitlines()
    chosen = [ln for ln in plan_lines if "✔" in ln]
    assert len(chosen) == 1 and f"Kubernetes ({H100_CTX})" in chosen[0]
    assert any("no such GPU: H100" in ln for ln in plan_lines)  # the TPU and A100 clusters
    assert shell.user_ns["_sky_launch"] is result


def test_pinned_tpu_launch_runs_there(shell: InteractiveShell) -> None:
    with capture_output() as out:
        result = shell.run_cell_magic(
            "sky_launch",
            f"tpu-job-1 --infra k8s/{TPU_CTX} --gpus tpu-v5-lite-podslice:4",
            "echo on $SKYMAGIC_CONTEXT\n",
        )
    assert result.context == TPU_CTX and result.status == "Succeeded"
    assert f"on {TPU_CTX}" in out.stdout
    assert result.plan is not None and [r.context for r in result.plan.rows] == [TPU_CTX]


def test_dry_run_returns_the_plan_dataframe(shell: InteractiveShell, demo: Fleet) -> None:
    demo.clear_requests()
    with capture_output():
        frame = shell.run_cell_magic("sky_launch", "--gpus H100:2 --dry-run", "python train.py")
    assert list(frame.columns) == PLAN_COLUMNS
    assert frame["INFRA"].tolist() == [f"Kubernetes ({c})" for c in demo.contexts]
    assert frame["CHOSEN"].tolist() == ["✔", "", ""]
    assert frame.loc[0, "INSTANCE"] == "8CPU--32GB--2H100" and frame.loc[0, "FREE"] == "4"
    for cluster in demo.clusters:
        assert not [r for r in demo.requests(cluster) if r.get("method") == "POST"]


def test_help_covers_every_flag(shell: InteractiveShell) -> None:
    doc = shell.find_cell_magic("sky_launch").__doc__ or ""
    for flag in FLAGS:
        assert flag in doc, f"%%sky_launch? does not document {flag}"
    assert doc.lstrip(": \n").startswith("%%sky_launch [--gpus GPUS]")
    assert "positional arguments:\n  name " in doc and "_sky_launch" in doc


@pytest.mark.parametrize(
    "line",
    ["--bogus", "--gpus", "--timeout 0", "--ports eighty", "--timeout soon"],
)
def test_bad_flags_are_usage_errors(shell: InteractiveShell, line: str) -> None:
    with pytest.raises(UsageError):
        shell.run_cell_magic("sky_launch", line, "echo hi\n")


def test_braces_expand_only_with_format(shell: InteractiveShell) -> None:
    shell.user_ns["greeting"] = "hi there"
    with capture_output() as plain:
        shell.run_cell_magic("sky_launch", "fmt-off", "echo '{greeting}'\n")
    assert "{greeting}" in plain.stdout
    with capture_output() as expanded:
        shell.run_cell_magic("sky_launch", "fmt-on --format", "echo '{greeting}'\n")
    assert "hi there" in expanded.stdout and "{greeting}" not in expanded.stdout
    with pytest.raises(UsageError, match="--format"):
        shell.run_cell_magic("sky_launch", "fmt-bad --format", "echo '{nowhere}'\n")


def test_notebook_runs_the_seed_launch_cell(
    demo: Fleet, isolated_env: Path, tmp_path: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    fails = {"tags": ["raises-exception"]}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext skymagic"),
        nbformat.v4.new_code_cell("%%sky_launch hello --gpus H100 --infra k8s\necho 'Hello World'"),
        nbformat.v4.new_code_cell("print(_sky_launch.status, _sky_launch.context)"),
        # a GPU nobody has, and a context that is not there: both fail the cell
        nbformat.v4.new_code_cell("%%sky_launch nobody --gpus H200:8\nnvidia-smi", metadata=fails),
        nbformat.v4.new_code_cell(
            "%%sky_launch pinned --gpus H100 --infra k8s/nowhere\necho hi", metadata=fails
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    env = {k: v for k, v in os.environ.items() if k != "SKYPILOT_CONFIG"}
    env.update(HOME=str(isolated_env), KUBECONFIG=demo.kubeconfig)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)

    outputs = nb.cells[1].outputs
    assert not [o for o in outputs if o["output_type"] == "error"]
    # The launch progress widget, as saved: its view plus static text/HTML of the final state,
    # and nothing else (no text result repeating it).
    (progress,) = outputs
    assert progress["output_type"] == "display_data"
    assert "application/vnd.jupyter.widget-view+json" in progress["data"]
    html = progress["data"]["text/html"]
    assert "Considered resources" in html and H100_CTX in html  # the plan
    plain = progress["data"]["text/plain"]
    assert plain.startswith("launch 'hello': succeeded in ")  # the header's final state
    assert f" s on {H100_CTX}\nConsidered resources" in plain  # then the plan
    assert f"[{H100_CTX}] finished" in plain  # the attempts, in order
    assert "log:\n  Hello World" in plain  # the live log
    assert "%sky_down hello" in plain  # what to do next
    assert nb.cells[2].outputs[0]["text"] == f"Succeeded {H100_CTX}\n"  # the handle is bound

    for index, name, why in (
        (3, "nobody", "failed: no such GPU: H200 (all 3 contexts)"),
        (4, "pinned", "failed: context 'nowhere': not in the kubeconfig"),
    ):
        outs = nb.cells[index].outputs
        (widget,) = [o for o in outs if o["output_type"] == "display_data"]
        assert widget["data"]["text/plain"].startswith(f"launch '{name}': {why}"), widget["data"]
        assert "color:#c8383a" in widget["data"]["text/html"]  # in red
        (error,) = [o for o in outs if o["output_type"] == "error"]  # and the cell fails
        assert error["ename"] in ("ProvisionFailedError", "ConfigError")
        assert not [o for o in outs if o["output_type"] == "execute_result"]
