"""Port-forwards skymagic runs itself: http://127.0.0.1:PORT reaches a port of a launch's pod.

One listener per (pod, port) on 127.0.0.1 (the same port number when it is free, else any
free one), served by background threads in this process (the notebook's kernel, or the
`skymagic port-forward` command). Each accepted TCP connection opens its own port-forward
stream (core/podstreams.py), so a dropped stream costs only its own connection and the next one
dials again: that is the reconnect. A watcher checks the pod every few seconds and closes the
listener when the pod is gone, has ended or was replaced (another uid): the forward ends with
the pod.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field

from skymagic.core.podstreams import open_port_socket
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError, NotFoundError, SkymagicError
from skymagic.launches.pods import LivePod, find_pod

__all__ = ["PortForward", "active_forwards", "forward_port", "stop_forwards"]

_WATCH_S = 2.0
_forwards: dict[tuple[str, str, str, int], PortForward] = {}
_lock = threading.Lock()


@dataclass
class PortForward:
    """A running forward from 127.0.0.1:local_port to `port` of a launch's pod."""

    launch: str
    live: LivePod
    port: int
    local_port: int = 0
    connections: int = 0
    errors: list[str] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    @property
    def alive(self) -> bool:
        return not self._stop.is_set()

    def __str__(self) -> str:
        state = "" if self.alive else " (stopped)"
        return f"{self.url} -> {self.launch}:{self.port} in {self.live.context}{state}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return (
            f'<a href="{self.url}" target="_blank">{html.escape(self.url)}</a> &rarr; '
            f"{html.escape(self.launch)}:{self.port} in {html.escape(self.live.context)}"
            + ("" if self.alive else " (stopped)")
        )

    def start(self, local_port: int | None = None) -> PortForward:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wanted = self.port if local_port is None else local_port
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            if local_port is not None:
                sock.close()
                raise ConfigError(
                    f"local port {local_port} is in use; pick another (or leave it out)"
                ) from None
            sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._sock = sock
        self.local_port = sock.getsockname()[1]
        name = f"{self.launch}:{self.port}"
        threading.Thread(target=self._accept, daemon=True, name=f"forward-{name}").start()
        threading.Thread(target=self._watch, daemon=True, name=f"forward-watch-{name}").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def wait(self) -> None:
        """Block until the forward ends (the pod went away, or stop())."""
        while not self._stop.wait(0.5):
            pass

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        live = self.live
        try:
            remote, close = open_port_socket(live.client, live.namespace, live.name, self.port)
        except (SkymagicError, OSError) as exc:
            self.errors.append(str(exc))
            conn.close()
            return
        try:
            _relay(conn, remote, self._stop)
        finally:
            conn.close()
            close()

    def _watch(self) -> None:
        live = self.live
        uid = live.pod["metadata"].get("uid")
        path = f"/api/v1/namespaces/{live.namespace}/pods/{live.name}"
        while not self._stop.wait(_WATCH_S):
            try:
                pod = live.client.get_json(path)
            except NotFoundError:
                break
            except SkymagicError:
                continue  # unreachable for now: keep the listener, new connections retry
            phase = pod.get("status", {}).get("phase")
            if pod["metadata"].get("uid") != uid or phase in ("Succeeded", "Failed"):
                break
            if pod["metadata"].get("deletionTimestamp"):
                break
        self.stop()


def _relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    pair = {a: b, b: a}
    while not stop.is_set():
        try:
            ready, _, _ = select.select([a, b], [], [], 1.0)
        except (OSError, ValueError):
            return
        for src in ready:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                pair[src].sendall(data)
            except OSError:
                return


def forward_port(
    name: str,
    port: int,
    settings: Settings | None = None,
    *,
    local_port: int | None = None,
    live: LivePod | None = None,
) -> PortForward:
    """Forward 127.0.0.1:PORT (or `local_port`) to `port` of launch `name`'s pod.

    A forward already running in this process for the same pod and port is returned as is.
    """
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    live = live or find_pod(name, settings)
    key = (live.context, live.namespace, live.name, port)
    with _lock:
        old = _forwards.get(key)
        if (
            old is not None
            and old.alive
            and old.live.pod["metadata"].get("uid") == live.pod["metadata"].get("uid")
        ):
            return old
        fwd = PortForward(name, live, port).start(local_port)
        _forwards[key] = fwd
        return fwd


def active_forwards() -> list[PortForward]:
    """The forwards of this process that still run."""
    with _lock:
        return [f for f in _forwards.values() if f.alive]


def stop_forwards(name: str | None = None) -> int:
    """Stop this process's forwards (of launch `name`, or all); how many were stopped."""
    with _lock:
        hit = [f for f in _forwards.values() if f.alive and name in (None, f.launch)]
    for f in hit:
        f.stop()
    return len(hit)
