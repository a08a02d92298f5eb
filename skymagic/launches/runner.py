"""Launch a Task with ordered failover across the allowed contexts.

0. A launch already named so: a running one is reused, a finished one replaced (re-running a
   notebook cell just works), one being deleted waited for.
1. Plan from the live inventory (plan.py): per context x resource candidate, what cannot fit
   now is skipped with its reason, without creating anything there.
2. For each candidate in plan order: create the Secrets (LOCAL_CREDENTIALS kubeconfig, the
   task's `secrets:`), the pod and the Service (ports), then wait for it to start
   (starting.py). FailedScheduling or no binding within provision_timeout: delete what this
   attempt made, wait until the pod is gone, record why, try the next candidate.
3. When every candidate fails: one ProvisionFailedError naming each context and why.
4. Started: failover is over. Follow the log to the end (follow.py: reconnecting, never
   deleting), or return at once with `detach`.

No pod is ever left behind by a failed or interrupted attempt, and no started task is ever
run a second time. Progress goes to an observer (the magic shows a live widget or text, the
CLI prints lines), so this module never prints.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient, client_for
from skymagic.core.fanout import fan_out
from skymagic.core.targets import Settings, Targets, pin_targets, resolve_targets
from skymagic.errors import (
    ConfigError,
    ConflictError,
    ForbiddenError,
    LaunchError,
    NotFoundError,
    ProvisionFailedError,
    SkymagicError,
)
from skymagic.launches.controls import LaunchControls
from skymagic.launches.files import FileSet, collect_files
from skymagic.launches.follow import (
    FOLLOW_READ_TIMEOUT_S,
    RECONNECT_FOR_S,
    follow_pod,
    pod_exit,
)
from skymagic.launches.gang import cleanup_labelled, gang_attempt
from skymagic.launches.gangrerun import rerun_on_gang
from skymagic.launches.outcome import Attempt, LaunchObserver, LaunchResult, Silent, command
from skymagic.launches.plan import Candidate, Plan, make_plan
from skymagic.launches.pods import LivePod, reap_ended
from skymagic.launches.podspec import attempt_manifests, selector_for, service_manifest
from skymagic.launches.ranks import rank_of
from skymagic.launches.rerun import rerun_on_pod, send_launch_files
from skymagic.launches.starting import wait_for_start
from skymagic.launches.task import Task
from skymagic.launches.wait import CapacityWaiter, retry_from_config

__all__ = ["Attempt", "LaunchControls", "LaunchObserver", "LaunchResult", "launch_task"]

SERVICE_ACCOUNT_NAME = "skymagic-service-account"


def _pods_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def _existing(targets: Targets, task: Task, settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Pods of this user's launch `task.name` in any allowed context."""

    def find(client: ContextClient) -> list[dict[str, Any]]:
        items, _ = client.list_items(
            "/api/v1/pods", {"labelSelector": selector_for(task.name, task.user)}
        )
        return items

    found = []
    for res in fan_out(targets, find, settings):
        for pod in res.value or []:
            found.append((res.context, pod))
    return found


