"""The controller's blocking work, run on pool threads: launch, delete, confirm, discover, clean up.

Each function talks to the clusters only and returns a result event; the controller's one
loop thread applies it to the job (so the job state has exactly one writer). Nothing here
touches the database.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from skymagic.core.client import ContextClient, client_for
from skymagic.core.fanout import fan_out
from skymagic.core.targets import Settings, Targets, pin_targets, resolve_targets
from skymagic.errors import NotFoundError, ProvisionFailedError, SkymagicError
from skymagic.launches.controls import LaunchControls
from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt, launch_task
from skymagic.launches.task import Task
from skymagic.launches.wait import may_fit_later

if TYPE_CHECKING:
    from skymagic.gpus.inventory import Inventory

__all__ = [
    "CleanedUp",
    "Confirmed",
    "Deleted",
    "Discovered",
    "Found",
    "Launched",
    "cleanup",
    "confirm",
    "delete_pod",
    "discover",
    "launch",
]


@dataclass(frozen=True)
class Launched:
    """A launch finished: the pod runs (`pod` set) or nothing was created (`message`)."""

    job_id: int
    attempt: int
    pod: dict[str, Any] | None = None
    context: str = ""
    client: ContextClient | None = None
    message: str = ""
    no_resource: bool = False
    bug: bool = False
    tried: list[str] = field(default_factory=list)
    # With no_resource: whether waiting may help (some context is only busy, not unable),
    # and the targets and task to wait with (None: they could not be resolved again).
    may_fit_later: bool = False
    wait_on: tuple[Task, Targets] | None = None


@dataclass(frozen=True)
class Deleted:
    job_id: int
    uid: str
    gone: bool  # the API said 404: nothing to wait for
    error: str = ""


@dataclass(frozen=True)
class Confirmed:
    job_id: int
    uid: str
    gone: bool
    pod: dict[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class Found:
    context: str
    client: ContextClient
    pod: dict[str, Any]


@dataclass(frozen=True)
class Discovered:
    """Where a job's pods are, from the labels (a controller's restart, or a lost launch)."""

    job_id: int
    pods: list[Found]
    errors: dict[str, str]  # context -> why it could not be searched
    message: str = ""  # the whole search failed (no targets)


@dataclass(frozen=True)
class CleanedUp:
    job_id: int
    deleted: list[str]
    error: str = ""


class _Tried:
    """A LaunchObserver keeping the one-line story of each context the launch tried."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_plan(self, plan: Plan) -> None:
        pass

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        pass

    def on_attempt(self, attempt: Attempt) -> None:
        reason = f": {attempt.reason}" if attempt.reason else ""
        self.lines.append(f"{attempt.context}: {attempt.outcome}{reason}")

    def on_log(self, line: str) -> None:
        pass

    def on_message(self, text: str) -> None:
        self.lines.append(text)


def _client(settings: Settings, context: str) -> ContextClient:
    targets = resolve_targets(settings, None, operation="jobs")
    return client_for(targets.kubeconfig.resolve(context), settings.client)


def launch(
    job_id: int,
    attempt: int,
    task: Task,
    settings: Settings,
    controls: LaunchControls,
    *,
    leftovers: tuple[ContextClient, str, str] | None,
    inventory: Inventory | None = None,
) -> Launched:
    """One attempt: clear the previous attempt's Secret/Service, then launch through failover.

    `task` carries the job's labels (attempt_task). `controls` give the provision timeout and
    the context to try first or last; the launch always detaches (the controller follows the
    pod). `leftovers` is (client, namespace, launch selector) of the previous attempt's
    context: its Secrets and Service carry the same names and would refuse the new ones.
    `inventory`: plan from it instead of listing every context (the capacity watch's snapshot
    in which the job fits). Never waits for capacity itself (a user's `retry_until_up: true`
    would hold a pool thread): no room is reported, with whether waiting may help, and the
    controller waits (capacity.py).
    """
    tried = _Tried()
    try:
        if leftovers is not None:
            client, ns, selector = leftovers
            _delete_matching(client, ns, selector, ("services", "secrets"))
        result = launch_task(
            task,
            settings,
            replace(controls, detach=True, retry_until_up=False),
            observer=tried,
            inventory_fn=None if inventory is None else (lambda _s, _infra: inventory),
        )
        if isinstance(result, Plan) or not result.context or not result.namespace:
            return Launched(job_id, attempt, message="the launch created nothing", bug=True)
        client = _client(settings, result.context)
        pod = client.get_json(f"/api/v1/namespaces/{result.namespace}/pods/{task.name}")
        return Launched(job_id, attempt, pod, result.context, client, tried=tried.lines)
    except ProvisionFailedError as exc:
        # One line for the queue's last_failure: each context and why it could not, and what
        # would fit now.
        why = "; ".join(f"{ctx}: {reason}" for ctx, reason in exc.failures) or exc.message
        advice = f". {exc.advice}" if exc.advice else ""
        return Launched(
            job_id,
            attempt,
            message=f"no room: {why}{advice}",
            no_resource=True,
            tried=tried.lines,
            may_fit_later=may_fit_later(reason for _ctx, reason in exc.failures),
            wait_on=_wait_on(task, settings),
        )
    except SkymagicError as exc:
        return Launched(job_id, attempt, message=str(exc), tried=tried.lines)
    except Exception as exc:  # a bug: FAILED_CONTROLLER on a first launch, retried on recovery
        text = f"{type(exc).__name__}: {exc}"
        return Launched(job_id, attempt, message=text, bug=True, tried=tried.lines)


