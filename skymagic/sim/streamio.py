"""A one-thread event loop for an upgraded connection and the pod-side file descriptors it relays.

Why not asyncio: the HTTP server serves each connection from its own thread over a blocking
`ssl.SSLSocket` (see http.py), and an established TLS session cannot move into an asyncio
transport. Why not a reader thread plus a writer thread: OpenSSL forbids using one SSL object
from two threads at once. So the connection thread turns its socket non-blocking and runs this
small selector loop over it, the exec'd process's pipes (or pty) and port-forward sockets.

Every end buffers what it cannot write yet; a reader is paused while the end it feeds holds
more than `HIGH_WATER` bytes, so a slow client never makes the fleet buffer a whole `cp`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import itertools
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

__all__ = ["HIGH_WATER", "End", "FdEnd", "Reactor", "SocketEnd"]

HIGH_WATER = 4 << 20
_CHUNK = 256 << 10

DataCallback = Callable[[bytes], None]
Callback = Callable[[], None]


def _nothing(*_: object) -> None:
    return None


class End:
    """One file descriptor: what it wants, and what to do when it is ready."""

    def __init__(self) -> None:
        self.closed = False
        self.eof = False
        self.on_data: DataCallback = _nothing
        self.on_eof: Callback = _nothing
        # Pause reading while this returns True (the end we feed is full).
        self.full: Callable[[], bool] = lambda: False
        self._out = bytearray()
        self._close_after_flush = False
        # Set by the reactor: unregister before the fd closes (its number may be reused).
        self.before_close: Callback = _nothing

    def fileno(self) -> int:
        raise NotImplementedError

    @property
    def buffered(self) -> int:
        return len(self._out)

    def wants_read(self) -> bool:
        return not self.closed and not self.eof and not self.full()

    def wants_write(self) -> bool:
        return not self.closed and bool(self._out)

    def ready_again(self) -> bool:
        """True when data is already buffered below the fd (TLS records), so select would lie."""
        return False

    def write(self, data: bytes) -> None:
        if not self.closed and data:
            self._out += data

    def finish_writing(self) -> None:
        """Send what is buffered, then signal end of data (close or half-close)."""
        self._close_after_flush = True
        if not self._out:
            self._end_of_output()

    def on_readable(self) -> None:
        raise NotImplementedError

    def on_writable(self) -> None:
        raise NotImplementedError

    def _end_of_output(self) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.before_close()
            self.closed = True
            self._release()

    def _release(self) -> None:
        """Give back what the end holds (its fd, its socket), once, after it is closed."""


class FdEnd(End):
    """A pipe or a pty master (os.read / os.write on a non-blocking fd)."""

    def __init__(self, fd: int, *, readable: bool = True, writable: bool = False) -> None:
        super().__init__()
        self.fd = fd
        self.readable = readable
        self.writable = writable
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def wants_read(self) -> bool:
        return self.readable and super().wants_read()

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # a pty master reads EIO once the child side is gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if data:
            self.on_data(data)
            return
        self.eof = True
        self.on_eof()
        if not self.writable:
            self.close()

    def on_writable(self) -> None:
        try:
            n = os.write(self.fd, self._out[:_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the reader went away (EPIPE): drop what is left
            self._out.clear()
            n = 0
        del self._out[:n]
        if not self._out and self._close_after_flush:
            self._end_of_output()

    def _end_of_output(self) -> None:
        if self.readable and not self.eof:
            return  # a pty: stdin has no end of its own; the fd stays open for output
        self.close()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class SocketEnd(End):
    """A stream socket: the client's (maybe TLS) connection or a TCP connection into a pod."""

    def __init__(self, sock: socket.socket, *, half_close: bool = True) -> None:
        super().__init__()
        self.sock = sock
        self.half_close = half_close  # shut down the write side at end of output (TCP only)
        self._inflight: bytes | None = None  # a TLS write must be retried with the same bytes
        sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def wants_write(self) -> bool:
        return not self.closed and (bool(self._out) or self._inflight is not None)

    @property
    def buffered(self) -> int:
        return len(self._out) + len(self._inflight or b"")

    def ready_again(self) -> bool:
        return (
            isinstance(self.sock, ssl.SSLSocket)
            and not self.closed
            and self.wants_read()
            and self.sock.pending() > 0
        )

    def on_readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(_CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
                data = b""
            except OSError:
                data = b""
            if not data:
                self.eof = True
                self.on_eof()
                return
            self.on_data(data)
            if self.closed or self.full() or not isinstance(self.sock, ssl.SSLSocket):
                return

    def on_writable(self) -> None:
        while not self.closed:
            if self._inflight is None:
                if not self._out:
                    break
                self._inflight = bytes(self._out[:_CHUNK])
                del self._out[:_CHUNK]
            try:
                n = self.sock.send(self._inflight)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except OSError:
                self._inflight = None
                self._out.clear()
                self.eof = True
                self.close()
                return
            self._inflight = self._inflight[n:] or None
        if self._close_after_flush and not self.closed:
            self._end_of_output()

    def _end_of_output(self) -> None:
        if self._inflight is not None or self._out:
            return
        if self.half_close and not self.eof:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.close()
            return
        self.close()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Waker(FdEnd):
    """A pipe other threads write to, so the loop wakes up and runs what they queued."""

    def __init__(self, run: Callback) -> None:
        r, w = os.pipe()
        super().__init__(r)
        os.set_blocking(w, False)
        self._w = w
        self._lock = threading.Lock()
        self.on_data = lambda _: run()

    def wake(self) -> None:
        with self._lock:  # never write to a closed (maybe reused) descriptor number
            if not self.closed:
                try:
                    os.write(self._w, b"!")
                except OSError:  # full pipe: a wake-up is pending anyway
                    pass

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                super().close()
                os.close(self._w)


class Reactor:
    """Run ends until a condition holds; timers for deadlines and polling."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._ends: list[End] = []
        self._registered: dict[End, int] = {}
        self._timers: list[tuple[float, int, Callback]] = []
        self._seq = itertools.count()
        self._queued: collections.deque[Callback] = collections.deque()
        self._waker = _Waker(self._run_queued)
        self.add(self._waker)

    def call_soon_threadsafe(self, fn: Callback) -> None:
        """Run `fn` on the loop's thread (from any thread; ignored once the loop ended)."""
        self._queued.append(fn)
        self._waker.wake()

    def _run_queued(self) -> None:
        while self._queued:
            self._queued.popleft()()

    def add(self, end: End) -> End:
        self._ends.append(end)
        end.before_close = lambda: self._forget(end)
        return end

    def _forget(self, end: End) -> None:
        if self._registered.pop(end, None) is not None:
            self._sel.unregister(end)

    def call_later(self, delay: float, fn: Callback) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def run(self, done: Callable[[], bool]) -> None:
        try:
            while not done():
                self._sync()
                timeout = self._timeout()
                for key, mask in self._sel.select(timeout):
                    end: End = key.data
                    if end.closed:
                        continue
                    if mask & selectors.EVENT_WRITE:
                        end.on_writable()
                    if mask & selectors.EVENT_READ and end.wants_read():
                        end.on_readable()
                for end in list(self._ends):
                    if end.ready_again():
                        end.on_readable()
                self._run_timers()
        finally:
            for end in self._ends:
                end.close()
            self._sel.close()

    def _timeout(self) -> float | None:
        if any(e.ready_again() for e in self._ends):
            return 0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            fn()

    def _sync(self) -> None:
        for end in list(self._ends):
            if end.closed:
                self._ends.remove(end)
                continue
            events = (selectors.EVENT_READ if end.wants_read() else 0) | (
                selectors.EVENT_WRITE if end.wants_write() else 0
            )
            old = self._registered.get(end, 0)
            if events == old:
                continue
            if not events:
                self._sel.unregister(end)
                del self._registered[end]
            elif old:
                self._sel.modify(end, events, end)
            else:
                self._sel.register(end, events, end)
            if events:
                self._registered[end] = events
