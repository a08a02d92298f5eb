"""The container-runtime side of exec and port-forward: what a kubelet would run or dial.

`runtime: local` pods are local processes in their own directory (HOME and working directory
`<fleet state dir>/clusters/<cluster index>/pods/<namespace>_<name>`). An exec there is
another local process in the same directory with the same environment (plus TERM=xterm with
a tty), in a session of its own; it and whatever it started are killed when the pod stops, as
a container's processes die with the container, but not when the client goes away (a real
exec'd process outlives a dropped `kubectl exec` too). The container ends when its main process
exits or the pod stops: then every process still in it is killed, whatever session it started
(containerprocs.py: each process of a local container carries its container's mark).

Ports: every declared containerPort P of a local pod is given a free loopback port L when the
pod starts, and every process of the pod (main and exec'd) gets `PORT_<P>=L` in its
environment; the pod listens on $PORT_<P> and a port-forward to P connects to 127.0.0.1:L. A
port the pod does not declare forwards to 127.0.0.1:P itself (as if the pod used the host's
network). `runtime: simulate` pods answer exec from the cluster's `exec:` rules (see spec.py)
and port-forwards to declared ports with a one-line HTTP page.

The main process (`start_main`) is started as a container runtime starts the container: with
`stdin: true` its stdin is a pipe the runtime keeps open, so every attach with stdin writes to
it (containerd's ContainerIO.Attach); with `stdinOnce: true` (and no tty) it is closed when the
first attach's stdin ends, so the process reads EOF; without `stdin: true` the process reads
/dev/null and an attach's stdin is dropped without a word, as containerd drops it (kubectl only
warns about a missing tty, never about stdin).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import re
import secrets
import shlex
import signal
import socket
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skymagic.sim.containerprocs import CONTAINER_ENV, end_container
from skymagic.sim.netnames import names_env
from skymagic.sim.spec import ClusterSpec, ExecRule
from skymagic.sim.streamio import FdEnd, Reactor

__all__ = [
    "ExecFailed",
    "LocalProcess",
    "PodRuntime",
    "SimulatedProcess",
    "exit_code_of",
    "simulated_answer",
]


class ExecFailed(Exception):
    """The command could not start (the runtime's message, as containerd words it)."""


def exit_code_of(returncode: int) -> int:
    """A container runtime reports death by signal N as exit code 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _become_tty_owner() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class LocalProcess:
    """An exec'd local process: pipes, or one pty master when `tty`."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> None:
        self.tty = tty
        self.outputs: dict[int, int] = {}  # channel (1 stdout, 2 stderr) -> fd to read
        self.stdin_fd: int | None = None
        self.master: int | None = None
        try:
            if tty:
                master, slave = os.openpty()
                set_winsize(master, 80, 24)
                self.master = master
                try:
                    self.proc = subprocess.Popen(
                        argv,
                        stdin=slave,
                        stdout=slave,
                        stderr=slave,
                        cwd=cwd,
                        env={**env, "TERM": "xterm"},
                        start_new_session=True,
                        preexec_fn=_become_tty_owner,  # noqa: PLW1509 (one ioctl, no locks)
                    )
                finally:
                    os.close(slave)
                self.outputs[1] = master
                self.stdin_fd = master if stdin else None
            else:
                pipe = subprocess.PIPE
                self.proc = subprocess.Popen(
                    argv,
                    stdin=pipe if stdin else subprocess.DEVNULL,
                    stdout=pipe if stdout else subprocess.DEVNULL,
                    stderr=pipe if stderr else subprocess.DEVNULL,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                )
                for channel, stream in ((1, self.proc.stdout), (2, self.proc.stderr)):
                    if stream is not None:
                        self.outputs[channel] = os.dup(stream.fileno())
                        stream.close()
                if self.proc.stdin is not None:
                    self.stdin_fd = os.dup(self.proc.stdin.fileno())
                    self.proc.stdin.close()
        except OSError as exc:
            if self.master is not None:
                os.close(self.master)
            what = "executable file not found in $PATH" if exc.errno == 2 else exc.strerror
            raise ExecFailed(
                "OCI runtime exec failed: exec failed: unable to start container process: "
                f'exec: "{argv[0]}": {what}: unknown'
            ) from None

    def start(self, reactor: Reactor) -> None:
        """Nothing to start: the process runs on its own."""

    def poll(self) -> int | None:
        code = self.proc.poll()
        return None if code is None else exit_code_of(code)

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            with contextlib.suppress(OSError):
                set_winsize(self.master, width, height)

    def group_alive(self) -> bool:
        """Whether anything still runs in the command's process group (its own session)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def kill(self) -> None:
        """Kill the command and whatever it started (as a container's processes die with it)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


def simulated_answer(
    argv: list[str], rules: list[ExecRule], pod: dict[str, Any], env: dict[str, str]
) -> tuple[bytes, bytes, int, bool]:
    """(stdout, stderr, exit code, echo stdin) for a command in a `runtime: simulate` pod."""
    line = shlex.join(argv)
    for rule in rules:
        if re.fullmatch(rule.match, line, flags=re.DOTALL):
            return rule.stdout.encode(), rule.stderr.encode(), rule.exit_code, False
    cmd, args = (argv[0].rsplit("/", 1)[-1], argv[1:]) if argv else ("", [])
    if cmd in ("true", ":"):
        return b"", b"", 0, False
    if cmd == "false":
        return b"", b"", 1, False
    if cmd == "echo":
        return (" ".join(args) + "\n").encode(), b"", 0, False
    if cmd == "cat" and not args:
        return b"", b"", 0, True
    if cmd == "hostname":
        return pod["metadata"]["name"].encode() + b"\n", b"", 0, False
    if cmd in ("env", "printenv") and not args:
        return "".join(f"{k}={v}\n" for k, v in env.items()).encode(), b"", 0, False
    why = (
        f"simulated pod {pod['metadata']['name']}: nothing runs '{line}' here (runtime: "
        "simulate); add a rule under the cluster's exec: in the fleet spec, or use runtime: local\n"
    )
    return b"", why.encode(), 127, False


class SimulatedProcess:
    """A canned answer delivered through real pipes, so sessions treat it like a process."""

    def __init__(
        self, answer: tuple[bytes, bytes, int, bool], *, stdin: bool, stdout: bool, stderr: bool
    ) -> None:
        self._out, self._err, self._code, self._echo = answer
        self.tty = False
        self.outputs: dict[int, int] = {}
        self.stdin_fd: int | None = None
        self._writers: list[FdEnd] = []
        self._pipes: list[tuple[int, bytes]] = []
        for channel, want, data in ((1, stdout, self._out), (2, stderr, self._err)):
            if want:
                r, w = os.pipe()
                self.outputs[channel] = r
                self._pipes.append((w, data))
        if stdin:
            r, w = os.pipe()
            self.stdin_fd = w
            self._stdin_read = r
        self._done = False

    def start(self, reactor: Reactor) -> None:
        echo_to: FdEnd | None = None
        for i, (fd, data) in enumerate(self._pipes):
            end = FdEnd(fd, readable=False, writable=True)
            reactor.add(end)
            end.write(data)
            self._writers.append(end)
            if i == 0 and self._echo and 1 in self.outputs:
                echo_to = end
            else:
                end.finish_writing()
        if self.stdin_fd is not None:
            reader = FdEnd(self._stdin_read)
            reactor.add(reader)
            if echo_to is not None:
                target = echo_to
                reader.on_data = target.write
                reader.full = lambda: target.buffered > 1 << 20
                reader.on_eof = target.finish_writing
        elif echo_to is not None:
            echo_to.finish_writing()

    def poll(self) -> int | None:
        if all(w.closed for w in self._writers):
            return self._code
        return None

    def resize(self, width: int, height: int) -> None:
        """A simulated command has no terminal to resize."""

    def kill(self) -> None:
        for w in self._writers:
            w.close()


@dataclass
class PodRuntime:
    """Per cluster: each local pod's loopback ports and the processes exec'd into pods."""

    spec: ClusterSpec
    workdir: Path
    _ports: dict[str, dict[int, int]] = field(default_factory=dict)
    _execs: dict[str, set[LocalProcess]] = field(default_factory=dict)
    _watchers: dict[str, dict[int, Callable[[], None]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _stdins: dict[str, tuple[int, bool]] = field(default_factory=dict)  # write end, stdinOnce
    _containers: dict[str, str] = field(default_factory=dict)  # pod key -> its container's mark
    _mains: dict[str, int] = field(default_factory=dict)  # pod key -> main process (group) id
    _tag: str = field(default_factory=lambda: secrets.token_hex(6))  # this runtime's marks

    def pod_dir(self, key: str) -> Path:
        path = self.workdir / "pods" / key.replace("/", "_")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ports(self, key: str, pod: dict[str, Any]) -> dict[int, int]:
        """containerPort -> loopback port, allocated the first time the pod asks."""
        with self._lock:
            found = self._ports.get(key)
            if found is None:
                found = {}
                for c in pod["spec"].get("containers") or []:
                    for p in c.get("ports") or []:
                        port = int(p.get("containerPort") or 0)
                        if port and (p.get("protocol") or "TCP") == "TCP" and port not in found:
                            found[port] = _free_port()
                self._ports[key] = found
            return found

    def env(self, key: str, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """The environment of every process of a local pod's container."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.pod_dir(key)),
            "LANG": "C.UTF-8",
            "HOSTNAME": pod["metadata"]["name"],
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
        }
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
        for port, local in self.ports(key, pod).items():
            env[f"PORT_{port}"] = str(local)
        if self.spec.runtime == "local":  # every process of the container, and what it starts
            mark = f"{self._tag}/{key}/{pod['metadata'].get('uid', '')}"
            with self._lock:
                self._containers[key] = mark
            env[CONTAINER_ENV] = mark
        # headless-Service names (netnames.py)
        env.update(names_env(self.workdir, env.get("PATH", ""), env.get("PYTHONPATH", "")))
        return env

    async def start_main(
        self, key: str, pod: dict[str, Any], container: dict[str, Any], argv: list[str]
    ) -> asyncio.subprocess.Process:
        """Start a local pod's main process (output on one pipe: the pod log); its stdin is kept
        open for attach when the container asks for `stdin: true` (see the module docstring)."""
        read_end = None
        if container.get("stdin"):
            read_end, write_end = os.pipe()
            once = bool(container.get("stdinOnce")) and not container.get("tty")
            with self._lock:
                self._stdins[key] = (write_end, once)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if read_end is None else read_end,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(self.pod_dir(key)),
                env=self.env(key, pod, container),
                start_new_session=True,
            )
        finally:
            if read_end is not None:
                os.close(read_end)
        with self._lock:
            self._mains[key] = proc.pid
        return proc

    def end_processes(self, key: str) -> int:
        """The container ended (its main process exited, or the pod stops): kill every process
        still in it (containerprocs.py); how many were left."""
        with self._lock:
            mark = self._containers.get(key)
            main = self._mains.get(key)
            groups = [p.proc.pid for p in self._execs.get(key, set())]
        return end_container(mark, ([main] if main else []) + groups)

    def attach_stdin(self, key: str) -> tuple[int, bool] | None:
        """For an attach with stdin: a writer of the main process's stdin (the caller closes
        it) and whether the end of this attach's stdin closes the container's (stdinOnce);
        None when the container has no stdin (or it was closed)."""
        with self._lock:
            found = self._stdins.get(key)
            return None if found is None else (os.dup(found[0]), found[1])

    def close_stdin(self, key: str) -> None:
        """The container's stdin ends (stdinOnce, or the pod stopped)."""
        with self._lock:
            found = self._stdins.pop(key, None)
        if found is not None:
            with contextlib.suppress(OSError):
                os.close(found[0])

    def spawn(
        self,
        key: str,
        pod: dict[str, Any],
        container: dict[str, Any],
        argv: list[str],
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> LocalProcess | SimulatedProcess:
        """Start an exec'd command (local process, or the simulated answer)."""
        env = self.env(key, pod, container)
        if self.spec.runtime != "local":
            answer = simulated_answer(argv, self.spec.exec, pod, env)
            return SimulatedProcess(answer, stdin=stdin, stdout=stdout, stderr=stderr)
        proc = LocalProcess(
            argv,
            cwd=self.pod_dir(key),
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            tty=tty,
        )
        with self._lock:
            self._execs.setdefault(key, set()).add(proc)
        return proc

    def release(self, key: str, proc: LocalProcess | SimulatedProcess) -> None:
        """The session ended. The command (or children it left behind in its process group)
        may live on until the pod stops; forget it only once its whole group is gone."""
        if isinstance(proc, LocalProcess) and proc.poll() is not None and not proc.group_alive():
            with self._lock:
                self._execs.get(key, set()).discard(proc)

    def target(self, key: str, pod: dict[str, Any], port: int) -> tuple[str, int]:
        """Where a port-forward to `port` goes: ("tcp", loopback port), ("page", port) for a
        simulated pod's declared port, or ("refused", port)."""
        mapped = self.ports(key, pod)
        if self.spec.runtime == "local":
            return "tcp", mapped.get(port, port)
        return ("page", port) if port in mapped else ("refused", port)

    def watch(self, key: str, on_stop: Callable[[], None]) -> Callable[[], None]:
        """Call `on_stop` (from the fleet's loop thread) when the pod stops; returns the
        function that cancels this. Streams use it to end with their pod."""
        with self._lock:
            token = next(self._ids)
            self._watchers.setdefault(key, {})[token] = on_stop

        def cancel() -> None:
            with self._lock:
                self._watchers.get(key, {}).pop(token, None)

        return cancel

    def forget(self, key: str) -> None:
        """The pod stopped: every process left in its container dies (exec'd ones too), its
        streams end, its ports are free."""
        self.end_processes(key)
        with self._lock:
            procs = self._execs.pop(key, set())
            self._ports.pop(key, None)
            watchers = list(self._watchers.pop(key, {}).values())
            self._containers.pop(key, None)
            self._mains.pop(key, None)
        self.close_stdin(key)
        for proc in procs:  # reaped on threads (killed already)
            threading.Thread(target=proc.kill, daemon=True).start()
        for on_stop in watchers:
            on_stop()

    def stop_all(self) -> None:
        for key in list(self._containers):
            self.end_processes(key)
        with self._lock:
            procs = [p for group in self._execs.values() for p in group]
            self._execs.clear()
            keys = list(self._stdins)
        for key in keys:
            self.close_stdin(key)
        for proc in procs:
            proc.kill()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
