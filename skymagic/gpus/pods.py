"""Which live pods hold the GPUs of some nodes: what the dashboard's details panel lists.

An operation like `show_gpus`: resolve the targets (the context must be allowed), then one
list on that context through the fan-out (its time budget, its error wrapping):

    GET /api/v1/pods?fieldSelector=spec.nodeName=NODE,status.phase!=Succeeded,...

for one node (the server filters), or the context's live pods, filtered here, for several
(a GPU row of a card spans every node with that GPU). A pod counts when it is bound to one of
the nodes, is not terminal, and its effective request for any of the resources is above zero
(the same rule the inventory counts with: `counting.pod_binding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.fanout import fan_out
from skymagic.core.targets import Settings, resolve_targets
from skymagic.gpus.counting import job_of, pod_binding
from skymagic.gpus.lists import POD_FIELD_SELECTOR, PODS_PATH

__all__ = ["PodRow", "job_of", "pods_on_nodes"]


# Who a pod is for: skymagic's own launches carry the user; other work its controller.
_USER_LABEL = "skymagic.dev/user"


@dataclass(frozen=True)
class PodRow:
    """One pod holding GPUs: where it runs, how many of the asked resources it requests, who
    holds them (a skymagic user, else the controller such as "Job/train") and since when
    (`started`: seconds since the epoch, from status.startTime or else creation; None unknown).
    `job`: the managed job the pod runs ("3", or "3 (attempt 2)" after a recovery; "" for
    other pods), from its labels (`counting.job_of`, the rule the inventory's `jobs` uses).
    """

    namespace: str
    name: str
    node: str
    gpus: int
    holder: str = ""
    started: float | None = None
    job: str = ""


def _holder(meta: dict[str, Any]) -> str:
    user = (meta.get("labels") or {}).get(_USER_LABEL)
    if user:
        return f"skymagic: {user}"
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind', '?')}/{ref.get('name', '?')}"
    return ""


def _epoch(stamp: Any) -> float | None:
    """An RFC 3339 time ("2024-05-01T12:00:00Z") as seconds since the epoch."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pods_on_nodes(
    settings: Settings, context: str, nodes: Sequence[str], resources: Sequence[str]
) -> list[PodRow]:
    """Live pods bound to `nodes` of `context` that request any of `resources`, sorted.

    Raises the context's error (a `SkymagicError`) when the list fails; no nodes: no request.
    """
    if not nodes:
        return []
    targets = resolve_targets(settings, f"k8s/{context}", operation="gpus")
    wanted = frozenset(nodes)
    field = POD_FIELD_SELECTOR
    if len(wanted) == 1:
        field = f"spec.nodeName={next(iter(wanted))},{POD_FIELD_SELECTOR}"

    def pick(pod: dict[str, Any]) -> PodRow | None:
        bound = pod_binding(pod)
        if bound is None or bound[0] not in wanted:
            return None
        gpus = sum(bound[1].get(r, 0.0) for r in resources)
        if gpus <= 0:
            return None
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        return PodRow(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            node=bound[0],
            gpus=round(gpus),
            holder=_holder(meta),
            started=_epoch(status.get("startTime")) or _epoch(meta.get("creationTimestamp")),
            job=job_of(meta),
        )

    def list_pods(client: ContextClient) -> list[PodRow]:
        items, _rv = client.list_items(PODS_PATH, {"fieldSelector": field}, pick=pick)
        return [r for r in items if r is not None]

    (result,) = fan_out(targets, list_pods, settings)
    if result.error is not None:
        raise result.error
    rows: list[PodRow] = result.value or []
    return sorted(rows, key=lambda r: (r.node, r.namespace, r.name))
