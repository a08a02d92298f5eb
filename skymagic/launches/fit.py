"""What WOULD fit now, when the request fits nowhere: smaller counts, other GPUs, fewer nodes.

A plan that skips every context says why per context; this module adds what the user can ask
for instead, from the same live per-node free counts the plan read (no extra request):
"H100:8 fits nowhere now; H100:4 fits in my-h100-cluster (3 nodes); A100-80GB:8 fits in
my-a100-cluster (1 node)".

The node rule is the plan's: a node takes a pod when it is Healthy, the pod's nodeSelector and
node affinity admit it (nodematch.py: spot labels, pod_config placement), its tolerations
tolerate the node's NoSchedule/NoExecute taints (kube-scheduler's rule, taints.py: a GPU pod
tolerates the GPU taints, a CPU-only pod does not, a pod_config may add more) and it has the
GPUs, vCPUs and memory free. A spot (or
on-demand) request that does not fit is also offered the other kind of capacity when that
fits: "H100:8 spot fits nowhere now; H100:8 on-demand fits in a (1 node)". A request's vCPUs and
memory scale with its GPU count unless the task names them (SkyPilot's defaults), so a smaller
GPU count also asks for less CPU. Pure: plain records in, plain values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from skymagic.gpus.accelerators import gpu_names_match
from skymagic.launches.nodematch import node_rule
from skymagic.launches.task import Task

__all__ = [
    "Fit",
    "advice_text",
    "capacity",
    "context_advice",
    "healthy",
    "num_text",
    "number",
    "what_fits",
]


@dataclass(frozen=True)
class Fit:
    """A request that fits now, and where: (context, nodes with room) in failover order."""

    gpu: str | None  # None: a CPU-only request
    count: int  # GPUs per node
    num_nodes: int
    where: tuple[tuple[str, int], ...]
    cpus: float = 0.0  # CPU-only alternatives: the vCPUs and GB that fit on one node
    memory_gb: float = 0.0
    capacity: str = ""  # "spot" | "on-demand": the nodes it counted ("": any node)

    def request(self) -> str:
        """The request as a user writes it: H100:4, H100:8 x2 nodes, 6 vCPU 20 GB, H100:8 spot."""
        return _request_text(
            self.gpu, self.count, self.cpus, self.memory_gb, self.num_nodes, self.capacity
        )

    def places(self) -> str:
        parts = [f"{ctx} ({n} node{'s' if n != 1 else ''})" for ctx, n in self.where]
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    def __str__(self) -> str:
        return f"{self.request()} fits in {self.places()}"


# The node rule's reading of an inventory record, shared with plan.py so the plan and the
# advice never disagree on which node has room.


def num_text(x: float) -> str:
    """A count of vCPUs or GB as a user writes it: 4, not 4.0; 0.5 stays 0.5."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def number(x: Any) -> float | None:
    """A record's numeric field, or None when it is missing or not a number (unknown)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def healthy(rec: Mapping[str, Any]) -> bool:
    """Whether a node record is up for new pods: Ready and not cordoned (a record without a
    status counts as up). Its taints are the pod's business: NodeRule.untolerated."""
    return str(rec.get("status", "Healthy")) not in ("NotReady", "Cordoned")


def _room(rec: Mapping[str, Any], cpus: float, memory_gb: float) -> bool:
    cpu_free, mem_free = number(rec.get("cpu_free")), number(rec.get("memory_gb_free"))
    return (cpu_free is None or cpu_free >= cpus) and (mem_free is None or mem_free >= memory_gb)


def _counts(requested: int) -> list[int]:
    """The GPU counts to offer, largest first: the request, then powers of two below it."""
    out = {requested}
    k = 1
    while k < requested:
        out.add(k)
        k *= 2
    return sorted(out, reverse=True)


def capacity(task: Task) -> str:
    """The kind of node a task's `use_spot` asks for: "spot", "on-demand", or "" (any)."""
    if task.use_spot is None:
        return ""
    return "spot" if task.use_spot else "on-demand"


def _nodes_with_room(task: Task, gpu: str, count: int, recs: Sequence[Mapping[str, Any]]) -> int:
    sized = replace(task, gpu=gpu, gpu_count=count)
    cpus, mem = sized.cpu_request, sized.memory_request_gb
    rule = node_rule(sized)
    return sum(
        1
        for r in recs
        if healthy(r)
        and rule.untolerated(r) is None
        and int(number(r.get("gpu_free")) or 0) >= count
        and _room(r, cpus, mem)
        and rule.admits(r)
    )


def context_advice(task: Task, recs: Sequence[Mapping[str, Any]]) -> list[Fit]:
    """What fits in ONE context now (its node records), best first; the request included.

    A spot task is also offered on-demand nodes (and an on-demand one spot nodes) for its
    own GPU, when the request or a smaller count fits there.
    """
    out = _advice(task, recs, other_gpus=True)
    if task.use_spot is not None:
        flipped = replace(task, use_spot=not task.use_spot)
        out.extend(_advice(flipped, recs, other_gpus=False))
    return out


