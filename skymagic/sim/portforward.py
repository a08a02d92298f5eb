"""Port-forward sessions: client streams relayed to TCP connections into the pod.

Two shapes, as the kubelet (pkg/kubelet/cri/streaming/portforward) serves them:

- WebSocket (`v4.channel.k8s.io`, the Python client): the ports come from the query; port i
  has data channel 2i and error channel 2i+1; each channel's first message is the port number
  (2 bytes, little endian); one connection per port, made at once; the session ends when every
  port's connection has ended.
- SPDY (`portforward.k8s.io`, kubectl, plain or tunnelled in WebSocket): every client
  connection opens an error stream then a data stream with headers `port` and `requestid`;
  once both exist the pod is dialled. Our end of both streams finishes when the pod closes;
  the client's FIN half-closes the pod connection. A failed dial writes
  `error forwarding port P to pod NAME_NAMESPACE, uid UID: ...` on the error stream.

Where a port goes is decided by podexec.PodRuntime.target (see there).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from skymagic.sim.mux import Mux, WsMux
from skymagic.sim.podexec import PodRuntime
from skymagic.sim.streamio import HIGH_WATER, End, Reactor, SocketEnd

__all__ = ["PageEnd", "PortForwardSession"]


class PageEnd(End):
    """A simulated pod's web server: answers the first request with one line, then hangs up."""

    def __init__(self, reactor: Reactor, text: str) -> None:
        super().__init__()
        self.reactor = reactor
        self.text = text
        self._request = b""
        self._answered = False

    def fileno(self) -> int:
        raise OSError("a simulated page has no file descriptor")

    def wants_read(self) -> bool:
        return False

    def wants_write(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self._request += data
        if b"\r\n\r\n" in self._request:
            self._answer()

    def finish_writing(self) -> None:
        self._answer()

    def _answer(self) -> None:
        if self._answered or self.closed:
            return
        self._answered = True
        body = self.text.encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()

        def deliver() -> None:
            if not self.closed:
                self.on_data(head + body)
                self.eof = True
                self.on_eof()

        self.reactor.call_later(0, deliver)

    def close(self) -> None:
        self.closed = True


@dataclass
class _Conn:
    port: int
    data_sid: int = -1
    error_sid: int = -1
    end: End | None = None
    client_fin: bool = False
    done: bool = False


@dataclass
class PortForwardSession:
    reactor: Reactor
    mux: Mux
    runtime: PodRuntime
    key: str
    pod: dict[str, Any]
    ports: list[int]
    _by_sid: dict[int, _Conn] = field(default_factory=dict)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    _conns: list[_Conn] = field(default_factory=list)

    @property
    def websocket(self) -> bool:
        return isinstance(self.mux, WsMux)

    def start(self) -> None:
        self.mux.client.full = self._pod_full
        if not self.websocket:
            return
        for i, port in enumerate(self.ports):
            conn = _Conn(port, data_sid=2 * i, error_sid=2 * i + 1)
            prefix = struct.pack("<H", port)
            self.mux.send(conn.data_sid, prefix)
            self.mux.send(conn.error_sid, prefix)
            self._track(conn)
        for conn in list(self._conns):
            self._dial(conn)

    def _pod_full(self) -> bool:
        return any(c.end is not None and c.end.buffered > HIGH_WATER for c in self._conns)

    def _track(self, conn: _Conn) -> None:
        self._conns.append(conn)
        self._by_sid[conn.data_sid] = conn
        self._by_sid[conn.error_sid] = conn

    def opened(self, sid: int, headers: dict[str, str]) -> None:
        kind = headers.get("streamtype", "")
        if kind not in ("data", "error"):
            self.mux.reset(sid)
            return
        request = headers.get("requestid") or str(sid if kind == "error" else sid - 2)
        pair = self._pending.setdefault(request, {})
        pair[kind] = sid
        pair["port"] = headers.get("port", "")
        if "data" in pair and "error" in pair:
            del self._pending[request]
            try:
                port = int(pair["port"])
            except ValueError:
                port = 0
            conn = _Conn(port, data_sid=pair["data"], error_sid=pair["error"])
            self._track(conn)
            self._dial(conn)

    def _dial(self, conn: _Conn) -> None:
        meta = self.pod["metadata"]
        where, target = self.runtime.target(self.key, self.pod, conn.port)
        end: End
        if where == "page":
            end = PageEnd(self.reactor, f"simulated pod {meta['name']}: port {conn.port}\n")
        else:
            error = f"dial tcp4 127.0.0.1:{conn.port}: connect: connection refused"
            sock = None
            if where == "tcp":
                try:
                    sock = socket.create_connection(("127.0.0.1", target), timeout=2)
                except OSError as exc:
                    why = (exc.strerror or str(exc)).lower()  # Go spells errno text in lower case
                    error = f"dial tcp4 127.0.0.1:{conn.port}: connect: {why}"
            if sock is None:
                self._fail(
                    conn,
                    f"error forwarding port {conn.port} to pod {meta['name']}_"
                    f"{meta.get('namespace', 'default')}, uid {meta.get('uid', '')}: failed to "
                    f"connect to localhost:{conn.port} inside the pod: {error}",
                )
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            end = SocketEnd(sock)
            self.reactor.add(end)
        conn.end = end
        end.on_data = lambda data: self.mux.send(conn.data_sid, data)
        end.on_eof = lambda: self._pod_closed(conn)
        end.full = self.mux.congested

    def _fail(self, conn: _Conn, message: str) -> None:
        self.mux.send(conn.error_sid, message.encode())
        self._conn_done(conn)

    def _pod_closed(self, conn: _Conn) -> None:
        if conn.client_fin and conn.end is not None:
            conn.end.close()
        self._conn_done(conn)

    def _conn_done(self, conn: _Conn) -> None:
        if conn.done:
            return
        conn.done = True
        if self.websocket:
            if all(c.done for c in self._conns):
                self.mux.end()
            return
        self.mux.fin(conn.data_sid)
        self.mux.fin(conn.error_sid)

    def data(self, sid: int, payload: bytes) -> None:
        conn = self._by_sid.get(sid)
        if conn is not None and sid == conn.data_sid and conn.end is not None:
            conn.end.write(payload)

    def fin(self, sid: int) -> None:
        conn = self._by_sid.get(sid)
        if conn is None or sid != conn.data_sid:
            return
        conn.client_fin = True
        if conn.end is not None:
            conn.end.finish_writing()

    def reset(self, sid: int) -> None:
        conn = self._by_sid.get(sid)
        if conn is not None and conn.end is not None:
            conn.end.close()
            conn.done = True

    def gone(self) -> None:
        self.close()

    def pod_gone(self) -> None:
        """The pod stopped: its connections drop and the session ends (kubectl then reports
        the lost connection, as with a real pod)."""
        self.close()
        self.mux.end()

    def close(self) -> None:
        for conn in self._conns:
            if conn.end is not None:
                conn.end.close()
