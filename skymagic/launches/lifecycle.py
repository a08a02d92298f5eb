"""The single pane of glass for launched work: status, logs and down across all contexts.

Everything a launch creates carries skymagic's labels, so one labelled list per allowed context
(in parallel, partial results on errors) finds it all.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skymagic.core.client import ContextClient
from skymagic.core.fanout import ContextResult, fan_out
from skymagic.core.podstreams import exec_stream
from skymagic.core.targets import Settings, Targets, current_user, resolve_targets
from skymagic.errors import (
    ConfigError,
    ForbiddenError,
    NotFoundError,
    SkymagicError,
    TransportError,
)
from skymagic.launches.agent import idle_note, idle_probe
from skymagic.launches.follow import FOLLOW_READ_TIMEOUT_S, RECONNECT_FOR_S, follow_lines
from skymagic.launches.gangstop import stopped_status
from skymagic.launches.outcome import command
from skymagic.launches.pods import reap_ended
from skymagic.launches.podspec import (
    ANNOTATION_AUTOSTOP,
    ANNOTATION_DEV,
    LABEL_LAUNCH,
    LABEL_USER,
    selector_for,
)
from skymagic.launches.ports import active_forwards
from skymagic.launches.ranks import launch_rows, rank_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Deleted", "Status", "down", "logs", "status"]

STATUS_COLUMNS = [
    "name",
    "context",
    "namespace",
    "status",
    "nodes",
    "gpus",
    "node",
    "age",
    "launched_by",
    "endpoint",
    "autostop",
]


@dataclass
class Status:
    """skymagic workloads across the allowed contexts."""

    frame: pd.DataFrame
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (context, kind, message)
    hints: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # allowed contexts not in the kubeconfig

    def __str__(self) -> str:
        if self.frame.empty:
            text = "No skymagic workloads in the allowed contexts."
        else:
            text = self.frame.to_string(index=False)
        for ctx, kind, msg in self.errors:
            text += f"\n{ctx}: {kind}: {msg}"
        return "\n".join([text, *self.hints, *(f"Warning: {w}" for w in self.warnings)])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        body = (
            "<p>No skymagic workloads in the allowed contexts.</p>"
            if self.frame.empty
            else self.frame.to_html(index=False, render_links=True)
        )
        errs = "".join(
            f"<li>{html.escape(c)}: {html.escape(k)}: {html.escape(m)}</li>"
            for c, k, m in self.errors
        )
        hints = "".join(f"<li><code>{html.escape(h)}</code></li>" for h in self.hints)
        warns = "".join(f"<li>Warning: {html.escape(w)}</li>" for w in self.warnings)
        return (
            body
            + (f"<ul>{errs}</ul>" if errs else "")
            + (f"<ul>{hints}</ul>" if hints else "")
            + (f"<ul>{warns}</ul>" if warns else "")
        )


def _age(created: str | None) -> str:
    if not created:
        return ""
    try:
        t = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return ""
    s = int(time.time() - t.timestamp())
    if s < 120:
        return f"{max(s, 0)}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _pod_status(pod: dict[str, Any]) -> str:
    st = pod.get("status", {})
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    phase = str(st.get("phase", "Unknown"))
    notes = pod.get("metadata", {}).get("annotations") or {}
    if phase == "Succeeded" and ANNOTATION_AUTOSTOP in notes and ANNOTATION_DEV in notes:
        return "Stopped (autostop)"
    if phase in ("Succeeded", "Failed"):
        stopped = stopped_status(notes)  # a gang's rank stopped because another one failed
        if stopped:
            return stopped
    if phase == "Pending":
        for c in st.get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                return "Pending (unschedulable)"
    return phase


def _gpus(pod: dict[str, Any]) -> str:
    for c in pod.get("spec", {}).get("containers") or []:
        for res, qty in (c.get("resources", {}).get("limits") or {}).items():
            if res.endswith(("/gpu", "/tpu", "/gpu.shared")) or res.startswith("nvidia.com/mig-"):
                return f"{qty} ({res})"
    return ""


RANK_COLUMNS = ["name", "rank", *STATUS_COLUMNS[1:]]


def status(
    settings: Settings | None = None,
    *,
    infra: str | None = None,
    all_users: bool = True,
    hint_style: str = "magic",
    ranks: bool = False,
) -> Status:
    """List skymagic launches (and their Services) in every allowed context.

    One row per launch; a multi-node launch's `nodes` says how many ranks run (`2/2
    running`). With `ranks`, one row per pod, with its rank.

    A labelled Service or Secret whose pod is gone (deleted by hand, a cleanup cut short by
    an outage) is listed too, as "Orphaned (service)" / "Orphaned (secret)", so `down` is not
    the only way to find it.
    """
    import pandas as pd

    settings = settings or Settings()
    targets = resolve_targets(settings, infra, operation="status")
    selector = selector_for(None, None if all_users else current_user())

    def collect(
        client: ContextClient,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        pods, _ = client.list_items("/api/v1/pods", {"labelSelector": selector})
        gone = set(reap_ended(client, pods))  # ended --down pods: removed, not listed
        pods = [p for p in pods if p["metadata"].get("labels", {}).get(LABEL_LAUNCH) not in gone]
        services, _ = client.list_items("/api/v1/services", {"labelSelector": selector})
        try:
            secrets, _ = client.list_items("/api/v1/secrets", {"labelSelector": selector})
        except ForbiddenError:
            secrets = []  # may not list Secrets: orphaned ones stay unseen, the rest shows
        idle = {_key(p): _idle(client, p) for p in pods if _watches_idle(p)}
        return pods, services, secrets, idle

    rows: list[dict[str, Any]] = []
    forwards = active_forwards()
    out = Status(frame=pd.DataFrame(columns=STATUS_COLUMNS), warnings=targets.warnings)
    results: list[ContextResult[Any]] = fan_out(targets, collect, settings)
    down_cmd = "skymagic down" if hint_style == "cli" else "%sky_down"
    for res in results:
        if res.error is not None:
            out.errors.append((res.context, res.error_kind or "", res.error.message))
            continue
        if res.value is None:
            continue
        pods, service_list, secret_list, idle = res.value
        services = {
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": s for s in service_list
        }
        launches = set()
        for pod in pods:
            meta = pod["metadata"]
            ns = meta["namespace"]
            launches.add((ns, _launch_of(pod)))
            svc = services.get(f"{ns}/{meta['name']}")
            endpoint = ""
            urls = [
                f.url
                for f in forwards
                if (f.live.context, f.live.namespace, f.live.name)
                == (res.context, ns, meta["name"])
            ]
            if urls:
                endpoint = ", ".join(urls)
            elif svc is not None:
                ip = svc.get("spec", {}).get("clusterIP", "")
                ports = [str(p.get("port")) for p in svc.get("spec", {}).get("ports") or []]
                endpoint = ", ".join(f"{ip}:{p}" for p in ports)
                for p in ports:
                    out.hints.append(
                        f"kubectl --context '{res.context}' -n {ns} "
                        f"port-forward svc/{meta['name']} {p}:{p}"
                    )
            if _pod_status(pod) == "Running":
                launch = meta.get("labels", {}).get(LABEL_LAUNCH, meta["name"])
                out.hints.append(
                    f"{launch}: shell with `skymagic ssh {launch}` or "
                    f"kubectl --context '{res.context}' -n {ns} exec -it {meta['name']} "
                    "-- /bin/bash"
                )
            rank, num_nodes = rank_of(meta.get("labels") or {})
            rows.append(
                {
                    "name": _launch_of(pod),
                    "rank": rank,
                    "num_nodes": num_nodes,
                    "nodes": f"rank {rank} of {num_nodes}",
                    "context": res.context,
                    "namespace": ns,
                    "status": _pod_status(pod),
                    "gpus": _gpus(pod),
                    "node": pod.get("spec", {}).get("nodeName") or "",
                    "age": _age(meta.get("creationTimestamp")),
                    "launched_by": meta.get("labels", {}).get(LABEL_USER, ""),
                    "endpoint": endpoint,
                    "autostop": idle.get(_key(pod), ""),
                }
            )
        for kind, objs in (("service", service_list), ("secret", secret_list)):
            for obj in objs:
                meta = obj["metadata"]
                name = _launch_of(obj)
                if (meta["namespace"], name) in launches:
                    continue
                rows.append(
                    {
                        "name": name,
                        "context": res.context,
                        "namespace": meta["namespace"],
                        "status": f"Orphaned ({kind})",
                        "gpus": "",
                        "node": "",
                        "age": _age(meta.get("creationTimestamp")),
                        "launched_by": meta.get("labels", {}).get(LABEL_USER, ""),
                        "endpoint": "",
                        "autostop": "",
                    }
                )
                out.hints.append(
                    f"{kind} {meta['namespace']}/{meta['name']} in {res.context} has no pod; "
                    f"remove it with {down_cmd} {name}"
                )
    if ranks:
        out.frame = pd.DataFrame(rows, columns=RANK_COLUMNS)
    else:
        out.frame = pd.DataFrame(launch_rows(rows), columns=STATUS_COLUMNS)
    return out


def _launch_of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return str(meta.get("labels", {}).get(LABEL_LAUNCH, meta["name"]))


def _key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _watches_idle(pod: dict[str, Any]) -> bool:
    """Running pods with autostop, and dev pods: how long they have been idle is worth a look."""
    notes = pod["metadata"].get("annotations") or {}
    running = pod.get("status", {}).get("phase") == "Running"
    return running and (ANNOTATION_AUTOSTOP in notes or ANNOTATION_DEV in notes)


def _idle(client: ContextClient, pod: dict[str, Any]) -> str:
    """'idle 3m, stops in 2m' for one pod (one exec); '' when it cannot be asked."""
    notes = pod["metadata"].get("annotations") or {}
    minutes = float(notes[ANNOTATION_AUTOSTOP]) if ANNOTATION_AUTOSTOP in notes else None
    out = bytearray()
    codes: list[int] = []

    def probe() -> None:
        with contextlib.suppress(SkymagicError):
            codes.append(
                exec_stream(
                    client,
                    pod["metadata"]["namespace"],
                    pod["metadata"]["name"],
                    idle_probe(),
                    on_stdout=out.extend,
                ).exit_code
            )

    # The official client's WebSocket has no timeout of its own: a pod (or a context) that
    # does not answer costs this column, never the whole status.
    worker = threading.Thread(target=probe, daemon=True, name="idle-probe")
    worker.start()
    worker.join(client.settings.request_timeout * 2)
    if codes != [0]:
        return ""
    note = idle_note(bytes(out).decode("utf-8", "replace"), minutes)
    return note if minutes is not None else (f"off ({note})" if note else "off")


def _locate(
    name: str, settings: Settings, rank: int | None = None
) -> tuple[ContextClient, str, str]:
    """Find this user's launch `name` (or any user's, if unique) in the allowed contexts.

    A multi-node launch's pod of `rank` (default 0).
    """
    from skymagic.core.client import client_for

    targets = resolve_targets(settings, None, operation="status")

    def find(client: ContextClient) -> list[dict[str, Any]]:
        items, _ = client.list_items("/api/v1/pods", {"labelSelector": selector_for(name, None)})
        return items

    hits: list[tuple[str, dict[str, Any]]] = []
    for res in fan_out(targets, find, settings):
        hits.extend((res.context, p) for p in res.value or [])
    if not hits:
        raise ConfigError(
            f"no skymagic launch named '{name}' in the allowed contexts; see %sky_status"
        )
    mine = [h for h in hits if h[1]["metadata"].get("labels", {}).get(LABEL_USER) == current_user()]
    hits = mine or hits
    want = rank or 0
    ranked = [h for h in hits if rank_of(h[1]["metadata"].get("labels") or {})[0] == want]
    if not ranked:
        n = rank_of(hits[0][1]["metadata"].get("labels") or {})[1]
        raise ConfigError(
            f"launch '{name}' has no rank {want}: it runs on {n} node{'s' if n != 1 else ''} "
            f"(ranks 0-{n - 1}); pick one with --rank"
        )
    ctx, pod = ranked[0]
    client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
    return client, pod["metadata"]["namespace"], pod["metadata"]["name"]


def logs(
    name: str,
    settings: Settings | None = None,
    *,
    follow: bool = False,
    tail: int | None = None,
    rank: int | None = None,
    read_timeout: float = FOLLOW_READ_TIMEOUT_S,
    reconnect_for: float = RECONNECT_FOR_S,
    hint_style: str = "magic",
) -> Iterator[str]:
    """The log lines of launch `name` (following until it ends with `follow`).

    A multi-node launch: rank 0's, or `rank`'s. `follow` is the launch's own follow
    (`follow.follow_lines`): a stream silent for `read_timeout` is a stall, after which the pod
    is re-read and, while it runs, followed again from where the log stood (no line twice); an
    API server unreachable for `reconnect_for` seconds ends it with a TransportError whose
    command (`hint_style` "magic" or "cli") follows it again.
    """
    settings = settings or Settings()
    client, ns, pod = _locate(name, settings, rank)
    if follow:
        out = yield from follow_lines(
            client,
            ns,
            pod,
            _Unreported(),
            time.monotonic(),
            read_timeout=read_timeout,
            reconnect_for=reconnect_for,
            tail=tail,
        )
        if out.phase == "Running":
            again = command(hint_style, "logs", name) + " --follow"
            raise TransportError(
                f"the API server did not answer for {reconnect_for:g} s while following "
                f"'{name}' ({out.lost}); the pod keeps running there: run {again} again",
                context=client.name,
            )
        return
    path = f"/api/v1/namespaces/{ns}/pods/{pod}/log"
    query: dict[str, Any] = {}
    if tail is not None:
        query["tailLines"] = tail
    resp = client.request("GET", path, query=query)
    yield from resp.data.decode("utf-8", "replace").splitlines()


class _Unreported:
    """`logs --follow` prints log lines only: reconnects are silent, giving up is the error."""

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        pass

    def on_message(self, text: str) -> None:
        pass


class Deleted(list[tuple[str, str, str]]):
    """What `down` deleted, as (context, kind, namespace/name), plus contexts it could not check.

    A list (so callers iterate it directly) with `errors`: (context, message) for contexts
    that failed, so an unreachable context is reported instead of silently skipped (the
    launch may live there).
    """

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[tuple[str, str]] = []
        # (launch, job id): managed jobs' launches left alone (`down --all` without --force)
        self.kept: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        """One line: the magic already printed each object, a notebook needs no second list."""
        counts: dict[str, int] = {}
        for _ctx, kind, _what in self:
            counts[kind] = counts.get(kind, 0) + 1
        parts = ", ".join(
            f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items())
        )
        where = len({ctx for ctx, _k, _w in self})
        text = f"Deleted {parts or 'nothing'} in {where} context{'s' if where != 1 else ''}"
        if self.errors:
            text += f"; {len(self.errors)} context(s) could not be checked"
        if self.kept:
            text += f"; kept {len(self.kept)} managed job pod(s) (cancel jobs to stop them)"
        return text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def down(
    names: list[str],
    settings: Settings | None = None,
    *,
    all_mine: bool = False,
    force: bool = False,
    hint_style: str = "magic",
) -> Deleted:
    """Delete this user's launches (pods, Services, kubeconfig Secrets) in every allowed context.

    Only the caller's own launches: names are unique per user, so another user's launch with
    the same name is left alone (and named in the error when it is the only match).

    A managed job's pod (labelled with its job id) is not deleted: to the jobs controller that
    is a disruption, and it relaunches the job elsewhere. Naming one is refused before anything
    is deleted, with the job's cancel command; `all_mine` leaves job pods alone and lists them
    in `Deleted.kept`. `force` deletes them anyway (the job is then recovered, as after a
    preemption: a way to move a job off a context).
    """
    settings = settings or Settings()
    if not names and not all_mine:
        raise ConfigError("name the launches to stop, or use --all for all of yours")
    targets = resolve_targets(settings, None, operation="down")
    user = current_user()
    selectors = [selector_for(None, user)] if all_mine else [selector_for(n, user) for n in names]
    failed: list[tuple[str, str]] = []
    kept: dict[str, str] = {}
    if not force:
        kept, failed = _job_launches(targets, settings, selectors)
        # A context that failed the look-up is not asked again (one timeout, not two).
        gone = {ctx for ctx, _m in failed}
        targets = replace(targets, contexts=tuple(c for c in targets.contexts if c not in gone))
    if kept and not all_mine:
        launch, job = next(iter(kept.items()))
        cancel = "%sky_jobs_cancel" if hint_style == "magic" else "skymagic jobs cancel"
        down_cmd = "%sky_down" if hint_style == "magic" else "skymagic down"
        raise ConfigError(
            f"'{launch}' is the pod of managed job {job}: its controller would relaunch the "
            f"job elsewhere; stop the job with `{cancel} {job}` (or `{down_cmd} {launch} "
            "--force` to delete the pod anyway and let the job recover)"
        )

    def remove(client: ContextClient) -> list[tuple[str, str]]:
        gone: list[tuple[str, str]] = []
        for sel in selectors:
            for kind, path in (("pod", "pods"), ("service", "services"), ("secret", "secrets")):
                items, _ = client.list_items(f"/api/v1/{path}", {"labelSelector": sel})
                for obj in items:
                    meta = obj["metadata"]
                    if (meta.get("labels") or {}).get(LABEL_LAUNCH) in kept:
                        continue
                    try:
                        client.request(
                            "DELETE",
                            f"/api/v1/namespaces/{meta['namespace']}/{path}/{meta['name']}",
                            body={"gracePeriodSeconds": 0} if kind == "pod" else None,
                        )
                        gone.append((kind, f"{meta['namespace']}/{meta['name']}"))
                    except NotFoundError:
                        pass
        return gone

    deleted = Deleted()
    deleted.kept = list(kept.items())
    deleted.errors.extend(failed)
    for res in fan_out(targets, remove, settings):
        if res.error is not None:
            deleted.errors.append((res.context, res.error.message))
        for kind, what in res.value or []:
            deleted.append((res.context, kind, what))
    if deleted.errors and not deleted:
        raise ConfigError(
            "could not delete: " + "; ".join(f"{c}: {m}" for c, m in deleted.errors),
        )
    if not deleted and names:
        owners = _other_owners(names, targets, settings, user)
        extra = f" ({owners})" if owners else ""
        raise ConfigError(
            f"you have no skymagic launch named {', '.join(repr(n) for n in names)} in the "
            f"allowed contexts{extra}; see %sky_status"
        )
    return deleted


