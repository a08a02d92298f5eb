"""A small HTTP/1.1 server on asyncio streams, made for API-server traffic.

Why not http.server or a framework: every response must go out in ONE write with TCP_NODELAY
(a header/body split costs ~40 ms per request through Nagle + delayed ACK, facts.md 8),
keep-alive must work for the Python client's connection pool and for kubectl, watches and
`logs -f` stream with chunked encoding, and faults need hooks below the request level
(refuse, accept-and-never-answer).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

__all__ = ["HTTPServer", "Request", "Response", "json_response"]

_REASONS = {
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


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None  # chunked body, written as it comes


def json_response(status: int, obj: Any) -> Response:
    return Response(status=status, body=orjson.dumps(obj))


Handler = Callable[[Request], Awaitable[Response]]


class HTTPServer:
    """Serve one handler on 127.0.0.1:port (TLS optional), with fault hooks."""

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
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        sock.listen(512)
        sock.setblocking(False)
        extra: dict[str, Any] = {"ssl_handshake_timeout": 10} if self.ssl_context else {}
        self._server = await asyncio.start_server(
            self._serve, sock=sock, ssl=self.ssl_context, limit=2**20, **extra
        )

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        """Stop listening AND drop open connections (the 'down' fault: connection refused)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._conns.add(writer)
        peercert = None
        ssl_obj = writer.get_extra_info("ssl_object")
        if ssl_obj is not None:
            peercert = ssl_obj.getpeercert() or None
        try:
            while True:
                if self.blackhole:
                    await _swallow(reader)
                    return
                request = await _read_request(reader, peercert)
                if request is None:
                    return
                if self.blackhole:
                    await _swallow(reader)
                    return
                try:
                    response = await self.handler(request)
                except Exception as exc:  # the server must answer, like a real one
                    response = json_response(
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
                keep_alive = request.headers.get("connection", "").lower() != "close"
                await _write_response(writer, response, keep_alive)
                if not keep_alive:
                    return
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            ssl.SSLError,
            asyncio.LimitOverrunError,
        ):
            return
        finally:
            self._conns.discard(writer)
            try:
                writer.close()
            except Exception:
                pass


async def _swallow(reader: asyncio.StreamReader) -> None:
    """Accept bytes forever and never answer, until the client gives up."""
    while await reader.read(65536):
        pass


async def _read_request(
    reader: asyncio.StreamReader, peercert: dict[str, Any] | None
) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            body = await reader.readexactly(n)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
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


async def _write_response(writer: asyncio.StreamWriter, resp: Response, keep_alive: bool) -> None:
    extra = dict(resp.headers)
    if not keep_alive:
        extra["Connection"] = "close"
    if resp.stream is None:
        writer.write(_head(resp.status, resp.content_type, extra, len(resp.body)) + resp.body)
        await writer.drain()
        return
    writer.write(_head(resp.status, resp.content_type, extra, None))
    await writer.drain()
    try:
        async for chunk in resp.stream:
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            if writer.is_closing():
                break
    finally:
        aclose = getattr(resp.stream, "aclose", None)
        if aclose is not None:
            await aclose()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
