"""Exec and attach sessions: stdin, stdout, stderr, error and resize streams, as a kubelet
runs them.

Streams are WebSocket channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, or SPDY
streams the client opens with a `streamtype` header (the session starts once every stream
the options call for exists). The end of a session is a Status on the error stream, written
exactly as the kubelet (pkg/kubelet/cri/streaming/remotecommand) writes it: protocol v4 and
later as JSON, `{"metadata":{},"status":"Success"}` or Failure with reason NonZeroExitCode
and `details.causes: [{"reason": "ExitCode", "message": "N"}]`; older protocols as the bare
message, and nothing on success. WebSocket v5 goes through the API server's stream translator
in a real cluster, which rewords the message; that wording is kept too.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from skymagic.sim.mux import Mux
from skymagic.sim.podexec import ExecFailed, LocalProcess, PodRuntime, SimulatedProcess
from skymagic.sim.streamio import HIGH_WATER, FdEnd

__all__ = ["AttachSession", "ExecSession", "StreamLink", "StreamOptions", "status_bytes"]

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)
_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}
_STREAM_CREATION_TIMEOUT_S = 30.0
_OUTPUT_GRACE_S = 1.0  # after exit, how long a background child may hold stdout open


@dataclass(frozen=True)
class StreamOptions:
    """What the request asked for (PodExecOptions / PodAttachOptions / ports)."""

    command: list[str]
    container: str
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    ports: list[int]


@dataclass(frozen=True)
class StreamLink:
    """The connection a session speaks over, as the upgrade settled it: the mux, what the
    request asked for, the negotiated protocol version, and whether it is WebSocket (fixed
    channels) or SPDY (streams the client opens). Exec and attach take it whole."""

    mux: Mux
    opts: StreamOptions
    version: int
    websocket: bool


def status_bytes(status: dict[str, Any], version: int) -> bytes:
    """The error stream's last words for protocol `version` (empty: nothing to write)."""
    if version >= 4:
        return msgspec.json.encode(status)
    if status.get("status") == "Success":
        return b""
    return str(status.get("message", "")).encode()


def _exit_status(code: int, argv: list[str], translated: bool) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if translated:
        why = f"command terminated with exit code {code}"
    else:
        why = f"error executing command [{' '.join(argv)}], exit code {code}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {why}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _internal_error(message: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


class _Session:
    """What exec and attach share: stream bookkeeping and the ending."""

    def __init__(self, link: StreamLink) -> None:
        self.mux = link.mux
        self.reactor = link.mux.reactor  # the connection's loop: timers and the process's ends
        self.opts = link.opts
        self.version = link.version
        self.websocket = link.websocket
        self.ids: dict[int, int] = {}  # stream kind -> stream id on the wire
        self.kinds: dict[int, int] = {}
        self.started = False
        self.ended = False
        self._resize_buf = b""

    def _expected(self) -> set[int]:
        want = {ERROR}
        if self.opts.stdin:
            want.add(STDIN)
        if self.opts.stdout:
            want.add(STDOUT)
        if self.opts.stderr and not self.opts.tty:
            want.add(STDERR)
        if self.opts.tty and self.version >= 3:
            want.add(RESIZE)
        return want

    def start(self) -> None:
        if self.websocket:
            for kind in range(5):
                self.ids[kind] = kind
                self.kinds[kind] = kind
            # The kubelet's first word: an empty message on the lowest writable channel.
            first = STDOUT if self.opts.stdout else STDERR if self.opts.stderr else ERROR
            self.mux.send(first, b"")
            self._begin()
        else:
            self.reactor.call_later(_STREAM_CREATION_TIMEOUT_S, self._creation_timeout)

    def _creation_timeout(self) -> None:
        if not self.started and not self.ended:
            self.ended = True
            self.mux.end()

    def opened(self, sid: int, headers: dict[str, str]) -> None:
        kind = _TYPES.get(headers.get("streamtype", ""))
        if kind is None or self.started:
            self.mux.reset(sid)
            return
        self.ids[kind] = sid
        self.kinds[sid] = kind
        if self._expected() <= set(self.ids):
            self._begin()

    def data(self, sid: int, payload: bytes) -> None:
        kind = self.kinds.get(sid)
        if kind == STDIN:
            self._stdin(payload)
        elif kind == RESIZE:
            self._resize_buf += payload
            self._resizes()

    def fin(self, sid: int) -> None:
        if self.kinds.get(sid) == STDIN:
            self._stdin_eof()

    def reset(self, sid: int) -> None:
        self.fin(sid)

    def _resizes(self) -> None:
        decoder = json.JSONDecoder()
        text = self._resize_buf.decode("utf-8", "replace").lstrip()
        while text:
            try:
                size, used = decoder.raw_decode(text)
            except ValueError:
                break
            text = text[used:].lstrip()
            if isinstance(size, dict):
                self._resize(int(size.get("Width") or 0), int(size.get("Height") or 0))
        self._resize_buf = text.encode()

    def _finish(self, status: dict[str, Any]) -> None:
        if self.ended:
            return
        self.ended = True
        for kind in (STDOUT, STDERR):
            if kind in self.ids and not self.websocket:
                self.mux.fin(self.ids[kind])
        words = status_bytes(status, self.version)
        if words:
            self.mux.send(self.ids[ERROR], words)
        if not self.websocket:
            self.mux.fin(self.ids[ERROR])
        self.mux.end()

    # Hooks for the concrete sessions.
    def _begin(self) -> None:
        self.started = True

    def _stdin(self, payload: bytes) -> None:
        return None

    def _stdin_eof(self) -> None:
        return None

    def _resize(self, width: int, height: int) -> None:
        return None


