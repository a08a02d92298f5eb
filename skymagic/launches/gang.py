"""Multi-node tasks: a gang of `num_nodes` pods in ONE context, all or nothing.

The plan counts a context as fitting only when N nodes each have room now (plan.py). An
attempt then creates the headless Service and N pods (rendezvous.py) and watches them, all
labelled with the attempt's id:

- every rank Running (or already finished): started, failover is over;
- a rank the scheduler cannot place (PodScheduled False, Unschedulable: another user took
  the room since the inventory was read) and still unbound after a short grace for a cluster
  autoscaler, a rank the autoscaler says no node is coming for (NotTriggerScaleUp), or not
  every rank bound within provision_timeout (moved on by a TriggeredScaleUp: a node is
  coming): a race. The rule is a single pod's (scaleup.StartRule), fed by the ranks' pods and
  their Events. Everything the attempt made is deleted (by its attempt label) and the launch
  waits until no pod of it is left, then tries the next context. Part of a gang is never
  left behind.

Once every rank runs, the launch's files go to every rank in parallel (gangfiles.py), then
the ranks are let go (each entrypoint waits for its files before setup and run).

Following (gangfollow.py): every rank's log streams at once, each line prefixed `(rank=N)`;
the first rank that fails fails the launch, naming the rank and its code, and the run on every
other rank is stopped (gangstop.py). This module never prints: progress goes to the launch's
observer, on the caller's thread.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient, client_for
from skymagic.core.targets import Settings, Targets
from skymagic.core.watch import Changed, DriverEvent, Failed, Listed, WatchDriver
from skymagic.errors import LaunchError, NotFoundError, SkymagicError
from skymagic.launches.files import FileSet
from skymagic.launches.follow import FOLLOW_READ_TIMEOUT_S, RECONNECT_FOR_S, PodObserver
from skymagic.launches.gangfiles import send_to_ranks
from skymagic.launches.gangfollow import follow_gang
from skymagic.launches.outcome import Attempt, LaunchResult
from skymagic.launches.plan import Candidate
from skymagic.launches.podspec import LABEL_ATTEMPT, attempt_manifests, service_manifest
from skymagic.launches.rendezvous import (
    LABEL_RANK,
    MARKER,
    gang_pod,
    headless_service,
    service_name,
    task_id,
)
from skymagic.launches.scaleup import StartRule
from skymagic.launches.starting import pod_events_path, watch_into
from skymagic.launches.task import Task

__all__ = [
    "GangAttempt",
    "cleanup_attempt",
    "gang_attempt",
    "rank_nodes",
    "try_gang",
]

_STARTED_PHASES = ("Running", "Succeeded", "Failed")


@dataclass
class GangAttempt:
    """One context tried for a gang: how it ended, and the started pods by rank."""

    context: str
    outcome: str  # running | unschedulable | timeout | error | interrupted
    reason: str = ""
    seconds: float = 0.0
    pod_created: bool = False
    client: ContextClient | None = None
    namespace: str = ""
    pods: dict[int, dict[str, Any]] = field(default_factory=dict)


def _rank(pod: dict[str, Any]) -> int:
    return int((pod.get("metadata", {}).get("labels") or {}).get(LABEL_RANK, -1))


def _unschedulable(pod: dict[str, Any]) -> str | None:
    if pod.get("spec", {}).get("nodeName"):
        return None
    for cond in pod.get("status", {}).get("conditions") or []:
        if (cond.get("type"), cond.get("status"), cond.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return str(cond.get("message") or "Unschedulable")
    return None


def try_gang(
    task: Task,
    cand: Candidate,
    targets: Targets,
    settings: Settings,
    provision_timeout: float,
    obs: PodObserver,
    *,
    service_account: Callable[[ContextClient, str, str], str | None],
    files: FileSet | None = None,
) -> GangAttempt:
    """Create the gang in `cand.context` and wait until every rank runs (or clean up).

    `service_account(client, namespace, identity)` is the launch's service-account rule.
    `files` (workdir, file_mounts) go to every rank, in parallel, before any rank starts.
    KeyboardInterrupt deletes what was made and propagates.
    """
    ctx = cand.context
    t0 = time.monotonic()
    attempt_id = secrets.token_hex(3)
    out = GangAttempt(ctx, "error")
    try:
        client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
        ns = targets.namespace or client.namespace
        out.client, out.namespace = client, ns
        identity = targets.config.remote_identity_for(ctx)
        obs.on_progress(ctx, f"creating {task.num_nodes} pods", 0.0)
        sa = service_account(client, ns, identity)
        made = attempt_manifests(task, cand, targets, identity, sa, ns, attempt_id)
        for _kind, secret in made.secrets:
            out.pod_created = True  # from here on, cleanup runs
            client.post_json(f"/api/v1/namespaces/{ns}/secrets", secret)
        base = made.pod
        out.pod_created = True
        client.post_json(
            f"/api/v1/namespaces/{ns}/services", headless_service(task, base["metadata"]["labels"])
        )
        if task.ports:  # the task's ports are rank 0's
            ports = service_manifest(task, context=ctx, namespace=ns, attempt=attempt_id)
            ports["spec"]["selector"][LABEL_RANK] = "0"
            client.post_json(f"/api/v1/namespaces/{ns}/services", ports)
        tid = task_id(task.name, attempt_id)
        made_pods = [
            client.post_json(f"/api/v1/namespaces/{ns}/pods", gang_pod(base, task, rank, tid))
            for rank in range(task.num_nodes)
        ]
        since = str(made_pods[0].get("metadata", {}).get("resourceVersion", ""))
        uids = {str(p.get("metadata", {}).get("uid", "")) for p in made_pods} - {""}
        outcome, reason, pods = _wait_all(
            client, ns, task, attempt_id, provision_timeout, obs, t0, (since, uids)
        )
        if outcome == "running":
            send_to_ranks(client, ns, pods, files, obs, t0)  # every rank waits for them
            labels = base["metadata"]["labels"]
            outcome, reason = _release(client, ns, task, pods, labels, provision_timeout, obs, t0)
        out.outcome, out.reason, out.pods = outcome, reason, pods
        if outcome != "running":
            out.reason += cleanup_attempt(client, ns, attempt_id)
    except KeyboardInterrupt:
        if out.client is not None and out.pod_created:
            cleanup_attempt(out.client, out.namespace, attempt_id)
        raise
    except SkymagicError as exc:
        out.outcome, out.reason = "error", exc.message
        if out.client is not None and out.pod_created:
            out.reason += cleanup_attempt(out.client, out.namespace, attempt_id)
    out.seconds = time.monotonic() - t0
    return out


def _list_ranks(client: ContextClient, ns: str, attempt: str) -> tuple[dict[int, Any], str]:
    items, rv = client.list_items(
        f"/api/v1/namespaces/{ns}/pods", {"labelSelector": f"{LABEL_ATTEMPT}={attempt}"}
    )
    return {_rank(p): p for p in items}, rv


def _wait_all(
    client: ContextClient,
    ns: str,
    task: Task,
    attempt: str,
    provision_timeout: float,
    obs: PodObserver,
    t0: float,
    made: tuple[str, set[str]] = ("", set()),
) -> tuple[str, str, dict[int, dict[str, Any]]]:
    """Watch the attempt's pods and their Events: ('running', '', pods) or (outcome, reason, {}).

    `made`: the resourceVersion the first rank was created at, and the ranks' uids (their
    Events are read from then on; an earlier attempt's pods of the same names are not them).
    """
    events: queue.Queue[DriverEvent[dict[int, Any]]] = queue.Queue()
    driver: WatchDriver[dict[int, Any]] = WatchDriver(
        client,
        f"/api/v1/namespaces/{ns}/pods",
        lister=lambda c: _list_ranks(c, ns, attempt),
        sink=events.put,
        query={"labelSelector": f"{LABEL_ATTEMPT}={attempt}"},
        watch_timeout_s=5,
    )
    thread = threading.Thread(target=driver.run, name="skymagic-gang-watch", daemon=True)
    thread.start()
    since, uids = made
    notes: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    stop_notes = threading.Event()
    threading.Thread(
        target=watch_into,
        args=(
            client,
            pod_events_path(ns),
            {"resourceVersion": since},
            "event",
            notes,
            stop_notes,
            5,
        ),
        name="skymagic-gang-events",
        daemon=True,
    ).start()
    n = task.num_nodes
    ranks: dict[int, dict[str, Any]] = {}
    names: dict[str, int] = {}
    rule = StartRule(provision_timeout, t0 + provision_timeout)
    try:
        while True:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                event = None
            if isinstance(event, Listed):
                ranks = dict(event.items)
            elif isinstance(event, Changed):
                if event.type == "DELETED":
                    return "error", f"rank {_rank(event.object)} was deleted while starting", {}
                ranks[_rank(event.object)] = event.object
            elif isinstance(event, Failed):
                return "error", event.error.message, {}
            names = {str(p.get("metadata", {}).get("name")): r for r, p in ranks.items()}
            now = time.monotonic()
            phases = [(ranks.get(r) or {}).get("status", {}).get("phase") for r in range(n)]
            if all(p in _STARTED_PHASES for p in phases):
                return "running", "", ranks
            bound = sum(1 for p in ranks.values() if p.get("spec", {}).get("nodeName"))
            if bound == n:
                rule.all_bound()
            else:
                for r in sorted(ranks):
                    why = _unschedulable(ranks[r])
                    if why is not None:
                        rule.unschedulable(f"rank {r}: {why}", now)
                        break
                _autoscaler_notes(notes, rule, names, uids, client.name, obs)
            verdict = rule.verdict(time.monotonic(), bound == n)
            if verdict is not None:
                outcome, reason = verdict
                if outcome == "timeout":
                    reason = (
                        f"only {bound} of {n} pods scheduled within provision_timeout "
                        f"({provision_timeout:g} s)"
                        + (
                            " after the cluster autoscaler triggered a scale-up"
                            if rule.scaling
                            else ""
                        )
                    )
                return outcome, reason, {}
            running = sum(1 for p in phases if p in _STARTED_PHASES)
            phase = (
                f"{bound}/{n} pods scheduled"
                if bound < n
                else f"{running}/{n} pods running, starting the containers"
            )
            obs.on_progress(client.name, phase, now - t0)
    finally:
        driver.stop()
        stop_notes.set()


def _autoscaler_notes(
    notes: queue.Queue[tuple[str, dict[str, Any]]],
    rule: StartRule,
    names: dict[str, int],
    uids: set[str],
    context: str,
    obs: PodObserver,
) -> None:
    """Feed the ranks' Events that arrived to the rule, each reason naming its rank."""
    while True:
        try:
            kind, event = notes.get_nowait()
        except queue.Empty:
            return
        if kind == "error":
            continue  # the pods' own watch decides; Events only hasten or extend the wait
        obj = event.get("object") or {}
        about = obj.get("involvedObject") or {}
        uid = str(about.get("uid") or "")
        name = str(about.get("name") or "")
        if (uids and uid not in uids) or (not uids and name not in names):
            continue
        rank = names.get(name)
        where = f"rank {rank}: " if rank is not None else f"{name}: "
        said = rule.event(
            str(obj.get("reason", "")), where + str(obj.get("message", "")), time.monotonic()
        )
        if said:
            obs.on_message(f"{context}: {said}")


