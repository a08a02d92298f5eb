"""Managed jobs against the simulated fleet: recovery across contexts, never two copies.

Every test has its own jobs state directory and controller (the `jobs_dir` fixture stops it),
and its own fleet (`jobskit.fleet`: clusters `a` and `b`, one 8-GPU H100 node each).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from checkkit import fresh_session  # noqa: F401  (autouse)
from jobskit import (
    events,
    job_pods,
    jobs_fleet_fixture,
    requests_to,
    running_in,
    wait_for,
)
from launchkit import JOB_A, JOB_B, JOB_GPU_NODE, admin, settings

from skymagic import jobs
from skymagic.errors import ConfigError
from skymagic.gpus.pods import pods_on_nodes
from skymagic.jobs import JobStatus, process
from skymagic.jobs.model import LABEL_JOB_ID
from skymagic.sim import Fleet
from skymagic.ui.dashboard import Dashboard, LiveInventory
from skymagic.ui.dashboard.view import pods_html

A, B, GPU_NODE = JOB_A, JOB_B, JOB_GPU_NODE
fleet = jobs_fleet_fixture()


# The job's script: a long first attempt (it is what gets preempted), then a short one (a
# second, so the census below sees it) that says which attempt it is and what the environment
# tells it.
RESUMING = """\
echo "attempt=$SKYMAGIC_JOB_ATTEMPT recoveries=$SKYMAGIC_JOB_RECOVERIES \
previous=$SKYMAGIC_JOB_PREVIOUS_CONTEXT task=$SKYPILOT_TASK_ID"
if [ "$SKYMAGIC_JOB_RECOVERIES" = 0 ]; then sleep 120; else sleep 1; fi
echo finished
"""


# For tests that look at a recovered job's pod: every attempt runs until cancelled, so the
# look comes while attempt 2 still runs (RESUMING's 1 s second attempt could end first on a
# loaded machine, its pod no longer live: no row, no tag).
UNTIL_CANCELLED = "echo attempt=$SKYMAGIC_JOB_ATTEMPT; sleep 120"


def _live(pod: dict[str, Any]) -> bool:
    return pod["status"].get("phase") in ("Pending", "Running")


class Census:
    """Counts the job's live pods across clusters every few milliseconds, in a thread.

    Clusters are listed in the order given, new context first: a pod that moves from the old
    context to the new one is gone from the old before it exists in the new, so a sample can
    never count one copy twice.
    """

    def __init__(self, fleet: Fleet, order: tuple[str, ...]) -> None:
        self.fleet, self.order = fleet, order
        self.samples = 0
        self.max_live = 0
        self.seen: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Census:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        clients = [admin(self.fleet, c) for c in self.order]
        try:
            while not self._stop.is_set():
                live = 0
                for cluster, client in zip(self.order, clients, strict=True):
                    items, _ = client.list_items("/api/v1/pods", {"labelSelector": LABEL_JOB_ID})
                    for pod in items:
                        self.seen.add((cluster, pod["metadata"]["uid"]))
                        live += _live(pod)
                self.max_live = max(self.max_live, live)
                self.samples += 1
                self._stop.wait(0.01)
        finally:
            for client in clients:
                client.close()


# --- recovery ---------------------------------------------------------------------------------


def test_preemption_recovers_in_the_next_context_with_never_two_copies(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node goes NotReady as its graceful shutdown starts, the pod ends a moment later:
    # a node grace generous for a loaded machine lets the pod's own end explain the recovery.
    monkeypatch.setenv("SKYMAGIC_JOBS_NODE_GRACE_S", "30")
    with Census(fleet, (B, A)) as census:
        job = jobs.launch(RESUMING, gpus="H100:8", name="train", settings=settings(A, B))
        wait_for(lambda: running_in(job, A), what="RUNNING in a")
        wait_for(
            lambda: "attempt=1" in "\n".join(jobs.logs("train")), what="the first attempt's log"
        )

        terminated = fleet.preempt_node(A, GPU_NODE)
        assert terminated == [job.record().launch_name]
        assert job.wait(30) == JobStatus.SUCCEEDED

    # The story, in SkyPilot's states.
    history = events(job)
    assert history[:3] == ["PENDING", "STARTING", "RUNNING"]
    assert "RECOVERING" in history
    assert history[-2:] == ["RUNNING", "SUCCEEDED"]
    rec = job.record()
    assert rec.recoveries == 1 and rec.restarts_on_errors == 0
    assert "Terminated: Pod was terminated in response to imminent node shutdown." in (
        rec.last_failure
    )
    attempts = job.ctl.attempts(job.id)
    assert [(a.context, a.outcome) for a in attempts] == [(A, "preempted"), (B, "succeeded")]

    # Never two copies: the census never saw two live pods, and the old pod was deleted (the
    # controller's DELETE on a) before the new one was created (the POST on b).
    assert census.samples > 10 and census.max_live == 1
    assert {c for c, _uid in census.seen} == {A, B}
    deleted_on_a = requests_to(fleet, A, "DELETE", f"/pods/{rec.launch_name}")
    created_on_b = requests_to(fleet, B, "POST", "/pods")
    assert deleted_on_a and len(created_on_b) == 1
    assert min(deleted_on_a) < created_on_b[0]
    assert len(requests_to(fleet, A, "POST", "/pods")) == 1  # a was tried once: it had no room

    # Every attempt's log, in order, each headed by its context; the task id never changes.
    lines = list(jobs.logs("train"))
    text = "\n".join(lines)
    headers = [line for line in lines if line.startswith("=== job")]
    assert len(headers) == 2
    assert "attempt 1 on context 'a'" in headers[0] and "attempt 2 on context 'b'" in headers[1]
    task_ids = {line.split("task=")[1] for line in lines if "task=" in line}
    assert len(task_ids) == 1 and task_ids.pop().startswith("sky-managed-")
    assert "attempt=2 recoveries=1 previous=a" in text
    assert text.index("attempt=1") < text.index("attempt=2") < text.index("finished")
    assert lines[-1] == "[job 1] SUCCEEDED"

    frame = jobs.queue()
    row = frame.iloc[0]
    assert (row["name"], row["status"], row["context"], row["recoveries"]) == (
        "train",
        "SUCCEEDED",
        B,
        1,
    )
    assert list(frame.columns) == jobs.QUEUE_COLUMNS
    # A finished job leaves nothing in the clusters (its logs are local).
    wait_for(lambda: not job_pods(fleet, A) and not job_pods(fleet, B), what="cleanup")


def test_users_own_nonzero_exit_fails_without_recovery(fleet: Fleet) -> None:
    job = jobs.launch("echo oops; exit 3", gpus="H100:8", name="broken", settings=settings(A, B))
    assert job.wait(30) == JobStatus.FAILED
    rec = job.record()
    assert rec.recoveries == 0
    assert rec.last_failure == "failed: exit code 3"
    assert len(requests_to(fleet, A, "POST", "/pods")) == 1
    assert not requests_to(fleet, B, "POST", "/pods")
    assert "oops" in list(jobs.logs("broken"))


def test_max_restarts_on_errors_is_honoured(fleet: Fleet) -> None:
    always = """\