def _job_launches(
    targets: Targets, settings: Settings, selectors: list[str]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Launch name -> managed job id, for the selected launches whose pods belong to a job;
    and the contexts that could not be searched, with why."""
    from skymagic.jobs.model import LABEL_JOB_ID  # (jobs import launches: not at module level)

    def find(client: ContextClient) -> dict[str, str]:
        found: dict[str, str] = {}
        for sel in selectors:
            items, _ = client.list_items("/api/v1/pods", {"labelSelector": f"{sel},{LABEL_JOB_ID}"})
            for pod in items:
                labels = pod["metadata"].get("labels") or {}
                found[str(labels.get(LABEL_LAUNCH))] = str(labels[LABEL_JOB_ID])
        return found

    out: dict[str, str] = {}
    failed: list[tuple[str, str]] = []
    for res in fan_out(targets, find, settings):
        if res.error is not None:
            failed.append((res.context, res.error.message))
        out.update(res.value or {})
    return out, failed


def _other_owners(names: list[str], targets: Targets, settings: Settings, user: str) -> str:
    """Name other users' launches with these names (so 'not found' is not a mystery)."""

    def find(client: ContextClient) -> list[str]:
        out: list[str] = []
        for n in names:
            items, _ = client.list_items("/api/v1/pods", {"labelSelector": selector_for(n, None)})
            owners = [p["metadata"].get("labels", {}).get(LABEL_USER) for p in items]
            out.extend(f"'{n}' in {client.name} belongs to {o}" for o in owners if o != user)
        return out

    found = [x for res in fan_out(targets, find, settings) for x in res.value or []]
    return "; ".join(found)