def launch_task(
    task: Task,
    settings: Settings | None = None,
    controls: LaunchControls | None = None,
    *,
    observer: LaunchObserver | None = None,
    inventory_fn: Callable[[Settings, str | None], Any] | None = None,
    follow_timeout: float = FOLLOW_READ_TIMEOUT_S,
    reconnect_for: float = RECONNECT_FOR_S,
) -> LaunchResult | Plan:
    """Plan and run `task` as `controls` say (default: follow it to its end); returns the Plan
    for `controls.dry_run`, else a LaunchResult.

    `inventory_fn` gives the inventory to plan from (default: every allowed context's, live).
    `follow_timeout` bounds each read of the followed log (the pod's state is re-read on each
    timeout) and `reconnect_for` is how long an unreachable context is retried once the pod
    has started.
    """
    settings = settings or Settings()
    how = controls or LaunchControls()
    detach, hint_style = how.detach, how.hint_style
    obs: LaunchObserver = observer or Silent()
    started = time.monotonic()
    # One resolution (one admin-policy run, one kubeconfig read) serves the whole launch: the
    # search for an existing launch (every allowed context), the inventory and the attempts.
    all_allowed = resolve_targets(settings, None, operation="launch", task=task)
    targets = pin_targets(all_allowed, task.infra)
    if targets.task is not None:
        task = targets.task  # as the admin policy left it
    if inventory_fn is None:
        from skymagic.gpus.inventory import show_gpus

        def inventory_fn(s: Settings, infra: str | None) -> Any:
            return show_gpus(s, infra, targets=targets)

    # Files are listed and checked before anything is created (a bad path is one line).
    files = collect_files(task) if task.has_files else None
    if not how.dry_run:
        reused = _settle_existing(all_allowed, task, settings, obs, hint_style, files, detach)
        if reused is not None:
            reused.seconds = time.monotonic() - started
            return reused
    inventory = inventory_fn(settings, task.infra)
    # Contexts an admin policy removed still get a plan row, so the user sees why they are
    # not tried (a pinned launch shows only its one context).
    shown = [*targets.contexts, *([] if targets.pinned else targets.excluded)]
    plan = make_plan(task, shown, inventory, excluded=targets.excluded)
    if how.prefer_context or how.avoid_context:
        _reorder(plan, how.prefer_context, how.avoid_context)
    obs.on_plan(plan)
    if how.dry_run:
        return plan
    attempts = [Attempt(r.context, "skipped", r.reason) for r in plan.rows if not r.fits]
    for a in attempts:
        obs.on_attempt(a)
    if how.provision_timeout is not None:
        timeout = how.provision_timeout
    elif task.provision_timeout is not None:
        timeout = task.provision_timeout
    else:
        timeout = targets.config.provision_timeout
    retry = how.retry_until_up
    if retry is None:
        retry = retry_from_config(targets.config.raw, targets.config.path)
    waiter: CapacityWaiter | None = None
    try:
        while True:
            for cand in plan.candidates:
                ran = cand.task or task
                if ran.num_nodes > 1:
                    attempt, result = gang_attempt(
                        ran,
                        cand,
                        targets,
                        settings,
                        timeout,
                        detach,
                        obs,
                        service_account=lambda c, ns, who: _service_account(c, ns, who, obs),
                        command=lambda verb, name: command(hint_style, verb, name),
                        files=files,
                        read_timeout=follow_timeout,
                        reconnect_for=reconnect_for,
                    )
                    attempts.append(attempt)
                    obs.on_attempt(attempt)
                    if result is None:
                        continue
                else:
                    attempt, start = _try_context(
                        ran, cand, targets, settings, timeout, obs, hint_style, files
                    )
                    attempts.append(attempt)
                    if start is None:
                        obs.on_attempt(attempt)
                        continue
                    # The pod started: failover is over, whatever happens to its log stream.
                    result = _after_start(
                        start, ran, detach, obs, started, hint_style, reconnect_for, follow_timeout
                    )
                    if result.status in ("Succeeded", "Failed"):
                        attempt.outcome = "finished"
                        attempt.reason = f"exit code {result.exit_code}" if result.exit_code else ""
                    attempt.seconds = (
                        time.monotonic() - started - sum(a.seconds for a in attempts[:-1])
                    )
                    obs.on_attempt(attempt)
                result.plan = plan
                result.attempts = attempts
                result.seconds = time.monotonic() - started
                return result
            if not retry:
                break
            if waiter is None:
                if detach:
                    # A plain launch has no one to wait on its behalf: the wait is held here.
                    # A managed job's controller waits without a kernel (jobs/capacity.py).
                    jobs = "%%sky_jobs_launch" if hint_style == "magic" else "skymagic jobs launch"
                    obs.on_message(
                        "--retry-until-up waits here, in the foreground, until a context can "
                        "take the task (Ctrl-C cancels; nothing is created meanwhile); "
                        f"--detach applies once the pod runs. To wait without holding this "
                        f"{'kernel' if hint_style == 'magic' else 'terminal'}, submit it as a "
                        f"managed job ({jobs}): its controller waits for capacity."
                    )
                waiter = CapacityWaiter(
                    task,
                    targets,
                    settings,
                    [c for c in shown if c not in targets.excluded],
                    timeout_minutes=how.timeout_minutes,
                )
            # The watches stay open through the attempts: a lost race waits again at once.
            plan = waiter.next_plan(plan, obs)
            obs.on_plan(plan)
    finally:
        if waiter is not None:
            waiter.close()
    tried = list(attempts)
    lines = "\n".join(f"  {a.context}: {a.reason or a.outcome}" for a in tried)
    advice = f"\n{plan.advice()}" if plan.advice() else ""
    raise ProvisionFailedError(
        f"Provision failures (tried {len(tried)} infra) for '{task.name}':\n{lines}{advice}",
        failures=[(a.context, a.reason or a.outcome) for a in tried],
        advice=plan.advice(),
    )


