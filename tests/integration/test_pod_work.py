"""Working on launched pods against the simulated fleet (runtime: local, real HTTPS, real exec).

Exec streams and exit codes (function, magic, CLI), workdir and file_mounts arriving byte for
byte with only changes re-sent, re-running a launch on its running pod, a port-forwarded HTTP
server, an interactive shell through a pty, and a dev pod stopping itself when idle (its GPUs
free again in show_gpus).
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from checkkit import fresh_clients, wait_for
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from launchkit import Recorder

from skymagic.core.client import ClientSettings
from skymagic.core.targets import Settings
from skymagic.errors import CommandFailedError, ConfigError
from skymagic.gpus.inventory import show_gpus
from skymagic.launches import down, launch, status
from skymagic.launches.exec import exec_command
from skymagic.launches.ports import stop_forwards
from skymagic.sim import Fleet

CTX = "box"
SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": CTX,
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [
                {"name": "h100", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512},
                {"name": "cpu", "cpu": 16, "memory_gb": 64},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp, Fleet(SPEC) as f:
        mp.setenv("HOME", str(home))
        mp.delenv("SKYPILOT_CONFIG", raising=False)
        mp.setenv("KUBECONFIG", f.kubeconfig)
        mp.setenv("SKYMAGIC_USER", "tester")
        fresh_clients()
        yield f
        stop_forwards()
        fresh_clients()


@pytest.fixture
def s(fleet: Fleet) -> Settings:
    return Settings(client=ClientSettings(request_timeout=5.0), allowed_contexts=(CTX,))


@pytest.fixture(scope="module")
def dev(fleet: Fleet) -> str:
    """A CPU dev pod without files, shared by the exec tests."""
    settings = Settings(allowed_contexts=(CTX,))
    launch("", name="dev", settings=settings, detach=True)
    return "dev"


def pod_dir(fleet: Fleet, name: str) -> Path:
    return Path(fleet.state_dir) / "clusters" / "0" / "pods" / f"default_{name}"


# -- exec ---------------------------------------------------------------------------------


def test_exec_streams_output_live_and_returns_the_exit_code(s: Settings, dev: str) -> None:
    seen: list[tuple[float, str]] = []
    t0 = time.monotonic()
    result = exec_command(
        dev,
        "echo first; sleep 1; echo second; echo oops >&2; exit 7",
        s,
        on_stdout=lambda text: seen.append((time.monotonic() - t0, text)),
        on_stderr=lambda text: seen.append((time.monotonic() - t0, "ERR " + text)),
    )
    assert result.exit_code == 7
    texts = "".join(t for _, t in seen)
    assert "first\n" in texts and "second\n" in texts and "ERR oops\n" in texts
    first_at = next(at for at, t in seen if "first" in t)
    assert first_at < result.seconds - 0.5  # arrived before the command ended: streamed
    with pytest.raises(CommandFailedError, match="exited with code 3") as info:
        exec_command(dev, "exit 3", s, check=True)
    assert info.value.exit_code == 3
    with pytest.raises(ConfigError, match="no skymagic launch named 'nope'"):
        exec_command("nope", "true", s)


def test_exec_starts_in_the_workdir_with_the_pod_env(fleet: Fleet, s: Settings, dev: str) -> None:
    out: list[str] = []
    exec_command(dev, 'pwd; echo "$SKYMAGIC_LAUNCH"', s, on_stdout=out.append, check=True)
    cwd, launch_name = "".join(out).split()
    assert cwd == str(pod_dir(fleet, dev) / "sky_workdir") and launch_name == dev


def test_sky_exec_magic_streams_and_fails_the_cell(
    fleet: Fleet, dev: str, ipshell: InteractiveShell
) -> None:
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = ['{CTX}']")
    try:
        with capture_output() as cap:
            ipshell.run_cell_magic("sky_exec", dev, "echo hello from $SKYMAGIC_LAUNCH\n")
        assert "hello from dev" in cap.stdout
        assert ipshell.user_ns["_sky_exec"].exit_code == 0
        with capture_output() as cap:
            cell = ipshell.run_cell(f"%%sky_exec {dev}\necho before; exit 4\n")
        assert "before" in cap.stdout
        assert isinstance(cell.error_in_exec, CommandFailedError)
        assert cell.error_in_exec.exit_code == 4
        assert "CommandFailedError" in cap.stdout + cap.stderr  # one line, not a traceback
        with capture_output() as cap:
            ipshell.run_line_magic("sky_exec", f"{dev} echo line form")
        assert "line form" in cap.stdout
    finally:
        ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")


def cli(fleet: Fleet, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYMAGIC_USER": "tester", "KUBECONFIG": fleet.kubeconfig}
    home = Path(os.environ["HOME"])
    (home / ".sky").mkdir(exist_ok=True)
    (home / ".sky" / "config.yaml").write_text(f"kubernetes:\n  allowed_contexts: [{CTX}]\n")
    return subprocess.run(
        [sys.executable, "-m", "skymagic.ui.cli", *args],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=60,
        **kw,
    )


def test_cli_exec_exits_with_the_command_code(fleet: Fleet, dev: str) -> None:
    proc = cli(fleet, "exec", dev, "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, "out\n", "err\n")
    proc = cli(fleet, "exec", dev, "echo ok && true")
    assert (proc.returncode, proc.stdout) == (0, "ok\n")


def test_ssh_is_an_interactive_tty(fleet: Fleet, dev: str) -> None:
    env = {**os.environ, "KUBECONFIG": fleet.kubeconfig, "SKYMAGIC_USER": "tester"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: `skymagic ssh dev` on a terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "skymagic.ui.cli", "ssh", dev], env)
    out = b""
    deadline = time.monotonic() + 30
    while b"sky_workdir" not in out and time.monotonic() < deadline:  # the prompt
        if select.select([fd], [], [], 0.5)[0]:
            out += os.read(fd, 4096)
    os.write(fd, b"tty; echo marker-$((40+2)); exit 6\n")
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status_ = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    assert "marker-42" in text and "/dev/pts/" in text
    assert os.waitstatus_to_exitcode(status_) == 6


# -- files --------------------------------------------------------------------------------


def make_tree(root: Path) -> dict[str, bytes]:
    """A workdir with every kind of thing the issue names; the files expected to arrive."""
    files = {
        "train.py": b"print('train')\n",
        "data/blob.bin": bytes(range(256)) * 64,
        "data/résumé-日本.txt": b"unicode name\n",
        "scripts/run.sh": b"#!/bin/sh\necho ran\n",
        "big/weights.bin": os.urandom(5 * 2**20),
        ".gitignore": b"*.log\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "scripts/run.sh").chmod(0o755)
    (root / "link-to-train.py").symlink_to("train.py")
    (root / "ignored").mkdir()
    (root / "ignored" / "secret.txt").write_text("never sent\n")
    (root / "debug.log").write_text("left out by .gitignore? no: .skyignore wins\n")
    (root / ".skyignore").write_text("ignored/\n*.log\n")
    files[".skyignore"] = (root / ".skyignore").read_bytes()
    return files


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_workdir_and_file_mounts_arrive_byte_for_byte_and_only_changes_are_resent(
    fleet: Fleet, s: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "proj"
    files = make_tree(src)
    mount = tmp_path / "config.yaml"
    mount.write_text("lr: 0.1\n")
    data_dir = tmp_path / "dataset"
    (data_dir / "a").mkdir(parents=True)
    (data_dir / "a" / "x.csv").write_text("1,2\n")
    yaml_task = f"""
