"""`%sky_logs NAME --follow` follows like the launch does: a stall is seen, resumed, bounded.

The stall is injected through the simulator's run-time `blackhole` fault AFTER the followed
stream delivered its first line: the open stream goes silent (no data, no end) and new
requests get no answer, as behind a proxy that stops forwarding. `logs(follow=True)` and the
launch's own follow run the same generator (launches/follow.py `follow_lines`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
)
from launchkit import FREE, FREE2, LAUNCH_SPEC, fleet_fixture, pod, settings

from skymagic.errors import TransportError
from skymagic.launches import LaunchControls, LaunchResult, launch_task, logs, parse_task
from skymagic.sim import Fleet

fleet = fleet_fixture(LAUNCH_SPEC)


def start(body: str) -> None:
    result = launch_task(
        parse_task(body, name="job"), settings(FREE, FREE2), LaunchControls(detach=True)
    )
    assert isinstance(result, LaunchResult) and result.context == FREE


def follow_requests(fleet: Fleet) -> list[dict[str, Any]]:
    """The followed log reads the cluster answered, in order (query included)."""
    return [
        r
        for r in fleet.requests(FREE)
        if str(r.get("path", "")).endswith("/pods/job/log") and "follow" in str(r.get("query", ""))
    ]


def stall_at_first_line(fleet: Fleet, clear_after: float | None) -> None:
    """Take the first line, then black-hole the cluster (cleared after `clear_after` s)."""
    assert pod(fleet, FREE, "job")["status"]["phase"] == "Running"
    fleet.set_faults(FREE, blackhole=True)
    if clear_after is not None:
        threading.Timer(clear_after, lambda: fleet.set_faults(FREE, blackhole=False)).start()


def drain_within(lines: Iterator[str], bound: float) -> list[str] | BaseException:
    """The rest of `lines` (or what it raised), read on a thread that must end within `bound`
    seconds: without a bounded read a stalled stream would block it for an hour."""
    outcome: list[list[str] | BaseException] = []

    def drain() -> None:
        try:
            outcome.append(list(lines))
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), "logs --follow still blocked on a stalled stream"
    return outcome[0]


def test_logs_follow_resumes_after_a_stall_without_repeating_lines(fleet: Fleet) -> None:
    # "mid" is written during the stall: the open stream holds it back (silent, not closed).
    start("echo a; echo b; echo c; sleep 1; echo mid; sleep 8; echo end")
    lines = logs("job", settings(FREE, FREE2), follow=True, read_timeout=1.0, reconnect_for=30.0)
    got = [next(lines)]
    # The stream stalls with the pod still running, for longer than a read may wait.
    stall_at_first_line(fleet, clear_after=4.0)
    rest = drain_within(lines, 60)
    assert isinstance(rest, list), rest
    got.extend(rest)
    assert got == ["a", "b", "c", "mid", "end"]  # followed to the end, from where it stood
    assert pod(fleet, FREE, "job")["status"]["phase"] == "Succeeded"
    reads = follow_requests(fleet)
    # Read again after the stall from where the log stood (sinceTime), not from the start.
    assert len(reads) >= 2 and "sinceTime" in str(reads[-1].get("query"))


def test_logs_follow_ends_with_one_line_when_the_api_server_stays_unreachable(
    fleet: Fleet,
) -> None:
    start("echo a; sleep 60")
    lines = logs("job", settings(FREE, FREE2), follow=True, read_timeout=1.0, reconnect_for=2.0)
    assert next(lines) == "a"
    stall_at_first_line(fleet, clear_after=None)
    try:
        err = drain_within(lines, 60)
        assert isinstance(err, TransportError)
        text = str(err)
        assert "\n" not in text and f"context '{FREE}'" in text
        assert "did not answer for 2 s" in text and "%sky_logs job --follow" in text
        assert "keeps running" in text
    finally:
        fleet.set_faults(FREE, blackhole=False)
    assert pod(fleet, FREE, "job")["status"]["phase"] == "Running"


@pytest.mark.parametrize("tail", [None, 2])
def test_logs_follow_of_a_finished_launch_prints_it_once(fleet: Fleet, tail: int | None) -> None:
    start("echo a; echo b; echo c")
    deadline = time.monotonic() + 30
    while pod(fleet, FREE, "job")["status"]["phase"] != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    got = list(logs("job", settings(FREE, FREE2), follow=True, tail=tail))
    assert got == (["a", "b", "c"] if tail is None else ["b", "c"])
