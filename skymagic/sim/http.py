"""A small HTTP/1.1 server made for API-server traffic.

Why not http.server or a framework: every response must go out in ONE write with TCP_NODELAY
(writing head and body apart cost ~40 ms per request here: Nagle's algorithm, RFC 896, holds
the second write until the peer's delayed ACK, RFC 1122 4.2.3.2),
keep-alive must work for the Python client's connection pool and for kubectl, watches and
`logs -f` stream with chunked encoding, and faults need hooks below the request level
(refuse, accept-and-never-answer).
"""

from __future__ import annotations

import asyncio
import io
import socket
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

__all__ = ["HTTPServer", "Request", "Response", "json_response"]

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peercert: dict[str, Any] | None
    received: float = field(default_factory=time.monotonic)
    # Every value of every header, in order: `headers` keeps only the last one, but some
    # headers repeat (Impersonate-Group, Impersonate-Extra-*).
    header_values: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None  # chunked body, written as it comes
    # More body after `body`, sent from its own buffer without being copied behind the head
    # (a big list's items, shared between requests).
    tail: bytes = b""
    # A 101 answer: after the head, the connection's thread calls this with the socket and any
    # bytes already read past the request, and the connection belongs to it until it returns.
    upgrade: Callable[[socket.socket, bytes], None] | None = None

    @property
    def length(self) -> int:
        return len(self.body) + len(self.tail)


def json_response(status: int, obj: Any) -> Response:
    return Response(status=status, body=msgspec.json.encode(obj))


Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Bodies up to this size are copied behind their head and written with one sendall.
_ONE_COPY_LIMIT = 1 << 20
# kube-apiserver's response compression (k8s.io/apiserver responsewriters): gzip at level 1
# ("least CPU ... similar compression ratios", kubernetes#112296) for a client that accepts
# it, only when the body is larger than 128 KiB, sent chunked with Content-Encoding: gzip and
# Vary: Accept-Encoding. Watches and other streams are never compressed.
_GZIP_THRESHOLD = 128 * 1024
_GZIP_LEVEL = 1
_GZIP_SLICE = 1 << 20


class HTTPServer:
    """Serve one handler on 127.0.0.1:port (TLS optional), with fault hooks.

    Sockets are blocking and served by one thread per connection, because the ssl module
    encrypts and sends a large body with the GIL released (~1 GB/s here), while asyncio's TLS
    transport copies through memory BIOs (~180 MB/s). The handler itself runs on the fleet's
    event loop, where all cluster state lives, so no state is shared between threads.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.blackhole = False
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        sock.listen(512)
        self._listener = sock
        threading.Thread(target=self._accept_loop, args=(sock,), daemon=True).start()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def stop(self) -> None:
        """Stop listening AND drop open connections (the 'down' fault: connection refused)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn: socket.socket = raw
        try:
            if self.ssl_context is not None:
                raw.settimeout(10)
                conn = self.ssl_context.wrap_socket(raw, server_side=True)
                conn.settimeout(None)
                with self._lock:
                    self._conns.discard(raw)
                    self._conns.add(conn)
            peercert = None
            if isinstance(conn, ssl.SSLSocket):
                peercert = conn.getpeercert() or None
            reader = conn.makefile("rb", buffering=65536)
            assert isinstance(reader, io.BufferedReader)
            while True:
                request = _read_request(reader, peercert)
                if request is None:
                    return
                if self.blackhole:
                    _swallow(reader)
                    return
                assert self._loop is not None
                response: Response
                try:
                    response = asyncio.run_coroutine_threadsafe(
                        self.handler(request), self._loop
                    ).result()
                except Exception as exc:  # the server must answer, like a real one
                    response = _internal_error(exc)
                if response.upgrade is not None:
                    conn.sendall(_upgrade_head(response))
                    response.upgrade(conn, _buffered(reader, conn))
                    return
                keep_alive = request.headers.get("connection", "").lower() != "close"
                gzip_ok = _accepts_gzip(request.headers.get("accept-encoding", ""))
                self._write_response(conn, response, keep_alive, gzip_ok)
                if not keep_alive:
                    return
        except (OSError, ValueError, ssl.SSLError):
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._conns.discard(raw)
            try:
                conn.close()
            except OSError:
                pass

    def _stalled(self) -> bool:
        """The blackhole fault on an open stream: send nothing more while it lasts.

        A black-holed network (a proxy that stops forwarding) leaves an open connection
        silent: the client sees neither data nor an end. When the fault clears, the stalled
        connection is dropped, as one would be after its packets were lost.
        """
        if not self.blackhole:
            return False
        while self.blackhole and self.listening:
            time.sleep(0.05)
        return True

    def _write_response(
        self, conn: socket.socket, resp: Response, keep_alive: bool, gzip_ok: bool = False
    ) -> None:
        extra = dict(resp.headers)
        if not keep_alive:
            extra["Connection"] = "close"
        if resp.stream is None and gzip_ok and resp.length > _GZIP_THRESHOLD:
            extra["Content-Encoding"] = "gzip"
            extra["Vary"] = "Accept-Encoding"
            head = _head(resp.status, resp.content_type, extra, None)
            _send_gzip_chunks(conn, head, (resp.body, resp.tail))
            return
        if resp.stream is None:
            head = _head(resp.status, resp.content_type, extra, resp.length)
            if resp.length <= _ONE_COPY_LIMIT:
                conn.sendall(head + resp.body + resp.tail)
                return
            # A big list: the head leaves with the body's first MiB (one segment, no Nagle
            # stall), and the rest goes from its own buffer without another copy.
            first = head + resp.body
            tail = memoryview(resp.tail)
            room = max(0, _ONE_COPY_LIMIT - len(first))
            conn.sendall(first + tail[:room])
            if len(tail) > room:
                conn.sendall(tail[room:])
            return
        assert self._loop is not None
        conn.sendall(_head(resp.status, resp.content_type, extra, None))
        stream = resp.stream
        try:
            while True:
                try:
                    chunk = asyncio.run_coroutine_threadsafe(
                        _next_chunk(stream), self._loop
                    ).result()
                except StopAsyncIteration:
                    break
                if self._stalled():
                    return
                if chunk:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if self._stalled():
                return
            conn.sendall(b"0\r\n\r\n")
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                asyncio.run_coroutine_threadsafe(aclose(), self._loop)


