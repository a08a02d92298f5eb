"""A multi-node launch follows every rank's log like a single pod: a stall is seen, resumed,
bounded.

The stall is injected through the simulator's run-time `blackhole` fault once BOTH ranks'
first lines have reached the launch: the open log streams go silent (no data, no end) and new
requests get no answer, as behind a proxy that stops forwarding. Each rank's follow is the
launch's own (launches/follow.py `follow_lines`): a bounded read, the pod re-read after it,
the log read again from where it stood (`sinceTime`), and a one-line end when the context
stays unreachable past the budget. The launch runs on a thread that must end within a bound:
with the long default read timeout it would block on the stalled streams for an hour.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
)
from launchkit import GANG_SPEC, ONE, TWO, Recorder, fleet_fixture, pod, settings, writes

from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet

fleet = fleet_fixture(GANG_SPEC)
PODS = ("gf", "gf-1")  # the gang's pods: rank 0 is named as the launch


class StallAfterFirstLines(Recorder):
    """Black-holes `cluster` once every rank printed its first line; clears it after
    `clear_after` seconds (never, with None)."""

    def __init__(
        self, fleet: Fleet, cluster: str, clear_after: float | None, pods: tuple[str, ...] = PODS
    ) -> None:
        super().__init__()
        self.fleet, self.cluster, self.clear_after, self.pods = fleet, cluster, clear_after, pods
        self.stalled = False

    def on_log(self, line: str) -> None:
        super().on_log(line)
        firsts = [line for line in self.log if re.match(r"(\(rank=\d\) )?first", line)]
        if len(firsts) == len(self.pods) and not self.stalled:
            self.stalled = True
            for name in self.pods:  # every rank really runs while the stall starts
                assert pod(self.fleet, self.cluster, name)["status"]["phase"] == "Running"
            self.fleet.set_faults(self.cluster, blackhole=True)
            if self.clear_after is not None:
                off = threading.Timer(
                    self.clear_after, lambda: self.fleet.set_faults(self.cluster, blackhole=False)
                )
                off.daemon = True
                off.start()


def launch_within(
    body: str, rec: Recorder, bound: float, nodes: int = 2, autostop: float | None = None, **kw: Any
) -> LaunchResult:
    """The launch of `body` (a gang of `nodes`), run on a thread that must end within `bound`
    seconds."""
    outcome: list[Any] = []
    task = parse_task(
        body, gpus="H100:8", num_nodes=nodes, name="gf", idle_minutes_to_autostop=autostop
    )

    def run() -> None:
        try:
            outcome.append(
                launch_task(
                    task,
                    settings(ONE, TWO),
                    LaunchControls(provision_timeout=5.0),
                    observer=rec,
                    **kw,
                )
            )
        except BaseException as exc:  # the test shows it
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), f"the gang launch still blocked:\n{rec.text.getvalue()}"
    result = outcome[0]
    assert isinstance(result, LaunchResult), result
    return result


def by_rank(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        m = re.fullmatch(r"\(rank=(\d)\) (.*)", line)
        assert m, f"an unprefixed line: {line!r}"
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


def log_reads(fleet: Fleet, name: str) -> list[dict[str, Any]]:
    """The followed log reads of pod `name` that the cluster answered, in order."""
    return [
        r
        for r in fleet.requests(ONE)
        if str(r.get("path", "")).endswith(f"/pods/{name}/log")
        and "follow" in str(r.get("query", ""))
    ]


# "mid" is written during the stall: the open streams hold it back (silent, not closed).
STALLED = 'R=$SKYPILOT_NODE_RANK; echo "first $R"; sleep 1; echo "mid $R"; sleep 7; echo "end $R"'


def test_a_gang_follow_resumes_every_rank_after_a_stall_without_repeating_lines(
    fleet: Fleet,
) -> None:
    rec = StallAfterFirstLines(fleet, ONE, clear_after=4.0)
    result = launch_within(STALLED, rec, 90, follow_timeout=1.0, reconnect_for=30.0)

    assert rec.stalled
    assert (result.context, result.status, result.exit_code) == (ONE, "Succeeded", 0), str(result)
    # Every rank's lines, each exactly once, in order: followed again from where it stood.
    assert by_rank(rec.log) == {r: [f"first {r}", f"mid {r}", f"end {r}"] for r in ("0", "1")}
    assert any(p.startswith("lost contact") for _c, p, _e in rec.progress)  # the stall was felt
    for name in ("gf", "gf-1"):
        reads = log_reads(fleet, name)
        assert len(reads) >= 2 and "sinceTime" in str(reads[-1].get("query")), reads
    # Once the ranks started, failover is over: two pods, both in the first context.
    assert writes(fleet, ONE) == 2 and writes(fleet, TWO) == 0


def test_a_gang_follow_ends_with_one_line_when_the_context_stays_unreachable(
    fleet: Fleet,
) -> None:
    rec = StallAfterFirstLines(fleet, ONE, clear_after=None)
    try:
        result = launch_within(
            'echo "first $SKYPILOT_NODE_RANK"; sleep 120', rec, 60, follow_timeout=1.0,
            reconnect_for=2.0,
        )  # fmt: skip
    finally:
        fleet.set_faults(ONE, blackhole=False)

    assert (result.context, result.status, result.exit_code) == (ONE, "Unreachable", None)
    assert by_rank(rec.log) == {"0": ["first 0"], "1": ["first 1"]}
    [lost] = [h for h in result.hints if h.startswith("Lost contact")]
    assert "\n" not in lost and f"Lost contact with {ONE} after the ranks started" in lost
    assert "the 2 pods keep running there" in lost
    assert "%sky_logs gf --rank N --follow" in lost and "%sky_down gf" in lost
    assert str(result).count("%sky_down gf") == 1  # said once
    # Nothing was stopped, deleted or run again elsewhere: both ranks still run where they are.
    for name in ("gf", "gf-1"):
        assert pod(fleet, ONE, name)["status"]["phase"] == "Running"
    assert writes(fleet, ONE) == 2 and writes(fleet, TWO) == 0


def test_with_autostop_a_stalled_follow_still_ends_at_every_ranks_run_end(fleet: Fleet) -> None:
    rec = StallAfterFirstLines(fleet, ONE, clear_after=4.0)
    result = launch_within(STALLED, rec, 90, autostop=5, follow_timeout=1.0, reconnect_for=30.0)

    assert rec.stalled
    assert (result.status, result.exit_code) == ("Succeeded", 0), str(result)
    assert by_rank(rec.log) == {r: [f"first {r}", f"mid {r}", f"end {r}"] for r in ("0", "1")}
    for name in PODS:  # the pods outlive their run (autostop)
        assert pod(fleet, ONE, name)["status"]["phase"] == "Running"


def test_with_autostop_a_single_pods_stalled_follow_still_ends_at_its_run_end(
    fleet: Fleet,
) -> None:
    """One pod that outlives its run: followed to its RUN_DONE line by the same bounded
    follow (it used to be read with a week-long read timeout)."""
    rec = StallAfterFirstLines(fleet, ONE, clear_after=4.0, pods=("gf",))
    body = "echo first; sleep 1; echo mid; sleep 7; echo end; exit 3"
    result = launch_within(body, rec, 90, nodes=1, autostop=5, follow_timeout=1.0)

    assert rec.stalled
    assert (result.status, result.exit_code) == ("Failed", 3), str(result)
    assert rec.log == ["first", "mid", "end"]
    assert any(p.startswith("lost contact") for _c, p, _e in rec.progress)
    assert pod(fleet, ONE, "gf")["status"]["phase"] == "Running"  # the pod stays (autostop)
