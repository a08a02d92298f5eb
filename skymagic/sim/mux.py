"""Many logical streams over one upgraded connection: WebSocket channels or SPDY streams.

Sessions (remotecommand.py, portforward.py) see numbered streams that open, carry data, end
(FIN, or the v5 close signal) or reset, whichever the client speaks:

- `WsMux`: Kubernetes channel framing over WebSocket. Each message starts with its channel
  byte (binary subprotocols) or ASCII digit plus base64 payload (`base64.` subprotocols); v5
  adds the close signal `[255, channel]`. Channels exist from the start.
- `SpdyMux`: SPDY/3.1 streams, opened by the client with typed headers; plain after an
  `Upgrade: SPDY/3.1`, or tunnelled inside WebSocket binary messages.

Ending: `end()` sends the close frame (WebSocket) or GOAWAY (SPDY), then waits a little for
the client to hang up, as a kubelet closes its side and lets the client finish.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Protocol

from skymagic.sim import spdy
from skymagic.sim import websocket as ws
from skymagic.sim.streamio import HIGH_WATER, Reactor, SocketEnd

__all__ = ["CLOSE_SIGNAL", "Handler", "Mux", "SpdyMux", "WsMux"]

CLOSE_SIGNAL = 255
_END_GRACE_S = 2.0
_WS_CHUNK = 1 << 20


class Handler(Protocol):
    """A session: what happens on the logical streams."""

    def start(self) -> None: ...
    def opened(self, sid: int, headers: dict[str, str]) -> None: ...
    def data(self, sid: int, payload: bytes) -> None: ...
    def fin(self, sid: int) -> None: ...
    def reset(self, sid: int) -> None: ...
    def gone(self) -> None: ...
    def pod_gone(self) -> None: ...
    def close(self) -> None: ...


class _NoHandler:
    def start(self) -> None:
        return None

    def opened(self, sid: int, headers: dict[str, str]) -> None:
        return None

    def data(self, sid: int, payload: bytes) -> None:
        return None

    def fin(self, sid: int) -> None:
        return None

    def reset(self, sid: int) -> None:
        return None

    def gone(self) -> None:
        return None

    def pod_gone(self) -> None:
        return None

    def close(self) -> None:
        return None


class Mux:
    """The client connection seen as numbered streams."""

    def __init__(self, reactor: Reactor, client: SocketEnd) -> None:
        self.reactor = reactor
        self.client = client
        self.handler: Handler = _NoHandler()
        self._done = False  # no more traffic expected: flush, then stop
        self._deadline: float | None = None
        client.on_data = self.feed
        client.on_eof = self._client_eof

    @property
    def finished(self) -> bool:
        if self.client.closed:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return self._done and (self.client.eof or self.client.buffered == 0)

    @property
    def ending(self) -> bool:
        return self._deadline is not None or self._done

    def congested(self) -> bool:
        """True while the client has not taken what was sent (pause the sources)."""
        return self.client.buffered > HIGH_WATER

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def send(self, sid: int, data: bytes) -> None:
        raise NotImplementedError

    def fin(self, sid: int) -> None:
        """End our side of a stream (nothing to do where the framing has no such signal)."""

    def reset(self, sid: int) -> None:
        """Abort a stream."""

    def end(self) -> None:
        """Say goodbye, then stop once the client hangs up or after a grace period."""
        if self._deadline is None:
            self._deadline = time.monotonic() + _END_GRACE_S
            self._goodbye()
            self.reactor.call_later(_END_GRACE_S, lambda: None)  # wake the loop to stop

    def _goodbye(self) -> None:
        raise NotImplementedError

    def _client_eof(self) -> None:
        if not self.ending:
            self.handler.gone()
        self._done = True

    def _client_left(self) -> None:
        """The client closed the session (close frame, GOAWAY, protocol error)."""
        if not self.ending:
            self.handler.gone()
        self._done = True

    def _read_ws(
        self,
        parser: ws.FrameParser,
        data: bytes,
        on_message: Callable[[bytes], None],
        kinds: tuple[int, ...],
    ) -> tuple[int, str] | None:
        """Read the client's WebSocket frames in `data`: answer pings, hand each non-empty
        message of `kinds` to `on_message`. Returns the close status to answer with once the
        client sent a close frame (1000) or broke the framing (1002); nothing after is read."""
        try:
            messages = parser.feed(data)
        except ws.ProtocolError as exc:
            return 1002, str(exc)
        for msg in messages:
            if msg.opcode == ws.OP_PING:
                self.client.write(ws.encode_frame(ws.OP_PONG, msg.payload))
            elif msg.opcode == ws.OP_CLOSE:
                return 1000, ""
            elif msg.opcode in kinds and msg.payload:
                on_message(msg.payload)
        return None


class WsMux(Mux):
    """Kubernetes channels over WebSocket messages."""

    def __init__(
        self, reactor: Reactor, client: SocketEnd, *, binary: bool, close_signal: bool
    ) -> None:
        super().__init__(reactor, client)
        self.binary = binary
        self.close_signal = close_signal
        self._parser = ws.FrameParser()
        self._sent_close = False

    def feed(self, data: bytes) -> None:
        closing = self._read_ws(self._parser, data, self._message, (ws.OP_TEXT, ws.OP_BINARY))
        if closing is not None:
            self._close(*closing)
            self._client_left()

    def _message(self, payload: bytes) -> None:
        if self.binary:
            channel, data = payload[0], payload[1:]
        else:
            channel = payload[0] - ord("0")
            try:
                data = base64.b64decode(payload[1:])
            except (binascii.Error, ValueError):
                return
        if channel == CLOSE_SIGNAL and self.close_signal:
            if data:
                self.handler.fin(data[0])
            return
        self.handler.data(channel, data)

    def send(self, sid: int, data: bytes) -> None:
        if self._sent_close:
            return
        for i in range(0, max(len(data), 1), _WS_CHUNK):
            part = data[i : i + _WS_CHUNK]
            if self.binary:
                self.client.write(ws.encode_frame(ws.OP_BINARY, bytes([sid]) + part))
            else:
                text = str(sid).encode() + base64.b64encode(part)
                self.client.write(ws.encode_frame(ws.OP_TEXT, text))

    def _close(self, code: int, reason: str = "") -> None:
        if not self._sent_close:
            self._sent_close = True
            self.client.write(ws.close_frame(code, reason))

    def _goodbye(self) -> None:
        self._close(1000)


class SpdyMux(Mux):
    """SPDY/3.1 streams, plain or tunnelled in WebSocket binary messages."""

    def __init__(self, reactor: Reactor, client: SocketEnd, *, tunnel: bool) -> None:
        super().__init__(reactor, client)
        self.tunnel = tunnel
        self._codec = spdy.HeaderCodec()
        self._parser = spdy.FrameParser(self._codec)
        self._ws = ws.FrameParser() if tunnel else None
        self._last_id = 0
        self._closed_ws = False

    def _emit(self, data: bytes) -> None:
        if self.tunnel:
            if not self._closed_ws:
                self.client.write(ws.encode_frame(ws.OP_BINARY, data))
        else:
            self.client.write(data)

    def feed(self, data: bytes) -> None:
        if self._ws is None:
            self._feed_spdy(data)
            return
        chunks: list[bytes] = []
        closing = self._read_ws(self._ws, data, chunks.append, (ws.OP_BINARY,))
        self._feed_spdy(b"".join(chunks))  # what came before a close frame still counts
        if closing is not None:
            self._ws_close(*closing)
            self._client_left()

    def _feed_spdy(self, data: bytes) -> None:
        if not data:
            return
        try:
            frames = self._parser.feed(data)
        except spdy.ProtocolError:
            self._emit(spdy.goaway_frame(self._last_id, 1))
            self._client_left()
            return
        for frame in frames:
            if isinstance(frame, spdy.SynStream):
                self._last_id = max(self._last_id, frame.stream_id)
                self._emit(self._codec.syn_reply(frame.stream_id))
                headers = {k: v[0] if v else "" for k, v in frame.headers.items()}
                self.handler.opened(frame.stream_id, headers)
                if frame.fin:
                    self.handler.fin(frame.stream_id)
            elif isinstance(frame, spdy.Data):
                if frame.payload:
                    self.handler.data(frame.stream_id, frame.payload)
                if frame.fin:
                    self.handler.fin(frame.stream_id)
            elif isinstance(frame, spdy.Reset):
                self.handler.reset(frame.stream_id)
            elif isinstance(frame, spdy.Ping):
                self._emit(spdy.ping_frame(frame.ping_id))

    def send(self, sid: int, data: bytes) -> None:
        for i in range(0, len(data), spdy.MAX_DATA):
            self._emit(spdy.data_frame(sid, data[i : i + spdy.MAX_DATA]))

    def fin(self, sid: int) -> None:
        self._emit(spdy.data_frame(sid, b"", fin=True))

    def reset(self, sid: int) -> None:
        self._emit(spdy.rst_frame(sid))

    def _ws_close(self, code: int, reason: str = "") -> None:
        if self.tunnel and not self._closed_ws:
            self.client.write(ws.close_frame(code, reason))
            self._closed_ws = True

    def _goodbye(self) -> None:
        self._emit(spdy.goaway_frame(self._last_id))
        self._ws_close(1000)
