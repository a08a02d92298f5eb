"""The managed-jobs tests' fleet and probes (test_jobs.py, test_jobs_capacity.py).

`fleet = jobs_fleet_fixture()`: a fresh `launchkit.jobs_spec` fleet (clusters a and b, one
8-GPU H100 node each) per test, with its own jobs state directory. The tests import
checkkit's `fresh_session` (an autouse fixture) by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from launchkit import admin, jobs_spec

from skymagic import jobs
from skymagic.jobs import JobStatus
from skymagic.jobs.model import LABEL_JOB_ID
from skymagic.sim import Fleet

__all__ = [
    "events",
    "jobs_fleet_fixture",
    "job_pods",
    "requests_to",
    "running_in",
    "wait_for",
]


def jobs_fleet_fixture() -> Any:
    """A `fleet` fixture: a fresh `launchkit.jobs_spec` fleet, KUBECONFIG and the launch user
    set, and the test's own jobs state directory (`jobs_dir`, its controller stopped after)."""

    @pytest.fixture
    def fleet(
        make_fleet: Callable[..., Fleet],
        isolated_env: Path,
        jobs_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Fleet:
        f = make_fleet(jobs_spec())
        monkeypatch.setenv("KUBECONFIG", f.kubeconfig)
        monkeypatch.setenv("SKYMAGIC_USER", "tester")
        return f

    return fleet


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}: {value!r}")
        time.sleep(0.05)


def job_pods(fleet: Fleet, cluster: str, kind: str = "pods") -> list[dict[str, Any]]:
    client = admin(fleet, cluster)
    try:
        items, _ = client.list_items(f"/api/v1/{kind}", {"labelSelector": LABEL_JOB_ID})
    finally:
        client.close()
    return items


def requests_to(fleet: Fleet, cluster: str, method: str, path_end: str) -> list[float]:
    return [
        float(r["t"])
        for r in fleet.requests(cluster)
        if r.get("method") == method and str(r.get("path", "")).endswith(path_end)
    ]


def running_in(job: jobs.Job, context: str) -> bool:
    rec = job.record()
    attempts = job.ctl.attempts(job.id)
    return rec.status == JobStatus.RUNNING and bool(attempts) and attempts[-1].context == context


def events(job: jobs.Job) -> list[str]:
    return [e.status for e in job.history()]
