"""Managed jobs waiting for capacity, against the simulated fleet over real HTTPS.

A job that fits nowhere now waits (PENDING on its first launch, RECOVERING on a recovery),
says what it waits for, creates nothing meanwhile, and starts within a second or two of GPUs
freeing up through the simulator's run-time controls; a request that can never fit fails at
once with what would fit; cancelling a waiting job leaves nothing behind. Same fleet as
test_jobs.py (`jobskit.fleet`: clusters a and b, one 8-GPU H100 node each).
"""

from __future__ import annotations

import itertools
import time

from checkkit import fresh_session  # noqa: F401  (autouse)
from jobskit import (
    events,
    job_pods,
    jobs_fleet_fixture,
    requests_to,
    running_in,
    wait_for,
)
from launchkit import JOB_A, JOB_B, JOB_GPU_NODE, settings

from skymagic import jobs
from skymagic.jobs import JobStatus
from skymagic.sim import Fleet

A, B, GPU_NODE = JOB_A, JOB_B, JOB_GPU_NODE
fleet = jobs_fleet_fixture()

# Starting "within a second or two" of capacity appearing, plus the local runtime's container
# start on a loaded CI machine: a generous bound that a poll with SkyPilot's 60 s backoff misses.
STARTS_WITHIN_S = 8.0


def fill(fleet: Fleet, *clusters: str) -> None:
    """Someone else's pods take every H100 of these clusters."""
    for cluster in clusters:
        fleet.add_pods(cluster, count=1, gpu="H100", gpus=8, namespace="others")


def details(job: jobs.Job) -> str:
    frame = jobs.queue()
    return str(frame.loc[frame["id"] == job.id, "details"].iloc[0])


def waiting(job: jobs.Job, status: JobStatus) -> bool:
    return job.status == status and details(job).startswith("waiting for capacity for H100:8")


def test_a_job_that_fits_nowhere_waits_pending_then_starts_as_gpus_free_up(fleet: Fleet) -> None:
    fill(fleet, A, B)
    fleet.clear_requests()
    job = jobs.launch(
        "echo started; sleep 1", gpus="H100:8", name="patient", settings=settings(A, B)
    )
    wait_for(lambda: waiting(job, JobStatus.PENDING), what="PENDING, waiting for capacity")
    # Why, and for what: the status change says it (the log's `[job N] PENDING: ...` line)...
    store = jobs.controller().store
    why = [e.message for e in store.events(job.id) if e.message.startswith("waiting")]
    assert why[0].startswith(
        "waiting for capacity for H100:8: nothing is created until an allowed context can "
        "take it (a: none free now: best node has 0 H100 free, needs 8; b: none free now"
    ), why
    assert job.record().last_failure.startswith("no room: a: none free now")
    # ... and the queue's details follow the best there is now.
    wait_for(lambda: "best now" in details(job), what="the live line", timeout=15)
    assert details(job) == "waiting for capacity for H100:8: best now a 0/8 free on h100"
    # It stays waiting, and creates nothing (the plan said no context could take it).
    time.sleep(1.5)
    assert job.status == JobStatus.PENDING
    for cluster in (A, B):
        assert not requests_to(fleet, cluster, "POST", "/pods")
        assert job_pods(fleet, cluster) == []

    freed = time.monotonic()
    fleet.remove_pods(B, namespace="others")
    wait_for(
        lambda: job.ctl.attempts(job.id) and job.ctl.attempts(job.id)[-1].context == B,
        timeout=STARTS_WITHIN_S,
        what="the job launched in b",
    )
    took = time.monotonic() - freed
    print(f"freed -> launched in b: {took:.2f} s")
    assert job.wait(30) == JobStatus.SUCCEEDED
    history = [status for status, _same in itertools.groupby(events(job))]
    assert history[:4] == ["PENDING", "STARTING", "PENDING", "STARTING"], history
    assert history[-2:] == ["RUNNING", "SUCCEEDED"]
    assert len(requests_to(fleet, B, "POST", "/pods")) == 1
    assert "started" in "\n".join(jobs.logs("patient"))


