"""Exec and port-forward streams to a pod, over the official client's WebSocket implementation.

Why the official `kubernetes.stream` and not a hand-written protocol: it already speaks the
channel protocols the API server offers (v5.channel.k8s.io with its stdin CLOSE signal, v4
without), masks frames, and is what the simulator's stream tests check against the real
kubectl too. It is fed skymagic's own credentials through `ContextClient.official()` (whose
temp CA/key directory goes away when the ApiClient is closed). What it lacks is wrapped here:
live callbacks per channel, stdin fed from an iterator on its own thread (so a tar stream
flows while output is read), the exit status parsed from the error channel's Status without
the crash `WSClient.returncode` has on non-exit failures, and errors as SkymagicErrors.
ARCHITECTURE.md has the round-trip figures behind the choice.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.errors import (
    ConfigError,
    ForbiddenError,
    LaunchError,
    NotFoundError,
    SkymagicError,
    TransportError,
)

__all__ = ["ExecOutcome", "exec_stream", "open_port_socket", "resize_message"]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
V5 = "v5.channel.k8s.io"
_CHUNK = 256 * 1024  # stdin frames: big enough to keep the socket busy, small for progress


@dataclass
class ExecOutcome:
    """How an exec ended: the command's exit code, or a failure the runtime reported."""

    exit_code: int
    message: str = ""  # the Status message for a non-exit failure (command not found, ...)


def resize_message(columns: int, rows: int) -> str:
    """The resize channel's payload (what kubectl sends when a terminal changes size)."""
    return json.dumps({"Width": columns, "Height": rows})


def _status_outcome(raw: bytes | str) -> ExecOutcome:
    """Parse the error channel: Success, NonZeroExitCode with its ExitCode cause, or else."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        # The connection ended without a Status: the pod (or the API server) went away.
        return ExecOutcome(-1, "the exec stream ended without an exit status (pod gone?)")
    try:
        status = json.loads(text)
    except ValueError:
        return ExecOutcome(-1, text.strip()[:300])
    if status.get("status") == "Success":
        return ExecOutcome(0)
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return ExecOutcome(int(cause.get("message")))
    return ExecOutcome(-1, str(status.get("message") or text)[:300])


def _open(
    client: ContextClient, namespace: str, pod: str, query: dict[str, Any], kind: str
) -> tuple[Any, Any]:
    """(api_client, websocket-ish) for exec; maps the official client's errors to ours."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import portforward, stream

    if client.credentials.impersonation():
        # kubernetes.stream's create_websocket forwards only the Authorization header: the
        # Impersonate-* headers would be dropped and the stream would run as the real user.
        raise ConfigError(
            f"this context's user impersonates (`as` in the kubeconfig), which the official "
            f"client's {kind} stream cannot carry (it would act as the real user instead); "
            f"use a context whose user has no `as` for exec, file copies and ports",
            context=client.name,
        )
    api = client.official()
    core = k8s.CoreV1Api(api)
    try:
        if kind == "exec":
            ws = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                _preload_content=False,
                binary=True,
                **query,
            )
        else:
            ws = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, **query)
    except ApiException as exc:
        api.close()
        raise _stream_error(client, exc, namespace, pod, kind) from None
    except BaseException:
        api.close()
        raise
    return api, ws


def _stream_error(
    client: ContextClient, exc: Any, namespace: str, pod: str, kind: str
) -> SkymagicError:
    reason = str(getattr(exc, "reason", "") or exc)
    where = f"pod {namespace}/{pod}"
    if "403" in reason:
        return ForbiddenError(
            f"403 Forbidden: may not {kind} into {where} (RBAC needs create on pods/{kind})",
            context=client.name,
            status=403,
        )
    if "404" in reason:
        return NotFoundError(f"{where} does not exist", context=client.name, status=404)
    if "Connection refused" in reason or "timed out" in reason.lower():
        return TransportError(
            f"cannot open a {kind} stream to {where}: {reason[:160]}", context=client.name
        )
    return LaunchError(f"{kind} into {where} failed: {reason[:200]}", context=client.name)