class ExecSession(_Session):
    """Run a command in the pod; relay its streams; report its exit."""

    def __init__(
        self, link: StreamLink, runtime: PodRuntime, key: str, pod: dict[str, Any]
    ) -> None:
        super().__init__(link)
        self.runtime = runtime
        self.key = key
        self.pod = pod
        self.proc: LocalProcess | SimulatedProcess | None = None
        self._outputs: list[FdEnd] = []
        self._stdin_end: FdEnd | None = None
        self._exited_at: float | None = None
        self._pending_size: tuple[int, int] | None = None
        self._early: list[bytes] = []  # stdin that came before the process
        self._early_eof = False
        self._waited = False

    def _begin(self) -> None:
        super()._begin()
        container = next(
            c for c in self.pod["spec"]["containers"] if c["name"] == self.opts.container
        )
        try:
            self.proc = self.runtime.spawn(
                self.key,
                self.pod,
                container,
                list(self.opts.command),
                stdin=self.opts.stdin,
                stdout=self.opts.stdout,
                stderr=self.opts.stderr,
                tty=self.opts.tty,
            )
        except ExecFailed as exc:
            why = f"error executing command in container: failed to exec in container: {exc}"
            self._finish(_internal_error(why))
            return
        proc = self.proc
        proc.start(self.reactor)
        if self._pending_size:
            proc.resize(*self._pending_size)
        for channel, fd in proc.outputs.items():
            both = proc.tty and proc.stdin_fd == fd
            end = FdEnd(fd, readable=True, writable=both)
            self.reactor.add(end)
            end.on_data = self._sender(channel)
            end.on_eof = self._check_done
            end.full = self.mux.congested
            self._outputs.append(end)
            if both:
                self._stdin_end = end
        if proc.stdin_fd is not None and self._stdin_end is None:
            self._stdin_end = FdEnd(proc.stdin_fd, readable=False, writable=True)
            self.reactor.add(self._stdin_end)
        stdin_end = self._stdin_end
        if stdin_end is not None:
            self.mux.client.full = lambda: stdin_end.buffered > HIGH_WATER
        for chunk in self._early:
            self._stdin(chunk)
        if self._early_eof:
            self._stdin_eof()
        self._tick()

    def _sender(self, kind: int) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            if kind in self.ids and not self.ended:  # nothing may follow the status
                self.mux.send(self.ids[kind], data)

        return send

    def _stdin(self, payload: bytes) -> None:
        if self.proc is None:
            self._early.append(payload)
        elif self._stdin_end is not None:
            self._stdin_end.write(payload)

    def _stdin_eof(self) -> None:
        if self.proc is None:
            self._early_eof = True
        end = self._stdin_end
        if end is not None and not (self.proc and self.proc.tty):
            end.finish_writing()

    def _resize(self, width: int, height: int) -> None:
        if self.proc is None:
            self._pending_size = (width, height)
        else:
            self.proc.resize(width, height)

    def _tick(self) -> None:
        if self.ended:
            return
        self._check_done()
        if not self.ended:
            outputs_open = any(not e.eof for e in self._outputs)
            self.reactor.call_later(0.2 if outputs_open else 0.02, self._tick)

    def _check_done(self) -> None:
        proc = self.proc
        if proc is None or self.ended:
            return
        outputs_open = any(not e.eof for e in self._outputs)
        code = proc.poll()
        if code is None and not outputs_open and not self._waited:
            self._waited = True
            if isinstance(proc, LocalProcess):
                # The usual case: output ended because the process is exiting right now.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.proc.wait(timeout=0.05)
                code = proc.poll()
        if code is None:
            return
        if outputs_open:
            now = time.monotonic()
            if self._exited_at is None:
                self._exited_at = now
            if now - self._exited_at < _OUTPUT_GRACE_S:
                return
        translated = self.websocket and self.version >= 5
        self._finish(_exit_status(code, list(self.opts.command), translated))

    def pod_gone(self) -> None:
        """The pod stopped. A local process was killed with it and ends the session by itself;
        a simulated answer ends here, as killed."""
        if isinstance(self.proc, SimulatedProcess) and not self.ended:
            self.proc.kill()
            translated = self.websocket and self.version >= 5
            self._finish(_exit_status(137, list(self.opts.command), translated))

    def gone(self) -> None:
        """The client left: stdin ends, the process lives on (until its pod stops)."""
        self.ended = True
        self._stdin_eof()

    def close(self) -> None:
        for end in self._outputs:
            end.close()
        if self._stdin_end is not None:
            self._stdin_end.close()
        if self.proc is not None:
            self.runtime.release(self.key, self.proc)