def _reorder(plan: Plan, prefer: str | None, avoid: str | None) -> None:
    """Move `prefer`'s candidates to the front and `avoid`'s to the back (a stable sort)."""

    def rank(cand: Candidate) -> int:
        return -1 if cand.context == prefer else 1 if cand.context == avoid else 0

    plan.candidates.sort(key=rank)
    if not plan.candidates:
        return
    first = plan.candidates[0]
    for row in plan.rows:
        row.chosen = False
    for row in plan.rows:
        if row.context == first.context and (first.task is None or row.task is first.task):
            row.chosen = True
            break


def _after_start(
    start: _Started,
    ran: Task,
    detach: bool,
    obs: LaunchObserver,
    started: float,
    hint_style: str,
    reconnect_for: float,
    follow_timeout: float,
) -> LaunchResult:
    """A started pod: follow it to its end (or its run's end with autostop), or return."""
    result = start.result
    phase = start.pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        # Finished before the follow began (a very short task): show its whole log.
        _finish_follow(start, obs, started, result, hint_style, 0.0, follow_timeout)
    elif not (detach or ran.is_dev_pod or phase != "Running"):
        # With autostop the pod outlives its run: the follow ends at the run's end.
        outlives = ran.idle_minutes is not None
        _finish_follow(
            start, obs, started, result, hint_style, reconnect_for, follow_timeout, outlives
        )
        if ran.down and result.status in ("Succeeded", "Failed") and not outlives:
            _remove_ended(start, result)
    else:
        result.status = "Running" if phase == "Running" else str(phase)
    return result


def _settle_existing(
    targets: Targets,
    task: Task,
    settings: Settings,
    obs: LaunchObserver,
    style: str,
    files: FileSet | None = None,
    detach: bool = False,
) -> LaunchResult | None:
    """A launch already named `task.name`: work on it while it runs, replace it once finished.

    Re-running a notebook cell must just work: a FINISHED launch (its logs readable until
    now) is deleted with its Service and Secrets and the new one takes its place. One being
    deleted is waited for. A RUNNING one gets the new body (rerun.py: SkyPilot's
    `sky launch -c NAME`); a pending one is reused as it is.
    """
    deadline = time.monotonic() + 30.0
    while True:
        existing = _existing(targets, task, settings)
        if not existing:
            return None
        ctx, pod = existing[0]
        ns = pod["metadata"]["namespace"]
        # Every rank of a multi-node launch (one pod for a single-pod launch), in rank order.
        pods = sorted(
            (p for c, p in existing if c == ctx and p["metadata"]["namespace"] == ns),
            key=lambda p: rank_of(p["metadata"].get("labels") or {})[0],
        )
        num_nodes = rank_of(pods[0]["metadata"].get("labels") or {})[1]
        phase = _launch_phase(pods, num_nodes)
        if phase == "Deleting":
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"a launch named '{task.name}' is still being deleted after 30 s; "
                    "launch again later, or pick another name",
                    context=ctx,
                )
            time.sleep(0.2)
            continue
        pod = pods[0]
        if phase == "Running":
            client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
            lives = [LivePod(client, ctx, ns, p["metadata"]["name"], p) for p in pods]
            if num_nodes > 1 or task.num_nodes > 1:  # (a single pod refuses more nodes)
                done = rerun_on_gang(task, lives, files, obs, detach=detach)
            else:
                done = rerun_on_pod(task, lives[0], files, obs, detach=detach)
            result = LaunchResult(task.name, ctx, ns, "Reused", node=pod["spec"].get("nodeName"))
            if done.exit_code is not None:
                result.exit_code = done.exit_code
                result.status = "Succeeded" if done.exit_code == 0 else "Failed"
            result.hints.extend(done.hints)
            return result
        if phase == "Pending":
            result = LaunchResult(task.name, ctx, ns, "Reused", node=pod["spec"].get("nodeName"))
            result.hints.append(
                f"A launch named '{task.name}' is already {phase.lower()} in {ctx}; reusing it. "
                f"Follow it with {command(style, 'logs', task.name)}, stop it with "
                f"{command(style, 'down', task.name)}."
            )
            return result
        obs.on_message(
            f"Replacing the finished launch '{task.name}' ({phase}) in {ctx}: deleting it."
        )
        client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
        made = {"pod": task.name, "service": task.name, "secret": f"{task.name}-kubeconfig"}
        note = _cleanup(client, ns, made, extra_secrets=(f"{task.name}-secrets",))
        if not note:  # a multi-node launch's other ranks and headless Service too
            note = cleanup_labelled(client, ns, selector_for(task.name, task.user), 30.0)
        if note:
            raise ConfigError(
                f"could not replace the finished launch '{task.name}'{note}", context=ctx
            )


