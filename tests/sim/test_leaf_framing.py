"""WebSocket (RFC 6455) and SPDY/3.1 framing of the simulator, without a server (the muxes
over a socket pair); and the fleet spec's exec rules. The end-to-end behaviour is in test_fleet_streams.py."""

from __future__ import annotations

import os
import socket
import struct
import zlib
from collections.abc import Iterator

import pytest
from websocket import ABNF

from skymagic.errors import SimError
from skymagic.sim import spdy
from skymagic.sim import websocket as ws
from skymagic.sim.mux import SpdyMux, WsMux
from skymagic.sim.podexec import simulated_answer
from skymagic.sim.spec import ExecRule, load_fleet_spec
from skymagic.sim.streamio import Reactor, SocketEnd


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked frame as websocket-client (what the official Python client uses) writes it."""
    return ABNF(fin=int(fin), opcode=opcode, mask_value=1, data=payload).format()


def test_accept_key_is_the_rfc_example() -> None:
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_offered_protocols_keep_the_client_order() -> None:
    assert ws.offered_protocols("v5.channel.k8s.io,v4.channel.k8s.io") == [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
    ]
    assert ws.offered_protocols(" a , b, ") == ["a", "b"]
    assert ws.offered_protocols("") == []


def test_parser_unmasks_and_joins_fragments_byte_by_byte() -> None:
    big = os.urandom(70_000)  # 64-bit length form
    stream = (
        client_frame(ABNF.OPCODE_BINARY, b"\x00first", fin=False)
        + client_frame(ABNF.OPCODE_PING, b"hb")  # control frames may interleave
        + client_frame(ABNF.OPCODE_CONT, b" part")
        + client_frame(ABNF.OPCODE_BINARY, big)
        + client_frame(ABNF.OPCODE_TEXT, b"x" * 300)  # 16-bit length form
        + client_frame(ABNF.OPCODE_CLOSE, struct.pack("!H", 1000))
    )
    parser = ws.FrameParser()
    got = []
    for i in range(len(stream)):  # worst case: one byte at a time
        got += parser.feed(stream[i : i + 1])
    assert [(m.opcode, m.payload) for m in got] == [
        (ws.OP_PING, b"hb"),
        (ws.OP_BINARY, b"\x00first part"),
        (ws.OP_BINARY, big),
        (ws.OP_TEXT, b"x" * 300),
        (ws.OP_CLOSE, struct.pack("!H", 1000)),
    ]


def test_server_frames_are_what_a_client_reads() -> None:
    for n in (0, 125, 126, 65535, 65536):
        payload = os.urandom(n)
        frame = ws.encode_frame(ws.OP_BINARY, payload)
        parser = ws.FrameParser(require_mask=False)
        (msg,) = parser.feed(frame)
        assert (msg.opcode, msg.payload) == (ws.OP_BINARY, payload)
        assert frame[0] == 0x82 and not frame[1] & 0x80  # final, unmasked
    assert ws.close_frame(1000) == b"\x88\x02\x03\xe8"


@pytest.mark.parametrize(
    "bad",
    [
        ABNF(opcode=ABNF.OPCODE_BINARY, mask_value=0, data=b"x").format(),  # unmasked
        client_frame(ABNF.OPCODE_CONT, b"x"),  # nothing to continue
        client_frame(ABNF.OPCODE_PING, b"p" * 126),  # control frame too long
        ABNF(opcode=ABNF.OPCODE_BINARY, rsv1=1, mask_value=1, data=b"x").format(),
    ],
)
def test_parser_refuses_protocol_errors(bad: bytes) -> None:
    with pytest.raises(ws.ProtocolError):
        ws.FrameParser().feed(bad)


def _syn_stream(codec: zlib._Compress, sid: int, headers: dict[str, str], fin: bool) -> bytes:
    """A SYN_STREAM as moby/spdystream writes it (zlib with the dictionary, sync flush)."""
    block = struct.pack("!I", len(headers))
    for k, v in headers.items():
        block += struct.pack("!I", len(k)) + k.encode() + struct.pack("!I", len(v)) + v.encode()
    data = codec.compress(block) + codec.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack("!IIH", sid, 0, 0) + data
    return struct.pack("!HHI", 0x8003, 1, (int(fin) << 24) | len(body)) + body


def test_spdy_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    # The dictionary id a SPDY/3 header stream announces (that of moby/spdystream's copy).
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_spdy_parser_reads_streams_data_and_control_frames() -> None:
    client = zlib.compressobj(9, zlib.DEFLATED, 15, 8, 0, zdict=spdy.DICTIONARY)
    wire = (
        _syn_stream(client, 1, {"streamtype": "error", "port": "80", "requestid": "0"}, False)
        + _syn_stream(client, 3, {"streamtype": "data", "port": "80", "requestid": "0"}, False)
        + spdy.data_frame(3, b"GET / HTTP/1.0\r\n\r\n")
        + spdy.data_frame(3, b"", fin=True)
        + spdy.ping_frame(1)
        + spdy.rst_frame(1)
        + struct.pack("!HHI", 0x8003, 9, 8) + struct.pack("!II", 3, 1000)  # WINDOW_UPDATE
        + spdy.goaway_frame(3)
    )  # fmt: skip
    parser = spdy.FrameParser(spdy.HeaderCodec())
    frames = []
    for i in range(0, len(wire), 7):
        frames += parser.feed(wire[i : i + 7])
    assert frames == [
        spdy.SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}, False),
        spdy.SynStream(3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}, False),
        spdy.Data(3, b"GET / HTTP/1.0\r\n\r\n", False),
        spdy.Data(3, b"", True),
        spdy.Ping(1),
        spdy.Reset(1, spdy.RST_CANCEL),
        spdy.GoAway(3),
    ]


def test_spdy_replies_decode_with_one_shared_zlib_context() -> None:
    codec = spdy.HeaderCodec()
    client = zlib.decompressobj(zdict=spdy.DICTIONARY)
    for sid in (1, 3, 5):  # the second block only decodes if the context carries over
        frame = codec.syn_reply(sid, {"x-id": str(sid)})
        word0, word1 = struct.unpack_from("!II", frame)
        assert (word0, word1 >> 24, word1 & 0xFFFFFF) == (0x80030002, 0, len(frame) - 8)
        assert struct.unpack_from("!I", frame, 8)[0] == sid
        block = client.decompress(frame[12:])
        name_len = 4 + 4 + len("x-id")
        assert block[:name_len] == struct.pack("!I", 1) + struct.pack("!I", 4) + b"x-id"


def test_spdy_refuses_other_versions() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameParser(spdy.HeaderCodec()).feed(struct.pack("!HHI", 0x8002, 6, 4) + b"\0\0\0\1")


class _Recorder:
    """A session that records what a mux tells it."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def start(self) -> None:
        return None

    def opened(self, sid: int, headers: dict[str, str]) -> None:
        self.events.append(("opened", sid, headers.get("streamtype")))

    def data(self, sid: int, payload: bytes) -> None:
        self.events.append(("data", sid, payload))

    def fin(self, sid: int) -> None:
        self.events.append(("fin", sid))

    def reset(self, sid: int) -> None:
        self.events.append(("reset", sid))

    def gone(self) -> None:
        self.events.append(("gone",))

    def pod_gone(self) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def wire() -> Iterator[tuple[SocketEnd, socket.socket]]:
    """The mux's end of a connection, and the client's socket that reads what it sends."""
    ours, theirs = socket.socketpair()
    yield SocketEnd(ours, half_close=False), theirs
    ours.close()
    theirs.close()


