"""The local jobs controller process: `python -m skymagic.jobs.controller [--state-dir DIR]`.

Started on demand by `skymagic.jobs` (or `skymagic jobs controller start`), detached from the
kernel or shell that started it (its own session, reparented to init with `--daemon`), so it
outlives them. One per state directory: it holds an exclusive lock on `controller.lock` for
its whole life (the kernel drops the lock when the process dies, even on SIGKILL), and writes
its pid to `controller.pid` once it holds the lock. SIGUSR1 makes it re-read the database now
(clients send it after submitting or cancelling); SIGTERM stops it. Stopping leaves the jobs
running in their clusters: the next controller re-adopts them from their labels.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from skymagic.jobs.process import LOCK_FILE, LOG_FILE, PID_FILE

__all__ = ["main"]


def _lock(state_dir: Path, wait_s: float = 2.0) -> int | None:
    """Hold the controller lock (fd), or None when another controller holds it.

    Tries for a moment: a client checking the lock (`process.status`) holds it for an instant.
    """
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def _daemonize(state_dir: Path) -> None:
    """Fork once more so the process is nobody's child (no zombie left in a kernel)."""
    if os.fork() > 0:
        os._exit(0)
    os.chdir(state_dir)  # not the directory of whatever notebook started it
    log = os.open(state_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skymagic.jobs.controller")
    parser.add_argument("--state-dir", default=None, help="default: $SKYMAGIC_JOBS_DIR")
    parser.add_argument("--daemon", action="store_true", help="detach (fork) and log to a file")
    parser.add_argument(
        "--node-grace",
        type=float,
        default=float(os.environ.get("SKYMAGIC_JOBS_NODE_GRACE_S") or 60.0),
        help="seconds a job's node may stay NotReady before the job is recovered",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=float(os.environ.get("SKYMAGIC_JOBS_IDLE_EXIT_S") or 600.0),
        help="exit after this many seconds without an active job (0: never)",
    )
    args = parser.parse_args(argv)
    from skymagic.jobs.store import state_dir as default_dir

    state_dir = Path(args.state_dir) if args.state_dir else default_dir()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.daemon:
        _daemonize(state_dir)
    fd = _lock(state_dir)
    if fd is None:
        print(f"a jobs controller already runs for {state_dir}", file=sys.stderr)
        return 0
    (state_dir / PID_FILE).write_text(f"{os.getpid()}\n")
    # Signals are taken by this (main) thread alone, with sigwait: a handler that ran inside
    # the loop thread's queue operations could deadlock on the queue's lock.
    signals = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    logging.basicConfig(
        level=os.environ.get("SKYMAGIC_JOBS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full" for each log stream
    from skymagic.jobs.store import JobStore
    from skymagic.jobs.supervisor import Supervisor

    store = JobStore(state_dir)
    supervisor = Supervisor(
        store,
        node_grace_s=args.node_grace,
        idle_exit_s=args.idle_exit if args.idle_exit > 0 else None,
    )
    logging.getLogger("skymagic.jobs").info(
        "controller %s started for %s (db %s)", os.getpid(), state_dir, store.db_id
    )
    loop = threading.Thread(target=supervisor.run, name="supervisor")
    loop.start()

    def watch_signals() -> None:
        while loop.is_alive():
            sig = signal.sigwait(signals)
            if sig == signal.SIGUSR1:
                supervisor.wake()
            else:
                supervisor.stop()
                return

    threading.Thread(target=watch_signals, name="signals", daemon=True).start()
    loop.join()
    with contextlib.suppress(OSError):
        (state_dir / PID_FILE).unlink()
    logging.getLogger("skymagic.jobs").info("controller %s stopped", os.getpid())
    logging.shutdown()
    os._exit(0)  # daemon threads (watches, log followers) may be blocked in reads


if __name__ == "__main__":
    raise SystemExit(main())
