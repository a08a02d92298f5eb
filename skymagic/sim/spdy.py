"""SPDY/3.1 framing for the server side, without any I/O (what kubectl's streams ride on).

Why the simulator needs SPDY at all: kubectl up to 1.29 execs over SPDY only, newer kubectl
falls back to it when a WebSocket upgrade is refused, and `kubectl port-forward` speaks SPDY
in every version (1.31+ tunnels it inside a WebSocket, subprotocol
`SPDY/3.1+portforward.k8s.io`). The peer is moby/spdystream, which needs only part of the
protocol: SYN_STREAM / SYN_REPLY with zlib-compressed header blocks (one compression context
per direction, primed with the SPDY/3 dictionary), DATA with FIN, RST_STREAM, PING, GOAWAY.
It does no flow control, so WINDOW_UPDATE and SETTINGS are read and ignored.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Data",
    "FrameParser",
    "GoAway",
    "HeaderCodec",
    "Ping",
    "ProtocolError",
    "Reset",
    "SynStream",
    "data_frame",
    "goaway_frame",
    "ping_frame",
    "rst_frame",
]

VERSION = 3
TYPE_SYN_STREAM = 1
TYPE_SYN_REPLY = 2
TYPE_RST_STREAM = 3
TYPE_SETTINGS = 4
TYPE_PING = 6
TYPE_GOAWAY = 7
TYPE_HEADERS = 8
TYPE_WINDOW_UPDATE = 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR = 1
RST_CANCEL = 5
MAX_DATA = 1 << 20  # what we put in one DATA frame (the format allows 16 MiB)

# fmt: off
_WORDS = [
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
    "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK", "version",
    "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
]
# fmt: on
_TAIL = (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, "
    b"Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1):
# length-prefixed header words, then status lines, dates and common values.
DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in _WORDS) + _TAIL


class ProtocolError(ValueError):
    """The peer sent something that is not SPDY/3; the connection is dropped."""


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: dict[str, list[str]]
    fin: bool


@dataclass(frozen=True)
class Data:
    stream_id: int
    payload: bytes
    fin: bool


@dataclass(frozen=True)
class Reset:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int


Frame = SynStream | Data | Reset | Ping | GoAway


@dataclass
class HeaderCodec:
    """Both zlib contexts of one connection (each lives as long as the connection)."""

    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))
    _deflate: zlib._Compress = field(
        default_factory=lambda: zlib.compressobj(9, zlib.DEFLATED, 15, 8, 0, zdict=DICTIONARY)
    )

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        headers: dict[str, list[str]] = {}
        try:
            (count,) = struct.unpack_from("!I", raw, 0)
            pos = 4
            for _ in range(count):
                (n,) = struct.unpack_from("!I", raw, pos)
                name = raw[pos + 4 : pos + 4 + n].decode("latin-1").lower()
                pos += 4 + n
                (n,) = struct.unpack_from("!I", raw, pos)
                value = raw[pos + 4 : pos + 4 + n].decode("latin-1")
                pos += 4 + n
                headers.setdefault(name, []).extend(value.split("\x00"))
        except struct.error:
            raise ProtocolError("truncated header block") from None
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = [struct.pack("!I", len(headers))]
        for name, value in headers.items():
            n, v = name.lower().encode("latin-1"), value.encode("latin-1")
            raw += [struct.pack("!I", len(n)), n, struct.pack("!I", len(v)), v]
        return self._deflate.compress(b"".join(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
        body = struct.pack("!I", stream_id & 0x7FFFFFFF) + self.encode(headers or {})
        return _control(TYPE_SYN_REPLY, 0, body)


def _control(ftype: int, flags: int, body: bytes) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body


def data_frame(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    flags = FLAG_FIN if fin else 0
    return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


def rst_frame(stream_id: int, status: int = RST_CANCEL) -> bytes:
    return _control(TYPE_RST_STREAM, 0, struct.pack("!II", stream_id & 0x7FFFFFFF, status))


def ping_frame(ping_id: int) -> bytes:
    return _control(TYPE_PING, 0, struct.pack("!I", ping_id))


def goaway_frame(last_stream_id: int, status: int = 0) -> bytes:
    return _control(TYPE_GOAWAY, 0, struct.pack("!II", last_stream_id & 0x7FFFFFFF, status))


class FrameParser:
    """Feed it the bytes of the connection; it returns the frames that are complete."""

    def __init__(self, codec: HeaderCodec) -> None:
        self._buf = bytearray()
        self._codec = codec

    def feed(self, data: bytes) -> Iterable[Frame]:
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        while len(buf) >= 8:
            word0, word1 = struct.unpack_from("!II", buf, 0)
            flags, length = word1 >> 24, word1 & 0xFFFFFF
            if len(buf) < 8 + length:
                break
            body = bytes(buf[8 : 8 + length])
            del buf[: 8 + length]
            if not word0 & 0x80000000:
                out.append(Data(word0 & 0x7FFFFFFF, body, bool(flags & FLAG_FIN)))
                continue
            version, ftype = (word0 >> 16) & 0x7FFF, word0 & 0xFFFF
            if version != VERSION:
                raise ProtocolError(f"SPDY version {version}; only 3 is spoken here")
            frame = self._control(ftype, flags, body)
            if frame is not None:
                out.append(frame)
        return out

    def _control(self, ftype: int, flags: int, body: bytes) -> Frame | None:
        try:
            if ftype == TYPE_SYN_STREAM:
                (sid,) = struct.unpack_from("!I", body, 0)
                headers = self._codec.decode(body[10:])
                return SynStream(sid & 0x7FFFFFFF, headers, bool(flags & FLAG_FIN))
            if ftype in (TYPE_SYN_REPLY, TYPE_HEADERS):
                self._codec.decode(body[4:])  # keep the zlib context in step; nothing to do
                return None
            if ftype == TYPE_RST_STREAM:
                sid, status = struct.unpack_from("!II", body, 0)
                return Reset(sid & 0x7FFFFFFF, status)
            if ftype == TYPE_PING:
                return Ping(struct.unpack_from("!I", body, 0)[0])
            if ftype == TYPE_GOAWAY:
                return GoAway(struct.unpack_from("!I", body, 0)[0] & 0x7FFFFFFF)
        except struct.error:
            raise ProtocolError(f"truncated control frame of type {ftype}") from None
        return None  # SETTINGS, WINDOW_UPDATE and unknown types: nothing to do