def _launch_phase(pods: list[dict[str, Any]], num_nodes: int) -> str:
    """A launch's phase from its pods: Deleting, Running (every rank), Pending, else ended.

    A gang with a rank ended or missing counts as ended (it is replaced), as does one whose
    ranks are all ended; one with a rank still pending and none ended is pending.
    """
    if any(p["metadata"].get("deletionTimestamp") for p in pods):
        return "Deleting"
    phases = [str(p.get("status", {}).get("phase", "Unknown")) for p in pods]
    ended = [ph for ph in phases if ph not in ("Running", "Pending")]
    if ended or len(pods) < num_nodes:
        return ended[0] if ended else "a rank missing"
    return "Running" if all(ph == "Running" for ph in phases) else "Pending"


def _service_account(
    client: ContextClient, ns: str, identity: str, obs: LaunchObserver
) -> str | None:
    if identity in ("LOCAL_CREDENTIALS", "NO_UPLOAD"):
        return None
    name = SERVICE_ACCOUNT_NAME if identity == "SERVICE_ACCOUNT" else identity
    try:
        client.get_json(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}")
        return name
    except NotFoundError:
        if identity != "SERVICE_ACCOUNT":
            raise ConfigError(
                f"remote_identity names service account '{name}', which does not exist in "
                f"namespace '{ns}'; create it or change kubernetes.remote_identity",
                context=client.name,
            ) from None
    try:
        client.post_json(
            f"/api/v1/namespaces/{ns}/serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "labels": {"skymagic.dev/managed": "true"}},
            },
        )
    except ConflictError:
        pass
    except ForbiddenError:
        obs.on_message(f"{client.name}: may not create service account {name}; pods use 'default'")
        return None
    return name


@dataclass
class _Started:
    """A pod that reached Running (or ended) in one context: failover is over."""

    client: ContextClient
    ns: str
    task: Task
    pod: dict[str, Any]
    result: LaunchResult


def _try_context(
    task: Task,
    cand: Candidate,
    targets: Targets,
    settings: Settings,
    provision_timeout: float,
    obs: LaunchObserver,
    style: str,
    files: FileSet | None = None,
) -> tuple[Attempt, _Started | None]:
    """Create the objects in one context and wait for the pod to start.

    Everything made here is deleted again if the pod does not start (the next context is
    tried); once it started, nothing is deleted and the caller follows it.
    """
    ctx = cand.context
    t0 = time.monotonic()
    created: dict[str, str] = {}
    client: ContextClient | None = None
    ns = ""
    try:
        client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
        ns = targets.namespace or client.namespace
        attempt_id = secrets.token_hex(3)
        identity = targets.config.remote_identity_for(ctx)
        obs.on_progress(ctx, "creating pod", 0.0)
        sa = _service_account(client, ns, identity, obs)
        objects = attempt_manifests(task, cand, targets, identity, sa, ns, attempt_id)
        for kind, secret in objects.secrets:
            name = str(secret["metadata"]["name"])
            _create(client, f"/api/v1/namespaces/{ns}/secrets", secret, created, kind, name)
        pod = objects.pod
        made = _create(client, f"/api/v1/namespaces/{ns}/pods", pod, created, "pod", task.name)
        if task.ports:
            _create(
                client,
                f"/api/v1/namespaces/{ns}/services",
                service_manifest(task, context=ctx, namespace=ns, attempt=attempt_id),
                created,
                "service",
                task.name,
            )
        outcome, reason, final = wait_for_start(
            client,
            ns,
            task.name,
            str(made["metadata"].get("resourceVersion", "")),
            provision_timeout,
            obs,
            t0,
        )
        if outcome != "started":
            reason += _cleanup(client, ns, created)
            return Attempt(ctx, outcome, reason, time.monotonic() - t0, pod_created=True), None
        assert final is not None
        if final.get("status", {}).get("phase") == "Running":
            # The entrypoint waits for the files; a failure here is this attempt's.
            send_launch_files(LivePod(client, ctx, ns, task.name, final), files, obs)
        result = LaunchResult(
            task.name, ctx, ns, "Running", node=final.get("spec", {}).get("nodeName")
        )
        _add_hints(result, task, ctx, ns, style)
        attempt = Attempt(ctx, "running", "", time.monotonic() - t0, pod_created=True)
        return attempt, _Started(client, ns, task, final, result)
    except KeyboardInterrupt:
        what = ", ".join(created) or "nothing"
        note = _cleanup(client, ns, created) if client is not None and created else ""
        attempt = Attempt(
            ctx,
            "interrupted",
            f"interrupted before the pod ran; deleted {what}{note}",
            time.monotonic() - t0,
            "pod" in created,
        )
        obs.on_attempt(attempt)
        error = LaunchError(
            f"launch '{task.name}' interrupted while starting in {ctx}; deleted {what} there" + note
        )
        error.interrupted = True  # the CLI exits 130, as after any Ctrl-C
        raise error from None
    except SkymagicError as exc:
        note = _cleanup(client, ns, created) if client is not None and created else ""
        return Attempt(
            ctx, "error", exc.message + note, time.monotonic() - t0, "pod" in created
        ), None


