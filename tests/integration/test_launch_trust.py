"""A launch users can trust: faults injected AFTER the pod is Running never run a task twice.

Each fault goes through the simulator's run-time controls (down, error_rate, blackhole) from
the observer, at the moment the launch shows the task's first log line, so the pod is Running
for certain. Every test counts the pods created per context from the fleet's request logs:
the task ran exactly once, where it started.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
)
from conftest import write_sky_config
from launchkit import (
    FREE,
    FREE2,
    LAUNCH_SPEC,
    Recorder,
    admin,
    fleet_fixture,
    labelled,
    pod,
    settings,
)

from skymagic.launches import (
    LaunchControls,
    LaunchResult,
    down,
    launch_task,
    logs,
    parse_task,
    status,
)
from skymagic.sim import Fleet
from skymagic.ui.cli import launch_exit_code, main

SCRIPT = "echo start; sleep 1; echo end"


fleet = fleet_fixture(LAUNCH_SPEC)


def pods_created(fleet: Fleet, cluster: str) -> int:
    """Pod creations the cluster accepted (a 201), from its own request log."""
    return sum(
        1
        for r in fleet.requests(cluster)
        if r.get("method") == "POST"
        and str(r.get("path", "")).endswith("/pods")
        and r.get("code") == 201
    )


class FaultAfterStart(Recorder):
    """Injects `faults` on `cluster` at the task's first log line; clears them when the launch
    reports lost contact (so the fault was really seen), unless `hold` keeps them on."""

    def __init__(self, fleet: Fleet, cluster: str, hold: bool = False, **faults: Any) -> None:
        super().__init__()
        self.fleet, self.cluster, self.faults, self.hold = fleet, cluster, faults, hold
        self.injected = self.cleared = False

    def on_log(self, line: str) -> None:
        super().on_log(line)
        if not self.injected:
            self.injected = True
            assert pod(self.fleet, self.cluster, "job")["status"]["phase"] == "Running"
            self.fleet.set_faults(self.cluster, **self.faults)

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        super().on_progress(context, phase, elapsed)
        if phase.startswith("lost contact") and not self.cleared and not self.hold:
            self.cleared = True
            self.fleet.set_faults(self.cluster, **{k: _off(v) for k, v in self.faults.items()})


def _off(value: Any) -> Any:
    return False if isinstance(value, bool) else 0


def launch(body: str, observer: Any, **kw: Any) -> LaunchResult:
    extra = {k: kw.pop(k) for k in ("reconnect_for", "follow_timeout") if k in kw}
    result = launch_task(
        parse_task(body, name="job", **kw),
        settings(FREE, FREE2),
        observer=observer,
        **{"reconnect_for": 30.0, "follow_timeout": 2.0, **extra},
    )
    assert isinstance(result, LaunchResult)
    return result


# --- 1. once a pod started, failover is over ---------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [{"down": True}, {"error_rate": 1.0}, {"blackhole": True}],
    ids=["down", "error_rate", "blackhole"],
)
def test_a_running_task_survives_an_outage_and_runs_exactly_once(
    fleet: Fleet, faults: dict[str, Any]
) -> None:
    rec = FaultAfterStart(fleet, FREE, **faults)
    t0 = time.monotonic()
    result = launch(SCRIPT, rec)
    assert rec.injected and rec.cleared  # the fault was on while the pod ran, and was seen
    assert (result.context, result.status, result.exit_code) == (FREE, "Succeeded", 0)
    assert rec.log == ["start", "end"]  # resumed from where the log stood: nothing twice
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0
    assert [a.outcome for a in result.attempts] == ["finished"]
    assert labelled(fleet) == {FREE: ["default/job"]}  # kept, never deleted by the outage
    assert time.monotonic() - t0 < 90


def test_an_unreachable_context_ends_with_where_the_pod_keeps_running(fleet: Fleet) -> None:
    rec = FaultAfterStart(fleet, FREE, hold=True, down=True)
    result = launch("echo start; sleep 30", rec, reconnect_for=1.0)
    assert result.status == "Unreachable" and result.context == FREE
    text = str(result)
    assert "the pod keeps running there" in text
    assert "%sky_logs job --follow" in text and "%sky_down job" in text
    assert pods_created(fleet, FREE2) == 0  # no second run elsewhere
    fleet.set_faults(FREE, down=False)
    assert pods_created(fleet, FREE) == 1
    assert pod(fleet, FREE, "job")["status"]["phase"] == "Running"


# --- 2. a stalled stream never hangs: bounded reads, the pod re-read on each timeout ----------


def test_a_stalled_log_stream_after_the_task_finished_does_not_hang(fleet: Fleet) -> None:
    """The stream goes silent (black-holed) while the task ends; the launch still reports
    the exit code within a bound instead of waiting up to an hour on the dead stream."""
    rec = FaultAfterStart(fleet, FREE, blackhole=True)
    t0 = time.monotonic()
    result = launch("echo start; sleep 1; exit 3", rec, follow_timeout=1.0)
    assert (result.status, result.exit_code) == ("Failed", 3)
    assert time.monotonic() - t0 < 60
    assert any(p.startswith("lost contact") for _c, p, _e in rec.progress)
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0


class InterruptWhenFinished(FaultAfterStart):
    """Ctrl-C after the pod finished while its log stream was stalled."""

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        super().on_progress(context, phase, elapsed)
        if self.cleared:
            deadline = time.monotonic() + 20
            while pod(self.fleet, FREE, "job")["status"]["phase"] == "Running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            raise KeyboardInterrupt


def test_ctrl_c_after_the_task_finished_says_so_and_exits_130(fleet: Fleet) -> None:
    rec = InterruptWhenFinished(fleet, FREE, blackhole=True)
    result = launch("echo start; sleep 1; exit 4", rec)
    assert result.interrupted and (result.status, result.exit_code) == ("Failed", 4)
    assert "already finished (Failed, exit code 4)" in str(result)
    assert "keeps running" not in str(result)
    assert launch_exit_code(result) == 130
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0


# --- 3. the CLI: exit codes, refused sizes, hints in CLI syntax, once --------------------------


def _cli_env(isolated_env: Path) -> None:
    write_sky_config(isolated_env, f"kubernetes:\n  allowed_contexts: [{FREE}, {FREE2}]\n")


def test_cli_exits_with_the_tasks_exit_code_and_prints_cli_hints_once(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_env(isolated_env)
    script = tmp_path / "task.sh"
    script.write_text("echo failing; exit 3\n")
    code = main(["launch", str(script), "--name", "job", "--timeout", "2"])
    out = capsys.readouterr().out
    assert code == 3
    assert out.count("skymagic down job") == 1 and "%sky_" not in out
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0


@pytest.mark.parametrize("flag", [["--cpus", "nan"], ["--memory", "inf"], ["--cpus=-inf+"]])
def test_cli_refuses_nan_and_inf_sizes_before_creating_anything(
    fleet: Fleet, isolated_env: Path, flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_env(isolated_env)
    code = main(["launch", "--name", "job", *flag])
    err = capsys.readouterr().err
    assert code == 1 and "not a finite number" in err
    assert pods_created(fleet, FREE) == 0 and pods_created(fleet, FREE2) == 0


# --- 4. re-running a cell whose launch finished replaces it -------------------------------------


def test_rerunning_a_finished_launch_replaces_it(fleet: Fleet) -> None:
    first = launch("echo one", Recorder())
    assert first.status == "Succeeded"
    assert list(logs("job", settings(FREE, FREE2))) == ["one"]  # readable until replaced
    rec = Recorder()
    second = launch("echo two", rec)
    assert second.status == "Succeeded" and rec.log == ["two"]
    assert any("Replacing the finished launch 'job'" in m for m in rec.messages)
    assert list(logs("job", settings(FREE, FREE2))) == ["two"]
    assert pods_created(fleet, FREE) == 2 and pods_created(fleet, FREE2) == 0  # once each
    assert labelled(fleet) == {FREE: ["default/job"]}


def test_a_running_launch_is_reused_with_the_new_body_not_replaced(fleet: Fleet) -> None:
    first = launch_task(
        parse_task("sleep 30", name="job"), settings(FREE, FREE2), LaunchControls(detach=True)
    )
    assert isinstance(first, LaunchResult) and first.status == "Running"
    rec = Recorder()
    again = launch("echo in the same pod", rec)
    # The new body runs in the running pod (issue 14: SkyPilot's `sky launch -c NAME`).
    assert again.status == "Succeeded" and rec.log == ["in the same pod"]
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0


# --- 5. status lists orphaned Secrets and Services ----------------------------------------------


def test_status_lists_a_service_and_secret_left_without_their_pod(fleet: Fleet) -> None:
    result = launch_task(
        parse_task("sleep 30", name="job", ports=[8080], secret=["TOKEN=s3cr3t"]),
        settings(FREE, FREE2),
        LaunchControls(detach=True),
    )
    assert isinstance(result, LaunchResult) and result.status == "Running"
    assert pods_created(fleet, FREE) == 1 and pods_created(fleet, FREE2) == 0
    client = admin(fleet, FREE)
    client.request("DELETE", "/api/v1/namespaces/default/pods/job", body={"gracePeriodSeconds": 0})
    client.close()
    deadline = time.monotonic() + 20
    while labelled(fleet).get(FREE):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    st = status(settings(FREE, FREE2))
    orphans = st.frame[st.frame["status"].str.startswith("Orphaned")]
    assert sorted(orphans["status"]) == ["Orphaned (secret)", "Orphaned (service)"] or sorted(
        orphans["status"]
    ) == ["Orphaned (secret)", "Orphaned (secret)", "Orphaned (service)"]
    assert set(orphans["name"]) == {"job"} and "%sky_down job" in str(st)
    assert "s3cr3t" not in str(st)
    deleted = down(["job"], settings(FREE, FREE2))
    assert {kind for _c, kind, _w in deleted} >= {"service", "secret"}
    assert status(settings(FREE, FREE2)).frame.empty