resources:
  accelerators: H100:8
  job_recovery:
    max_restarts_on_errors: 2
run: |
  echo "try $SKYMAGIC_JOB_ATTEMPT"
  exit 1
"""
    job = jobs.launch(always, name="flaky", settings=settings(A, B))
    assert job.wait(60) == JobStatus.FAILED
    rec = job.record()
    assert (rec.restarts_on_errors, rec.recoveries) == (2, 2)
    attempts = job.ctl.attempts(job.id)
    assert [a.outcome for a in attempts] == ["failed", "failed", "failed"]
    assert [a.context for a in attempts] == [A, A, A]  # FAILOVER: the same context first
    text = "\n".join(jobs.logs("flaky"))
    assert "try 1" in text and "try 2" in text and "try 3" in text

    # A flag sets it too, and a job that succeeds on its restart is SUCCEEDED.
    second = jobs.launch(
        'test "$SKYMAGIC_JOB_RECOVERIES" != 0 || exit 7; echo ok',
        gpus="H100:8",
        name="second-try",
        settings=settings(A, B),
        max_restarts_on_errors=1,
    )
    assert second.wait(60) == JobStatus.SUCCEEDED
    assert second.record().restarts_on_errors == 1


def test_failing_setup_is_failed_setup(fleet: Fleet) -> None:
    body = "setup: |\n  echo installing\n  exit 4\nrun: echo never\n"
    job = jobs.launch(body, name="nosetup", settings=settings(A, B))
    assert job.wait(30) == JobStatus.FAILED_SETUP
    assert "exit code 4" in job.record().last_failure
    assert "never" not in "\n".join(jobs.logs("nosetup"))


def test_no_room_anywhere_is_failed_no_resource(fleet: Fleet) -> None:
    job = jobs.launch("echo hi", gpus="H100:16", name="toobig", settings=settings(A, B))
    assert job.wait(30) == JobStatus.FAILED_NO_RESOURCE
    assert job.record().last_failure.startswith("no room: a: ")
    assert "H100" in job.record().last_failure
    assert not job_pods(fleet, A) and not job_pods(fleet, B)


def test_cancel_during_recovering_leaves_nothing(fleet: Fleet) -> None:
    fleet.add_pods(B, count=1, gpu="H100", gpus=8, namespace="others")  # b has no room
    job = jobs.launch(RESUMING, gpus="H100:8", name="stuck", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    fleet.preempt_node(A, GPU_NODE)
    # Nowhere to go: it stays RECOVERING, retrying.
    wait_for(lambda: job.record().last_failure.startswith("no room: a: "), what="a retry")
    assert job.status == JobStatus.RECOVERING

    cancelled = jobs.cancel(["stuck"], wait_s=30)
    assert [c.id for c in cancelled] == [job.id]
    assert job.status == JobStatus.CANCELLED
    assert "CANCELLING" in events(job)
    for cluster in (A, B):
        for kind in ("pods", "services", "secrets"):
            assert job_pods(fleet, cluster, kind) == []
    # Nothing was created after the cancel, and nothing in b ever.
    assert not requests_to(fleet, B, "POST", "/pods")
    with pytest.raises(ConfigError, match="name the jobs to cancel"):
        jobs.cancel([])


def test_cancel_a_running_job_stops_its_pod(fleet: Fleet) -> None:
    job = jobs.launch(RESUMING, gpus="H100:8", name="long", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    jobs.cancel(all=True, wait_s=30)
    assert job.status == JobStatus.CANCELLED
    assert job_pods(fleet, A) == [] and job_pods(fleet, B) == []
    assert [a.outcome for a in job.ctl.attempts(job.id)] == ["cancelled"]


def test_a_lost_node_recovers_only_once_the_old_pod_is_gone(fleet: Fleet) -> None:
    job = jobs.launch(RESUMING, gpus="H100:8", name="lost", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    fleet.lose_node(A, GPU_NODE)  # NotReady (Unknown); the controller's grace is 1 s
    wait_for(lambda: job.status == JobStatus.RECOVERING, what="RECOVERING", timeout=10)
    assert "NotReady" in job.record().last_failure or "deleted" in job.record().last_failure
    # The old pod is Terminating on a node nobody answers for: it may still run, so nothing
    # is created in b meanwhile.
    wait_for(
        lambda: [p for p in job_pods(fleet, A) if p["metadata"].get("deletionTimestamp")],
        what="the old pod Terminating",
    )
    time.sleep(1.5)
    assert job.status == JobStatus.RECOVERING
    assert not requests_to(fleet, B, "POST", "/pods")
    # The node is deleted (its VM is gone): now the old pod is force-deleted, the job moves.
    removed = time.time()
    fleet.remove_node(A, GPU_NODE)
    assert job.wait(30) == JobStatus.SUCCEEDED
    assert [a.context for a in job.ctl.attempts(job.id)] == [A, B]
    assert job_pods(fleet, A) == []
    assert min(requests_to(fleet, B, "POST", "/pods")) > removed


def test_the_dashboards_pod_list_marks_the_jobs_pod(fleet: Fleet) -> None:
    job = jobs.launch(UNTIL_CANCELLED, gpus="H100:8", name="shown", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    (row,) = pods_on_nodes(settings(A, B), A, [GPU_NODE], ["nvidia.com/gpu"])
    assert (row.name, row.gpus, row.job) == (job.record().launch_name, 8, str(job.id))
    assert f"job {job.id}</span>" in pods_html([row], by_node=False)

    fleet.preempt_node(A, GPU_NODE)
    wait_for(lambda: running_in(job, B), what="RUNNING in b")
    (row,) = pods_on_nodes(settings(A, B), B, [GPU_NODE], ["nvidia.com/gpu"])
    assert row.job == f"{job.id} (attempt 2)"
    jobs.cancel([str(job.id)], wait_s=30)


def _cell(dash: Dashboard, context: str) -> dict[str, Any] | None:
    return next(
        (c for c in dash.visible_nodes if (c["context"], c["node"]) == (context, GPU_NODE)), None
    )


def _inventory_pod_lists(fleet: Fleet, cluster: str) -> list[dict[str, Any]]:
    """The inventory's pod lists (not the watches) that `cluster` answered."""
    return [
        r
        for r in fleet.requests(cluster)
        if r.get("method") == "GET"
        and r.get("path") == "/api/v1/pods"
        and "watch" not in str(r.get("query"))
        and "status.phase" in str(r.get("query"))
    ]


