"""Counting free GPUs, CPU and memory on nodes: pure functions over decoded API objects.

The objects are the typed structs `skymagic.gpus.wire` decodes list pages and watch events
into (plain dicts are converted, for small callers and tests). No I/O and no pandas here, so
the rules are unit-tested on their own and shared by the one-shot inventory and the live one:

* total = node `status.allocatable[resource]`;
* requested = sum over non-terminal pods bound to the node (`spec.nodeName` set, phase not
  Succeeded/Failed) of the pod's effective request, as kube-scheduler counts it
  (`skymagic.gpus.quantity.effective_requests`: app containers, native sidecars, the init
  phase's peak, overhead);
* free = total - requested, and zero on a node nobody can schedule to (NotReady, cordoned);
  a node with a NoSchedule/NoExecute taint that GPU pods do not tolerate keeps its free counts
  (a launch whose pod tolerates the taint may use them) but is not schedulable, its `status`
  says why, and the per-GPU totals (context_rows) leave its free GPUs out;
* jobs = the managed jobs (`job_of`, from the pods' labels) whose pods hold that resource on
  the node: what the dashboard marks on its cells, read off the same pod lists.

Only the resources the inventory shows are kept per pod (cpu, memory, accelerators); each
distinct container `resources` text is decoded and parsed once (on a cluster with 50,000 pods a
handful of them repeat), so the pod pass is a lookup per pod.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skymagic.errors import SkymagicError
from skymagic.gpus.accelerators import (
    GPU_TAINT_KEYS,
    GpuIdentity,
    detect_node_gpus,
    is_gpu_resource,
    requestable_quantities,
)
from skymagic.gpus.quantity import effective_requests, parse_quantity, resource_requests
from skymagic.gpus.wire import (
    JOB_ATTEMPT_LABEL,
    JOB_ID_LABEL,
    Container,
    Node,
    NodeMeta,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodSpec,
    PodUsage,
    PodUsageMeta,
    to_node,
    to_pod,
)

__all__ = [
    "NODE_COLUMNS",
    "TERMINAL_PHASES",
    "Binding",
    "ContextData",
    "JobPod",
    "NodeInfo",
    "Usage",
    "context_rows",
    "format_utilization",
    "job_of",
    "jobs_text",
    "labels_text",
    "node_rows",
    "node_status",
    "parse_node",
    "pod_binding",
    "pod_binding_cached",
    "pod_key",
    "pod_requests",
    "summary_rows",
]

NODE_COLUMNS: tuple[str, ...] = (
    "context",
    "node",
    "gpu",
    "gpu_label",
    "label_scheme",
    "resource",
    "gpu_total",
    "gpu_requested",
    "gpu_free",
    "cpu_total",
    "cpu_free",
    "memory_gb_total",
    "memory_gb_free",
    "ready",
    "schedulable",
    "status",
    "taints",
    "jobs",
    "labels",
)

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

# Taints the node lifecycle controller and `kubectl cordon` add; the Ready condition and
# spec.unschedulable already say the same thing, in words users know.
_LIFECYCLE_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
    }
)
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
_GIB = float(2**30)

_QTY_CACHE: dict[str, float] = {}
_QTY_CACHE_MAX = 50_000


def _qty(text: Any) -> float:
    """parse_quantity, memoised by text; an unparseable quantity counts as 0."""
    if not isinstance(text, str):
        return float(text) if isinstance(text, (int, float)) else 0.0
    value = _QTY_CACHE.get(text)
    if value is None:
        try:
            value = parse_quantity(text)
        except ValueError:
            value = 0.0
        if len(_QTY_CACHE) >= _QTY_CACHE_MAX:
            _QTY_CACHE.clear()
        _QTY_CACHE[text] = value
    return value


def _wanted(resource: str) -> bool:
    return resource in ("cpu", "memory") or is_gpu_resource(resource)


# --- pods ---------------------------------------------------------------------------------

Binding = tuple[str, Mapping[str, float]]
"""(node name, effective requests) of a pod that holds resources on that node (read-only)."""

_CONTAINER_CACHE: dict[bytes, dict[str, float]] = {}
_CONTAINER_CACHE_MAX = 10_000


def _container_requests(container: Container) -> dict[str, float]:
    """A container's counted requests, memoised by its `resources` text (shared, read-only).

    Thousands of pods share a handful of `resources` texts: each distinct one is decoded and
    parsed once, so a pod costs a byte-string lookup.
    """
    return _requests_of_text(bytes(container.resources))


def _requests_of_text(key: bytes) -> dict[str, float]:
    req = _CONTAINER_CACHE.get(key)
    if req is None:
        req = resource_requests(key, _wanted, _qty)
        if len(_CONTAINER_CACHE) >= _CONTAINER_CACHE_MAX:
            _CONTAINER_CACHE.clear()
        _CONTAINER_CACHE[key] = req
    return req


def pod_requests(spec: PodSpec | Mapping[str, Any]) -> dict[str, float]:
    """The pod's effective request for cpu, memory and accelerator resources.

    `skymagic.gpus.quantity.effective_requests` (the one rule: sidecars, init containers,
    overhead), restricted to the resources the inventory counts, with memoised parsing.
    """
    return effective_requests(
        spec, keep=_wanted, parse=_qty, container_requests=_container_requests
    )


def pod_binding(pod: Pod | Mapping[str, Any]) -> Binding | None:
    """(node name, effective requests) of a pod that holds resources, else None.

    A pod holds resources from the moment it is bound (spec.nodeName) until it is terminal.
    Takes the decoded `wire.Pod` or a plain dict (converted). The requests are shared: read
    them, never change them (`pod_binding_cached`).
    """
    return pod_binding_cached(to_pod(pod))


def pod_binding_cached(pod: PodUsage) -> Binding | None:
    """`pod_binding` on the hot path: a one-container pod's requests are its container's.

    Every inventory reads 100,000 pods per call on big fleets, and most have one container
    and no init containers or overhead: for them the rule reduces to that container's
    requests, which are cached by text and SHARED (read-only). Other pods take the rule.
    """
    spec = pod.spec
    if spec is None or not spec.nodeName:
        return None
    status = pod.status
    if status is not None and status.phase in TERMINAL_PHASES:
        return None
    containers = spec.containers
    if containers and len(containers) == 1 and not spec.initContainers and not spec.overhead:
        return spec.nodeName, _container_requests(containers[0])
    return spec.nodeName, pod_requests(spec)


def job_of(meta: PodUsageMeta | Mapping[str, Any] | None) -> str:
    """The managed job a pod runs, from its labels: '3', '3 (attempt 2)', or '' (not a job's).

    The one rule for every reader: the decoded metadata of a list page (`wire`) or a pod's
    `metadata` dict (the dashboard's pod table).
    """
    if meta is None:
        return ""
    if isinstance(meta, PodUsageMeta):
        labels = meta.labels
        job, attempt = (labels.job, labels.attempt) if labels is not None else (None, None)
    else:
        found = meta.get("labels") or {}
        job, attempt = found.get(JOB_ID_LABEL), found.get(JOB_ATTEMPT_LABEL)
    job, attempt = str(job or ""), str(attempt or "")
    if job and attempt and attempt != "1":
        return f"{job} (attempt {attempt})"
    return job


def _job_order(job: str) -> tuple[int, str]:
    number = job.split(maxsplit=1)[0]
    return (int(number) if number.isdigit() else 1 << 62, job)


def jobs_text(jobs: Iterable[str]) -> str:
    """Managed jobs as one text, by job number, each once: "3, 12 (attempt 2)".

    Unambiguous: a label value holds no space or comma, so `text.split(", ")` reads it back.
    """
    return ", ".join(sorted({j for j in jobs if j}, key=_job_order))


JobPod = tuple[str, str, Mapping[str, float]]
"""(node, `job_of`, effective requests) of a managed job's pod that holds resources."""


def pod_key(pod: Pod | Mapping[str, Any]) -> str:
    """A pod's identity across list and watch events: its uid (namespace/name without one)."""
    if isinstance(pod, Pod):
        meta = pod.metadata or ObjectMeta()
        return meta.uid or f"{meta.namespace}/{meta.name}"
    m = pod.get("metadata") or {}
    return str(m.get("uid") or f"{m.get('namespace')}/{m.get('name')}")


class Usage:
    """Requested resources per node, summed over the pods bound to it; and which of those
    pods are managed jobs' (`job_pods`: a handful among thousands, kept one by one)."""

    __slots__ = ("by_node", "job_pods")

    def __init__(self) -> None:
        self.by_node: dict[str, dict[str, float]] = {}
        self.job_pods: list[JobPod] = []

    def clear(self) -> None:
        """Forget everything counted (a list that starts over)."""
        self.by_node.clear()
        self.job_pods.clear()

    def add(self, node: str, requests: Mapping[str, float], sign: float = 1.0) -> None:
        acc = self.by_node.get(node)
        if acc is None:
            acc = self.by_node[node] = {}
        for res, qty in requests.items():
            acc[res] = acc.get(res, 0.0) + sign * qty

    def add_pods(self, pods: Iterable[PodUsage]) -> None:
        """Add every resource-holding pod of a decoded list page (the inventory's hot loop).

        `pod_binding_cached` inlined (tests/unit/gpus/test_counting.py holds the two together
        pod by pod on random pods): a pod holds resources once bound and until terminal. A
        one-container pod (most of them) is counted per (node, `resources` text), by a C-level
        `Counter` over the page, and each distinct text is parsed (or found in the cache) once
        per page; any other pod takes the one rule (`pod_requests`). 100,000 pods: ~45 ms
        instead of ~60 ms keyed on the parsed requests (bench/README.md, GPU inventory).
        A managed job's pod (its job label decoded, `wire.JobLabels`) is also kept in
        `job_pods`.
        """
        simple: list[tuple[str, bytes]] = []
        keep = simple.append
        other: list[Binding] = []
        for pod in pods:
            spec = pod.spec
            if spec is None:
                continue
            node = spec.nodeName
            if not node:
                continue
            status = pod.status
            if status is not None and status.phase in TERMINAL_PHASES:
                continue
            meta = pod.metadata
            if meta is not None and meta.labels is not None and meta.labels.job:
                self.job_pods.append((node, job_of(meta), pod_requests(spec)))
            cs = spec.containers
            if cs and len(cs) == 1 and not spec.initContainers and not spec.overhead:
                keep((node, bytes(cs[0].resources)))
            else:
                other.append((node, pod_requests(spec)))
        by_node = self.by_node
        for (node, text), n in Counter(simple).items():
            acc = by_node.get(node)
            if acc is None:
                acc = by_node[node] = {}
            for name, qty in _requests_of_text(text).items():
                acc[name] = acc.get(name, 0.0) + n * qty
        if other:
            self.add_bindings(other)

    def add_bindings(self, bindings: Iterable[Binding]) -> None:
        """Add many pods' bindings at once.

        They are counted per (node, requests object) first and multiplied out once: most pods
        share their requests object with thousands of others (`pod_binding_cached`).
        """
        counts: dict[tuple[str, int], int] = {}
        shared: dict[int, Mapping[str, float]] = {}
        for node, req in bindings:
            key = (node, id(req))
            n = counts.get(key)
            if n is None:
                shared[id(req)] = req  # keeps `req` alive, so its id stays unique here
                counts[key] = 1
            else:
                counts[key] = n + 1
        self._multiply(counts, shared)

    def _multiply(
        self, counts: Mapping[tuple[str, int], int], shared: Mapping[int, Mapping[str, float]]
    ) -> None:
        by_node = self.by_node
        for (node, rid), n in counts.items():
            acc = by_node.get(node)
            if acc is None:
                acc = by_node[node] = {}
            for name, qty in shared[rid].items():
                acc[name] = acc.get(name, 0.0) + n * qty

    def get(self, node: str) -> Mapping[str, float]:
        return self.by_node.get(node, {})


# --- nodes --------------------------------------------------------------------------------


@dataclass
class NodeInfo:
    """The few facts about one node the inventory needs."""

    name: str
    gpus: list[GpuIdentity]
    allocatable: dict[str, float]
    ready: bool = True
    unschedulable: bool = False
    taints: list[tuple[str, str, str]] = field(default_factory=list)  # (key, value, effect)
    # The node's labels as `labels_text` writes them: what a pod's nodeSelector and node
    # affinity are matched against (spot capacity, node pools), one shared string per node.
    labels: str = ""


def parse_node(obj: Node | Mapping[str, Any]) -> NodeInfo:
    """NodeInfo from a decoded Node (`wire.Node`, or a plain dict, converted)."""
    node = to_node(obj)
    meta = node.metadata or NodeMeta()
    spec = node.spec or NodeSpec()
    status = node.status or NodeStatus()
    raw_alloc = status.allocatable or {}
    allocatable = {res: _qty(q) for res, q in raw_alloc.items() if _wanted(res)}
    ready = False
    for cond in status.conditions or ():
        if cond.type == "Ready":
            ready = cond.status == "True"
            break
    taints = [(t.key, t.value or "", t.effect) for t in spec.taints or ()]
    return NodeInfo(
        name=meta.name,
        gpus=detect_node_gpus(meta.labels or {}, raw_alloc),
        allocatable=allocatable,
        ready=ready,
        unschedulable=bool(spec.unschedulable),
        taints=taints,
        labels=labels_text(meta.labels or {}),
    )


def labels_text(labels: Mapping[str, str]) -> str:
    """A node's labels as one text, `key=value,key=value` sorted by key (as kubectl shows them).

    Unambiguous: neither a label key nor a value may hold `,` or `=` (only a key's prefix
    holds `/`), so `launches.nodematch` reads it back exactly; a text keeps the CSV and JSON
    outputs of the nodes frame flat.
    """
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass
class ContextData:
    """What one context's node and pod lists said; `usage` is None when pods were unreadable."""

    nodes: list[NodeInfo]
    usage: Usage | None
    pods_error: SkymagicError | None = None
    fetched_at: float = field(default_factory=time.time)


def _blocking_taints(node: NodeInfo) -> list[tuple[str, str, str]]:
    return [
        t
        for t in node.taints
        if t[2] in _BLOCKING_EFFECTS
        and t[0] not in GPU_TAINT_KEYS
        and t[0] not in _LIFECYCLE_TAINTS
    ]


def node_status(node: NodeInfo) -> tuple[bool, str]:
    """(schedulable, status): can a GPU pod land here now, and if not, why.

    Status is "Healthy", "NotReady", "Cordoned" or "NoSchedule Taint [key=value, ...]" (the
    effect word is the first blocking taint's: NoSchedule or NoExecute).
    """
    if not node.ready:
        return False, "NotReady"
    if node.unschedulable:
        return False, "Cordoned"
    blocking = _blocking_taints(node)
    if blocking:
        shown = ", ".join(f"{k}={v}" if v else k for k, v, _e in blocking)
        return False, f"{blocking[0][2]} Taint [{shown}]"
    return True, "Healthy"


def _taints_text(node: NodeInfo) -> str:
    return ", ".join(f"{k}={v}:{e}" if v else f"{k}:{e}" for k, v, e in node.taints)


def _count(value: float) -> int:
    return round(value)


def _jobs_by_node(usage: Usage | None) -> dict[str, list[tuple[str, Mapping[str, float]]]]:
    out: dict[str, list[tuple[str, Mapping[str, float]]]] = {}
    for node, job, requests in usage.job_pods if usage is not None else ():
        out.setdefault(node, []).append((job, requests))
    return out


def node_rows(context: str, nodes: Iterable[NodeInfo], usage: Usage | None) -> list[dict[str, Any]]:
    """Rows of the nodes frame: one per node and accelerator resource; CPU-only nodes once.

    `usage=None` means the pods could not be listed: totals are known, requested and free are
    None (unknown), never a guess. `jobs`: the managed jobs whose pods request the row's
    accelerator (on a CPU-only node: whose pods run there), as `jobs_text` writes them.
    """
    rows: list[dict[str, Any]] = []
    jobs_on = _jobs_by_node(usage)
    for node in nodes:
        here = jobs_on.get(node.name, ())
        schedulable, status = node_status(node)
        # Free counts are what a pod could get here: a node that is Ready and not cordoned
        # keeps its real free counts even when a taint keeps plain pods off (its status says
        # which), so a launch whose pod tolerates the taint can count them (launches/taints.py);
        # the per-GPU totals (context_rows) count free only on schedulable nodes.
        usable = node.ready and not node.unschedulable
        alloc = node.allocatable
        used = usage.get(node.name) if usage is not None else None
        cpu_total = alloc.get("cpu", 0.0)
        mem_total = alloc.get("memory", 0.0)
        cpu_free: float | None = None
        mem_free: float | None = None
        if used is not None:
            cpu_free = max(0.0, cpu_total - used.get("cpu", 0.0)) if usable else 0.0
            mem_free = max(0.0, mem_total - used.get("memory", 0.0)) if usable else 0.0
        base = {
            "context": context,
            "node": node.name,
            "cpu_total": round(cpu_total, 3),
            "cpu_free": None if cpu_free is None else round(cpu_free, 3),
            "memory_gb_total": round(mem_total / _GIB, 2),
            "memory_gb_free": None if mem_free is None else round(mem_free / _GIB, 2),
            "ready": node.ready,
            "schedulable": schedulable,
            "status": status,
            "taints": _taints_text(node),
            "labels": node.labels,
        }
        if not node.gpus:
            rows.append(
                {
                    **base,
                    "gpu": None,
                    "gpu_label": None,
                    "label_scheme": None,
                    "resource": None,
                    "gpu_total": 0,
                    "gpu_requested": None if used is None else 0,
                    "gpu_free": None if used is None else 0,
                    "jobs": jobs_text(job for job, _req in here),
                    "_is_tpu": False,
                }
            )
            continue
        for ident in node.gpus:
            total = _count(alloc.get(ident.resource, 0.0))
            requested: int | None = None
            free: int | None = None
            if used is not None:
                requested = _count(used.get(ident.resource, 0.0))
                free = max(0, total - requested) if usable else 0
            rows.append(
                {
                    **base,
                    "gpu": ident.canonical,
                    "gpu_label": ident.label_value,
                    "label_scheme": ident.scheme,
                    "resource": ident.resource,
                    "gpu_total": total,
                    "gpu_requested": requested,
                    "gpu_free": free,
                    "jobs": jobs_text(job for job, req in here if req.get(ident.resource, 0) > 0),
                    "_is_tpu": ident.is_tpu,
                }
            )
    return rows


def format_utilization(free: int | None, total: int, not_ready: int = 0) -> str:
    """SkyPilot's "6 of 8 free", "6 of 8 free (2 not ready)"; "free unknown" without pods."""
    text = f"free unknown of {total}" if free is None else f"{free} of {total} free"
    if not_ready:
        text += f" ({not_ready} not ready)"
    return text


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def context_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """by_context rows from node rows: per (context, gpu), in first-seen order.

    `requestable_qty_per_node` follows SkyPilot (powers of two up to each node's count, plus
    the count; TPUs only their slice size) over the GPU's nodes; "(N not ready)" counts the
    devices on nodes nobody can schedule to.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        gpu = row.get("gpu")
        if gpu is None:
            continue
        key = (row["context"], gpu)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "context": row["context"],
                "gpu": gpu,
                "counts": [],
                "is_tpu": bool(row.get("_is_tpu")),
                "gpu_total": 0,
                "gpu_free": 0,
                "unknown": False,
                "nodes": set(),
                "not_ready": 0,
            }
        total = int(row["gpu_total"])
        g["counts"].append(total)
        g["gpu_total"] += total
        g["nodes"].add(row["node"])
        if not row.get("schedulable", True):
            g["not_ready"] += total
        if _is_missing(row.get("gpu_free")):
            g["unknown"] = True
        elif row.get("schedulable", True):
            g["gpu_free"] += int(row["gpu_free"])
    out: list[dict[str, Any]] = []
    for g in groups.values():
        free = None if g["unknown"] else g["gpu_free"]
        out.append(
            {
                "context": g["context"],
                "gpu": g["gpu"],
                "requestable_qty_per_node": requestable_quantities(g["counts"], is_tpu=g["is_tpu"]),
                "gpu_total": g["gpu_total"],
                "gpu_free": free,
                "nodes": len(g["nodes"]),
                "utilization": format_utilization(free, g["gpu_total"], g["not_ready"]),
                "_not_ready": g["not_ready"],
            }
        )
    return out


def summary_rows(by_context: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """summary rows from by_context rows: per gpu across contexts, in first-seen order.

    A GPU whose free count is unknown in some context reports the free GPUs it does know,
    and the utilization says that part is unknown.
    """
    groups: dict[str, dict[str, Any]] = {}
    for row in by_context:
        g = groups.setdefault(
            row["gpu"],
            {"total": 0, "free": 0, "unknown": 0, "contexts": [], "not_ready": 0},
        )
        g["total"] += int(row["gpu_total"])
        g["not_ready"] += int(row.get("_not_ready") or 0)
        if _is_missing(row.get("gpu_free")):
            g["unknown"] += int(row["gpu_total"])
        else:
            g["free"] += int(row["gpu_free"])
        if row["context"] not in g["contexts"]:
            g["contexts"].append(row["context"])
    out: list[dict[str, Any]] = []
    for gpu, g in groups.items():
        free: int | None = g["free"]
        if g["unknown"] and g["unknown"] == g["total"]:
            free = None
        text = format_utilization(free, g["total"], g["not_ready"])
        if g["unknown"] and free is not None:
            text += f" ({g['unknown']} unknown)"
        out.append(
            {
                "gpu": gpu,
                "gpu_total": g["total"],
                "gpu_free": free,
                "utilization": text,
                "contexts": ", ".join(g["contexts"]),
            }
        )
    return out
