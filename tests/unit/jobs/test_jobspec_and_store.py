"""A job as stored and as each attempt launches it, the recovery policy, the jobs database and
the log reader: no cluster involved."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skymagic.core.client import ClientSettings
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError
from skymagic.jobs.jobspec import (
    attempt_task,
    pod_name,
    provision_timeout_from_json,
    settings_from_json,
    settings_to_json,
    split_job_recovery,
    task_from_json,
    task_id,
    task_to_json,
)
from skymagic.jobs.logfiles import read_job_logs
from skymagic.jobs.model import SETUP_FAILED_MARKER, JobRecovery, JobStatus
from skymagic.jobs.store import JobStore
from skymagic.launches.task import parse_task

# --- the recovery policy ------------------------------------------------------------------------


def test_job_recovery_takes_skypilots_keys() -> None:
    assert JobRecovery.parse(None) == JobRecovery("FAILOVER", 0)
    assert JobRecovery.parse("eager_next_region") == JobRecovery("EAGER_NEXT_REGION", 0)
    assert JobRecovery.parse({"max_restarts_on_errors": 3}) == JobRecovery("FAILOVER", 3)
    assert JobRecovery.parse({"strategy": "FAILOVER"}).with_restarts(2).max_restarts_on_errors == 2
    for bad, match in (
        ({"strategy": "SOMEWHERE"}, "is not one of FAILOVER, EAGER_NEXT_REGION"),
        ({"max_restarts_on_errors": -1}, "must be at least 0"),
        ({"max_restarts_on_errors": "x"}, "whole number"),
        ({"retries": 1}, "job_recovery.retries is not supported"),
        ([1], "strategy name or a mapping"),
    ):
        with pytest.raises(ConfigError, match=match):
            JobRecovery.parse(bad)


def test_job_recovery_is_taken_out_of_the_yaml_and_the_rest_is_kept() -> None:
    body = "name: t\nresources:\n  accelerators: H100:8\n  job_recovery: {max_restarts_on_errors: 1}\nrun: |\n  echo {a}\n"
    rest, value = split_job_recovery(body)
    assert value == {"max_restarts_on_errors": 1}
    task = parse_task(rest)
    assert (task.name, task.gpu, task.gpu_count, task.run) == ("t", "H100", 8, "echo {a}\n")
    assert split_job_recovery("echo job_recovery") == ("echo job_recovery", None)
    only = "resources:\n  job_recovery: FAILOVER\nrun: echo\n"
    assert "resources" not in split_job_recovery(only)[0]


# --- stored and per-attempt tasks -----------------------------------------------------------------


def test_task_and_settings_round_trip_with_absolute_paths(tmp_path: Path) -> None:
    task = parse_task("echo hi", gpus="H100:2", env=["A=1"], ports=[8080], name="rt")
    assert task_from_json(task_to_json(task)) == task
    settings = Settings(
        client=ClientSettings(request_timeout=3.0, retries=1),
        kubeconfig=("relative/kc",),
        allowed_contexts=("a", "b"),
    )
    text = settings_to_json(settings, provision_timeout=7.0)
    back = settings_from_json(text)
    assert back.client == settings.client and back.allowed_contexts == ("a", "b")
    assert back.kubeconfig is not None and Path(back.kubeconfig[0]).is_absolute()
    assert back.config_file is not None and Path(back.config_file).is_absolute()
    assert provision_timeout_from_json(text) == 7.0
    assert (
        settings_from_json(settings_to_json(Settings(allowed_contexts="all"))).allowed_contexts
        == "all"
    )


def test_names_and_task_id() -> None:
    assert pod_name("train", 12) == "train-12"
    long = "x" * 50 + "-yy"
    assert len(pod_name(long, 123)) <= 52 and pod_name(long, 123).endswith("-123")
    tid = task_id("train", 3, 1735689600.25)
    assert tid == "sky-managed-2025-01-01-00-00-00-250000_train_3-0"


def test_attempt_task_environment_and_setup_wrapper(tmp_path: Path) -> None:
    task = parse_task("setup: |\n  echo setting up\n  exit 5\nrun: echo running\n", name="s")
    attempt = attempt_task(
        task,
        job_id=4,
        job_name="s",
        launch_name="s-4",
        task_id="tid",
        attempt=2,
        recoveries=1,
        previous_context="a",
    )
    assert attempt.name == "s-4" and attempt.setup is None
    assert attempt.envs["SKYPILOT_TASK_ID"] == "tid"
    assert attempt.envs["SKYMAGIC_JOB_RECOVERIES"] == "1"
    assert attempt.envs["SKYMAGIC_JOB_PREVIOUS_CONTEXT"] == "a"
    assert attempt.envs["SKYMAGIC_JOB_ATTEMPT"] == "2"
    # The wrapper really runs: setup fails -> the marker and its exit code, run never runs.
    assert attempt.run is not None
    done = subprocess.run(
        ["/bin/sh", "-c", attempt.run], check=False, capture_output=True, text=True
    )
    assert done.returncode == 5
    assert f"{SETUP_FAILED_MARKER} 5" in done.stdout and "running" not in done.stdout
    ok = attempt_task(
        parse_task("setup: echo fine\nrun: echo running\n"),
        job_id=1, job_name="j", launch_name="j-1", task_id="t", attempt=1, recoveries=0,
        previous_context="",
    )  # fmt: skip
    assert ok.run is not None
    done = subprocess.run(["/bin/sh", "-c", ok.run], check=False, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "fine\nrunning\n"
    with pytest.raises(ConfigError, match="run command"):
        attempt_task(
            parse_task(""), job_id=1, job_name="j", launch_name="j-1", task_id="t", attempt=1,
            recoveries=0, previous_context="",
        )  # fmt: skip


# --- the database and the log reader --------------------------------------------------------------


def _submit(store: JobStore, name: str = "job") -> int:
    return store.submit(
        name=name,
        launch_name=lambda i: f"{name}-{i}",
        task="{}",
        settings="{}",
        recovery="{}",
        task_id=lambda i, t: f"tid-{i}",
        resources="2CPU--2GB",
    )


def test_store_records_jobs_attempts_and_status_changes(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    again = JobStore(tmp_path)
    assert store.db_id == again.db_id and len(store.db_id) == 12
    job_id = _submit(store)
    rec = again.job(job_id)
    assert rec is not None and rec.status == JobStatus.PENDING
    assert (rec.launch_name, rec.task_id) == (f"job-{job_id}", f"tid-{job_id}")
    store.set_status(job_id, JobStatus.STARTING, "launching")
    store.set_status(job_id, JobStatus.RUNNING, "running")
    started = store.job(job_id).started_at  # type: ignore[union-attr]
    store.set_status(job_id, JobStatus.RECOVERING, "preempted", recoveries=1, last_failure="p")
    store.set_status(job_id, JobStatus.RUNNING, "again")
    rec = store.job(job_id)
    assert rec is not None and rec.started_at == started  # the first RUNNING is kept
    assert rec.recoveries == 1 and rec.last_failure == "p" and rec.ended_at is None
    store.set_status(job_id, JobStatus.SUCCEEDED, "")
    rec = store.job(job_id)
    assert rec is not None and rec.ended_at is not None and not rec.active
    assert [e.status for e in store.events(job_id)] == [
        "PENDING", "STARTING", "RUNNING", "RECOVERING", "RUNNING", "SUCCEEDED",
    ]  # fmt: skip
    other = _submit(store, "other")
    again.request_cancel([other])
    assert store.job(other).cancel_requested  # type: ignore[union-attr]
    assert [j.id for j in store.jobs(active_only=True)] == [other]


def test_details_follow_the_status_message_and_live_updates(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job_id = _submit(store)
    assert store.job(job_id).details == "submitted"  # type: ignore[union-attr]
    store.set_status(job_id, JobStatus.PENDING, "waiting for capacity for H100:8: best now a")
    store.update(job_id, details="waiting for capacity for H100:8: best now b")  # no event
    assert store.job(job_id).details.endswith("best now b")  # type: ignore[union-attr]
    assert len(store.events(job_id)) == 2
    store.set_status(job_id, JobStatus.SUCCEEDED, "")
    assert store.job(job_id).details == ""  # type: ignore[union-attr]


def test_a_database_from_before_details_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "jobs.db")
    old.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "launch_name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, task TEXT NOT NULL, "
        "settings TEXT NOT NULL, recovery TEXT NOT NULL, task_id TEXT NOT NULL DEFAULT '', "
        "resources TEXT NOT NULL, submitted_at REAL NOT NULL, started_at REAL, ended_at REAL, "
        "recoveries INTEGER NOT NULL DEFAULT 0, restarts_on_errors INTEGER NOT NULL DEFAULT 0, "
        "last_failure TEXT NOT NULL DEFAULT '', cancel_requested INTEGER NOT NULL DEFAULT 0, "
        "updated_at REAL NOT NULL)"
    )
    old.execute(
        "INSERT INTO jobs (name, status, task, settings, recovery, resources, submitted_at, "
        "updated_at) VALUES ('old', 'RUNNING', '{}', '{}', '{}', '', 1.0, 1.0)"
    )
    old.commit()
    old.close()
    store = JobStore(tmp_path)
    (rec,) = store.jobs()
    assert (rec.name, rec.details) == ("old", "")
    assert JobStore(tmp_path).jobs()[0].details == ""  # a second open: nothing to add


def test_log_reader_closes_with_the_last_failure_only_when_it_explains_the_status(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path)
    job_id = _submit(store, "train")
    why = "Terminated: Pod was terminated in response to imminent node shutdown."
    for status, shown in (
        (JobStatus.RECOVERING, True),
        (JobStatus.RUNNING, False),  # recovered: running again, not because of the preemption
        (JobStatus.CANCELLED, False),
        (JobStatus.FAILED, True),
    ):
        store.set_status(job_id, status, "", last_failure=why)
        last = list(read_job_logs(store, job_id))[-1]
        assert last == f"[job 1] {status}" + (f": {why}" if shown else ""), status


def test_log_reader_heads_each_attempt_with_its_context(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job_id = _submit(store, "train")
    for attempt, ctx, text in ((1, "a", b"one\ntwo"), (2, "b", b"three\n")):
        store.start_attempt(
            job_id, attempt, context=ctx, namespace="ns", pod="train-1", pod_uid="u", node="n"
        )
        path = store.log_path(job_id, attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    store.end_attempt(job_id, 1, "preempted", "Terminated: bye")
    store.log_complete(job_id, 1)
    lines = list(read_job_logs(store, job_id))
    assert lines[0].startswith("=== job 1 (train) attempt 1 on context 'a' (pod ns/train-1")
    assert lines[1:3] == ["one", "two"]
    assert lines[3].endswith("preempted: Terminated: bye ===")
    assert "attempt 2 on context 'b'" in lines[4]
    assert lines[5] == "three"
    assert lines[-1] == "[job 1] PENDING"
    # Following a job that ends: the reader stops at its final status.
    store.end_attempt(job_id, 2, "succeeded", "")
    store.log_complete(job_id, 2)
    store.set_status(job_id, JobStatus.SUCCEEDED, "")
    followed = list(read_job_logs(store, job_id, follow=True, poll_s=0.01))
    assert followed[0] == "[job 1] PENDING: submitted"
    assert followed[-1] == "[job 1] SUCCEEDED"
    assert "three" in followed