def _frames_sent(end: SocketEnd, client: socket.socket) -> list[tuple[int, bytes]]:
    end.on_writable()
    client.settimeout(5)
    parser = ws.FrameParser(require_mask=False)
    return [(m.opcode, m.payload) for m in parser.feed(client.recv(1 << 20))]


def test_ws_mux_answers_pings_skips_empty_messages_and_ends_on_a_close_frame(
    wire: tuple[SocketEnd, socket.socket],
) -> None:
    end, client = wire
    mux = WsMux(Reactor(), end, binary=True, close_signal=True)
    mux.handler = rec = _Recorder()
    mux.feed(
        client_frame(ABNF.OPCODE_PING, b"hb")
        + client_frame(ABNF.OPCODE_BINARY, b"\x00hi")
        + client_frame(ABNF.OPCODE_BINARY, b"")
        + client_frame(ABNF.OPCODE_CLOSE, struct.pack("!H", 1000))
        + client_frame(ABNF.OPCODE_BINARY, b"\x00after the close")
    )
    assert rec.events == [("data", 0, b"hi"), ("gone",)]
    assert _frames_sent(end, client) == [(ws.OP_PONG, b"hb"), (ws.OP_CLOSE, b"\x03\xe8")]


def test_ws_mux_closes_with_1002_on_broken_framing(wire: tuple[SocketEnd, socket.socket]) -> None:
    end, client = wire
    mux = WsMux(Reactor(), end, binary=True, close_signal=True)
    mux.handler = rec = _Recorder()
    mux.feed(ABNF(opcode=ABNF.OPCODE_BINARY, mask_value=0, data=b"\x00x").format())  # unmasked
    assert rec.events == [("gone",)]
    ((opcode, payload),) = _frames_sent(end, client)
    assert opcode == ws.OP_CLOSE and payload[:2] == struct.pack("!H", 1002)
    assert b"mask" in payload


