"""The simulated kube-scheduler: binds pending pods, or explains like the real one why not.

Filters run in the real default profile's order, and the first failing filter is that node's
reason: NodeUnschedulable, TaintToleration, NodeAffinity (nodeSelector + required affinity),
NodeResourcesFit (every insufficient resource counts). The FailedScheduling message is built
the way kube-scheduler builds it: a histogram of "<count> <reason>" strings sorted as text, then
the preemption verdict, e.g. "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.
preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod..".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from skymagic.sim.quantity import effective_requests, parse_quantity

__all__ = ["NodeUsage", "explain", "fits", "node_allocatable", "reasons_on_new_node", "tolerates"]

TERMINAL = ("Succeeded", "Failed")
# Filter failures that evicting lower-priority pods could fix (NodeResourcesFit): kube-scheduler
# marks them Unschedulable, every other filter failure UnschedulableAndUnresolvable.
_RESOLVABLE = ("Insufficient ", "Too many pods")


def node_allocatable(node: Mapping[str, Any]) -> dict[str, float]:
    alloc = node.get("status", {}).get("allocatable", {})
    return {res: parse_quantity(q) for res, q in alloc.items()}


class NodeUsage:
    """What the bound, non-terminal pods request on each node, kept up to date incrementally."""

    def __init__(self) -> None:
        self.by_node: dict[str, dict[str, float]] = {}
        self.pods: dict[str, tuple[str, dict[str, float]]] = {}

    def bulk_add(self, pods: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Account for many new pods; pods with identical container specs share one parse."""
        cache: dict[bytes, dict[str, float]] = {}
        for key, pod in pods:
            spec = pod.get("spec", {})
            node = spec.get("nodeName")
            if not node or pod.get("status", {}).get("phase") in TERMINAL:
                continue
            sig = msgspec.json.encode(
                [spec.get("containers"), spec.get("initContainers"), spec.get("overhead")]
            )
            req = cache.get(sig)
            if req is None:
                req = effective_requests(dict(spec))
                req["pods"] = req.get("pods", 0.0) + 1
                cache[sig] = req
            self.pods[key] = (node, req)
            used = self.by_node.setdefault(node, {})
            for res, qty in req.items():
                used[res] = used.get(res, 0.0) + qty

    def update(self, key: str, pod: Mapping[str, Any] | None) -> None:
        """Account for a pod's new state (None = deleted)."""
        old = self.pods.pop(key, None)
        if old is not None:
            used = self.by_node.setdefault(old[0], {})
            for res, qty in old[1].items():
                used[res] = used.get(res, 0.0) - qty
        if pod is None:
            return
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in TERMINAL:
            return
        req = effective_requests(pod["spec"])
        req["pods"] = req.get("pods", 0.0) + 1
        self.pods[key] = (node, req)
        used = self.by_node.setdefault(node, {})
        for res, qty in req.items():
            used[res] = used.get(res, 0.0) + qty


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Kubernetes toleration matching (operator Exists/Equal, empty key and effect wildcards)."""
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key") or ""
        op = tol.get("operator") or "Equal"
        if op == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expression(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key = expr.get("key", "")
    op = expr.get("operator", "")
    values = expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _affinity_ok(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (
        (pod_spec.get("affinity") or {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if not required:
        return True
    terms = required.get("nodeSelectorTerms") or []
    return any(
        all(_match_expression(labels, e) for e in term.get("matchExpressions") or [])
        for term in terms
    )


def _node_reasons(
    pod_spec: Mapping[str, Any],
    request: Mapping[str, float],
    node: Mapping[str, Any],
    used: Mapping[str, float],
) -> list[str]:
    tolerations = pod_spec.get("tolerations") or []
    nspec = node.get("spec", {})
    if nspec.get("unschedulable") and not tolerates(
        tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ):
        return ["node(s) were unschedulable"]
    for taint in nspec.get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if taint.get("key") == "node.kubernetes.io/unschedulable":
            continue
        if not tolerates(tolerations, taint):
            return [
                f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
            ]
    if not _affinity_ok(pod_spec, node.get("metadata", {}).get("labels") or {}):
        return ["node(s) didn't match Pod's node affinity/selector"]
    alloc = node_allocatable(node)
    reasons = []
    if used.get("pods", 0.0) + 1 > alloc.get("pods", 110.0):
        reasons.append("Too many pods")
    for res, qty in request.items():
        if qty <= 0:
            continue
        if used.get(res, 0.0) + qty > alloc.get(res, 0.0) + 1e-9:
            reasons.append(f"Insufficient {res}")
    return reasons


def reasons_on_new_node(pod: Mapping[str, Any], node: Mapping[str, Any]) -> list[str]:
    """Why `pod` would not fit on an empty `node` (the filters above; [] when it would).

    What a cluster autoscaler asks of its node group's template node before a scale-up.
    """
    spec = pod.get("spec", {})
    return _node_reasons(spec, effective_requests(dict(spec)), node, {})


def fits(
    pod: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]], usage: NodeUsage
) -> tuple[str | None, str]:
    """Pick a node for the pod (the least allocated that fits), or say why none fits."""
    spec = pod.get("spec", {})
    request = effective_requests(dict(spec))
    histogram: dict[str, int] = {}
    total = 0
    resolvable = 0
    best: tuple[float, str] | None = None
    for node in nodes:
        total += 1
        name = node["metadata"]["name"]
        used = usage.by_node.get(name, {})
        reasons = _node_reasons(spec, request, node, used)
        if reasons:
            for r in reasons:
                histogram[r] = histogram.get(r, 0) + 1
            if all(r.startswith(_RESOLVABLE) for r in reasons):
                resolvable += 1
            continue
        alloc = node_allocatable(node)
        # Least-allocated scoring on cpu, like the default profile, keeps ties deterministic.
        score = (alloc.get("cpu", 0.0) - used.get("cpu", 0.0)) / max(alloc.get("cpu", 1.0), 1e-9)
        if best is None or score > best[0]:
            best = (score, name)
    if best is not None:
        return best[1], ""
    return None, explain(total, histogram, resolvable)


def explain(total: int, histogram: Mapping[str, int], resolvable: int | None = None) -> str:
    """kube-scheduler's FailedScheduling wording (FitError.Error() plus the preemption verdict).

    Filter reasons are counted per node and printed as "<count> <reason>" strings sorted as
    strings (so the count sorts first). DefaultPreemption then reports, per node, "Preemption
    is not helpful for scheduling" when a filter failed that evicting pods cannot fix (taints,
    cordon, affinity) and "No preemption victims found for incoming pod" when only resources
    were short (the simulator never preempts). The message ends in "..": the preemption
    FitError ends with "." and the scheduler appends its own.
    """
    if total == 0:
        return "no nodes available to schedule pods"
    parts = ", ".join(sorted(f"{n} {r}" for r, n in histogram.items()))
    preemption = explain_preemption(total, resolvable)
    return f"0/{total} nodes are available: {parts}. preemption: {preemption}."


def explain_preemption(total: int, resolvable: int | None = None) -> str:
    """The preemption part of the message: `resolvable` nodes only lacked resources."""
    fixable = total if resolvable is None else resolvable
    verdicts = []
    if fixable:
        verdicts.append(f"{fixable} No preemption victims found for incoming pod")
    if total - fixable:
        verdicts.append(f"{total - fixable} Preemption is not helpful for scheduling")
    return f"0/{total} nodes are available: {', '.join(sorted(verdicts))}."