def _release(
    client: ContextClient,
    ns: str,
    task: Task,
    pods: dict[int, dict[str, Any]],
    labels: dict[str, str],
    wait_s: float,
    obs: PodObserver,
    t0: float,
) -> tuple[str, str]:
    """Wait until every rank printed that it has every address, then let them all start.

    The ranks wait for the go Service's name (rendezvous.py): created only now, so no rank
    runs its task (and may finish, leaving DNS) before every rank has resolved every rank.
    """
    names = {r: str(p["metadata"]["name"]) for r, p in pods.items()}
    pending = set(names)
    deadline = time.monotonic() + max(wait_s, 30.0)
    while True:
        for rank in sorted(pending):
            resp = client.request(
                "GET",
                f"/api/v1/namespaces/{ns}/pods/{names[rank]}/log",
                query={"limitBytes": 65536},
            )
            if f"{MARKER}{rank} has the addresses" in resp.data.decode("utf-8", "replace"):
                pending.discard(rank)
        if not pending:
            break
        if time.monotonic() >= deadline:
            return "error", (
                f"rank {min(pending)} did not get every rank's address within "
                f"{max(wait_s, 30.0):g} s (cluster DNS of the headless Service "
                f"{service_name(task.name)})"
            )
        obs.on_progress(
            client.name,
            f"{len(names) - len(pending)}/{len(names)} ranks have every rank's address",
            time.monotonic() - t0,
        )
        time.sleep(0.05)
    client.post_json(f"/api/v1/namespaces/{ns}/services", headless_service(task, labels, go=True))
    return "running", ""


