"""Working on a multi-node launch against the simulated fleet (runtime: local, real HTTPS, exec).

A gang's workdir and file_mounts reach every rank before its run; `%%sky_exec NAME` runs on
rank 0, `--rank N` on another, `--rank all` on every rank at once with `(rank=N)` lines, and a
failing rank fails the cell with its exit code (the magic, the function and the CLI).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
    wait_for,
)
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from launchkit import (
    GANG_SPEC,
    ONE,
    USER,
    Recorder,
    admin,
    fleet_fixture,
    settings,
    skymagic_pods,
)

from skymagic.errors import CommandFailedError, ConfigError
from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task, status
from skymagic.launches.rankexec import exec_ranks
from skymagic.sim import Fleet

fleet = fleet_fixture(GANG_SPEC)


def pod_dir(fleet: Fleet, name: str) -> Path:
    return Path(fleet.state_dir) / "clusters" / "0" / "pods" / f"default_{name}"


def gang_launch(body: str, name: str, **kw: Any) -> tuple[LaunchResult, Recorder]:
    rec = Recorder()
    result = launch_task(
        parse_task(body, gpus="H100:8", num_nodes=2, name=name),
        settings(ONE),
        LaunchControls(provision_timeout=5.0, **kw),
        observer=rec,
    )
    assert isinstance(result, LaunchResult)
    return result, rec


def by_rank(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        m = re.match(r"\(rank=(\d)\) (.*)", line)
        assert m, f"an unprefixed line: {line!r}"
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_a_gangs_workdir_and_file_mounts_reach_every_rank_before_its_run(
    fleet: Fleet, tmp_path: Path
) -> None:
    src = tmp_path / "proj"
    (src / "sub").mkdir(parents=True)
    (src / "data.txt").write_text("payload-42\n")
    (src / "sub" / "setup.sh").write_text("echo set-up\n")
    mount = tmp_path / "cfg.yaml"
    mount.write_text("lr: 0.5\n")
    body = f"""
workdir: {src}
file_mounts:
  ~/cfg/cfg.yaml: {mount}
setup: sh sub/setup.sh > ~/setup-ran
run: |
  echo "data=$(cat data.txt) cfg=$(cat ~/cfg/cfg.yaml) setup=$(cat ~/setup-ran)"
"""
    result, rec = gang_launch(body, "wd")

    assert result.status == "Succeeded", rec.text.getvalue()
    lines = by_rank(rec.log)
    expected = "data=payload-42 cfg=lr: 0.5 setup=set-up"
    assert lines == {"0": [expected], "1": [expected]}
    assert any("sent the files to 2 ranks" in m for m in rec.messages), rec.messages
    for pod in ("wd", "wd-1"):  # each rank's own home holds the files, byte for byte
        assert (pod_dir(fleet, pod) / "sky_workdir" / "data.txt").read_text() == "payload-42\n"
        assert (pod_dir(fleet, pod) / "cfg" / "cfg.yaml").read_text() == "lr: 0.5\n"


DEV_GANG = "envs:\n  GREETING: hi\n"  # no run: both ranks stay up for exec


def test_exec_runs_on_rank_0_by_default_on_one_rank_or_on_all(fleet: Fleet) -> None:
    result, rec = gang_launch(DEV_GANG, "dev")
    assert result.status == "Running", rec.text.getvalue()
    s = settings(ONE)
    out: list[str] = []
    first = exec_ranks("dev", 'echo "rank $SKYPILOT_NODE_RANK"', s, on_stdout=out.append)
    assert (first.exit_code, first.rank, "".join(out)) == (0, 0, "rank 0\n")
    out.clear()
    one = exec_ranks("dev", 'echo "rank $SKYPILOT_NODE_RANK"', s, rank=1, on_stdout=out.append)
    assert (one.exit_code, one.rank, "".join(out)) == (0, 1, "rank 1\n")

    out.clear()
    both = exec_ranks(
        "dev",
        'echo "a $SKYPILOT_NODE_RANK"; echo "b $(basename "$HOME")"; printf tail',
        s,
        rank="all",
        on_stdout=out.append,
        check=True,
    )
    assert both.exit_code == 0 and [r.rank for r in both.ranks] == [0, 1]
    lines = by_rank("".join(out).splitlines())
    assert lines == {
        "0": ["a 0", "b default_dev", "tail"],  # each rank's own pod (its own home)
        "1": ["a 1", "b default_dev-1", "tail"],
    }

    with pytest.raises(CommandFailedError, match=r"'dev' \(rank 1\) exited with code 5") as info:
        exec_ranks(
            "dev",
            'echo "r$SKYPILOT_NODE_RANK"; exit $((SKYPILOT_NODE_RANK * 5))',
            s,
            rank="all",
            check=True,
        )
    assert info.value.exit_code == 5
    with pytest.raises(ConfigError, match="launch 'dev' has no rank 2: it has 2 nodes"):
        exec_ranks("dev", "true", s, rank=2)
    with pytest.raises(ConfigError, match="--rank 'x' is not a whole number; give a rank number"):
        exec_ranks("dev", "true", s, rank="x")


def test_sky_exec_rank_all_prints_every_rank_and_a_failing_rank_fails_the_cell(
    fleet: Fleet, ipshell: InteractiveShell
) -> None:
    result, rec = gang_launch(DEV_GANG, "cells")
    assert result.status == "Running", rec.text.getvalue()
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = ['{ONE}']")
    try:
        with capture_output() as cap:
            ipshell.run_cell_magic(
                "sky_exec", "cells --rank all", 'echo "$GREETING from $SKYPILOT_NODE_RANK"\n'
            )
        assert sorted(cap.stdout.splitlines()) == ["(rank=0) hi from 0", "(rank=1) hi from 1"]
        with capture_output() as cap:
            ipshell.run_cell_magic("sky_exec", "cells", "echo only $SKYPILOT_NODE_RANK\n")
        assert cap.stdout == "only 0\n"
        with capture_output() as cap:
            cell = ipshell.run_cell(
                "%%sky_exec cells --rank all\n"
                'echo "before $SKYPILOT_NODE_RANK"\n'
                '[ "$SKYPILOT_NODE_RANK" = 1 ] && exit 3\n'
                "exit 0\n"
            )
        assert "(rank=0) before 0" in cap.stdout and "(rank=1) before 1" in cap.stdout
        assert isinstance(cell.error_in_exec, CommandFailedError)
        assert cell.error_in_exec.exit_code == 3
        assert "(rank 1) exited with code 3" in str(cell.error_in_exec)
        assert ipshell.user_ns["_sky_exec"].rank == 1
    finally:
        ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")


# Rank 0 hangs (its sleep's pid recorded after it said so), rank 1 fails once rank 0's sleep
# runs (local pods share this machine's files: it waits for rank 0's). The hang is longer than
# the bound below.
EXEC_FAILS = """\
if [ "$SKYPILOT_NODE_RANK" = 1 ]; then
  while [ ! -s ~/../default_{name}/hang.pid ]; do sleep 0.1; done
  echo "rank 1 fails"; exit 3