def test_the_oldest_waiting_job_goes_first_and_the_next_keeps_waiting(fleet: Fleet) -> None:
    fill(fleet, A, B)
    fleet.clear_requests()
    first = jobs.launch("sleep 30", gpus="H100:8", name="first", settings=settings(A, B))
    second = jobs.launch("sleep 30", gpus="H100:8", name="second", settings=settings(A, B))
    for job in (first, second):
        wait_for(lambda j=job: waiting(j, JobStatus.PENDING), what=f"{job.name} waiting")
    fleet.clear_requests()
    fleet.remove_pods(B, namespace="others")  # room for one of them
    wait_for(lambda: running_in(first, B), timeout=STARTS_WITHIN_S, what="first RUNNING in b")
    time.sleep(1.5)
    # The second was judged only after the first had its GPUs: it never raced it for them.
    assert second.status == JobStatus.PENDING
    assert len(requests_to(fleet, B, "POST", "/pods")) == 1
    assert not requests_to(fleet, A, "POST", "/pods")
    jobs.cancel(all=True, wait_s=30)
    assert second.status == JobStatus.CANCELLED and first.status == JobStatus.CANCELLED


def test_cancelling_a_waiting_job_leaves_nothing_and_nothing_starts_later(fleet: Fleet) -> None:
    fill(fleet, A, B)
    job = jobs.launch("echo never", gpus="H100:8", name="given-up", settings=settings(A, B))
    wait_for(lambda: waiting(job, JobStatus.PENDING), what="PENDING, waiting for capacity")
    fleet.clear_requests()
    cancelled = jobs.cancel(["given-up"], wait_s=30)
    assert [c.id for c in cancelled] == [job.id]
    assert job.status == JobStatus.CANCELLED
    fleet.remove_pods(A, namespace="others")
    fleet.remove_pods(B, namespace="others")
    time.sleep(2.0)  # long enough for a launch that should not happen
    for cluster in (A, B):
        assert not requests_to(fleet, cluster, "POST", "/pods")
        for kind in ("pods", "services", "secrets"):
            assert job_pods(fleet, cluster, kind) == []


def test_a_recovery_waits_recovering_until_a_node_joins(fleet: Fleet) -> None:
    fill(fleet, B)
    job = jobs.launch(
        "echo attempt=$SKYMAGIC_JOB_ATTEMPT; sleep 120",
        gpus="H100:8",
        name="resumer",
        settings=settings(A, B),
    )
    wait_for(lambda: running_in(job, A), what="RUNNING in a")
    fleet.preempt_node(A, GPU_NODE)  # a has no H100 node any more, b is full
    wait_for(lambda: waiting(job, JobStatus.RECOVERING), what="RECOVERING, waiting for capacity")
    fleet.clear_requests()
    time.sleep(1.5)
    assert job.status == JobStatus.RECOVERING
    assert not requests_to(fleet, A, "POST", "/pods") and not requests_to(fleet, B, "POST", "/pods")

    # The preempted node's replacement joins a: the job goes there at once.
    joined = time.monotonic()
    fleet.add_nodes(A, name="h100-new", gpu="H100", gpus=8, cpu=64, memory_gb=512)
    wait_for(lambda: running_in(job, A), timeout=STARTS_WITHIN_S, what="RUNNING in a again")
    print(f"node joined -> running: {time.monotonic() - joined:.2f} s")
    attempts = job.ctl.attempts(job.id)
    assert [(a.context, a.node) for a in attempts][-1][0] == A
    assert attempts[-1].node.startswith("h100-new")
    assert job.record().recoveries == 1
    assert "RECOVERING" in events(job)
    jobs.cancel(["resumer"], wait_s=30)


def test_a_request_that_can_never_fit_fails_at_once_with_what_would_fit(fleet: Fleet) -> None:
    job = jobs.launch("echo hi", gpus="H100:16", name="toobig", settings=settings(A, B))
    assert job.wait(30) == JobStatus.FAILED_NO_RESOURCE
    failure = job.record().last_failure
    assert failure.startswith("no room: a: ") and "per node" in failure
    assert "H100:8 fits" in failure, failure  # the what-would-fit advice
    assert not any("waiting for capacity" in d for d in [details(job)])
    assert "PENDING" not in events(job)[1:]
    assert not job_pods(fleet, A) and not job_pods(fleet, B)
