"""Streamed bodies parsed from real urllib3 responses over in-memory bodies (no server).

What happens when a live stream stalls or is cut is tested against the simulated fleet
(tests/integration/test_watch.py).
"""

from __future__ import annotations

import io
import zlib

import msgspec
import pytest
import urllib3

from skymagic.core.streams import PAGES, PagePool, WatchStream, iter_lines, read_body
from skymagic.errors import GoneError, MalformedResponseError, SkymagicError


def response(body: bytes) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False, status=200)


def never(exc: BaseException) -> SkymagicError:
    raise AssertionError(f"nothing should fail here: {exc!r}")


def test_lines_across_chunk_boundaries() -> None:
    long_line = b"x" * 100_000  # longer than one 64 KiB chunk
    lines = [b"a", long_line, b"b" * 65_530, b"c", b"last-without-newline"]
    body = b"\n".join(lines[:2]) + b"\n\n  \n" + b"\n".join(lines[2:])
    assert list(iter_lines(response(body))) == lines


def event(kind: str, obj: dict[str, object]) -> bytes:
    return msgspec.json.encode({"type": kind, "object": obj}) + b"\n"


def test_watch_events_and_a_410() -> None:
    added = {"metadata": {"name": "p", "resourceVersion": "5"}}
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    body = event("ADDED", added) + event("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    stream = WatchStream(
        response(body + event("ERROR", gone)), context="c", server="https://x", classify=never
    )
    seen = []
    with pytest.raises(GoneError) as err:
        for e in stream:
            seen.append(e["type"])
    assert seen == ["ADDED", "BOOKMARK"]
    assert err.value.context == "c" and err.value.status == 410


def test_a_watch_that_is_not_json_names_the_server() -> None:
    stream = WatchStream(
        response(b"<html>proxy login</html>\n"),
        context="c",
        server="https://x",
        classify=never,
        path="/api/v1/pods",
    )
    with pytest.raises(MalformedResponseError, match="/api/v1/pods from https://x sent a line"):
        list(stream)


def test_a_watch_event_object_of_the_wrong_type_is_malformed_not_a_crash() -> None:
    class Named(msgspec.Struct):
        name: str = ""

    line = msgspec.json.encode({"type": "ADDED", "object": {"name": 5}}) + b"\n"
    stream = WatchStream(
        response(line),
        context="c",
        server="https://x",
        classify=never,
        decode_object=msgspec.json.Decoder(Named).decode,
    )
    with pytest.raises(MalformedResponseError, match=r"Expected `str`, got `int`"):
        list(stream.events())


def test_typed_events_carry_the_resource_version() -> None:
    class Named(msgspec.Struct):
        name: str = ""

    obj = {"name": "p", "metadata": {"resourceVersion": "42"}}
    stream = WatchStream(
        response(
            event("MODIFIED", obj) + event("BOOKMARK", {"metadata": {"resourceVersion": "50"}})
        ),
        context="c",
        server="https://x",
        classify=never,
        decode_object=msgspec.json.Decoder(Named).decode,
    )
    got = [(e.type, e.object, e.resource_version) for e in stream.events()]
    assert got == [("MODIFIED", Named("p"), "42"), ("BOOKMARK", Named(""), "50")]


def sized(body: bytes, length: int | None = None) -> urllib3.HTTPResponse:
    headers = {} if length is None else {"content-length": str(length)}
    return urllib3.HTTPResponse(
        body=io.BytesIO(body), preload_content=False, status=200, headers=headers
    )


def fail(exc: BaseException) -> SkymagicError:
    return SkymagicError(f"classified: {type(exc).__name__}")


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
def test_read_body_reads_whole_bodies_into_a_page_map(with_length: bool) -> None:
    body = bytes(range(256)) * 12_000  # 3 MB: more than the first map of a body without length
    page = read_body(sized(body, len(body) if with_length else None), fail, fail)
    assert bytes(page) == body
    PAGES.recycle(page)


def test_a_body_shorter_than_its_length_is_classified_not_returned() -> None:
    with pytest.raises(SkymagicError, match="classified: ProtocolError"):
        read_body(sized(b'{"items": [', 1000), fail, fail)


def gzipped(body: bytes) -> urllib3.HTTPResponse:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    data = z.compress(body) + z.flush()
    return urllib3.HTTPResponse(
        body=io.BytesIO(data),
        preload_content=False,
        status=200,
        headers={"content-encoding": "gzip"},
    )


def test_a_gzipd_body_is_inflated_into_a_page_map() -> None:
    # 6 MB inflated from a few KB: more than the first map and more than one inflation step
    body = b'{"metadata": {"continue": "x"}, "items": [' + b'{"a": 1},' * 700_000 + b"{}]}"
    page = read_body(gzipped(body), fail, fail)
    assert bytes(page) == body
    PAGES.recycle(page)


def test_a_gzipd_body_cut_short_is_classified_not_returned() -> None:
    whole = gzipped(b"[" + b"1," * 500_000 + b"1]")
    cut = whole.read(decode_content=False)[:-20]
    resp = urllib3.HTTPResponse(
        body=io.BytesIO(cut), preload_content=False, status=200,
        headers={"content-encoding": "gzip"},
    )  # fmt: skip
    with pytest.raises(SkymagicError, match="classified: ProtocolError"):
        read_body(resp, fail, fail)


def test_a_page_map_is_reused_only_once_nothing_points_into_it() -> None:
    class Holder(msgspec.Struct):
        r: msgspec.Raw

    pool = PagePool()
    pool.begin()
    try:
        first = pool.take(100)
        data = b'{"r": {"a": 1}}'
        first[: len(data)] = data
        page = memoryview(first)[: len(data)]
        held = msgspec.json.decode(page, type=Holder)  # a Raw slice of the page, still alive
        pool.recycle(page)
        assert pool.take(100) is not first  # not handed out while `held` points into it
        assert bytes(held.r) == b'{"a": 1}'
        del held
        page2 = memoryview(first)[:10]
        pool.recycle(page2)
        assert pool.take(100) is first
    finally:
        pool.end()