fi
sleep 90 & echo "rank 0 hangs"; echo $! > ~/hang.pid
wait
"""


def test_sky_exec_rank_all_stops_the_other_ranks_when_one_fails(
    fleet: Fleet, ipshell: InteractiveShell
) -> None:
    result, rec = gang_launch(DEV_GANG, "stopx")
    assert result.status == "Running", rec.text.getvalue()
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = ['{ONE}']")
    try:
        with capture_output() as cap:
            cell = ipshell.run_cell(
                "%%sky_exec stopx --rank all\n" + EXEC_FAILS.format(name="stopx")
            )
    finally:
        ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    # The first failing rank fails the cell with its rank and exit code ...
    err = cell.error_in_exec
    assert isinstance(err, CommandFailedError) and err.exit_code == 3, cap.stdout + cap.stderr
    assert "'stopx' (rank 1) exited with code 3: stopped the command on rank 0" in str(err)
    # ... and the other rank's command was stopped, not waited for (its sleep is 90 s).
    done = ipshell.user_ns["_sky_exec"]
    assert done.seconds < 60, str(done)
    assert [(r.rank, r.stopped) for r in done.ranks] == [(0, True), (1, False)]
    assert done.ranks[0].message == "stopped: rank 1 failed (exit code 3)"
    out = cap.stdout.splitlines()
    assert "(rank=0) rank 0 hangs" in out and "(rank=1) rank 1 fails" in out
    assert "(rank=0) skymagic: stopped: rank 1 failed (exit code 3)" in out
    assert "skymagic: rank 1 failed (exit code 3): stopping the run on rank 0" in cap.stderr
    hang = int((pod_dir(fleet, "stopx") / "hang.pid").read_text())
    wait_for(lambda: not alive(hang), 10, "rank 0's sleep gone")
    # The pods keep running, ready for the next command on every rank.
    assert exec_ranks("stopx", "true", settings(ONE), rank="all").exit_code == 0


def test_cli_exec_rank_all_exits_with_the_failing_ranks_code(fleet: Fleet) -> None:
    result, rec = gang_launch(DEV_GANG, "clig")
    assert result.status == "Running", rec.text.getvalue()
    home = Path(os.environ["HOME"])
    (home / ".sky").mkdir(exist_ok=True)
    (home / ".sky" / "config.yaml").write_text(f"kubernetes:\n  allowed_contexts: [{ONE}]\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "skymagic.ui.cli", *args],
            capture_output=True,
            check=False,
            text=True,
            env={**os.environ, "SKYMAGIC_USER": USER, "KUBECONFIG": fleet.kubeconfig},
            timeout=60,
        )

    script = 'echo "r$SKYPILOT_NODE_RANK"; exit $((SKYPILOT_NODE_RANK * 7))'
    proc = cli("exec", "clig", "--rank", "all", "--", "sh", "-c", script)
    assert proc.returncode == 7, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["(rank=0) r0", "(rank=1) r1"]
    assert "rank 1 exited with code 7" in proc.stderr
    proc = cli("exec", "clig", "--rank=1", "echo on $SKYPILOT_NODE_RANK")
    assert (proc.returncode, proc.stdout) == (0, "on 1\n")
    proc = cli("exec", "clig", "echo on $SKYPILOT_NODE_RANK")
    assert (proc.returncode, proc.stdout) == (0, "on 0\n")


RERUN = """\
envs:
  GREETING: hello