def _advice(task: Task, recs: Sequence[Mapping[str, Any]], *, other_gpus: bool) -> list[Fit]:
    ctx = str(recs[0]["context"]) if recs else ""
    nodes = task.num_nodes
    cap = capacity(task)
    if not task.gpu_count:
        return _cpu_advice(task, ctx, recs, cap)
    assert task.gpu is not None
    by_gpu: dict[str, list[Mapping[str, Any]]] = {}
    for r in recs:
        if r.get("gpu"):
            by_gpu.setdefault(str(r["gpu"]), []).append(r)
    # The requested GPU first (any name the request matches), then the others by name.
    names = sorted(by_gpu, key=lambda g: (not gpu_names_match(task.gpu or "", g), g))
    out: list[Fit] = []
    for gpu in names:
        group = by_gpu[gpu]
        same = gpu_names_match(task.gpu, gpu)
        if not same and not other_gpus:
            continue
        for count in _counts(task.gpu_count):
            room = _nodes_with_room(task, gpu, count, group)
            if room >= nodes:
                out.append(
                    Fit(task.gpu if same else gpu, count, nodes, ((ctx, room),), capacity=cap)
                )
                break
        if same and nodes > 1 and not (out and out[-1].count == task.gpu_count):
            # A gang that does not fit: the full per-node request on fewer nodes.
            room = _nodes_with_room(task, gpu, task.gpu_count, group)
            if room:
                out.append(Fit(task.gpu, task.gpu_count, room, ((ctx, room),), capacity=cap))
    return out


def _cpu_advice(task: Task, ctx: str, recs: Sequence[Mapping[str, Any]], cap: str) -> list[Fit]:
    seen: set[str] = set()
    usable = []
    rule = node_rule(task)
    for r in recs:
        name = str(r.get("node"))
        if name in seen or not healthy(r):
            continue
        seen.add(name)
        if rule.untolerated(r) is not None or not rule.admits(r):
            continue
        usable.append(r)
    room = sum(1 for r in usable if _room(r, task.cpu_request, task.memory_request_gb))
    if room >= task.num_nodes:
        fit = Fit(
            None,
            0,
            task.num_nodes,
            ((ctx, room),),
            task.cpu_request,
            task.memory_request_gb,
            capacity=cap,
        )
        return [fit]
    best = max(usable, key=lambda r: number(r.get("cpu_free")) or 0.0, default=None)
    if best is None:
        return []
    cpus = math.floor(number(best.get("cpu_free")) or 0.0)
    mem = math.floor(number(best.get("memory_gb_free")) or 0.0)
    if cpus <= 0 or mem <= 0:
        return []
    return [Fit(None, 0, 1, ((ctx, 1),), float(cpus), float(mem), capacity=cap)]


def what_fits(
    task: Task, contexts: Sequence[str], nodes_by_ctx: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[Fit]:
    """What fits now across `contexts` (failover order), one Fit per distinct request.

    Requests for the asked-for GPU come first (largest count first), then other GPUs; each
    lists every context where it fits, in failover order.
    """
    Key = tuple[str | None, int, int, float, float, str]
    merged: dict[Key, list[tuple[str, int]]] = {}
    for ctx in contexts:
        recs = nodes_by_ctx.get(ctx) or []
        for fit in context_advice(task, recs):
            key = (fit.gpu, fit.count, fit.num_nodes, fit.cpus, fit.memory_gb, fit.capacity)
            merged.setdefault(key, []).extend(fit.where)
    own = capacity(task)

    def order(key: Key) -> tuple[bool, str, int, int, bool]:
        gpu, count, nodes, cpus, _mem, cap = key
        same = gpu is None or (task.gpu is not None and gpu == task.gpu)
        return (not same, gpu or "", -nodes, -count if gpu else -int(cpus), cap != own)

    return [
        Fit(k[0], k[1], k[2], tuple(where), k[3], k[4], capacity=k[5])
        for k, where in sorted(merged.items(), key=lambda kv: order(kv[0]))
    ]


def requested(task: Task) -> str:
    """The task's own request, worded like a Fit's."""
    return _request_text(
        str(task.gpu) if task.gpu_count else None,
        task.gpu_count,
        task.cpu_request,
        task.memory_request_gb,
        task.num_nodes,
        capacity(task),
    )


def _request_text(
    gpu: str | None, count: int, cpus: float, memory_gb: float, num_nodes: int, cap: str = ""
) -> str:
    """A request as a user writes it (GPUs, or vCPUs and GB without one; nodes past one;
    the kind of node, spot or on-demand, when the task names one)."""
    text = f"{num_text(cpus)} vCPU, {num_text(memory_gb)} GB" if gpu is None else f"{gpu}:{count}"
    if cap:
        text += f" {cap}"
    if num_nodes > 1:
        text += f" x{num_nodes} nodes"
    return text


def advice_text(task: Task, fits: Sequence[Fit]) -> str:
    """One line: what was asked fits nowhere now, and what would fit, where."""
    own = requested(task)
    others = [f for f in fits if f.request() != own]
    head = f"{own} fits nowhere now"
    if not others:
        return head + "; nothing smaller fits in any allowed context either"
    return head + "; " + "; ".join(str(f) for f in others)
