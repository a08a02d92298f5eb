"""Server-side printing: the meta.k8s.io Table a real API server returns to `kubectl get`.

Why: kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever
columns and cells the server sends, so the simulated fleet's `kubectl get pods` looks real only
if these columns are the ones kubernetes/pkg/printers/internalversion generates. The server
always generates the wide cells too (priority 1 columns; kubectl hides them without
`-o wide`), and row objects default to PartialObjectMetadata (includeObject=Metadata).
Cells and status reasons follow printers.go (printPod, printNode, printEvent, ...).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "COLUMNS",
    "human_duration",
    "node_status",
    "pod_status_reason",
    "table_version",
    "to_table",
    "wants_table",
]

_NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of a name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot "
    "be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

Col = tuple[str, str, str, int, str]  # name, type, format, priority, description


def _col(name: str, desc: str, *, priority: int = 0, typ: str = "string", fmt: str = "") -> Col:
    return (name, typ, fmt, priority, desc)


_NAME = _col("Name", _NAME_DESC, fmt="name")
_AGE = _col("Age", _AGE_DESC)

COLUMNS: dict[str, tuple[Col, ...]] = {
    "Pod": (
        _NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        _AGE,
        _col(
            "IP",
            "podIP address allocated to the pod. Routable at least within the cluster.",
            priority=1,
        ),
        _col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
        _col(
            "Nominated Node",
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
            priority=1,
        ),
        _col(
            "Readiness Gates",
            "If specified, all readiness gates will be evaluated for pod readiness.",
            priority=1,
        ),
    ),
    "Node": (
        _NAME,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        _AGE,
        _col("Version", "Kubelet Version reported by the node."),
        _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
        _col("External-IP", "List of addresses reachable to the node.", priority=1),
        _col(
            "OS-Image",
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 "
            "(wheezy)).",
            priority=1,
        ),
        _col(
            "Kernel-Version",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            priority=1,
        ),
        _col(
            "Container-Runtime",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
            "containerd://1.4.2).",
            priority=1,
        ),
    ),
    "Event": (
        _col(
            "Last Seen",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        _col(
            "Type",
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        _col(
            "Reason",
            "This should be a short, machine understandable string that gives the reason for "
            "the transition into the object's current status.",
        ),
        _col("Object", "The object that this event is about."),
        _col(
            "Subobject",
            "If referring to a piece of an object instead of an entire object, this string "
            "should contain a valid JSON/Go field access statement.",
            priority=1,
        ),
        _col(
            "Source",
            "The component reporting this event. Should be a short machine understandable string.",
            priority=1,
        ),
        _col("Message", "A human-readable description of the status of this operation."),
        _col(
            "First Seen",
            "The time at which the event was first recorded. (Time of server receipt is in "
            "TypeMeta.)",
            priority=1,
        ),
        _col("Count", "The number of times this event has occurred.", priority=1),
        _col("Name", _NAME_DESC, priority=1, fmt="name"),
    ),
    "Namespace": (_NAME, _col("Status", "The status of the namespace"), _AGE),
    "Service": (
        _NAME,
        _col("Type", "type determines how the Service is exposed."),
        _col(
            "Cluster-IP",
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        _col(
            "External-IP",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also "
            "accept traffic for this service.",
        ),
        _col("Port(s)", "The list of ports that are exposed by this service."),
        _AGE,
        _col(
            "Selector",
            "Route service traffic to pods with label keys and values matching this selector.",
            priority=1,
        ),
    ),
    "Secret": (
        _NAME,
        _col("Type", "Used to facilitate programmatic handling of secret data."),
        _col("Data", "Data contains the secret data."),
        _AGE,
    ),
    "ConfigMap": (_NAME, _col("Data", "Data contains the configuration data."), _AGE),
    "ServiceAccount": (
        _NAME,
        _col(
            "Secrets",
            "Secrets is a list of the secrets in the same namespace that pods running using "
            "this ServiceAccount are allowed to use.",
        ),
        _AGE,
    ),
    "": (_NAME, _col("Created At", _AGE_DESC, typ="date")),
}


# ----------------------------------------------------------------------------- negotiation


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        for p in pieces[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append((pieces[0].lower(), params))
    return out


def table_version(accept: str | None) -> str | None:
    """ "v1" or "v1beta1" for the first Table media range in Accept, else None."""
    if not accept:
        return None
    for media, params in _media_ranges(accept):
        if (
            media == "application/json"
            and params.get("as") == "Table"
            and params.get("g") == "meta.k8s.io"
            and params.get("v") in ("v1", "v1beta1")
        ):
            return params["v"]
    return None


def wants_table(accept: str | None) -> bool:
    """Whether the client asked for a meta.k8s.io Table (kubectl get does)."""
    return table_version(accept) is not None


# ----------------------------------------------------------------------------- time


def _parse_ts(ts: Any) -> float | None:
    if not isinstance(ts, str) or len(ts) < 19:
        return None
    try:
        base = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    frac = 0.0
    rest = ts[19:]
    if rest.startswith("."):
        digits = rest[1:].rstrip("Z")
        digits = digits.split("+")[0].split("-")[0]
        if digits.isdigit():
            frac = float("0." + digits)
    return base + frac


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration: "5s", "3m2s", "4h", "2d", "3y12d"."""
    secs = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return _and(minutes, "m", secs % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        return _and(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _and(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _and(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def _and(whole: int, unit: str, rest: int, rest_unit: str) -> str:
    """Two units ("3m2s"), or one when the rest is zero: HumanDuration never prints "3m0s"."""
    return f"{whole}{unit}" if rest == 0 else f"{whole}{unit}{rest}{rest_unit}"


def _since(ts: Any, now: float) -> str:
    t = _parse_ts(ts)
    return "<unknown>" if t is None else human_duration(now - t)


# ----------------------------------------------------------------------------- rows


def _d(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = obj.get(key)
    return v if isinstance(v, Mapping) else {}


def _l(obj: Mapping[str, Any], key: str) -> list[Any]:
    v = obj.get(key)
    return v if isinstance(v, list) else []


def _terminated_reason(term: Mapping[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def pod_status_reason(
    pod: Mapping[str, Any], now: float
) -> tuple[str, str, str, list[dict[str, str]]]:
    """(ready "n/m", status reason, restarts, row conditions) as printPod computes them."""
    spec, status, meta = _d(pod, "spec"), _d(pod, "status"), _d(pod, "metadata")
    containers = _l(spec, "containers")
    init_specs = {c.get("name"): c for c in _l(spec, "initContainers") if isinstance(c, Mapping)}
    restartable = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(containers) + len(restartable)
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart = 0.0
    sidecar_last_restart = 0.0
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    conds = [c for c in _l(status, "conditions") if isinstance(c, Mapping)]
    for c in conds:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions: list[dict[str, str]] = []
    if phase == "Succeeded":
        row_conditions = [
            {"type": "Completed", "status": "True", "reason": "Succeeded",
             "message": "The pod has completed successfully."}
        ]  # fmt: skip
    elif phase == "Failed":
        row_conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Failed",
                "message": "The pod failed.",
            }
        ]

    def finished(cs: Mapping[str, Any]) -> float:
        term = _d(_d(cs, "lastState"), "terminated")
        return (_parse_ts(term.get("finishedAt")) or 0.0) if term else 0.0

    initializing = False
    init_statuses = [c for c in _l(status, "initContainerStatuses") if isinstance(c, Mapping)]
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = max(last_restart, finished(cs))
        is_sidecar = cs.get("name") in restartable
        if is_sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last_restart = max(sidecar_last_restart, finished(cs))
        state = _d(cs, "state")
        term = _d(state, "terminated")
        waiting = _d(state, "waiting")
        if state.get("terminated") is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if state.get("terminated") is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conds)
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        statuses = [c for c in _l(status, "containerStatuses") if isinstance(c, Mapping)]
        for cs in reversed(statuses):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = max(last_restart, finished(cs))
            state = _d(cs, "state")
            waiting = _d(state, "waiting")
            term = _d(state, "terminated")
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif state.get("terminated") is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"
    return f"{ready}/{total}", reason, restarts_str, row_conditions


Row = tuple[list[Any], list[dict[str, str]]]


def _pod_row(pod: Mapping[str, Any], now: float) -> Row:
    spec, status, meta = _d(pod, "spec"), _d(pod, "status"), _d(pod, "metadata")
    ready, reason, restarts, conditions = pod_status_reason(pod, now)
    ips = _l(status, "podIPs")
    ip = ""
    if ips and isinstance(ips[0], Mapping):
        ip = str(ips[0].get("ip") or "")
    gates = _l(spec, "readinessGates")
    gates_str = "<none>"
    if gates:
        by_type: dict[Any, Any] = {}
        for c in _l(status, "conditions"):
            if isinstance(c, Mapping):
                by_type.setdefault(c.get("type"), c.get("status"))
        true = sum(
            1
            for g in gates
            if isinstance(g, Mapping) and by_type.get(g.get("conditionType")) == "True"
        )
        gates_str = f"{true}/{len(gates)}"
    cells = [
        meta.get("name", ""),
        ready,
        reason,
        restarts,
        _since(meta.get("creationTimestamp"), now),
        ip or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_str,
    ]
    return cells, conditions


def node_status(node: Mapping[str, Any]) -> str:
    """ "Ready", "NotReady", "Unknown", plus ",SchedulingDisabled" when cordoned."""
    parts: list[str] = []
    for c in _l(_d(node, "status"), "conditions"):
        if isinstance(c, Mapping) and c.get("type") == "Ready":
            parts = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not parts:
        parts = ["Unknown"]
    if _d(node, "spec").get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_row(node: Mapping[str, Any], now: float) -> Row:
    meta, status = _d(node, "metadata"), _d(node, "status")
    roles: set[str] = set()
    for k, v in _d(meta, "labels").items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(str(v))
    info = _d(status, "nodeInfo")

    def address(kind: str) -> str:
        for a in _l(status, "addresses"):
            if isinstance(a, Mapping) and a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    cells = [
        meta.get("name", ""),
        node_status(node),
        ",".join(sorted(roles)) or "<none>",
        _since(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]
    return cells, []


def _event_row(ev: Mapping[str, Any], now: float) -> Row:
    meta, involved, source = _d(ev, "metadata"), _d(ev, "involvedObject"), _d(ev, "source")
    first = (
        _since(ev.get("firstTimestamp"), now)
        if ev.get("firstTimestamp")
        else _since(ev.get("eventTime"), now)
    )
    last = _since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if isinstance(series, Mapping):
        last = _since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    src = f"{component}, {instance}" if instance else component
    cells = [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        src,
        str(ev.get("message", "")).strip(),
        first,
        count,
        meta.get("name", ""),
    ]
    return cells, []


def _namespace_row(ns: Mapping[str, Any], now: float) -> Row:
    meta = _d(ns, "metadata")
    phase = _d(ns, "status").get("phase", "")
    return [meta.get("name", ""), phase, _since(meta.get("creationTimestamp"), now)], []


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    svc_type = spec.get("type") or "ClusterIP"
    external = [str(x) for x in _l(spec, "externalIPs")]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        ips = []
        for ing in _l(_d(status, "loadBalancer"), "ingress"):
            if isinstance(ing, Mapping):
                if ing.get("ip"):
                    ips.append(str(ing["ip"]))
                elif ing.get("hostname"):
                    ips.append(str(ing["hostname"]))
        ips.extend(external)
        return ",".join(ips) if ips else "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_row(svc: Mapping[str, Any], now: float) -> Row:
    meta, spec, status = _d(svc, "metadata"), _d(svc, "spec"), _d(svc, "status")
    cluster_ips = _l(spec, "clusterIPs")
    ports = []
    for p in _l(spec, "ports"):
        if not isinstance(p, Mapping):
            continue
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            ports.append(f"{p.get('port')}/{proto}")
    selector = _d(spec, "selector")
    cells = [
        meta.get("name", ""),
        spec.get("type", ""),
        cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(spec, status),
        ",".join(ports) or "<none>",
        _since(meta.get("creationTimestamp"), now),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]
    return cells, []


def _secret_row(obj: Mapping[str, Any], now: float) -> Row:
    meta = _d(obj, "metadata")
    return [
        meta.get("name", ""),
        obj.get("type", ""),
        len(_d(obj, "data")),
        _since(meta.get("creationTimestamp"), now),
    ], []


def _configmap_row(obj: Mapping[str, Any], now: float) -> Row:
    meta = _d(obj, "metadata")
    n = len(_d(obj, "data")) + len(_d(obj, "binaryData"))
    return [meta.get("name", ""), n, _since(meta.get("creationTimestamp"), now)], []


def _sa_row(obj: Mapping[str, Any], now: float) -> Row:
    meta = _d(obj, "metadata")
    return [
        meta.get("name", ""),
        len(_l(obj, "secrets")),
        _since(meta.get("creationTimestamp"), now),
    ], []


def _default_row(obj: Mapping[str, Any], now: float) -> Row:
    meta = _d(obj, "metadata")
    t = _parse_ts(meta.get("creationTimestamp"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t))) if t is not None else None
    return [meta.get("name", ""), created], []


_ROWS: dict[str, Callable[[Mapping[str, Any], float], Row]] = {
    "Pod": _pod_row,
    "Node": _node_row,
    "Event": _event_row,
    "Namespace": _namespace_row,
    "Service": _service_row,
    "Secret": _secret_row,
    "ConfigMap": _configmap_row,
    "ServiceAccount": _sa_row,
}


def to_table(
    kind: str,
    objects: Sequence[Mapping[str, Any]],
    *,
    list_meta: Mapping[str, Any],
    now: float,
    include_object: str = "Metadata",
    api_version: str = "meta.k8s.io/v1",
) -> dict[str, Any]:
    """The Table for `objects` of `kind` (a single GET is a one-object list).

    `include_object` is the includeObject query parameter: "Metadata" (default) puts a
    PartialObjectMetadata in each row, "Object" the full object, "None" null.
    """
    cols = COLUMNS.get(kind) or COLUMNS[""]
    row_fn = _ROWS.get(kind, _default_row)
    partial_version = api_version
    rows: list[dict[str, Any]] = []
    for obj in objects:
        cells, conditions = row_fn(obj, now)
        row: dict[str, Any] = {"cells": cells}
        if conditions:
            row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "None":
            row["object"] = None
        else:
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": partial_version,
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": dict(list_meta),
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": d, "priority": p}
            for n, t, f, p, d in cols
        ],
        "rows": rows,
    }