def _finish_follow(
    start: _Started,
    obs: LaunchObserver,
    started: float,
    result: LaunchResult,
    style: str,
    reconnect_for: float,
    follow_timeout: float,
    run_done: bool = False,
) -> None:
    """Follow the started pod to its end (`run_done`: its run's end) and set the result (never
    fails over)."""
    name, ctx = start.task.name, start.client.name
    # The phase line follows the pod: it runs now, on its node (a widget ticks the seconds).
    obs.on_progress(ctx, f"running on {result.node or 'its node'}", time.monotonic() - started)
    try:
        out = follow_pod(
            start.client,
            start.ns,
            name,
            obs,
            started,
            read_timeout=follow_timeout,
            reconnect_for=reconnect_for,
            run_done=run_done,
        )
    except KeyboardInterrupt:
        result.interrupted = True
        result.status = "Detached"
        phase, code = _quick_phase(start)
        if phase in ("Succeeded", "Failed"):
            result.status, result.exit_code = phase, code
            result.hints = [
                f"Stopped following; the pod had already finished ({phase}, exit code {code}). "
                f"Remove it with {command(style, 'down', name)}."
            ]
        elif phase is None:
            result.hints = [
                f"Stopped following; could not reach {ctx} to check the pod, which may still "
                f"be running. Follow it with {command(style, 'logs', name)} --follow, stop it "
                f"with {command(style, 'down', name)}.",
                *result.hints[:-1],
            ]
        else:
            result.hints = [
                f"Detached; the pod keeps running in {ctx}. Follow it with "
                f"{command(style, 'logs', name)} --follow, stop it with "
                f"{command(style, 'down', name)}.",
                *result.hints[:-1],
            ]
        return
    if out.phase in ("Succeeded", "Failed") and run_done:
        result.status, result.exit_code = out.phase, out.exit_code  # the pod stays (autostop)
    elif out.phase in ("Succeeded", "Failed"):
        result.status, result.exit_code = out.phase, out.exit_code
        # The finished pod is kept (status, logs) until removed or replaced; "stop" would
        # mislead.
        result.hints = [
            *result.hints[:-1],
            f"The finished pod is kept for {command(style, 'logs', name)}; remove it with "
            f"{command(style, 'down', name)} (launching '{name}' again replaces it).",
        ]
    elif out.phase == "Deleted":
        result.status = "Deleted"
        result.hints = [f"The pod '{name}' was deleted in {ctx} while it ran."]
    else:
        result.status = "Unreachable"
        result.hints = [
            f"Lost contact with {ctx} after the pod started ({out.lost}); the pod keeps "
            f"running there. Follow it with {command(style, 'logs', name)} --follow, stop it "
            f"with {command(style, 'down', name)}.",
            *result.hints[:-1],
        ]


