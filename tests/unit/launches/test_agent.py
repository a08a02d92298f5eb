"""The pod entrypoint and the exec wrapper, run for real by /bin/sh in a temp HOME.

No fleet: the scripts are what a container runs, so a local shell is a faithful stand-in
(the simulator's `runtime: local` runs them the same way).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from skymagic.launches.agent import (
    LAUNCH_RUN,
    entrypoint,
    exec_wrapper,
    idle_note,
    setup_hash,
    stop_run,
)


def sh(command: list[str], home: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    return subprocess.run(
        command, env=env, cwd=home, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_a_task_pod_runs_setup_then_run_in_the_workdir_and_exits_with_its_code(
    tmp_path: Path,
) -> None:
    cmd = entrypoint(setup="echo s > ~/setup-ran", run="pwd; exit 3", wait_for_files=False,
                     idle_minutes=None)  # fmt: skip
    proc = sh(cmd, tmp_path)
    assert proc.returncode == 3
    assert proc.stdout.strip() == str(tmp_path / "sky_workdir")
    assert (tmp_path / "setup-ran").read_text() == "s\n"
    assert (tmp_path / ".sky" / "setup_hash").read_text().strip() == setup_hash(
        "echo s > ~/setup-ran"
    )


def test_a_failing_setup_stops_the_pod_before_run(tmp_path: Path) -> None:
    cmd = entrypoint(setup="exit 9", run="touch ~/ran", wait_for_files=False, idle_minutes=None)
    assert sh(cmd, tmp_path).returncode == 9
    assert not (tmp_path / "ran").exists()


def test_the_entrypoint_waits_for_the_files(tmp_path: Path) -> None:
    cmd = entrypoint(setup=None, run="cat data.txt", wait_for_files=True, idle_minutes=None)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting
    (tmp_path / "sky_workdir").mkdir(exist_ok=True)
    (tmp_path / "sky_workdir" / "data.txt").write_text("arrived\n")
    (tmp_path / ".sky" / "synced").touch()
    out, _ = proc.communicate(timeout=10)
    assert (proc.returncode, out) == (0, "arrived\n")


def test_autostop_exits_after_the_idle_time_and_activity_holds_it(tmp_path: Path) -> None:
    cmd = entrypoint(setup=None, run=None, wait_for_files=False, idle_minutes=2 / 60)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    t0 = time.monotonic()
    pod = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    # A command running through the wrapper for 4 s: longer than the idle limit.
    assert sh(exec_wrapper("sleep 4"), tmp_path).returncode == 0
    out, _ = pod.communicate(timeout=20)
    assert pod.returncode == 0 and "autostop" in out
    assert time.monotonic() - t0 >= 4 + 2  # not before the command ended plus 2 idle seconds


def test_the_wrapper_runs_setup_only_when_it_changed(tmp_path: Path) -> None:
    (tmp_path / "sky_workdir").mkdir()
    first = exec_wrapper("pwd", setup="echo 1 >> ~/count")
    assert sh(first, tmp_path).stdout.strip() == str(tmp_path / "sky_workdir")
    assert sh(first, tmp_path).returncode == 0
    assert (tmp_path / "count").read_text() == "1\n"
    changed = exec_wrapper("true", setup="echo 2 >> ~/count")
    proc = sh(changed, tmp_path)
    assert "setup changed" in proc.stderr
    assert (tmp_path / "count").read_text() == "1\n2\n"
    assert sh(exec_wrapper("exit 4"), tmp_path).returncode == 4
    assert not list((tmp_path / ".sky" / "sessions").iterdir())  # sessions closed


def test_idle_note() -> None:
    assert idle_note("1000\n880\n0\n", 5) == "idle 2m, stops in 3m"
    assert idle_note("1000\n100\n0\n", 5) == "idle 15m, stopping"
    assert idle_note("1000\n990\n2\n", 5) == "busy: 2 sessions open"
    assert idle_note("garbage", 5) == ""


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_stop_run_ends_the_run_and_everything_it_started_but_not_the_entrypoint(
    tmp_path: Path,
) -> None:
    run = 'sleep 600 & echo $! > ~/child.pid; sh -c "sleep 500; true" & echo $! > ~/grand.pid; wait'
    cmd = entrypoint(setup=None, run=run, wait_for_files=False, idle_minutes=1)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    pod = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "grand.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [int((tmp_path / f).read_text()) for f in ("child.pid", "grand.pid")]
        stop = sh(stop_run(LAUNCH_RUN), tmp_path)
        assert stop.returncode == 0 and stop.stdout.startswith("stopped: "), stop
        run_exit = tmp_path / ".sky" / "run_exit"
        while not run_exit.exists() and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert run_exit.read_text().strip() == "143"  # SIGTERM
        assert not any(_alive(p) for p in pids)
        assert pod.poll() is None  # with autostop the pod outlives its run
        assert sh(stop_run(LAUNCH_RUN), tmp_path).stdout == "not running\n"
    finally:
        pod.kill()
        pod.wait()


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    (tmp_path / "sky_workdir").mkdir()
    job = subprocess.Popen(
        exec_wrapper("trap '' TERM; echo up; sleep 600", run_id="r1"),
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert job.stdout is not None and job.stdout.readline() == "up\n"
    stop = sh(stop_run("r1", grace_s=0.5, why="rank 1 failed (exit code 3)"), tmp_path)
    assert stop.stdout.startswith("stopped: ")
    assert job.wait(timeout=10) == 137  # SIGKILL
    assert job.stdout.read() == "skymagic: stopped: rank 1 failed (exit code 3)\n"


def test_a_job_stopped_before_it_started_never_starts(tmp_path: Path) -> None:
    (tmp_path / "sky_workdir").mkdir()
    assert sh(stop_run("r2"), tmp_path).stdout == "not running\n"
    proc = sh(exec_wrapper("touch ~/ran", setup="touch ~/setup-ran", run_id="r2"), tmp_path)
    assert proc.returncode == 137
    assert proc.stdout == "skymagic: not started: stopped from outside\n"
    assert not (tmp_path / "ran").exists() and not (tmp_path / "setup-ran").exists()
    other = sh(exec_wrapper("echo other", run_id="r3"), tmp_path)  # another job is not affected
    assert (other.returncode, other.stdout) == (0, "other\n")
