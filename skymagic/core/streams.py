"""Reading streamed response bodies: lines (followed logs) and watch events.

Every way a stream can end is decided here, once:

* read to the end: the connection goes back to the pool for the next request;
* abandoned, cut or closed half-way: the connection is discarded, never pooled (it would
  answer the next request with the rest of this body);
* a read that stalls past the read timeout, or a connection that breaks off, becomes a
  SkymagicError through the client's one error classification (`classify`), never a urllib3
  exception. Only a watch treats a cut connection as its end (see `WatchStream`);
* a watch line that does not decode is a `MalformedResponseError` (kind `malformed`).
"""

from __future__ import annotations

import contextlib
import http.client
import mmap
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import msgspec
import urllib3
from urllib3.exceptions import HTTPError, ProtocolError

from skymagic.errors import MalformedResponseError, SkymagicError, api_error_for_status

__all__ = [
    "Classify",
    "WatchEvent",
    "WatchStream",
    "discard",
    "iter_lines",
    "PAGES",
    "PagePool",
    "read_body",
    "read_lines",
]

Classify = Callable[[BaseException], SkymagicError]
"""Turns a urllib3/OS failure while reading into the client's error for it."""


def iter_lines(resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The non-empty lines of a streamed response, as they arrive (linear in the body size)."""
    pieces: list[bytes] = []
    for chunk in resp.stream(65536, decode_content=True):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pieces.append(chunk[start:end])
            line = b"".join(pieces)
            pieces.clear()
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            pieces.append(chunk[start:])
    tail = b"".join(pieces)
    if tail.strip():
        yield tail


class PagePool:
    """Memory for list pages: anonymous maps, recycled between pages, dropped when idle.

    List pages are megabytes. Heap memory is the wrong place for them: malloc keeps freed
    multi-MB blocks in per-thread arenas, so a process reading big lists on many threads only
    grows; and a fresh map per page costs a page fault per 4 KiB (~0.3 s of CPU per 270 MB).
    So pages are read into maps that go back to a free list when their page is done and are
    reused for the next download of any list; when no list is being read, the free maps are
    unmapped (the memory goes back to the system at once). A map is reused only once nothing
    points into it any more (`recycle` releases the page's view first; a decoded object still
    holding a slice of it makes that fail, and the map is then left to the garbage collector).
    """

    def __init__(self, max_idle: int = 16) -> None:
        self._lock = threading.Lock()
        self._free: list[mmap.mmap] = []
        self._readers = 0
        self.max_idle = max_idle

    def begin(self) -> None:
        """A list starts being read (pair with `end`, in a `finally`)."""
        with self._lock:
            self._readers += 1

    def end(self) -> None:
        """A list is done; the last reader to finish unmaps the free maps."""
        with self._lock:
            self._readers -= 1
            idle = self._free if self._readers == 0 else []
            if idle:
                self._free = []
        for m in idle:
            with contextlib.suppress(BufferError):
                m.close()

    def take(self, size: int) -> mmap.mmap:
        """A map of at least `size` bytes (a free one when one is big enough).

        New maps get a quarter more, in whole MiB: the pages of one list differ by a few KB.
        """
        with self._lock:
            for i, m in enumerate(self._free):
                if len(m) >= size:
                    return self._free.pop(i)
        return mmap.mmap(-1, (size + size // 4) // (1 << 20) * (1 << 20) + (1 << 20))

    def recycle(self, page: memoryview) -> None:
        """Give a page's map back, unless something still points into it."""
        m = page.obj
        try:
            page.release()
        except BufferError:
            return
        if not isinstance(m, mmap.mmap):
            return
        with self._lock:
            if self._readers and len(self._free) < self.max_idle:
                self._free.append(m)
                return
        with contextlib.suppress(BufferError):
            m.close()


PAGES = PagePool()


def read_body(
    resp: urllib3.BaseHTTPResponse, on_timeout: Classify, classify: Classify
) -> memoryview:
    """Read a whole body straight from the socket into a map of `PAGES`: a view of it.

    `readinto` into one buffer (no intermediate copies), for bodies with a Content-Length and
    chunked ones alike; a compressed body goes through urllib3's decoder. Read to the end, the
    connection is pooled; a stall is `on_timeout`'s error, a body cut short or any other
    failure `classify`'s, and the connection is discarded.
    """
    try:
        body = _read_into_map(resp)
    except TimeoutError as exc:  # the socket's own timeout: urllib3 is not the one reading
        discard(resp)
        raise on_timeout(exc) from None
    except http.client.IncompleteRead as exc:
        discard(resp)
        raise classify(ProtocolError("the answer was cut off", exc)) from None
    except (HTTPError, OSError, http.client.HTTPException) as exc:
        discard(resp)
        raise classify(exc) from None
    resp.release_conn()
    return body


def _read_into_map(resp: urllib3.BaseHTTPResponse) -> memoryview:
    fp = getattr(resp, "_fp", None)  # urllib3's http.client response
    encoding = (resp.headers.get("content-encoding") or "").strip().lower()
    if fp is not None and hasattr(fp, "readinto") and encoding == "gzip":
        return _inflate_into_map(fp)
    if fp is None or not hasattr(fp, "readinto") or encoding:
        data = resp.read()
        buf = PAGES.take(len(data))
        buf[: len(data)] = data
        return memoryview(buf)[: len(data)]
    length = int(resp.headers.get("content-length") or 0)
    buf = PAGES.take(max(length, 1 << 20))
    got = 0
    while True:
        if got == len(buf):
            if length:
                break
            bigger = PAGES.take(len(buf) * 2)  # chunked: grow into a bigger map
            bigger[:got] = buf[:got]
            with memoryview(buf) as old:
                PAGES.recycle(old)
            buf = bigger
        with memoryview(buf) as view:
            n = fp.readinto(view[got:])
        if not n:
            break
        got += n
    if length and got < length:
        raise http.client.IncompleteRead(b"", length - got)
    return memoryview(buf)[:got]


_INFLATE_READ = 64 * 1024
_INFLATE_PIECE = 64 * 1024
# The biggest gzip'd page seen (plus an eighth): the first map of the next one. It only grows:
# a map's untouched pages cost no memory, while a map outgrown mid-page is copied and kept.
_inflated_hint = 1 << 20
_INFLATED_HINT_MAX = 256 << 20


def _inflate_into_map(fp: Any) -> memoryview:
    """A gzip'd body inflated into a map of `PAGES` as it arrives.

    Read and inflated 64 KiB at a time: bigger pieces (1 MiB) are heap blocks that malloc keeps
    per thread, +35 MB of peak RSS on the large bench fleet; 64 KiB pieces, +12 MB, for the
    same CPU. zlib releases the GIL while it inflates. A body that ends before the gzip stream
    does was cut short.
    """
    global _inflated_hint
    z = zlib.decompressobj(31)
    raw = bytearray(_INFLATE_READ)
    buf = PAGES.take(_inflated_hint)
    got = 0
    with memoryview(raw) as rview:
        while not z.eof:
            n = fp.readinto(rview)
            if not n:
                break
            data: bytes | memoryview = rview[:n]
            while data and not z.eof:
                piece = z.decompress(data, _INFLATE_PIECE)
                data = z.unconsumed_tail
                if got + len(piece) > len(buf):
                    bigger = PAGES.take(max(2 * len(buf), got + len(piece)))
                    bigger[:got] = buf[:got]
                    with memoryview(buf) as old:
                        PAGES.recycle(old)
                    buf = bigger
                buf[got : got + len(piece)] = piece
                got += len(piece)
    if not z.eof:
        with memoryview(buf) as old:
            PAGES.recycle(old)
        raise http.client.IncompleteRead(b"", None)
    while fp.readinto(raw):  # the last chunk's end, so the connection can be reused
        pass
    _inflated_hint = max(_inflated_hint, min(got + got // 8, _INFLATED_HINT_MAX))
    return memoryview(buf)[:got]


def json_object(
    body: bytes | memoryview, *, path: str, server: str, context: str
) -> dict[str, Any]:
    """A JSON object answer from `path`; MalformedResponseError naming it when it is not one."""
    try:
        data = _ANY.decode(body)
    except msgspec.DecodeError as exc:
        data = exc
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"the answer to {path} from {server} is malformed ({str(data)[:200]}); is the "
            "server address a Kubernetes API server?",
            context=context,
        )
    return data


def discard(resp: urllib3.BaseHTTPResponse) -> None:
    """Close a response whose body was not read to the end, and its connection with it.

    `shutdown()` first, so a thread blocked reading it returns at once.
    """
    with contextlib.suppress(Exception):
        resp.shutdown()
    with contextlib.suppress(Exception):
        resp.close()
    with contextlib.suppress(Exception):
        resp.release_conn()


def read_lines(resp: urllib3.BaseHTTPResponse, classify: Classify) -> Iterator[bytes]:
    """`iter_lines`, with failures classified and the connection pooled or discarded."""
    complete = False
    try:
        yield from iter_lines(resp)
        complete = True
    except (HTTPError, OSError) as exc:
        raise classify(exc) from None
    finally:
        if complete:
            resp.release_conn()
        else:
            discard(resp)


class _Envelope(msgspec.Struct, gc=False):
    """A watch line: the object stays undecoded until its type says how to read it."""

    type: str = ""
    object: msgspec.Raw = msgspec.Raw(b"null")


class _Meta(msgspec.Struct, gc=False):
    resourceVersion: str = ""


class _Versioned(msgspec.Struct, gc=False):
    metadata: _Meta | None = None


class _Status(msgspec.Struct, gc=False):
    code: int | None = None
    message: str | None = None
    reason: str | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_VERSIONED = msgspec.json.Decoder(_Versioned)
_STATUS = msgspec.json.Decoder(_Status)
_ANY = msgspec.json.Decoder()


class WatchEvent(NamedTuple):
    """One watch event: its type, its object (as `decode_object` made it) and the object's
    resourceVersion ("" when none)."""

    type: str
    object: Any
    resource_version: str


class WatchStream:
    """One open watch: iterate it for events ({type, object}); `close()` ends it from any thread.

    The one parser of watch streams. `events()` yields `WatchEvent`s whose objects are decoded
    by `decode_object` (typed structs for the live inventory; plain dicts by default);
    iterating the stream itself yields {type, object} dicts. An ERROR event raises the ApiError
    for its status (410: GoneError, so the caller re-lists); a line that does not decode raises
    MalformedResponseError; a stream that stays silent past its read timeout raises
    RequestTimeoutError. A connection that breaks off ends the iteration like the server
    ending the watch does: either way the caller watches again from the last resourceVersion
    it saw, and a server that is really gone fails that request.
    """

    _closed = False  # set once the body was read to the end or the stream was closed

    def __init__(
        self,
        resp: urllib3.BaseHTTPResponse,
        *,
        context: str,
        server: str,
        classify: Classify,
        decode_object: Callable[[msgspec.Raw], Any] | None = None,
        path: str = "",
    ) -> None:
        self.context = context
        self.server = server
        self.path = path
        self._resp = resp
        self._classify = classify
        self._decode_object = decode_object or _ANY.decode

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events():
            yield {"type": event.type, "object": event.object}

    def events(self) -> Iterator[WatchEvent]:
        """The stream's events as `WatchEvent`s (see the class docstring for how it ends)."""
        complete = False
        try:
            for line in iter_lines(self._resp):
                yield self._event(line)
            complete = True
        except ProtocolError:
            return
        except (HTTPError, OSError) as exc:
            if self._closed:
                return
            raise self._classify(exc) from None
        finally:
            if complete and not self._closed:
                self._closed = True
                self._resp.release_conn()  # read to the end: the connection can be reused
            else:
                self.close()

    def _event(self, line: bytes) -> WatchEvent:
        try:
            envelope = _ENVELOPE.decode(line)
            if envelope.type == "ERROR":
                status = _STATUS.decode(envelope.object)
                raise api_error_for_status(
                    int(status.code or 500),
                    str(status.message or "watch error"),
                    context=self.context,
                    body=_ANY.decode(envelope.object),
                )
            meta = _VERSIONED.decode(envelope.object).metadata or _Meta()
            obj = self._decode_object(envelope.object)
        except msgspec.DecodeError as exc:
            raise MalformedResponseError(
                f"a watch on {self.path or 'a list'} from {self.server} sent a line that does not "
                f"decode ({str(exc)[:200]}); is the server address a Kubernetes API server?",
                context=self.context,
            ) from None
        return WatchEvent(envelope.type, obj, meta.resourceVersion)

    def close(self) -> None:
        """End the watch; a thread blocked reading it returns at once. Idempotent."""
        if self._closed:
            return
        self._closed = True
        discard(self._resp)