run: |
  echo "$GREETING rank=$SKYPILOT_NODE_RANK of $SKYPILOT_NUM_NODES gpus=$SKYPILOT_NUM_GPUS_PER_NODE"
  echo "master=$MASTER_ADDR:$MASTER_PORT task=$SKYPILOT_TASK_ID"
  echo "ips=$(echo "$SKYPILOT_NODE_IPS" | tr '\\n' ',')"
  python3 - <<'EOF'
  import os, socket, time
  addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
  if os.environ["SKYPILOT_NODE_RANK"] == "0":
      server = socket.create_server((socket.gethostbyname(addr), port))
      conn, _ = server.accept()
      print("got:", conn.recv(100).decode(), flush=True)
  else:
      for _ in range(100):
          try:
              sock = socket.create_connection((addr, port), timeout=1)
              break
          except OSError:
              time.sleep(0.1)
      sock.sendall(b"hi from rank 1")
      print("sent", flush=True)
  EOF
"""

# Rank 0 hangs (its sleep's pid recorded after it said so); rank 1 fails once rank 0's sleep
# runs (local pods share this machine's files: it waits for rank 0's).
RERUN_FAILS = """\
if [ "$SKYPILOT_NODE_RANK" = 1 ]; then
  while [ ! -s ~/../default_rr/hang.pid ]; do sleep 0.1; done
  echo "rank 1 fails"; exit 4
fi
sleep 600 & echo "rank 0 hangs"; echo $! > ~/hang.pid
wait
"""


def alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_rerunning_a_running_gang_runs_the_new_body_on_every_rank(fleet: Fleet) -> None:
    first, rec = gang_launch(DEV_GANG, "rr")
    assert first.status == "Running", rec.text.getvalue()
    ips = {
        p["metadata"]["name"]: p["status"]["podIP"]
        for p in admin(fleet, ONE).list_items("/api/v1/namespaces/default/pods")[0]
    }

    again, rec = gang_launch(RERUN, "rr")
    assert (again.status, again.exit_code) == ("Succeeded", 0), rec.text.getvalue()
    lines = by_rank(rec.log)
    task_ids = set()
    for rank in ("0", "1"):
        greeting, master, got_ips, tcp = lines[rank]
        assert greeting == f"hello rank={rank} of 2 gpus=8"
        assert master.startswith("master=rr.rr-nodes:29500 task=sky-")
        task_ids.add(master.split("task=")[1])
        assert got_ips == f"ips={ips['rr']},{ips['rr-1']},"
        assert tcp == ("got: hi from rank 1" if rank == "0" else "sent")
    assert len(task_ids) == 1  # one task id on every rank
    assert any("running the new body on every rank" in m for m in rec.messages)
    assert skymagic_pods(fleet) == {ONE: ["rr", "rr-1"]}  # reused, not replaced

    failed, rec = gang_launch(RERUN_FAILS, "rr")
    assert (failed.status, failed.exit_code) == ("Failed", 4)
    assert "The re-run failed: rank 1 exited with code 4; stopped the run on rank 0." in str(failed)
    assert "(rank=0) rank 0 hangs" in rec.log and "(rank=1) rank 1 fails" in rec.log
    assert "(rank=0) skymagic: stopped: rank 1 failed (exit code 4)" in rec.log
    hang = int((pod_dir(fleet, "rr") / "hang.pid").read_text())
    wait_for(lambda: not alive(hang), 10, "rank 0's re-run gone")
    # The pods keep running, ready for the next body.
    assert list(status(settings(ONE), ranks=True).frame["status"]) == ["Running", "Running"]
    assert exec_ranks("rr", "true", settings(ONE), rank="all").exit_code == 0


def test_a_rerun_asking_for_more_nodes_than_the_gang_has_is_refused(fleet: Fleet) -> None:
    first, rec = gang_launch(DEV_GANG, "few")
    assert first.status == "Running", rec.text.getvalue()
    with pytest.raises(ConfigError, match="launch 'few' runs on 2 nodes, the task asks for 3"):
        launch_task(parse_task("true", gpus="H100:8", num_nodes=3, name="few"), settings(ONE))
