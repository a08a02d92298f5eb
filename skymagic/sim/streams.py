"""pods/exec, pods/attach and pods/portforward: validate, negotiate, upgrade, then relay.

What real clients send (captured from kubectl 1.27-1.33 and kubernetes-client/python 37):

- kubectl <= 1.29: SPDY/3.1 for everything (X-Stream-Protocol-Version v4..v1 for exec, attach
  and cp; portforward.k8s.io for port-forward).
- kubectl 1.30: WebSocket `v5.channel.k8s.io` for exec/attach/cp, falling back to SPDY when the
  upgrade is refused; port-forward over SPDY.
- kubectl >= 1.31: the same, and port-forward over WebSocket subprotocol
  `SPDY/3.1+portforward.k8s.io` (SPDY frames tunnelled in binary messages), SPDY fallback.
- python `kubernetes.stream`: WebSocket offering `v5.channel.k8s.io,v4.channel.k8s.io` for
  exec and port-forward alike (port-forward settles on v4: channels 2i data, 2i+1 error).

(gcloud's kubectl dispatcher picks the kubectl minor that matches the server's /version, so the
cluster's `version:` decides which row a test exercises.) The server side follows the kubelet
(pkg/kubelet/cri/streaming): WebSocket subprotocols `v5.channel.k8s.io`, `v4.channel.k8s.io`,
`v4.base64.channel.k8s.io`, `channel.k8s.io`, `base64.channel.k8s.io` (and none); SPDY
`v4`..`v2.channel.k8s.io`, `channel.k8s.io`; port-forward `portforward.k8s.io` over SPDY (also
tunnelled) and `v4.channel.k8s.io` / `v4.base64.channel.k8s.io` over WebSocket. Errors before
the upgrade are Status objects (404 pod not found, 400 not running / bad container / bad
options, 403 from RBAC, checked by the API layer).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from skymagic.sim import mux as muxes
from skymagic.sim import portforward, remotecommand
from skymagic.sim.http import Request, Response
from skymagic.sim.remotecommand import StreamLink, StreamOptions
from skymagic.sim.store import object_key
from skymagic.sim.streamio import Reactor, SocketEnd
from skymagic.sim.websocket import accept_key, offered_protocols

if TYPE_CHECKING:
    from skymagic.sim.cluster import SimCluster

__all__ = ["DISCOVERY", "SUBRESOURCES", "StreamRefused", "open_stream"]

SUBRESOURCES = ("exec", "attach", "portforward")
# Their entries in /api/v1 discovery, as a real API server lists them.
DISCOVERY = [
    {"name": f"pods/{sub}", "singularName": "", "namespaced": True, "kind": kind,
     "verbs": ["create", "get"]}
    for sub, kind in (
        ("attach", "PodAttachOptions"),
        ("exec", "PodExecOptions"),
        ("portforward", "PodPortForwardOptions"),
    )
]  # fmt: skip

TUNNEL_PREFIX = "SPDY/3.1+"
# WebSocket subprotocol -> (remotecommand protocol version, binary framing)
WS_REMOTECOMMAND = {
    "v5.channel.k8s.io": (5, True),
    "v4.channel.k8s.io": (4, True),
    "v4.base64.channel.k8s.io": (4, False),
    "channel.k8s.io": (1, True),
    "base64.channel.k8s.io": (1, False),
}
WS_PORTFORWARD = {"v4.channel.k8s.io": True, "v4.base64.channel.k8s.io": False}
SPDY_REMOTECOMMAND = {
    "v4.channel.k8s.io": 4,
    "v3.channel.k8s.io": 3,
    "v2.channel.k8s.io": 2,
    "channel.k8s.io": 1,
}
SPDY_PORTFORWARD = "portforward.k8s.io"


class StreamRefused(Exception):
    """Refuse before the upgrade, as a Status with this code, reason and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def _flag(values: dict[str, list[str]], name: str, default: bool) -> bool:
    if name not in values:
        return default
    return values[name][-1].strip().lower() in ("1", "t", "true")