workdir: {src}
file_mounts:
  ~/cfg/config.yaml: {mount}
  /tmp/skymagic-test-{os.getpid()}/dataset: {data_dir}
setup: echo setup-ran >> ~/setup-count
run: |
  ./scripts/run.sh
  cat ~/cfg/config.yaml
  python3 train.py
"""
    rec = Recorder()
    first = launch(yaml_task, name="files", settings=s, observer=rec)
    assert first.status == "Succeeded", rec.text.getvalue()
    assert [x for x in rec.log if x in ("ran", "lr: 0.1", "train")] == ["ran", "lr: 0.1", "train"]
    wd = pod_dir(fleet, "files") / "sky_workdir"
    sent = digest(wd)
    assert sent == {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}
    assert not (wd / "ignored").exists() and not (wd / "debug.log").exists()
    assert (wd / "scripts/run.sh").stat().st_mode & 0o777 == 0o755
    assert os.readlink(wd / "link-to-train.py") == "train.py"
    assert (pod_dir(fleet, "files") / "cfg" / "config.yaml").read_text() == "lr: 0.1\n"
    assert (Path(f"/tmp/skymagic-test-{os.getpid()}/dataset/a/x.csv")).read_text() == "1,2\n"


def test_relaunch_on_a_running_pod_resends_only_what_changed_and_runs_setup_once(
    fleet: Fleet, s: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "proj"
    make_tree(src)
    body = f"workdir: {src}\nsetup: echo once >> ~/setup-count\nrun: echo v1\n"
    rec = Recorder()
    first = launch(body, name="keep", settings=s, observer=rec, idle_minutes_to_autostop=60)
    assert (first.status, first.exit_code) == ("Succeeded", 0), rec.text.getvalue()
    assert rec.log[-1:] == ["v1"]
    sent_first = _sent_bytes(rec)
    assert sent_first > 5 * 2**20  # the random 5 MB file does not compress
    # Change one small file; launch a new body on the same (still running) pod.
    (src / "train.py").write_text("print('v2')\n")
    rec2 = Recorder()
    body2 = body.replace("run: echo v1", "run: python3 train.py")
    again = launch(body2, name="keep", settings=s, observer=rec2)
    assert (again.status, again.exit_code) == ("Succeeded", 0), rec2.text.getvalue()
    assert "v2" in rec2.log
    assert any("running the new body there" in m for m in rec2.messages)
    sent_again = _sent_bytes(rec2)
    assert 0 < sent_again < 4096, rec2.messages  # one small file and the manifest
    assert "1 changed file(s)" in " ".join(rec2.messages)
    home = pod_dir(fleet, "keep")
    assert (home / "sky_workdir" / "train.py").read_text() == "print('v2')\n"
    assert (home / "setup-count").read_text() == "once\n"  # setup unchanged: not run again
    # A changed setup runs again, once.
    rec3 = Recorder()
    body3 = body2.replace("echo once", "echo twice")
    assert launch(body3, name="keep", settings=s, observer=rec3).exit_code == 0
    assert (home / "setup-count").read_text() == "once\ntwice\n"
    # Resources the pod does not have are refused with what to do.
    with pytest.raises(ConfigError, match=r"has no GPU, the task asks for H100; stop it with"):
        launch(body3, name="keep", settings=s, gpus="H100:1")
    down(["keep"], s)


def _sent_bytes(rec: Recorder) -> int:
    msg = next(m for m in rec.messages if "changed file(s)" in m)
    return int(msg.split("changed file(s), ")[1].split(" bytes")[0].replace(",", ""))


def test_file_problems_are_one_line_before_anything_is_created(
    fleet: Fleet, s: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.clear_requests()
    with pytest.raises(ConfigError, match=r"^workdir: '/nonexistent/x' does not exist"):
        launch("run: true\nworkdir: /nonexistent/x\n", name="bad", settings=s)
    with pytest.raises(ConfigError, match=r"bucket source 's3://b/x' is not supported"):
        launch("run: true\nfile_mounts:\n  /data: s3://b/x\n", name="bad", settings=s)
    big = tmp_path / "big"
    big.mkdir()
    (big / "f").write_bytes(b"x" * 3000)
    monkeypatch.setenv("SKYMAGIC_MAX_UPLOAD_GB", str(2000 / 2**30))
    with pytest.raises(ConfigError, match=r"over the .* limit; leave big folders out"):
        launch("true", name="bad", settings=s, workdir=str(big))
    if os.geteuid() != 0:  # root reads everything
        (big / "f").chmod(0)
        with pytest.raises(ConfigError, match="cannot read"):
            launch("true", name="bad", settings=s, workdir=str(big))
    assert not [r for r in fleet.requests(CTX) if r.get("method") == "POST"]


# -- ports --------------------------------------------------------------------------------


def test_ports_are_forwarded_to_127_0_0_1(fleet: Fleet, s: Settings, ipshell: Any) -> None:
    server = (
        "echo hello-from-the-pod > index.html; "
        f'exec {sys.executable} -m http.server "$PORT_8888" --bind 127.0.0.1'
    )
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = ['{CTX}']")
    try:
        with capture_output():
            result = ipshell.run_cell_magic("sky_launch", "web --ports 8888 --detach", server)
        url = next(h for h in result.hints if h.startswith("Port 8888: http://"))
        url = url.split()[2]
        wait_for(lambda: _get(url) is not None, timeout=20, what="the forwarded server")
        body = _get(url)
        assert body == "hello-from-the-pod\n"
        st = status(s)
        row = st.frame[st.frame.name == "web"].iloc[0]
        assert row.endpoint == url
        # Each connection has its own stream: many in a row all answer.
        assert all(_get(url) == body for _ in range(5))
        down(["web"], s)
        wait_for(lambda: _get(url) is None, timeout=20, what="the forward to end with the pod")
    finally:
        ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


# -- autostop -----------------------------------------------------------------------------


def test_an_idle_dev_pod_stops_itself_and_frees_its_gpus(fleet: Fleet, s: Settings) -> None:
    def free_h100() -> int:
        inv = show_gpus(s)
        return int(inv.nodes[inv.nodes.node == "h100"].iloc[0].gpu_free)

    assert free_h100() == 8
    idle_min = 3 / 60  # 3 s
    launch("", name="gpu-dev", settings=s, gpus="H100:2", idle_minutes_to_autostop=idle_min)
    assert free_h100() == 6
    # Activity keeps it up: a command longer than the idle time.
    exec_command("gpu-dev", "sleep 5", s, check=True)
    row = status(s).frame.set_index("name").loc["gpu-dev"]
    assert row.status == "Running" and row.autostop.startswith("idle "), row.autostop
    assert "stops in" in row.autostop
    wait_for(
        lambda: status(s).frame.set_index("name").loc["gpu-dev"].status == "Stopped (autostop)",
        timeout=30,
        what="the idle pod to stop itself",
    )
    assert free_h100() == 8
    down(["gpu-dev"], s)


def test_down_removes_an_autostopped_pod_when_next_looked_at(fleet: Fleet, s: Settings) -> None:
    launch("", name="gone", settings=s, idle_minutes_to_autostop=2 / 60, down=True)

    def ended() -> bool:
        phase = fleet_pod_phase(fleet, "gone")
        return phase in ("Succeeded", None)

    wait_for(ended, timeout=30, what="the pod to stop itself")
    assert "gone" not in set(status(s).frame.name)  # status removed its objects
    assert fleet_pod_phase(fleet, "gone") is None


def fleet_pod_phase(fleet: Fleet, name: str) -> str | None:
    from launchkit import admin

    client = admin(fleet, CTX)
    try:
        items, _ = client.list_items("/api/v1/namespaces/default/pods")
    finally:
        client.close()
    for p in items:
        if p["metadata"]["name"] == name:
            return str(p["status"].get("phase"))
    return None
