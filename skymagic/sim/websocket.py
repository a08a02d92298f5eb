"""RFC 6455 WebSocket framing for the server side, without any I/O.

Why hand-written: the simulator's HTTP server owns the (TLS) socket, so the upgrade must
happen inside it; a WebSocket library would want the socket or an asyncio transport of its
own. The server part of RFC 6455 is small: the accept key, a frame parser for masked client
frames (fragmented messages, ping, pong, close) and unmasked server frames.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameParser",
    "Message",
    "ProtocolError",
    "accept_key",
    "close_frame",
    "encode_frame",
    "offered_protocols",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# A message larger than this is refused (kubectl sends stdin in 32 KiB writes; a port-forward
# tunnel sends SPDY frames of at most a few hundred KiB).
MAX_MESSAGE = 64 << 20


class ProtocolError(ValueError):
    """The peer broke RFC 6455; the connection closes with status 1002."""


@dataclass(frozen=True)
class Message:
    """A complete message (data frames joined) or a control frame."""

    opcode: int
    payload: bytes


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    digest = hashlib.sha1(key.strip().encode("ascii") + _GUID).digest()  # RFC 6455 says SHA-1
    return base64.b64encode(digest).decode("ascii")


def offered_protocols(header: str) -> list[str]:
    """The subprotocols a client offers, in its order of preference ("a, b" or repeated)."""
    return [p.strip() for p in header.split(",") if p.strip()]


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked server frame."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    # XOR as one big integer: C speed for the multi-megabyte messages of a `kubectl cp`.
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameParser:
    """Feed it bytes from the client; it yields whole messages and control frames."""

    def __init__(self, *, require_mask: bool = True) -> None:
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._opcode: int | None = None
        self._size = 0
        self.require_mask = require_mask

    def feed(self, data: bytes) -> Iterable[Message]:
        self._buf += data
        out: list[Message] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return out
            fin, opcode, payload = frame
            if opcode >= 0x8:
                if not fin or len(payload) > 125:
                    raise ProtocolError("control frames must be final and at most 125 bytes")
                out.append(Message(opcode, payload))
                continue
            if opcode == OP_CONTINUATION:
                if self._opcode is None:
                    raise ProtocolError("continuation frame without a message to continue")
            else:
                if self._opcode is not None:
                    raise ProtocolError("new data frame before the last message ended")
                if opcode not in (OP_TEXT, OP_BINARY):
                    raise ProtocolError(f"unknown opcode {opcode}")
                self._opcode = opcode
            self._parts.append(payload)
            self._size += len(payload)
            if self._size > MAX_MESSAGE:
                raise ProtocolError("message too big")
            if fin:
                out.append(Message(self._opcode, b"".join(self._parts)))
                self._parts, self._opcode, self._size = [], None, 0

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise ProtocolError("reserved bits set without a negotiated extension")
        masked = bool(b1 & 0x80)
        if self.require_mask and not masked:
            raise ProtocolError("client frames must be masked")
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        if n > MAX_MESSAGE:
            raise ProtocolError("frame too big")
        mask = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            mask = bytes(buf[pos : pos + 4])
            pos += 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos : pos + n])
        del buf[: pos + n]
        if masked:
            payload = _unmask(payload, mask)
        return bool(b0 & 0x80), b0 & 0x0F, payload