class AttachSession(_Session):
    """Follow the container's output from now on until it exits (the pod log is its stdout),
    and write the attach's stdin to the main process's, when the container keeps one open
    (`stdin: true`, podexec.PodRuntime.start_main); otherwise stdin is dropped, as containerd
    drops it."""

    def __init__(
        self,
        link: StreamLink,
        log: Any,
        stdin: tuple[int, bool] | None = None,
        on_stdin_once: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(link)
        self.log = log
        self._seen = len(log.lines) if log is not None else 0
        self._writer: FdEnd | None = None
        self._stdin_open = False
        self._once = False
        self._on_once = on_stdin_once
        if stdin is not None:
            fd, self._once = stdin
            writer = self._writer = FdEnd(fd, readable=False, writable=True)
            self._stdin_open = True
            self.reactor.add(writer)
            self.mux.client.full = lambda: writer.buffered > HIGH_WATER

    def _begin(self) -> None:
        super()._begin()
        self._poll()

    def _poll(self) -> None:
        if self.ended:
            return
        log = self.log
        n = len(log.lines) if log is not None else 0
        if n > self._seen:
            chunk = b"".join(log.lines[self._seen : n])
            self._seen = n
            if STDOUT in self.ids:
                self.mux.send(self.ids[STDOUT], chunk)
        if log is None or log.closed:
            self._finish({"metadata": {}, "status": "Success"})
            return
        self.reactor.call_later(0.05, self._poll)

    def _stdin(self, payload: bytes) -> None:
        if self._writer is not None and self._stdin_open:
            self._writer.write(payload)

    def _stdin_eof(self) -> None:
        """This attach's stdin ended: its writer closes once flushed; with stdinOnce the
        container's stdin closes too, so the process reads EOF."""
        if self._writer is None or not self._stdin_open:
            return
        self._stdin_open = False
        self._writer.finish_writing()
        if self._once and self._on_once is not None:
            self._on_once()

    def gone(self) -> None:
        """The client left: the kubelet ends the session's stdin with it."""
        self.ended = True
        self._stdin_eof()

    def pod_gone(self) -> None:
        """Nothing to do: the log closes with the pod, which ends the session."""

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