def test_tunnelled_spdy_reads_what_came_before_the_close_frame(
    wire: tuple[SocketEnd, socket.socket],
) -> None:
    end, client = wire
    mux = SpdyMux(Reactor(), end, tunnel=True)
    mux.handler = rec = _Recorder()
    codec = zlib.compressobj(9, zlib.DEFLATED, 15, 8, 0, zdict=spdy.DICTIONARY)
    syn = _syn_stream(codec, 1, {"streamtype": "error", "port": "80", "requestid": "0"}, False)
    mux.feed(
        client_frame(ABNF.OPCODE_BINARY, syn[:10])  # a SPDY frame may span messages
        + client_frame(ABNF.OPCODE_PING, b"hb")
        + client_frame(ABNF.OPCODE_BINARY, syn[10:])
        + client_frame(ABNF.OPCODE_CLOSE, struct.pack("!H", 1000))
    )
    assert rec.events == [("opened", 1, "error"), ("gone",)]
    sent = _frames_sent(end, client)
    # The pong as the ping came; the SYN_REPLY (in a binary message) before the close.
    assert [opcode for opcode, _ in sent] == [ws.OP_PONG, ws.OP_BINARY, ws.OP_CLOSE]
    assert struct.unpack_from("!I", sent[1][1])[0] == 0x80030002


def test_exec_rules_and_defaults_of_simulated_pods() -> None:
    pod = {"metadata": {"name": "p"}}
    rules = [
        ExecRule(match=r"nvidia-smi.*", stdout="GPU 0\n"),
        ExecRule("sh -c 'exit 2'", "", "x", 2),
    ]
    assert simulated_answer(["nvidia-smi", "-L"], rules, pod, {}) == (b"GPU 0\n", b"", 0, False)
    assert simulated_answer(["sh", "-c", "exit 2"], rules, pod, {}) == (b"", b"x", 2, False)
    assert simulated_answer(["/bin/echo", "a", "b"], [], pod, {}) == (b"a b\n", b"", 0, False)
    assert simulated_answer(["cat"], [], pod, {})[3] is True
    assert simulated_answer(["hostname"], [], pod, {})[0] == b"p\n"
    assert simulated_answer(["env"], [], pod, {"A": "1"})[0] == b"A=1\n"
    out, err, code, _ = simulated_answer(["tar", "xf", "-"], [], pod, {})
    assert (out, code) == (b"", 127)
    assert b"nothing runs 'tar xf -' here" in err and b"exec:" in err


def test_exec_rules_in_the_fleet_spec_are_checked() -> None:
    spec = load_fleet_spec(
        {"clusters": [{"name": "c", "exec": [{"match": "ls", "stdout": "a\n", "exit_code": 0}]}]}
    )
    assert spec.clusters[0].exec == [ExecRule(match="ls", stdout="a\n")]
    with pytest.raises(SimError, match=r"cluster 'c' exec\[0\] match '\(' is not a valid regular"):
        load_fleet_spec({"clusters": [{"name": "c", "exec": [{"match": "("}]}]})
    with pytest.raises(SimError, match="unknown key 'stdot'"):
        load_fleet_spec({"clusters": [{"name": "c", "exec": [{"match": "x", "stdot": ""}]}]})
