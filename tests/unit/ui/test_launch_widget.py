"""The launch widget's header and phase line (skymagic/ui/launch_widget.py), without a fleet."""

from __future__ import annotations

import time
from html import unescape

from skymagic.errors import ConfigError, LaunchError, ProvisionFailedError
from skymagic.launches.runner import Attempt, LaunchResult
from skymagic.ui.launch_widget import LaunchProgressWidget, final_state


def result(status: str, **kw: object) -> LaunchResult:
    r = LaunchResult("hello", "ctx-a", "default", status, node="node-1", seconds=12.44)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_final_states_of_results() -> None:
    assert final_state(result("Succeeded"), None) == ("succeeded in 12.4 s on ctx-a", "ok")
    assert final_state(result("Failed", exit_code=3), None) == (
        "failed: exit code 3 on ctx-a after 12.4 s",
        "failed",
    )
    assert final_state(result("Running"), None) == (
        "detached: running on node-1 in ctx-a",
        "info",
    )
    assert final_state(result("Detached"), None)[0] == "detached: the pod keeps running in ctx-a"
    assert final_state(result("Reused"), None)[0].startswith("reused: ")


def test_final_states_of_errors() -> None:
    # every context said the same: that is the reason
    same = ProvisionFailedError(
        "Provision failures (tried 2 infra) for 'hello':\n  a: no such GPU: B300\n  b: ...",
        failures=[("a", "no such GPU: B300 (has H100)"), ("b", "no such GPU: B300 (has L4)")],
    )
    assert final_state(None, same) == ("failed: no such GPU: B300 (all 2 contexts)", "failed")
    mixed = ProvisionFailedError(
        "Provision failures", failures=[("a", "timeout"), ("b", "unschedulable")]
    )
    assert final_state(None, mixed) == (
        "failed: no allowed context could run it (2 tried; see below)",
        "failed",
    )
    rerun = ConfigError("a finished launch named 'hello' (Succeeded) still exists in context 'a'")
    text, kind = final_state(None, rerun)
    assert kind == "failed" and text.startswith("failed: a finished launch named 'hello'")
    assert final_state(None, KeyboardInterrupt()) == ("interrupted", "failed")
    assert final_state(None, LaunchError("line one\nline two")) == ("failed: line one", "failed")


def test_header_goes_from_launching_to_failed_in_red() -> None:
    p = LaunchProgressWidget(tick=0)
    try:
        assert "launching" in p.header.value and "data-state='busy'" in p.header.value
        p.on_attempt(Attempt("a", "skipped", "no such GPU: B300"))
        p.finish(None, ProvisionFailedError("x", failures=[("a", "no such GPU: B300")]))
        header = unescape(p.header.value)
        assert "failed: no such GPU: B300" in header and "color:#c8383a" in header
        assert "data-state='failed'" in header
        assert p.to_text().startswith("launch: failed: no such GPU: B300")
        assert "failed: no such GPU: B300" in unescape(p.to_html())
    finally:
        p.close()


def test_phase_line_ticks_until_the_end() -> None:
    p = LaunchProgressWidget(tick=0.02)
    try:
        p.on_progress("ctx-a", "running on node-1", 1.0)
        first = p.phase.value
        assert "ctx-a: running on node-1, 1.0 s" in first
        deadline = time.monotonic() + 5
        while p.phase.value == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.phase.value != first and "ctx-a: running on node-1, " in p.phase.value
        p.finish(result("Succeeded"))
        assert p.phase.layout.display == "none"  # the header says how it ended
        frozen = p.phase.value
        time.sleep(0.1)
        assert p.phase.value == frozen  # no more ticks after the end
        assert "%sky_down" not in p.notes.value  # this result had no hints
    finally:
        p.close()


def test_hints_land_in_the_notes() -> None:
    p = LaunchProgressWidget(tick=0)
    try:
        r = result("Running", hints=["Stop it with %sky_down hello"])
        p.finish(r)
        assert "Stop it with %sky_down hello" in p.notes.value
        assert "Stop it with %sky_down hello" in p.to_text()
    finally:
        p.close()


def test_contexts_the_plan_skipped_are_not_numbered_as_tried() -> None:
    # The plan's skips arrive first, whatever their place in the failover order: numbering
    # them would read as "a100 was tried first".
    p = LaunchProgressWidget(tick=0)
    try:
        p.on_attempt(Attempt("a100", "skipped", "none free now"))
        p.on_attempt(Attempt("h100", "timeout", "unschedulable", seconds=2.0))
        p.on_attempt(Attempt("tpu", "running", seconds=0.6))
        text = p.to_text()
        assert "- [a100] skipped: none free now" in text
        assert "1. [h100] timeout: unschedulable (2.0 s)" in text
        assert "2. [tpu] running (0.6 s)" in text
        cells = [
            row.split("</td>")[0].rsplit(">", 1)[-1] for row in p._attempts_html().split("<tr")[2:]
        ]
        assert cells == ["-", "1", "2"]
    finally:
        p.close()
