"""Managed jobs through the magics, the command line and a notebook whose kernel goes away.

The fleet is `launchkit.jobs_spec` (clusters `a` and `b`, one H100:8 node each); every test has
its own jobs state directory and controller (`jobs_dir` stops it).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from jobskit import requests_to, wait_for
from launchkit import JOB_A, JOB_B, JOB_GPU_NODE, jobs_spec
from nbclient import NotebookClient

from skymagic import jobs
from skymagic.core.client import clear_clients
from skymagic.errors import ConfigError
from skymagic.jobs import JobStatus, process
from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet
from skymagic.ui.cli import main as cli

LONG_FIRST = """\
echo "attempt $SKYMAGIC_JOB_ATTEMPT in $SKYMAGIC_CONTEXT"
if [ "$SKYMAGIC_JOB_RECOVERIES" = 0 ]; then sleep 120; fi
echo finished
"""


@pytest.fixture
def fleet(
    make_fleet: Callable[..., Fleet],
    isolated_env: Path,
    jobs_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Fleet]:
    clear_clients()
    f = make_fleet(jobs_spec())
    monkeypatch.setenv("KUBECONFIG", f.kubeconfig)
    monkeypatch.setenv("SKYMAGIC_USER", "tester")
    sky = isolated_env / ".sky"
    sky.mkdir()
    (sky / "config.yaml").write_text(f"kubernetes:\n  allowed_contexts: [{JOB_A}, {JOB_B}]\n")
    yield f
    clear_clients()


def _job(name: str) -> jobs.Job:
    rec = [j for j in jobs.controller().jobs() if j.name == name][-1]
    return jobs.Job(rec.id, rec.name, jobs.controller())


# --- magics -----------------------------------------------------------------------------------


@pytest.fixture
def shell(ipshell: InteractiveShell) -> Iterator[InteractiveShell]:
    ipshell.run_line_magic("load_ext", "skymagic")
    yield ipshell
    ipshell.run_line_magic("unload_ext", "skymagic")


def test_cell_streams_the_log_and_returns_the_finished_job(
    fleet: Fleet, shell: InteractiveShell
) -> None:
    with capture_output() as out:
        job = shell.run_cell_magic(
            "sky_jobs_launch", "hello --gpus H100:8 --env GREETING=hi", 'echo "$GREETING from job"'
        )
    assert isinstance(job, jobs.Job) and shell.user_ns["_sky_job"] is job
    assert job.status == JobStatus.SUCCEEDED
    text = out.stdout
    assert "cancel the job with %sky_jobs_cancel hello" in text
    assert "attempt 1 on context 'a'" in text
    assert "hi from job" in text
    assert text.rstrip().endswith(f"[job {job.id}] SUCCEEDED")

    frame = shell.run_line_magic("sky_jobs_queue", "")
    assert frame.iloc[0]["name"] == "hello" and frame.iloc[0]["status"] == "SUCCEEDED"
    with capture_output() as out:
        shell.run_line_magic("sky_jobs_logs", "hello")
    assert "hi from job" in out.stdout


def test_interrupting_the_cell_leaves_the_job_running_then_cancel(
    fleet: Fleet, shell: InteractiveShell
) -> None:
    # The user presses Stop while the log streams (the job RUNNING, its first line printed):
    # SIGINT to this (the kernel's) process.
    def press_stop() -> None:
        wait_for(
            lambda: (
                any(j.status == JobStatus.RUNNING for j in jobs.controller().jobs())
                and "attempt 1" in "\n".join(jobs.logs("keeper"))
            ),
            what="the job streaming",
        )
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_stop, daemon=True)
    presser.start()
    with capture_output() as out:
        job = shell.run_cell_magic("sky_jobs_launch", "keeper --gpus H100:8", LONG_FIRST)
    presser.join()
    assert "stopped streaming; job 1 keeps running" in out.stdout
    assert "%sky_jobs_cancel keeper cancels it" in out.stdout
    assert job.status == JobStatus.RUNNING

    with capture_output() as out:
        cancelled = shell.run_line_magic("sky_jobs_cancel", "keeper")
    assert [c.id for c in cancelled] == [job.id]
    assert "cancelling job 1 (keeper)" in out.stdout
    assert job.wait(30) == JobStatus.CANCELLED


def test_dry_run_shows_the_plan_and_submits_nothing(fleet: Fleet, shell: InteractiveShell) -> None:
    body = "resources:\n  accelerators: H100:8\n  job_recovery: EAGER_NEXT_REGION\nrun: echo\n"
    frame = shell.run_cell_magic("sky_jobs_launch", "plan --dry-run", body)
    assert list(frame["INFRA"]) == [f"Kubernetes ({JOB_A})", f"Kubernetes ({JOB_B})"]
    assert jobs.queue().empty


# --- command line -----------------------------------------------------------------------------


def test_command_line(fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(
        "name: cli-job\nresources:\n  accelerators: H100:8\nrun: |\n  echo started\n  sleep 120\n"
    )
    assert cli(["jobs", "launch", str(task), "--detach"]) == 0
    assert "Managed job 1 (cli-job) submitted." in capsys.readouterr().out
    job = _job("cli-job")
    wait_for(lambda: job.status == JobStatus.RUNNING, what="RUNNING")

    assert cli(["jobs", "queue", "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "cli-job" and rows[0]["status"] == "RUNNING"
    assert rows[0]["context"] == JOB_A and rows[0]["submitted"]
    assert cli(["jobs", "queue"]) == 0
    assert "cli-job" in capsys.readouterr().out

    assert cli(["jobs", "controller", "status"]) == 0
    assert "jobs controller running (pid" in capsys.readouterr().out

    wait_for(lambda: "started" in "\n".join(jobs.logs("cli-job")), what="the log")
    assert cli(["jobs", "logs", "cli-job"]) == 0
    out = capsys.readouterr().out
    assert "attempt 1 on context 'a'" in out and "started" in out

    assert cli(["jobs", "cancel", "cli-job", "--wait", "30"]) == 0
    assert "cancelling job 1 (cli-job): CANCELLED" in capsys.readouterr().out
    assert cli(["jobs", "cancel"]) == 2
    assert cli(["jobs", "logs", "nosuchjob"]) == 1
    assert "no managed job named 'nosuchjob'" in capsys.readouterr().err

    assert cli(["jobs", "controller", "stop"]) == 0
    assert "jobs controller stopped" in capsys.readouterr().out
    assert cli(["jobs", "controller", "status"]) == 1


# --- %sky_down of a job's pod ---------------------------------------------------------------------


def test_down_refuses_a_managed_jobs_pod_unless_forced(
    fleet: Fleet, shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = jobs.launch(LONG_FIRST, gpus="H100:8", name="keep")
    wait_for(lambda: job.status == JobStatus.RUNNING, what="RUNNING")
    pod = job.record().launch_name
    fleet.clear_requests()

    # Named: refused before anything is deleted, naming the job and how to stop it.
    with pytest.raises(ConfigError) as info:
        shell.run_line_magic("sky_down", pod)
    message = str(info.value)
    assert f"'{pod}' is the pod of managed job {job.id}" in message
    assert f"`%sky_jobs_cancel {job.id}`" in message and "--force" in message
    assert "\n" not in message
    assert cli(["down", pod]) == 1
    assert f"`skymagic jobs cancel {job.id}`" in capsys.readouterr().err

    # --all stops the user's plain launches and keeps the job's pod.
    plain = launch_task(
        parse_task("sleep 120", name="plain", cpus="1"), controls=LaunchControls(detach=True)
    )
    assert isinstance(plain, LaunchResult) and plain.status == "Running"
    with capture_output() as out:
        deleted = shell.run_line_magic("sky_down", "--all")
    assert deleted.kept == [(pod, str(job.id))]
    assert {what for _ctx, kind, what in deleted if kind == "pod"} == {"default/plain"}
    assert f"kept {pod}: the pod of managed job {job.id}" in out.stdout
    time.sleep(1.0)
    assert not requests_to(fleet, JOB_A, "DELETE", f"/pods/{pod}")
    assert job.status == JobStatus.RUNNING and job.record().recoveries == 0

    # --force deletes it: to the controller a disruption, so the job recovers.
    assert cli(["down", pod, "--force"]) == 0
    assert f"deleted pod default/{pod}" in capsys.readouterr().out
    assert job.wait(30) == JobStatus.SUCCEEDED
    rec = job.record()
    assert rec.recoveries == 1 and "deleted by someone else" in rec.last_failure


# --- a notebook whose kernel goes away ----------------------------------------------------------


def test_a_job_launched_from_a_notebook_is_recovered_after_the_kernel_is_gone(
    fleet: Fleet, tmp_path: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext skymagic"),
        nbformat.v4.new_code_cell(
            f"%%sky_jobs_launch from-notebook --gpus H100:8 --detach\n{LONG_FIRST}"
        ),
        nbformat.v4.new_code_cell("import os; print('kernel', os.getpid())"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))  # the kernel is shut down when this returns
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    kernel_pid = int(nb.cells[2].outputs[0]["text"].split()[1])
    wait_for(lambda: not _alive(kernel_pid), what="the kernel gone", timeout=30)

    job = _job("from-notebook")
    wait_for(lambda: job.status == JobStatus.RUNNING, what="RUNNING")
    assert process.status().running  # the controller outlived the kernel that started it
    fleet.preempt_node(JOB_A, JOB_GPU_NODE)
    assert job.wait(30) == JobStatus.SUCCEEDED
    assert [a.context for a in job.ctl.attempts(job.id)] == [JOB_A, JOB_B]
    assert "attempt 2 in b" in "\n".join(jobs.logs("from-notebook"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
