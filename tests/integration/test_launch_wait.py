"""Waiting for capacity (`retry_until_up`) against a simulated fleet over real HTTPS.

Every allowed context is full; the launch watches them and creates nothing until the
simulator's run-time controls free GPUs, then starts within a second or two. Ctrl-C while
waiting leaves nothing behind (no object, no watch thread).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
)
from conftest import write_sky_config
from launchkit import (
    GANG_SPEC,
    ONE,
    TWO,
    Recorder,
    fleet_fixture,
    settings,
    skymagic_pods,
    writes,
)

from skymagic.errors import LaunchError, ProvisionFailedError
from skymagic.launches import LaunchControls, LaunchResult, launch_task, parse_task
from skymagic.sim import Fleet

fleet = fleet_fixture(GANG_SPEC)


def fill(fleet: Fleet, *clusters: str) -> None:
    for cluster in clusters:
        fleet.add_pods(cluster, count=2, gpu="H100", gpus=8, namespace="team-x")


def waiting_lines(rec: Recorder) -> list[str]:
    return [phase for _ctx, phase, _t in list(rec.progress) if phase.startswith("waiting for")]


def launch_in_thread(rec: Recorder, **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = launch_task(
                parse_task("sleep 60", gpus="H100:8", **kw),
                settings(ONE, TWO),
                LaunchControls(detach=True, retry_until_up=True),
                observer=rec,
            )
        except Exception as exc:  # handed to the test
            out["error"] = exc
        out["done"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("num_nodes", [1, 2])
def test_waiting_creates_nothing_and_starts_soon_after_gpus_free_up(
    fleet: Fleet, num_nodes: int
) -> None:
    fill(fleet, ONE, TWO)
    fleet.clear_requests()
    rec = Recorder()
    thread, out = launch_in_thread(rec, name="waiter", num_nodes=num_nodes)
    wait_until(lambda: len(waiting_lines(rec)) >= 2, 15, "the waiting line")
    line = waiting_lines(rec)[-1]
    want = "H100:8" + (" (x2 nodes)" if num_nodes == 2 else "")
    assert line.startswith(f"waiting for {want}: best now one 0/8 free on h100-"), line
    assert "done" not in out
    foreground = [m for m in rec.messages if m.startswith("--retry-until-up waits here")]
    assert foreground and "in the foreground" in foreground[0]
    # ... and says what waits without holding the kernel: a managed job's controller.
    assert "submit it as a managed job (%%sky_jobs_launch)" in foreground[0]
    assert writes(fleet, ONE) == 0 and writes(fleet, TWO) == 0  # nothing created while waiting

    freed = time.monotonic()
    fleet.remove_pods(TWO, namespace="team-x")
    thread.join(30)
    assert "error" not in out, out.get("error")
    result = out["result"]
    assert isinstance(result, LaunchResult)
    assert result.context == TWO and result.status == "Running"
    assert out["done"] - freed < 5.0  # a second or two plus container start, never a poll
    assert writes(fleet, ONE) == 0
    names = ["waiter", "waiter-1"][:num_nodes]
    assert skymagic_pods(fleet) == {TWO: names}


def test_ctrl_c_while_waiting_leaves_nothing_behind(fleet: Fleet) -> None:
    fill(fleet, ONE, TWO)

    class CtrlC(Recorder):
        def on_progress(self, context: str, phase: str, elapsed: float) -> None:
            super().on_progress(context, phase, elapsed)
            if phase.startswith("waiting for"):
                raise KeyboardInterrupt

    with pytest.raises(LaunchError, match="cancelled while waiting for capacity") as info:
        launch_task(
            parse_task("true", gpus="H100:8", name="cancelled"),
            settings(ONE, TWO),
            LaunchControls(retry_until_up=True),
            observer=CtrlC(),
        )
    assert "nothing was created" in str(info.value)
    assert skymagic_pods(fleet) == {}
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("skymagic-watch")],
        5,
        "the watch threads to stop",
    )


def test_a_bounded_wait_ends_with_what_would_fit(fleet: Fleet) -> None:
    fleet.add_pods(ONE, count=2, gpu="H100", gpus=6, namespace="team-x")  # 2 free per node
    fill(fleet, TWO)
    t0 = time.monotonic()
    with pytest.raises(ProvisionFailedError, match=r"within 0.02 min of waiting") as info:
        launch_task(
            parse_task("true", gpus="H100:8", name="bounded"),
            settings(ONE, TWO),
            LaunchControls(retry_until_up=True, timeout_minutes=0.02),
            observer=Recorder(),
        )
    assert time.monotonic() - t0 < 10
    assert "H100:8 fits nowhere now; H100:2 fits in one (2 nodes)" in str(info.value)


def test_waiting_for_what_can_never_fit_fails_at_once(fleet: Fleet) -> None:
    with pytest.raises(ProvisionFailedError, match="can never fit") as info:
        launch_task(
            parse_task("true", gpus="A100:1", name="never"),
            settings(ONE, TWO),
            LaunchControls(retry_until_up=True),
            observer=Recorder(),
        )
    assert "no such GPU: A100" in str(info.value)


def test_retry_until_up_in_the_config(fleet: Fleet, isolated_env: Path) -> None:
    fill(fleet, ONE, TWO)
    write_sky_config(isolated_env, "retry_until_up: true\n")
    with pytest.raises(ProvisionFailedError, match="min of waiting"):
        launch_task(
            parse_task("true", gpus="H100:8", name="configured"),
            settings(ONE, TWO),
            LaunchControls(timeout_minutes=0.01),
            observer=Recorder(),
        )
    write_sky_config(isolated_env, "kubernetes:\n  retry_until_up: maybe\n")
    with pytest.raises(Exception, match="retry_until_up must be true or false"):
        launch_task(parse_task("true", gpus="H100:8"), settings(ONE, TWO), observer=Recorder())
