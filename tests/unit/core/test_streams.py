"""Streamed bodies parsed from real urllib3 responses over in-memory bodies (no server).

What happens when a live stream stalls or is cut is tested against the simulated fleet
(tests/integration/test_watch.py).
"""

from __future__ import annotations

import io

import msgspec
import pytest
import urllib3

from skymagic.core.streams import WatchStream, iter_lines
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