def _options(req: Request, sub: str, pod: dict[str, Any]) -> StreamOptions:
    values = parse_qs(urlsplit(req.target).query, keep_blank_values=True)
    name = pod["metadata"]["name"]
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    container = (values.get("container") or [""])[-1]
    ports: list[int] = []
    if sub == "portforward":
        for raw in values.get("ports", []):
            for part in raw.split(","):
                try:
                    port = int(part)
                except ValueError:
                    raise StreamRefused(
                        400, "BadRequest", f'unable to parse port "{part}"'
                    ) from None
                if not 0 < port < 65536:
                    raise StreamRefused(400, "BadRequest", f"port {port} must be > 0 and < 65536")
                ports.append(port)
    elif not container:
        if len(names) != 1:
            raise StreamRefused(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(names)}]",
            )
        container = names[0]
    elif container not in names:
        raise StreamRefused(400, "BadRequest", f"container {container} is not valid for pod {name}")
    tty = _flag(values, "tty", False)
    opts = StreamOptions(
        command=values.get("command", []),
        container=container or (names[0] if names else ""),
        stdin=_flag(values, "stdin", False),
        stdout=_flag(values, "stdout", True),
        stderr=_flag(values, "stderr", True) and not tty,
        tty=tty,
        ports=ports,
    )
    if sub == "exec" and not opts.command:
        raise StreamRefused(400, "BadRequest", "you must specify at least 1 command")
    if sub != "portforward" and not (opts.stdin or opts.stdout or opts.stderr):
        raise StreamRefused(
            400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr"
        )
    return opts


def _check_running(pod: dict[str, Any], container: str, sub: str) -> None:
    name = pod["metadata"]["name"]
    phase = pod["status"].get("phase")
    if not pod["spec"].get("nodeName"):
        raise StreamRefused(400, "BadRequest", f"pod {name} does not have a host assigned")
    if phase in ("Succeeded", "Failed"):
        what = "forward ports to" if sub == "portforward" else f"{sub} into"
        raise StreamRefused(
            400,
            "BadRequest",
            f"cannot {what} a container in a completed pod; current phase is {phase}",
        )
    if phase != "Running" or pod["metadata"].get("deletionTimestamp"):
        raise StreamRefused(404, "NotFound", f'container not found ("{container}")')


def open_stream(cluster: SimCluster, req: Request, namespace: str, name: str, sub: str) -> Response:
    """Answer an authorized streaming request: a refusal, or 101 and the relay to run."""
    entry = cluster.store.get("pods", namespace, name)
    if entry is None:
        raise StreamRefused(404, "NotFound", f'pods "{name}" not found')
    pod = entry.obj
    opts = _options(req, sub, pod)
    _check_running(pod, opts.container, sub)
    upgrade = req.headers.get("upgrade", "").strip().lower()
    if upgrade == "websocket":
        return _websocket(cluster, req, pod, sub, opts)
    if upgrade.startswith("spdy/3.1"):
        return _spdy(cluster, req, pod, sub, opts)
    raise StreamRefused(400, "BadRequest", "Upgrade request required")


