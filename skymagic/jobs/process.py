"""Start, stop, find and poke the local controller process (the client side of controller.py).

Whether a controller runs is decided by its lock, never by a pid file alone: if the lock on
`controller.lock` can be taken, nobody holds it, so no controller runs (a pid file left by a
killed one means nothing). A controller holding the lock has written its pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from skymagic.errors import LaunchError
from skymagic.jobs.store import state_dir

__all__ = [
    "LOCK_FILE",
    "LOG_FILE",
    "PID_FILE",
    "ControllerStatus",
    "ensure_running",
    "notify",
    "start",
    "status",
    "stop",
]

# The controller's files in the state directory (controller.py writes them).
LOCK_FILE = "controller.lock"
PID_FILE = "controller.pid"
LOG_FILE = "controller.log"


@dataclass(frozen=True)
class ControllerStatus:
    """Is the local controller running, and where are its files."""

    running: bool
    pid: int | None
    state_dir: Path

    @property
    def log(self) -> Path:
        return self.state_dir / LOG_FILE

    def __str__(self) -> str:
        if self.running:
            return f"jobs controller running (pid {self.pid}) for {self.state_dir}; log: {self.log}"
        return f"no jobs controller running for {self.state_dir}"

    def __repr__(self) -> str:
        return str(self)


def _dir(directory: Path | str | None) -> Path:
    return Path(directory) if directory is not None else state_dir()


def status(directory: Path | str | None = None) -> ControllerStatus:
    d = _dir(directory)
    lock = d / LOCK_FILE
    if not lock.exists():
        return ControllerStatus(False, None, d)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return ControllerStatus(True, _pid(d), d)
    finally:
        os.close(fd)  # (closing drops the lock if we took it)
    return ControllerStatus(False, None, d)


def _pid(d: Path) -> int | None:
    """The controller's pid, once it has written it (a killed one's file may be stale)."""
    try:
        pid = int((d / PID_FILE).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start(directory: Path | str | None = None, *, wait_s: float = 20.0) -> ControllerStatus:
    """Start the controller unless one runs; return once it holds its lock.

    It is started detached (its own session, forked away from this process), so it outlives
    the kernel or shell that started it. It inherits this process's environment.
    """
    d = _dir(directory)
    current = status(d)
    if current.running:
        return current
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(d / LOG_FILE, "ab") as log:
        subprocess.run(
            [sys.executable, "-m", "skymagic.jobs.controller", "--state-dir", str(d), "--daemon"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            check=False,
            timeout=wait_s,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        current = status(d)
        if current.running and current.pid:
            return current
        time.sleep(0.05)
    raise LaunchError(
        f"the jobs controller did not start within {wait_s:g} s; see its log {d / LOG_FILE}"
    )


def stop(directory: Path | str | None = None, *, timeout_s: float = 15.0) -> bool:
    """Stop the controller (jobs keep running in their clusters); True if one was running."""
    current = status(directory)
    if not current.running or not current.pid:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not status(directory).running:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while status(directory).running and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def notify(directory: Path | str | None = None) -> bool:
    """Ask a running controller to re-read the database now; False if none runs."""
    current = status(directory)
    if not current.running or not current.pid:
        return False
    try:
        os.kill(current.pid, signal.SIGUSR1)
    except ProcessLookupError:
        return False
    return True


def ensure_running(directory: Path | str | None = None) -> ControllerStatus:
    """Poke the controller, starting it first if none runs (a restarted one re-adopts)."""
    if notify(directory):
        return status(directory)
    return start(directory)