def _wait_on(task: Task, settings: Settings) -> tuple[Task, Targets] | None:
    """The launch's own targets and task (as its admin policy left them), to wait with."""
    try:
        targets = pin_targets(
            resolve_targets(settings, None, operation="launch", task=task), task.infra
        )
    except SkymagicError:
        return None
    return (targets.task if isinstance(targets.task, Task) else task), targets


def delete_pod(
    job_id: int, client: ContextClient, ns: str, name: str, uid: str, grace: int | None
) -> Deleted:
    """Delete the pod `uid` (never a newer pod of the same name: a uid precondition)."""
    body: dict[str, Any] = {"preconditions": {"uid": uid}}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    try:
        client.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", body=body)
    except NotFoundError:
        return Deleted(job_id, uid, True)
    except SkymagicError as exc:
        return Deleted(job_id, uid, False, str(exc))
    return Deleted(job_id, uid, False)


def confirm(job_id: int, client: ContextClient, ns: str, name: str, uid: str) -> Confirmed:
    """Is the pod `uid` still there? (A list after a watch gap did not show it.)"""
    try:
        pod = client.get_json(f"/api/v1/namespaces/{ns}/pods/{name}")
    except NotFoundError:
        return Confirmed(job_id, uid, True)
    except SkymagicError as exc:
        return Confirmed(job_id, uid, False, error=str(exc))
    same = (pod.get("metadata") or {}).get("uid") == uid
    return Confirmed(job_id, uid, not same, pod if same else None)


def discover(job_id: int, settings: Settings, selector: str) -> Discovered:
    """The job's pods in every allowed context, by their labels."""
    try:
        targets = resolve_targets(settings, None, operation="jobs")
    except SkymagicError as exc:
        return Discovered(job_id, [], {}, str(exc))

    def find(client: ContextClient) -> list[Found]:
        items, _ = client.list_items("/api/v1/pods", {"labelSelector": selector})
        return [Found(client.name, client, p) for p in items]

    found: list[Found] = []
    errors: dict[str, str] = {}
    for res in fan_out(targets, find, settings):
        if res.error is not None:
            errors[res.context] = res.error.message
        found.extend(res.value or [])
    return Discovered(job_id, found, errors)


def cleanup(job_id: int, client: ContextClient, ns: str, selector: str) -> CleanedUp:
    """Delete what a finished job left in a context: its pod, Service and kubeconfig Secret."""
    try:
        return CleanedUp(
            job_id, _delete_matching(client, ns, selector, ("pods", "services", "secrets"))
        )
    except SkymagicError as exc:
        return CleanedUp(job_id, [], str(exc))


def _delete_matching(
    client: ContextClient, ns: str, selector: str, kinds: tuple[str, ...]
) -> list[str]:
    deleted = []
    for kind in kinds:
        items, _ = client.list_items(f"/api/v1/namespaces/{ns}/{kind}", {"labelSelector": selector})
        for obj in items:
            name = obj["metadata"]["name"]
            body = {"gracePeriodSeconds": 0} if kind == "pods" else None
            with contextlib.suppress(NotFoundError):
                client.request("DELETE", f"/api/v1/namespaces/{ns}/{kind}/{name}", body=body)
                deleted.append(f"{kind[:-1]} {ns}/{name}")
    return deleted
