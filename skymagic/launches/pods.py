"""A launch's live pod, found by name across the allowed contexts; removal of ended --down pods.

Exec, port-forward, ssh and a re-run `%%sky_launch` all start here: one labelled list per
allowed context (in parallel) finds the caller's launch (another user's when it is the only
one), and the pod must be Running to work on it. A multi-node launch is found as a whole:
rank 0's pod by default (`rank=N` for another), or every rank (find_ranks).

`--down` needs no API access in the pod: the pod only exits. Any later skymagic call that
lists launches (status, launch, exec, ...) removes the objects of an ended pod annotated
`skymagic.dev/down` (reap_ended), so they disappear the next time anyone looks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from skymagic.core.client import ContextClient, client_for
from skymagic.core.fanout import fan_out
from skymagic.core.targets import Settings, Targets, current_user, resolve_targets
from skymagic.errors import ConfigError, NotFoundError, SkymagicError
from skymagic.launches.podspec import ANNOTATION_DOWN, LABEL_LAUNCH, LABEL_USER, selector_for
from skymagic.launches.ranks import rank_of

__all__ = ["LivePod", "find_pod", "find_ranks", "reap_ended"]


@dataclass
class LivePod:
    """A launch's pod and the client of its context."""

    client: ContextClient
    context: str
    namespace: str
    name: str
    pod: dict[str, Any]

    @property
    def phase(self) -> str:
        return str(self.pod.get("status", {}).get("phase", "Unknown"))

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.pod.get("metadata", {}).get("annotations") or {})

    def kubectl(self) -> str:
        """The kubectl prefix for this pod's context and namespace."""
        return f"kubectl --context '{self.context}' -n {self.namespace}"


def _launch_pods(
    name: str, settings: Settings, targets: Targets | None
) -> tuple[Targets, str, list[dict[str, Any]]]:
    """The context and pods (every rank) of the caller's launch `name`.

    The caller's own launch wins over another user's; its context is the first one holding it.
    """
    targets = targets or resolve_targets(settings, None, operation="status")

    def find(client: ContextClient) -> list[dict[str, Any]]:
        items, _ = client.list_items("/api/v1/pods", {"labelSelector": selector_for(name, None)})
        return items

    hits: list[tuple[str, dict[str, Any]]] = []
    errors: list[str] = []
    for res in fan_out(targets, find, settings):
        if res.error is not None:
            errors.append(f"{res.context}: {res.error.message}")
        hits.extend((res.context, p) for p in res.value or [])
    if not hits:
        extra = f" (could not check {'; '.join(errors)})" if errors else ""
        raise ConfigError(
            f"no skymagic launch named '{name}' in the allowed contexts{extra}; see %sky_status"
        )
    me = current_user()
    mine = [h for h in hits if h[1]["metadata"].get("labels", {}).get(LABEL_USER) == me]
    ctx, first = (mine or hits)[0]
    ns = first["metadata"]["namespace"]
    owner = first["metadata"].get("labels", {}).get(LABEL_USER)
    pods = [
        p
        for c, p in hits
        if c == ctx
        and p["metadata"]["namespace"] == ns
        and p["metadata"].get("labels", {}).get(LABEL_USER) == owner
    ]
    return targets, ctx, sorted(pods, key=lambda p: rank_of(p["metadata"].get("labels") or {}))


def _live(
    targets: Targets, settings: Settings, ctx: str, pod: dict[str, Any], launch: str, running: bool
) -> LivePod:
    client = client_for(targets.kubeconfig.resolve(ctx), settings.client)
    live = LivePod(client, ctx, pod["metadata"]["namespace"], pod["metadata"]["name"], pod)
    if running and (live.phase != "Running" or pod["metadata"].get("deletionTimestamp")):
        state = "being deleted" if pod["metadata"].get("deletionTimestamp") else live.phase
        if state == "Succeeded" and live.annotations.get("skymagic.dev/autostop-minutes"):
            state = "stopped (autostop)"
        rank, n = rank_of(pod["metadata"].get("labels") or {})
        which = f"launch '{launch}'" + (f" (rank {rank})" if n > 1 else "")
        raise ConfigError(
            f"{which} is {state.lower()} in {ctx}, not running; launch it again with "
            f"%%sky_launch {launch}",
            context=ctx,
        )
    return live


def find_pod(
    name: str,
    settings: Settings | None = None,
    *,
    running: bool = True,
    targets: Targets | None = None,
    rank: int = 0,
) -> LivePod:
    """The caller's launch `name` in any allowed context (Running, unless `running=False`).

    A multi-node launch answers with rank `rank`'s pod (rank 0's, named NAME, by default).
    """
    settings = settings or Settings()
    targets, ctx, pods = _launch_pods(name, settings, targets)
    by_rank = {rank_of(p["metadata"].get("labels") or {})[0]: p for p in pods}
    if rank not in by_rank:
        n = rank_of(pods[0]["metadata"].get("labels") or {})[1]
        raise ConfigError(
            f"launch '{name}' has no rank {rank}: it has {n} node{'s' if n != 1 else ''} "
            f"(ranks 0-{n - 1}); see %sky_status {name} --ranks",
            context=ctx,
        )
    return _live(targets, settings, ctx, by_rank[rank], name, running)


def find_ranks(
    name: str, settings: Settings | None = None, *, targets: Targets | None = None
) -> list[LivePod]:
    """Every rank's running pod of launch `name`, in rank order (one for a single-pod launch).

    Fails naming the rank when one is missing or not running: a command meant for every rank
    does not run on only some.
    """
    settings = settings or Settings()
    targets, ctx, pods = _launch_pods(name, settings, targets)
    n = rank_of(pods[0]["metadata"].get("labels") or {})[1]
    have = {rank_of(p["metadata"].get("labels") or {})[0] for p in pods}
    missing = sorted(set(range(n)) - have)
    if missing:
        raise ConfigError(
            f"launch '{name}' in {ctx} is missing rank {missing[0]} of its {n} nodes; "
            f"see %sky_status {name} --ranks",
            context=ctx,
        )
    return [_live(targets, settings, ctx, p, name, True) for p in pods]


def reap_ended(client: ContextClient, pods: list[dict[str, Any]]) -> list[str]:
    """Delete the objects of ended pods marked --down; the names of the launches removed."""
    removed: list[str] = []
    for pod in pods:
        meta = pod.get("metadata", {})
        if (meta.get("annotations") or {}).get(ANNOTATION_DOWN) != "true":
            continue
        if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            continue
        if meta.get("deletionTimestamp"):
            continue
        launch = (meta.get("labels") or {}).get(LABEL_LAUNCH, meta.get("name"))
        user = (meta.get("labels") or {}).get(LABEL_USER)
        ns = meta["namespace"]
        sel = selector_for(launch, user)
        try:
            for path in ("services", "secrets"):
                items, _ = client.list_items(
                    f"/api/v1/namespaces/{ns}/{path}", {"labelSelector": sel}
                )
                for obj in items:
                    with contextlib.suppress(NotFoundError):
                        client.request(
                            "DELETE", f"/api/v1/namespaces/{ns}/{path}/{obj['metadata']['name']}"
                        )
            with contextlib.suppress(NotFoundError):
                client.request(
                    "DELETE",
                    f"/api/v1/namespaces/{ns}/pods/{meta['name']}",
                    body={"gracePeriodSeconds": 0},
                )
        except SkymagicError:
            continue  # try again on the next look
        removed.append(str(launch))
    return removed