def exec_stream(
    client: ContextClient,
    namespace: str,
    pod: str,
    command: list[str],
    *,
    on_stdout: Callable[[bytes], None] | None = None,
    on_stderr: Callable[[bytes], None] | None = None,
    stdin: Iterable[bytes] | None = None,
    tty: bool = False,
    container: str | None = None,
    on_open: Callable[[Any], None] | None = None,
) -> ExecOutcome:
    """Run `command` in the pod, calling back with output as it arrives; the exit outcome.

    `stdin` (an iterable of byte chunks) is sent from its own thread and then closed (the v5
    CLOSE signal), so a command reading to EOF (tar, cat) ends. `on_open(ws)` gets the live
    session (an interactive shell writes its keystrokes and resizes there).
    """
    query: dict[str, Any] = {
        "command": command,
        "stdin": stdin is not None or on_open is not None,
        "stdout": True,
        "stderr": not tty,
        "tty": tty,
    }
    if container:
        query["container"] = container
    from websocket import WebSocketConnectionClosedException

    api, ws = _open(client, namespace, pod, query, "exec")
    failure: list[BaseException] = []

    def feed(chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                for i in range(0, len(chunk), _CHUNK):
                    ws.write_stdin(chunk[i : i + _CHUNK])
            ws.close_channel(STDIN)
        except BaseException as exc:
            failure.append(exc)
            with contextlib.suppress(Exception):
                ws.close()

    writer = None
    try:
        if stdin is not None:
            if ws.subprotocol != V5:
                raise LaunchError(
                    f"the API server of context '{client.name}' speaks {ws.subprotocol}, "
                    "which cannot end stdin; sending files needs Kubernetes 1.30 or newer "
                    "(v5.channel.k8s.io)",
                    context=client.name,
                )
            writer = threading.Thread(target=feed, args=(stdin,), daemon=True, name="exec-stdin")
            writer.start()
        if on_open is not None:
            on_open(ws)
        while ws.is_open():
            try:
                ws.update(timeout=1.0)
            except WebSocketConnectionClosedException:
                break  # closed without a close frame: what arrived (and the Status) stands
            _deliver(ws, on_stdout, on_stderr)
        _deliver(ws, on_stdout, on_stderr)
        if failure and not isinstance(failure[0], (OSError, ConnectionError)):
            raise failure[0]
        return _status_outcome(ws.read_channel(ERROR))
    except (OSError, ConnectionError) as exc:
        raise TransportError(
            f"the exec stream to pod {namespace}/{pod} broke: {exc}", context=client.name
        ) from None
    finally:
        with contextlib.suppress(Exception):
            ws.close()
        if writer is not None:
            writer.join(timeout=5)
        api.close()


def _deliver(
    ws: Any, on_stdout: Callable[[bytes], None] | None, on_stderr: Callable[[bytes], None] | None
) -> None:
    for channel, callback in ((STDOUT, on_stdout), (STDERR, on_stderr)):
        if channel in ws._channels:  # read_channel would poll the socket again
            data = ws.read_channel(channel)
            if data and callback is not None:
                callback(data)


def open_port_socket(
    client: ContextClient, namespace: str, pod: str, port: int
) -> tuple[socket.socket, Callable[[], None]]:
    """A connected socket to `port` of the pod (one port-forward stream), and its closer.

    The official client's PortForward relays the stream through a local socketpair on its
    own thread; the returned socket is our end of it.
    """
    api, pf = _open(client, namespace, pod, {"ports": str(port)}, "portforward")
    try:
        sock = pf.socket(port)
    except BaseException:
        pf.close()
        api.close()
        raise

    def close() -> None:
        with contextlib.suppress(Exception):
            pf.close()
        api.close()

    return sock, close
