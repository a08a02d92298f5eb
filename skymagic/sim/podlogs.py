"""GET pods/NAME/log: a container's output as the kubelet serves it (container, sinceTime,
tailLines, timestamps), and `follow=true` as a stream that ends when the container does.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator, Mapping

from skymagic.sim.http import Request, Response
from skymagic.sim.kubelet import PodLog
from skymagic.sim.status import HTTPStatus, not_found
from skymagic.sim.store import Store, object_key

__all__ = ["pod_log"]


def pod_log(
    req: Request, store: Store, logs: Mapping[str, PodLog], namespace: str, name: str
) -> Response:
    entry = store.get("pods", namespace, name)
    if entry is None:
        raise not_found("pods", name)
    pod = entry.obj
    containers = [c["name"] for c in pod["spec"].get("containers", [])]
    container = req.query.get("container") or containers[0]
    if container not in containers:
        raise HTTPStatus(400, "BadRequest", f"container {container} is not valid for pod {name}")
    phase = pod["status"].get("phase")
    if phase == "Pending":
        waiting = "ContainerCreating"
        raise HTTPStatus(
            400,
            "BadRequest",
            f'container "{container}" in pod "{name}" is waiting to start: {waiting}',
        )
    log = logs.get(object_key("pods", pod))
    if log is None:
        stamped = [(0.0, b"simulated workload " + name.encode() + b" is running\n")]
    else:
        stamped = [log.stamped(i) for i in range(len(log.lines))]
    since = _since(req.query.get("sinceTime"))
    if since is not None:
        stamped = [(t, line) for t, line in stamped if t >= since]
    tail = req.query.get("tailLines")
    if tail:
        n = int(tail)
        stamped = stamped[-n:] if n > 0 else []
    stamps = req.query.get("timestamps", "").lower() in ("true", "1")
    lines = [_stamp(t, line) if stamps else line for t, line in stamped]
    follow = req.query.get("follow", "").lower() in ("true", "1")
    if not follow or log is None or log.closed:
        return Response(200, b"".join(lines), "text/plain")
    return Response(
        200, content_type="text/plain", stream=_follow(log, len(log.lines), lines, stamps)
    )


async def _follow(
    log: PodLog, seen: int, first: list[bytes], stamps: bool = False
) -> AsyncIterator[bytes]:
    if first:
        yield b"".join(first)
    while True:
        if len(log.lines) > seen:
            new = [log.stamped(i) for i in range(seen, len(log.lines))]
            seen = len(log.lines)
            yield b"".join(_stamp(t, line) if stamps else line for t, line in new)
            continue
        if log.closed:
            return
        log.changed.clear()
        await log.changed.wait()


def _stamp(at: float, line: bytes) -> bytes:
    """kubelet's `timestamps=true`: RFC3339Nano (trailing zeros trimmed, as Go prints it)."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
    frac = f"{at % 1:.9f}"[2:].rstrip("0")
    return f"{whole}{'.' + frac if frac else ''}Z ".encode() + line


def _since(text: str | None) -> float | None:
    """`sinceTime` (RFC3339) as epoch seconds; lines written at or after it are returned."""
    if not text:
        return None
    whole, _, frac = text.rstrip("Z").partition(".")
    try:
        base = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise HTTPStatus(400, "BadRequest", f"sinceTime {text!r} is not RFC3339") from None
    return base + (float("0." + frac) if frac else 0.0)