def test_the_dashboards_grid_marks_the_node_holding_the_jobs_pod(fleet: Fleet) -> None:
    job = jobs.launch(UNTIL_CANCELLED, gpus="H100:8", name="gridded", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    hint = f"managed job {job.id}: %sky_jobs_cancel {job.id} stops it"
    planned = {c: len(_inventory_pod_lists(fleet, c)) for c in (A, B)}  # the launch's plan
    with Dashboard(LiveInventory(settings(A, B)), auto_refresh=False) as dash:
        wait_for(lambda: (dash.refresh(), _cell(dash, A))[1], what="a's node in the grid")
        held, free = _cell(dash, A), _cell(dash, B)
        assert held is not None and (held["job"], held["job_title"]) == (str(job.id), hint)
        assert free is not None and (free["job"], free["job_title"]) == ("", "")
        page = dash.to_html()
        assert f"; {hint}'" in page and page.count("class='sky-job-tag'") == 1
        assert f"managed jobs: {job.id} on {A}/{GPU_NODE}" in dash.to_text()
        # No request for it: a refresh reads what the watches brought (the pods' labels).
        lists = {c: len(_inventory_pod_lists(fleet, c)) for c in (A, B)}
        assert lists == {c: planned[c] + 1 for c in (A, B)}  # the watches' first lists
        dash.refresh()
        assert _cell(dash, A) == held
        assert {c: len(_inventory_pod_lists(fleet, c)) for c in (A, B)} == lists

        # Preempted: the watches move the tag to b's node (the next attempt's pod).
        fleet.preempt_node(A, GPU_NODE)
        wait_for(lambda: running_in(job, B), what="RUNNING in b")
        moved = wait_for(
            lambda: (dash.refresh(), (_cell(dash, B) or {}).get("job"))[1], what="the tag in b"
        )
        assert moved == str(job.id) and (_cell(dash, A) or {}).get("job", "") == ""
        assert f"managed jobs: {job.id} (attempt 2) on {B}/{GPU_NODE}" in dash.to_text()

    # Re-listed every refresh instead of watched: the same tag, from the one list per context.
    with Dashboard(LiveInventory(settings(A, B), watch=False), auto_refresh=False) as listed:
        lists = {c: len(_inventory_pod_lists(fleet, c)) for c in (A, B)}
        listed.refresh()
        assert {c: len(_inventory_pod_lists(fleet, c)) - lists[c] for c in (A, B)} == {A: 1, B: 1}
        cell = _cell(listed, B)
        assert cell is not None and (cell["job"], cell["job_title"]) == (str(job.id), hint)
    jobs.cancel([str(job.id)], wait_s=30)


# --- the controller ---------------------------------------------------------------------------


def test_a_killed_controller_is_restarted_and_readopts_the_running_job(fleet: Fleet) -> None:
    job = jobs.launch(RESUMING, gpus="H100:8", name="survivor", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    first = process.status()
    assert first.running and first.pid
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: not process.status().running, what="the controller gone")

    # The job runs on without it; the next jobs command starts a new controller.
    frame = jobs.queue()
    assert frame.iloc[0]["status"] == "RUNNING"
    second = process.status()
    assert second.running and second.pid != first.pid
    # Two controllers never run: a second start finds the lock held.
    assert process.start().pid == second.pid

    # The new controller adopted the pod (nothing relaunched) and still recovers it.
    time.sleep(1.0)
    assert len(requests_to(fleet, A, "POST", "/pods")) == 1
    fleet.preempt_node(A, GPU_NODE)
    assert job.wait(30) == JobStatus.SUCCEEDED
    assert [a.context for a in job.ctl.attempts(job.id)] == [A, B]
    assert len(requests_to(fleet, B, "POST", "/pods")) == 1


def test_a_pod_lost_while_no_controller_runs_is_recovered_on_restart(fleet: Fleet) -> None:
    job = jobs.launch(RESUMING, gpus="H100:8", name="orphan", settings=settings(A, B))
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    assert process.stop()
    fleet.preempt_node(A, GPU_NODE)  # nobody watches
    wait_for(lambda: not job_pods(fleet, A), what="pod GC in a")
    assert job.status == JobStatus.RUNNING  # the database cannot know yet
    jobs.queue()  # starts a controller, which finds the pod gone and recovers the job
    assert job.wait(30) == JobStatus.SUCCEEDED
    assert "disappeared while the controller was not running" in job.record().last_failure


def test_launch_checks_what_it_can_before_submitting(fleet: Fleet) -> None:
    with pytest.raises(ConfigError, match="run command"):
        jobs.launch("", name="devpod", settings=settings(A, B))
    with pytest.raises(ConfigError, match="max_restarts_on_errors"):
        jobs.launch(
            "resources:\n  job_recovery: {max_restarts_on_errors: -1}\nrun: echo\n",
            settings=settings(A, B),
        )
    with pytest.raises(ConfigError):
        jobs.launch("echo", infra="k8s/nowhere", settings=settings(A, B))
    assert jobs.queue().empty
    assert not process.status().running  # nothing was submitted, nothing started
