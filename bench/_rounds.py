"""The timed calls of a bench runner, taken in turns with the other tools (imported by runners).

Why turns: the bench machine is shared (2 cores, other jobs come and go), and a tool measured
alone for a minute can meet a quiet minute or a busy one. So bench/inventory.py starts every
tool's runner at once, each in its own process (peak RSS stays per tool), and asks them for one
call at a time, round after round, each round in another order: every ratio then compares calls
made seconds apart, not minutes.

Protocol (JSON lines): the runner prints {"ready": true} once set up, then for each line on
stdin: "warmup" or "go" makes one call and prints {"window": {...}} (start, end, wall_s, cpu_s,
warmup, error); "end" stops. Without "rounds" in its arguments a runner makes its warm-up and
timed calls in a row, as before. Works under any python >= 3.8 (SkyPilot's venv runs it too).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _one(call: Callable[[], Any], warmup: bool) -> dict[str, Any]:
    w0 = time.time()
    c0, t0 = _cpu(), time.perf_counter()
    error = None
    try:
        call()
    except Exception as exc:  # report, do not hide: the driver prints it
        error = f"{type(exc).__name__}: {exc}"
    return {
        "start": w0,
        "end": time.time(),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": _cpu() - c0,
        "warmup": warmup,
        "error": error,
    }


def calls(args: dict[str, Any], call: Callable[[], Any]) -> list[dict[str, Any]]:
    """Make the runner's calls (in turns when the driver asks for them); their windows."""
    windows: list[dict[str, Any]] = []
    if not args.get("rounds"):
        warmup, runs = int(args.get("warmup", 1)), int(args.get("runs", 3))
        for i in range(warmup + runs):
            windows.append(_one(call, i < warmup))
            if windows[-1]["error"]:
                break
        return windows
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "end":
            break
        windows.append(_one(call, command == "warmup"))
        print(json.dumps({"window": windows[-1]}), flush=True)
    return windows


def first_error(windows: list[dict[str, Any]]) -> Any:
    return next((w["error"] for w in windows if w.get("error")), None)