def cleanup_attempt(client: ContextClient, ns: str, attempt: str, wait_s: float = 30.0) -> str:
    """Delete every object of one attempt (by its label) and wait until its pods are gone.

    Returns "" when nothing is left, else a note naming what may be (the context stopped
    answering mid-cleanup), for the attempt's reason.
    """
    return cleanup_labelled(client, ns, f"{LABEL_ATTEMPT}={attempt}", wait_s)


def cleanup_labelled(client: ContextClient, ns: str, label_selector: str, wait_s: float) -> str:
    """Delete the pods, Services and Secrets matching `label_selector`; wait for the pods."""
    selector = {"labelSelector": label_selector}
    try:
        for kind in ("pods", "services", "secrets"):
            items, _ = client.list_items(f"/api/v1/namespaces/{ns}/{kind}", selector)
            for obj in items:
                with contextlib.suppress(NotFoundError):
                    client.request(
                        "DELETE",
                        f"/api/v1/namespaces/{ns}/{kind}/{obj['metadata']['name']}",
                        body={"gracePeriodSeconds": 0},
                    )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            items, _ = client.list_items(f"/api/v1/namespaces/{ns}/pods", selector)
            if not items:
                return ""
            time.sleep(0.05)
        return f" ({len(items)} pod(s) of the gang still terminating after {wait_s:g} s)"
    except SkymagicError as exc:
        return f" (cleanup failed: {exc.message}; check with %sky_status)"