def _quick_phase(start: _Started) -> tuple[str | None, int | None]:
    """The pod's phase now, with one request (after Ctrl-C: answer fast or say unknown)."""
    try:
        pod = start.client.get_json(f"/api/v1/namespaces/{start.ns}/pods/{start.task.name}")
    except (SkymagicError, KeyboardInterrupt):
        return None, None
    return str(pod.get("status", {}).get("phase", "Unknown")), pod_exit(pod)


def _add_hints(result: LaunchResult, task: Task, ctx: str, ns: str, style: str) -> None:
    kubectl = f"kubectl --context '{ctx}' -n {ns}"
    if task.is_dev_pod:
        exec_hint = (
            f"skymagic exec {task.name} -- CMD" if style == "cli" else f"%%sky_exec {task.name}"
        )
        result.hints.append(
            f"Dev pod running; run commands with {exec_hint}, open a shell with "
            f"`skymagic ssh {task.name}` or: {kubectl} exec -it {task.name} -- /bin/bash"
        )
    if task.idle_minutes is not None:
        result.hints.append(
            f"Autostop: the pod stops itself after {task.idle_minutes:g} idle minute(s)"
            + (" and is then removed (--down)." if task.down else ".")
        )
    for port in task.ports:
        opener = (
            f"skymagic port-forward {task.name} {port}"
            if style == "cli"
            else f"%sky_port_forward {task.name} {port}"
        )
        result.hints.append(
            f"Port {port}: {opener} (or {kubectl} port-forward pod/{task.name} {port}:{port})"
        )
    # Always last: a finished or detached launch replaces this line.
    result.hints.append(f"Stop it with {command(style, 'down', task.name)}")


def _remove_ended(start: _Started, result: LaunchResult) -> None:
    """--down: the followed pod ended, so its objects go now (pods.reap_ended)."""
    try:
        pod = start.client.get_json(f"{_pods_path(start.ns)}/{start.task.name}")
    except SkymagicError:
        return  # already gone, or unreachable: the next status/launch removes it
    if reap_ended(start.client, [pod]):
        result.hints = [f"The pod ended and was removed (--down); exit code {result.exit_code}."]


def _create(
    client: ContextClient,
    path: str,
    body: dict[str, Any],
    created: dict[str, str],
    kind: str,
    name: str,
) -> dict[str, Any]:
    """POST an object, recording it as ours BEFORE the request.

    Why before: a create whose answer is lost (read timeout, dropped connection) may still
    have happened, and cleanup must then delete it (a 404 there is harmless). A 409 means the
    name belongs to someone else's object, which cleanup must never touch.
    """
    created[kind] = name
    try:
        return client.post_json(path, body)
    except ConflictError:
        del created[kind]
        raise


def _cleanup(
    client: ContextClient,
    ns: str,
    created: dict[str, str],
    wait_s: float = 30.0,
    extra_secrets: tuple[str, ...] = (),
) -> str:
    """Delete what an attempt made and wait until its pod is really gone.

    Returns "" when everything is gone, else a note naming what may be left behind (the
    context stopped answering mid-cleanup), so the attempt's reason says so instead of the
    launch dying with a raw transport error.
    """
    secret_names = [created[k] for k in ("secret", "task_secret") if k in created]
    secret_names += list(extra_secrets)
    try:
        paths = []
        if "service" in created:
            paths.append(f"/api/v1/namespaces/{ns}/services/{created['service']}")
        if "pod" in created:
            paths.append(f"/api/v1/namespaces/{ns}/pods/{created['pod']}")
        paths += [f"/api/v1/namespaces/{ns}/secrets/{n}" for n in secret_names]
        for path in paths:
            with contextlib.suppress(NotFoundError):
                client.request("DELETE", path, body={"gracePeriodSeconds": 0})
        if "pod" not in created:
            return ""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                client.get_json(f"/api/v1/namespaces/{ns}/pods/{created['pod']}")
            except NotFoundError:
                return ""
            time.sleep(0.05)
        return f" (pod {ns}/{created['pod']} still terminating after {wait_s:g} s)"
    except SkymagicError as exc:
        return (
            f" (cleanup failed: {exc.message}; check with %sky_status and remove with "
            f"%sky_down {created.get('pod') or created.get('service') or ''})".replace(" )", ")")
        )