def _accepts_gzip(header: str) -> bool:
    """Accept-Encoding names gzip with a non-zero weight (RFC 9110 12.5.3)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            weight = params.strip().lower()
            return not weight.startswith("q=") or _weight(weight[2:]) > 0
    return False


def _weight(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def _send_gzip_chunks(conn: socket.socket, head: bytes, parts: tuple[bytes, ...]) -> None:
    """The body gzip'd (level 1) a MiB at a time, each piece one HTTP chunk; the head goes out
    with the first one. zlib releases the GIL while it compresses."""
    z = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    pending = head
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _GZIP_SLICE):
            piece = z.compress(view[start : start + _GZIP_SLICE])
            if piece:
                conn.sendall(pending + b"%x\r\n%s\r\n" % (len(piece), piece))
                pending = b""
    piece = z.flush()
    conn.sendall(pending + b"%x\r\n%s\r\n0\r\n\r\n" % (len(piece), piece))


async def _next_chunk(stream: AsyncIterator[bytes]) -> bytes:
    return await stream.__anext__()


def _internal_error(exc: Exception) -> Response:
    return json_response(
        500,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"internal error: {type(exc).__name__}: {exc}",
            "reason": "InternalError",
            "code": 500,
        },
    )


def _upgrade_head(resp: Response) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _buffered(reader: io.BufferedReader, conn: socket.socket) -> bytes:
    """Bytes the reader already holds past the request, without waiting for more."""
    conn.setblocking(False)
    try:
        return reader.read1(65536) or b""
    except OSError:  # SSLWantReadError, BlockingIOError: nothing more is there yet
        return b""


def _swallow(reader: io.BufferedReader) -> None:
    """Accept bytes forever and never answer, until the client gives up."""
    while reader.read1(65536):
        pass


def _read_request(reader: io.BufferedReader, peercert: dict[str, Any] | None) -> Request | None:
    request_line = reader.readline(65537)
    while request_line in (b"\r\n", b"\n"):
        request_line = reader.readline(65537)
    if not request_line:
        return None
    parts = request_line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        return None
    method, target, _version = parts
    headers: dict[str, str] = {}
    header_values: dict[str, list[str]] = {}
    while True:
        line = reader.readline(65537)
        if not line or line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        name = k.strip().lower()
        # A repeated header is one comma-separated list (RFC 9110 5.3): kubectl sends one
        # X-Stream-Protocol-Version line per protocol it speaks.
        headers[name] = f"{headers[name]}, {v.strip()}" if name in headers else v.strip()
        header_values.setdefault(name, []).append(v.strip())
    body = b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            body = reader.read(n)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(reader.readline().split(b";")[0].strip(), 16)
            if size == 0:
                reader.readline()
                break
            chunks.append(reader.read(size))
            reader.readline()
        body = b"".join(chunks)
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    return Request(
        method=method.upper(),
        target=target,
        path=unquote(split.path),
        query=query,
        headers=headers,
        body=body,
        peercert=peercert,
        header_values=header_values,
    )


def _head(status: int, content_type: str, extra: dict[str, str], length: int | None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Date: {formatdate(usegmt=True)}",
        "Cache-Control: no-cache, private",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