def rank_nodes(pods: dict[int, dict[str, Any]]) -> list[str]:
    """The Kubernetes node each rank runs on, in rank order."""
    return [str(pods[r].get("spec", {}).get("nodeName") or "") for r in sorted(pods)]


def gang_attempt(
    task: Task,
    cand: Candidate,
    targets: Targets,
    settings: Settings,
    provision_timeout: float,
    detach: bool,
    obs: PodObserver,
    *,
    service_account: Callable[[ContextClient, str, str], str | None],
    command: Callable[[str, str], str],
    files: FileSet | None = None,
    read_timeout: float = FOLLOW_READ_TIMEOUT_S,
    reconnect_for: float = RECONNECT_FOR_S,
) -> tuple[Attempt, LaunchResult | None]:
    """Start the gang in `cand.context`, then follow every rank unless `detach`.

    Returns the attempt as the runner records it, and the launch's result (None: not started
    here, fail over). `command(verb, name)` words a hint's command in the caller's syntax;
    `files` go to every rank before any starts (try_gang); `read_timeout` and `reconnect_for`
    bound the follow (follow.follow_lines). Ctrl-C before every rank runs deletes what was made
    and raises LaunchError (interrupted); after, it detaches.
    """
    try:
        gang = try_gang(
            task,
            cand,
            targets,
            settings,
            provision_timeout,
            obs,
            service_account=service_account,
            files=files,
        )
    except KeyboardInterrupt:
        error = LaunchError(
            f"launch '{task.name}' interrupted while starting in {cand.context}; deleted its "
            "pods, Services and Secrets there"
        )
        error.interrupted = True
        raise error from None
    if gang.outcome != "running" or gang.client is None:
        return _recorded(gang), None
    name, ctx, ns = task.name, gang.context, gang.namespace
    nodes = rank_nodes(gang.pods)
    result = LaunchResult(name, ctx, ns, "Running", node=nodes[0])
    kubectl = f"kubectl --context '{ctx}' -n {ns}"
    result.hints = [
        "Ranks: "
        + ", ".join(f"{r} on {n}" for r, n in enumerate(nodes))
        + f". One rank's log: {command('logs', name)} --rank N"
    ]
    if task.is_dev_pod:
        result.hints.append(f"Dev pods running; enter rank 0 with: {kubectl} exec -it {name} -- sh")
    for port in task.ports:
        result.hints.append(
            f"Port {port} (rank 0): {kubectl} port-forward svc/{name} {port}:{port}"
        )
    stop = f"Stop them with {command('down', name)}."
    if detach or task.is_dev_pod:
        result.hints.append(stop)
        return _recorded(gang), result
    follow = follow_gang(
        gang.client,
        ns,
        task,
        gang.pods,
        obs,
        read_timeout=read_timeout,
        reconnect_for=reconnect_for,
    )
    result.status, result.exit_code = follow.status, follow.exit_code
    if follow.status == "Unreachable":
        # Once the ranks started, failover is over: they keep running where they are.
        lost = next(iter(follow.lost.values()))
        result.hints.insert(
            0,
            f"Lost contact with {ctx} after the ranks started ({lost}); the {task.num_nodes} "
            f"pods keep running there. Follow them with {command('logs', name)} --rank N "
            f"--follow, stop them with {command('down', name)}.",
        )
    elif follow.status == "Detached":
        result.interrupted = True
        result.hints.insert(0, f"Detached; the {task.num_nodes} pods keep running. {stop}")
    elif follow.status in ("Succeeded", "Failed"):
        gang.outcome, gang.reason = "finished", follow.reason()
        if follow.failed:
            result.hints.insert(0, f"The launch failed: {follow.reason()}.")
        if task.idle_minutes is not None:  # the pods outlive their run
            result.hints.append(
                f"The pods stay up until {task.idle_minutes:g} idle minute(s) pass (autostop); "
                f"stop them now with {command('down', name)}."
            )
        else:
            result.hints.append(
                f"The pods are kept for {command('logs', name)} [--rank N]; remove them with "
                f"{command('down', name)}."
            )
    else:
        result.hints.append(stop)
    return _recorded(gang), result


def _recorded(gang: GangAttempt) -> Attempt:
    return Attempt(gang.context, gang.outcome, gang.reason, gang.seconds, gang.pod_created)
