"""A probe, not the product: skymagic's inventory with every list read by ONE thread.

Executed by bench/inventory.py (tool `one-thread`). The same requests as skymagic (per context
the node list and the non-terminal pod list, resourceVersion=0, same page size), on one
keep-alive TLS connection per list like the floors, but all sockets non-blocking under one
selector: the one thread reads whatever has arrived on any list and, when a page is complete,
asks for the next one (so the server writes it meanwhile) and decodes and tallies the page
itself with skymagic's own code (`gpus.wire`, `gpus.counting`, `build_inventory`).

Why: skymagic reads each list on its own thread. Reading TLS releases the GIL once per 16 KB
record and needs it back for the next one, so while any thread decodes (msgspec holds the GIL
for a whole page) or counts, every reading thread waits, and each hand-off is a futex wake
and a context switch. This probe measures what is left without those hand-offs: its wall
time against skymagic's and the byte floor's is the size of the prize. It has none of the
client's error handling (timeouts, retries, 401 refresh, 410 restart, chunked bodies), so it is
for the bench's token-auth fleet only.

Usage: python _one_thread_runner.py '{"kubeconfig": PATH, "contexts": [...], "runs": N,
                                      "warmup": 1, "limit": 2000}'
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import gc
import json
import re
import resource
import selectors
import socket
import ssl
import sys
import urllib.parse
from typing import Any

import _rounds
from _floor_runner import POD_SELECTOR, _targets

from skymagic.gpus.counting import ContextData, NodeInfo, Usage, parse_node
from skymagic.gpus.inventory import Inventory, build_inventory
from skymagic.gpus.wire import decode_node_list, decode_pod_usage_list

CONTINUE_RE = re.compile(rb'"continue"\s*:\s*"([^"]*)"')
LENGTH_RE = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class ListState:
    """One list on its own connection: the page being received into `buf`."""

    def __init__(self, context: str, what: str, path: str, query: dict[str, str]) -> None:
        self.context, self.what, self.path, self.query = context, what, path, query
        self.sock: ssl.SSLSocket | None = None
        self.buf = bytearray(8 << 20)
        self.got = 0
        self.body_at = -1  # where the body starts once the head is in
        self.length = 0

    def reset(self) -> None:
        self.got, self.body_at, self.length = 0, -1, 0


def connect(target: dict[str, Any]) -> ssl.SSLSocket:
    raw = socket.create_connection((target["host"], target["port"]), timeout=60)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = target["tls"].wrap_socket(raw, server_hostname=target["host"])
    return sock


def send(st: ListState, target: dict[str, Any], token: str | None) -> None:
    query = dict(st.query, **({"continue": token} if token else {}))
    head = "".join(f"{k}: {v}\r\n" for k, v in target["headers"].items())
    request = (
        f"GET {st.path}?{urllib.parse.urlencode(query)} HTTP/1.1\r\nHost: {target['host']}\r\n"
    )
    assert st.sock is not None
    st.sock.setblocking(True)
    st.sock.sendall((request + head + "\r\n").encode())
    st.sock.setblocking(False)


def one_call(states: list[ListState], targets: dict[str, dict[str, Any]]) -> Inventory:
    contexts = list(dict.fromkeys(st.context for st in states))
    usage = {c: Usage() for c in contexts}
    nodes: dict[str, list[NodeInfo]] = {c: [] for c in contexts}
    sel = selectors.DefaultSelector()
    for st in states:
        st.reset()
        send(st, targets[st.context], None)
        sel.register(st.sock, selectors.EVENT_READ, st)  # type: ignore[arg-type]
    open_lists = len(states)
    gc.disable()  # as skymagic pauses the collector while it decodes
    try:
        while open_lists:
            for key, _ in sel.select(60):
                st: ListState = key.data
                if read_ready(st, targets[st.context], usage, nodes):
                    sel.unregister(key.fileobj)
                    open_lists -= 1
    finally:
        gc.enable()
        sel.close()
    outcomes = [(c, ContextData(nodes=nodes[c], usage=usage[c]), None, None) for c in contexts]
    return build_inventory(contexts, outcomes, {}, gpu=None, all_nodes=False)


def read_ready(
    st: ListState,
    target: dict[str, Any],
    usage: dict[str, Usage],
    nodes: dict[str, list[NodeInfo]],
) -> bool:
    """Read what has arrived; fold each complete page. True once the list's last page is in."""
    assert st.sock is not None
    while True:
        if st.got == len(st.buf):
            st.buf += bytearray(len(st.buf))
        with memoryview(st.buf) as view:
            try:
                n = st.sock.recv_into(view[st.got :])
            except ssl.SSLWantReadError:
                return False
        if not n:
            raise RuntimeError(f"{st.context} {st.what}: the server closed the connection")
        st.got += n
        if st.body_at < 0:
            end = st.buf.find(b"\r\n\r\n", 0, st.got)
            if end < 0:
                continue
            m = LENGTH_RE.search(st.buf, 0, end + 2)
            if m is None or not st.buf.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{st.context} {st.what}: {bytes(st.buf[:200])!r}")
            st.body_at, st.length = end + 4, int(m.group(1))
        if st.got < st.body_at + st.length:
            continue
        with memoryview(st.buf) as view:
            body = view[st.body_at : st.body_at + st.length]
            m = CONTINUE_RE.search(bytes(body[:4096]))
            token = m.group(1).decode() if m and m.group(1) else None
            if token:  # the server writes the next page while this one is decoded
                st.reset()
                send(st, target, token)
            if st.what == "pods":
                usage[st.context].add_pods(decode_pod_usage_list(body))
            else:
                nodes[st.context].extend(parse_node(node) for node in decode_node_list(body))
            body.release()
        if not token:
            return True


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
    limit = str(int(args.get("limit") or 2000))
    targets = _targets(args["kubeconfig"], contexts)
    states: list[ListState] = []
    for c in contexts:
        states.append(
            ListState(c, "nodes", "/api/v1/nodes", {"resourceVersion": "0", "limit": limit})
        )
        states.append(
            ListState(
                c,
                "pods",
                "/api/v1/pods",
                {"resourceVersion": "0", "fieldSelector": POD_SELECTOR, "limit": limit},
            )
        )
    for st in states:
        st.sock = connect(targets[st.context])
    gc.collect()
    gc.freeze()
    result: dict[str, Inventory] = {}

    def call() -> None:
        result["inv"] = one_call(states, targets)

    windows = _rounds.calls(args, call)
    inv = result.get("inv")
    free = {}
    if inv is not None:
        for row in inv.by_context.to_dict("records"):
            free.setdefault(str(row["context"]), {})[str(row["gpu"])] = [
                int(row["gpu_total"]),
                int(row["gpu_free"]),
            ]
    out = {
        "tool": "one-thread",
        "limit": int(limit),
        "windows": windows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "gpus_total_free": free,
        "error": _rounds.first_error(windows),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