def _websocket(
    cluster: SimCluster, req: Request, pod: dict[str, Any], sub: str, opts: StreamOptions
) -> Response:
    key = req.headers.get("sec-websocket-key", "")
    if req.headers.get("sec-websocket-version", "") != "13" or not key:
        raise StreamRefused(400, "BadRequest", "not a WebSocket version 13 handshake")
    offered = offered_protocols(req.headers.get("sec-websocket-protocol", "")) or [""]
    supported: list[str]
    if sub == "portforward":
        supported = [TUNNEL_PREFIX + SPDY_PORTFORWARD, *WS_PORTFORWARD, ""]
    else:
        supported = [*WS_REMOTECOMMAND, ""]
    chosen = next((p for p in offered if p in supported), None)
    if chosen is None:
        raise StreamRefused(
            400,
            "BadRequest",
            f"requested protocol(s) are not supported: {offered}; supports {supported}",
        )
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(key),
    }
    if chosen:
        headers["Sec-WebSocket-Protocol"] = chosen
    if sub == "portforward":
        if chosen.startswith(TUNNEL_PREFIX):

            def make_tunnel(reactor: Reactor, client: SocketEnd) -> muxes.Mux:
                return muxes.SpdyMux(reactor, client, tunnel=True)

            return _upgrade(cluster, pod, sub, opts, headers, make_tunnel, version=0)
        if not opts.ports:
            raise StreamRefused(400, "BadRequest", 'query parameter "port" is required')
        binary = WS_PORTFORWARD.get(chosen, True)

        def make_ws_pf(reactor: Reactor, client: SocketEnd) -> muxes.Mux:
            return muxes.WsMux(reactor, client, binary=binary, close_signal=False)

        return _upgrade(cluster, pod, sub, opts, headers, make_ws_pf, version=0)
    version, binary = WS_REMOTECOMMAND.get(chosen, (1, True))

    def make_ws(reactor: Reactor, client: SocketEnd) -> muxes.Mux:
        return muxes.WsMux(reactor, client, binary=binary, close_signal=version >= 5)

    return _upgrade(cluster, pod, sub, opts, headers, make_ws, version=version)


def _spdy(
    cluster: SimCluster, req: Request, pod: dict[str, Any], sub: str, opts: StreamOptions
) -> Response:
    offered = offered_protocols(req.headers.get("x-stream-protocol-version", ""))
    supported = [SPDY_PORTFORWARD] if sub == "portforward" else list(SPDY_REMOTECOMMAND)
    chosen = next((p for p in offered if p in supported), None) if offered else supported[-1]
    if chosen is None:
        raise StreamRefused(
            403,
            "Forbidden",
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server supports {supported}",
        )
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": chosen}

    def make(reactor: Reactor, client: SocketEnd) -> muxes.Mux:
        return muxes.SpdyMux(reactor, client, tunnel=False)

    version = SPDY_REMOTECOMMAND.get(chosen, 0)
    return _upgrade(cluster, pod, sub, opts, headers, make, version=version)


MakeMux = Callable[[Reactor, SocketEnd], "muxes.Mux"]


def _upgrade(
    cluster: SimCluster,
    pod: dict[str, Any],
    sub: str,
    opts: StreamOptions,
    headers: dict[str, str],
    make_mux: MakeMux,
    *,
    version: int,
) -> Response:
    key = object_key("pods", pod)
    log = cluster.logs.get(key)
    requests = cluster.requests
    websocket = headers.get("Upgrade") == "websocket"

    def relay(conn: socket.socket, leftover: bytes) -> None:
        reactor = Reactor()
        client = SocketEnd(conn, half_close=False)
        reactor.add(client)
        mux = make_mux(reactor, client)
        link = StreamLink(mux, opts, version, websocket)  # exec and attach speak over it
        session: muxes.Handler
        if sub == "portforward":
            session = portforward.PortForwardSession(
                reactor, mux, cluster.runtime, key, pod, opts.ports
            )
        elif sub == "attach":
            stdin = cluster.runtime.attach_stdin(key) if opts.stdin else None
            session = remotecommand.AttachSession(
                link, log, stdin, lambda: cluster.runtime.close_stdin(key)
            )
        else:
            session = remotecommand.ExecSession(link, cluster.runtime, key, pod)
        mux.handler = session
        unwatch = cluster.runtime.watch(key, lambda: reactor.call_soon_threadsafe(session.pod_gone))
        try:
            session.start()
            if leftover:
                mux.feed(leftover)
            reactor.run(lambda: mux.finished)
        except Exception as exc:  # keep the server alive; surface in the request log
            requests.append({"t": time.time(), "stream_error": f"{sub}: {exc!r}"})
        finally:
            unwatch()
            with contextlib.suppress(Exception):
                session.close()

    return Response(status=101, headers=headers, content_type="", upgrade=relay)
