"""The fleet spec: which simulated clusters to serve, with what nodes, load, users and faults.

A spec is YAML (or the equivalent dict). Full format, every key optional unless marked:

```yaml
clusters:
  - name: my-h100-cluster        # REQUIRED. The kubeconfig context name; may contain '/' or ':'
    namespace: default           # the context's namespace
    auth: token                  # token | client-cert | exec   (how the context's user logs in)
    user: admin                  # the context's user name (default: "<auth>-admin")
    groups: [system:masters]     # that user's groups (default: system:masters = full access)
    runtime: simulate            # simulate | local: how containers "run" (see below)
    version: v1.31.2             # what /version reports
    pod_start_s: 0.2             # delay between binding and Running
    default_duration_s: 2.0      # simulate runtime: how long a created pod runs
    history: 20000               # watch/continue window: events kept before "410 Gone"
    toleration_s: 300            # tolerationSeconds every pod gets for the not-ready and
                                 # unreachable NoExecute taints (the API server's default)
    pod_gc_s: 2.0                # pods of a deleted node are force-deleted this much later
    node_removal_s: 0.5          # preempt_node: the node is deleted this long after shutdown
    shutdown_grace_s: 2.0        # preempt_node: SIGTERM, then SIGKILL after this (local runtime)
    nodes:
      - {count: 2, name: h100-node, gpu: H100, gpus: 8, labels: gfd, cpu: 192,
         memory_gb: 1800, taint_gpu: true}
      # more node keys: topology (TPU), mig_profile, replicas (time-slicing),
      # ready: false, unschedulable: true, extra_labels: {k: v}, taints: [{key, value, effect}]
      # spot: gke | gke-provisioning | karpenter | eks (label the nodes as that provider's spot)
      - {count: 1, name: cpu-node, cpu: 8, memory_gb: 32}
    pods:                        # load that is already there when the fleet starts
      - {count: 3, gpu: H100, gpus: 4, namespace: team-a}
      # more pod keys: name (prefix), cpu, memory_gb, phase (Running | Succeeded | Failed |
      # Pending), labels: {k: v}, init_gpus (an init container's GPU request)
    users:                       # extra users, each with its own kubeconfig context
      - {name: alice, context: my-h100-cluster-alice, auth: token, groups: []}
    rbac:                        # per-user rules; users not listed have full access
      - user: alice
        rules:
          - {verbs: [get, list, watch], resources: [nodes]}
          - {verbs: ["*"], resources: [pods, pods/log], namespaces: [team-a]}
    faults: {down: false, blackhole: false, latency_ms: 0, error_rate: 0.0, token_ttl_s: 3600}
    exec:                        # runtime: simulate: what an exec answers (first match wins)
      - {match: "nvidia-smi.*", stdout: "GPU 0: NVIDIA H100 80GB HBM3\\n", exit_code: 0}
      - {match: "sh -c .*", stderr: "denied\\n", exit_code: 1}
```

Nodes that go away (`Fleet.preempt_node`, `Fleet.lose_node`, `Fleet.remove_node`) behave as on
a real cluster: see `skymagic.sim.nodelife`. A cluster autoscaler that grows one node group
and reports TriggeredScaleUp / NotTriggerScaleUp Events on unschedulable pods is set at run
time (`Fleet.set_autoscaler`): see `skymagic.sim.autoscaler`.

Runtimes: `simulate` runs a pod for `default_duration_s` (or the pod annotation
`sim.skymagic.dev/duration`; a command containing `sleep infinity` runs until deleted) and
logs the annotation `sim.skymagic.dev/logs`; `local` runs the container's command as a local
subprocess whose output is the pod log and whose exit code decides Succeeded or Failed.
A local pod's IP is a loopback address of its own (127.<100 + cluster index>.x.y), and the
names cluster DNS would answer for a headless Service (`HOSTNAME.SUBDOMAIN[.NS.svc...]`) are
kept in an /etc/hosts-format file, `$SKYMAGIC_SIM_HOSTS`, that the pod's `getent hosts` and
Python's resolver honour (see skymagic/sim/netnames.py).

Exec, attach and port-forward (the pods/exec, pods/attach, pods/portforward subresources, over
WebSocket or SPDY as kubectl and the official client speak them): with `local`, an exec runs
the command as a local process in the pod's directory (its HOME) with the pod's environment,
a tty through a pty; every declared containerPort P gets a free loopback port L, the pod's
processes see it as `PORT_<P>=L` (listen there), and a port-forward to P connects to L (an
undeclared port connects to 127.0.0.1:P). With `simulate`, nothing runs: an exec answers from
the cluster's `exec:` rules, each `{match, stdout, stderr, exit_code}` where `match` is a
regular expression that must match the whole command as a shell would quote it
(`shlex.join`); unmatched commands get defaults (`true`, `false`, `echo ...`, `cat` echoing
stdin, `hostname`, `env`) or else exit 127 with a message on stderr. A port-forward to a
simulated pod's declared port answers any request with a one-line HTTP page; other ports are
refused. Attach streams the container's output from the moment of attaching; its stdin reaches
the main process of a local pod whose container says `stdin: true` (closed after the first
attach with `stdinOnce: true`), and is dropped otherwise, as containerd drops it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from skymagic.errors import SimError

__all__ = [
    "AUTH_KINDS",
    "RUNTIMES",
    "ClusterSpec",
    "ExecRule",
    "Faults",
    "FleetSpec",
    "NodeGroup",
    "PodGroup",
    "UserSpec",
    "load_fleet_spec",
]

AUTH_KINDS = ("token", "client-cert", "exec")
RUNTIMES = ("simulate", "local")


@dataclass
class Faults:
    """Run-time faults of one cluster; all can be changed while the fleet runs."""

    down: bool = False
    blackhole: bool = False
    latency_ms: float = 0.0
    error_rate: float = 0.0
    token_ttl_s: float = 3600.0
    # A 200 answer with a body that is not what the API promises, for GETs of `corrupt_path`
    # (e.g. "/api/v1/pods"): "truncate" (the JSON cut in half, Content-Length to match),
    # "wrong-type" (the first nodeName, or else name, becomes a number), "huge-string" (the
    # first nodeName, or else name, becomes a 16 MB string). See apiserver.corrupt_body.
    corrupt: str = ""
    corrupt_path: str = ""


# How each provider labels spot (preemptible) capacity.
SPOT_LABELS = {
    "gke": ("cloud.google.com/gke-spot", "true"),
    "gke-provisioning": ("cloud.google.com/gke-provisioning", "spot"),
    "karpenter": ("karpenter.sh/capacity-type", "spot"),
    "eks": ("eks.amazonaws.com/capacityType", "SPOT"),
}


@dataclass
class NodeGroup:
    """`count` identical nodes named `<name>-<i>` (a group of one is just `<name>`)."""

    name: str
    count: int = 1
    gpu: str | None = None
    gpus: int = 0
    labels: str = "gfd"
    cpu: float = 8
    memory_gb: float = 32
    taint_gpu: bool = False
    topology: str | None = None
    mig_profile: str | None = None
    replicas: int = 4
    ready: bool = True
    unschedulable: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    spot: str | None = None  # a provider whose spot label the nodes carry (SPOT_LABELS)

    def __post_init__(self) -> None:
        if self.spot is not None and self.spot not in SPOT_LABELS:
            raise SimError(
                f"fleet spec: node group {self.name!r}: spot {self.spot!r} is not one of "
                f"{', '.join(SPOT_LABELS)}"
            )


@dataclass
class PodGroup:
    """`count` pods already placed when the fleet starts."""

    count: int = 1
    name: str = "load"
    namespace: str = "default"
    gpu: str | None = None
    gpus: int = 0
    cpu: float = 0.5
    memory_gb: float = 1.0
    phase: str = "Running"
    labels: dict[str, str] = field(default_factory=dict)
    init_gpus: int = 0


@dataclass
class ExecRule:
    """How a `runtime: simulate` pod answers an exec whose command matches `match`."""

    match: str
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


@dataclass
class UserSpec:
    """A user of a cluster with its own kubeconfig context."""

    name: str
    context: str
    auth: str = "token"
    groups: list[str] = field(default_factory=list)


@dataclass
class ClusterSpec:
    """One simulated cluster = one API server = one kubeconfig context (plus extra users')."""

    name: str
    namespace: str = "default"
    auth: str = "token"
    user: str = ""
    groups: list[str] = field(default_factory=lambda: ["system:masters"])
    runtime: str = "simulate"
    version: str = "v1.31.2"
    pod_start_s: float = 0.2
    default_duration_s: float = 2.0
    history: int = 20000
    toleration_s: int = 300
    pod_gc_s: float = 2.0
    node_removal_s: float = 0.5
    shutdown_grace_s: float = 2.0
    nodes: list[NodeGroup] = field(default_factory=list)
    pods: list[PodGroup] = field(default_factory=list)
    users: list[UserSpec] = field(default_factory=list)
    rbac: list[dict[str, Any]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    exec: list[ExecRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.user:
            self.user = f"{self.auth}-admin"


@dataclass
class FleetSpec:
    """A whole fleet: the clusters in kubeconfig order."""

    clusters: list[ClusterSpec]

    def cluster(self, name: str) -> ClusterSpec:
        for c in self.clusters:
            if c.name == name:
                return c
        raise SimError(f"no cluster named '{name}' in the fleet spec")


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SimError(f"fleet spec: {where} must be a mapping, got {type(data).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise SimError(
            f"fleet spec: unknown key {unknown[0]!r} in {where}; "
            f"valid keys: {', '.join(sorted(known))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:
        raise SimError(f"fleet spec: {where}: {exc}") from None


def _cluster(data: Mapping[str, Any], index: int) -> ClusterSpec:
    where = f"clusters[{index}]"
    if not isinstance(data, Mapping) or not data.get("name"):
        raise SimError(f"fleet spec: {where} needs a 'name' (the context name)")
    raw = dict(data)
    name = str(raw["name"])
    where = f"cluster '{name}'"
    raw["nodes"] = [
        _build(NodeGroup, {"name": f"node{i}", **n}, f"{where} nodes[{i}]")
        for i, n in enumerate(raw.get("nodes") or [])
    ]
    raw["pods"] = [
        _build(PodGroup, p, f"{where} pods[{i}]") for i, p in enumerate(raw.get("pods") or [])
    ]
    raw["users"] = [
        _build(UserSpec, u, f"{where} users[{i}]") for i, u in enumerate(raw.get("users") or [])
    ]
    raw["faults"] = _build(Faults, raw.get("faults") or {}, f"{where} faults")
    raw["exec"] = [
        _build(ExecRule, r, f"{where} exec[{i}]") for i, r in enumerate(raw.get("exec") or [])
    ]
    spec: ClusterSpec = _build(ClusterSpec, raw, where)
    if spec.auth not in AUTH_KINDS:
        raise SimError(
            f"fleet spec: {where} auth {spec.auth!r} is not one of {', '.join(AUTH_KINDS)}"
        )
    if spec.runtime not in RUNTIMES:
        raise SimError(
            f"fleet spec: {where} runtime {spec.runtime!r} is not one of {', '.join(RUNTIMES)}"
        )
    for u in spec.users:
        if u.auth not in AUTH_KINDS:
            raise SimError(f"fleet spec: {where} user {u.name!r} auth {u.auth!r} is not valid")
    for i, rule in enumerate(spec.exec):
        try:
            re.compile(rule.match)
        except re.error as exc:
            raise SimError(
                f"fleet spec: {where} exec[{i}] match {rule.match!r} is not a valid regular "
                f"expression ({exc})"
            ) from None
    for g in spec.nodes:
        if g.gpu and g.gpus <= 0:
            raise SimError(f"fleet spec: {where} node group {g.name!r} names gpu but gpus <= 0")
    return spec


def load_fleet_spec(source: str | os.PathLike[str] | Mapping[str, Any] | FleetSpec) -> FleetSpec:
    """Accept a path, YAML text, a dict or a FleetSpec; validate with errors naming the key."""
    if isinstance(source, FleetSpec):
        return source
    data: Any
    if isinstance(source, Mapping):
        data = source
    else:
        text = str(source)
        if "\n" not in text and os.path.exists(text):
            with open(text, encoding="utf-8") as fh:
                try:
                    data = yaml.safe_load(fh)
                except yaml.YAMLError as exc:
                    raise SimError(f"fleet spec {text}: not valid YAML ({exc})") from None
        elif "\n" in text or text.strip().startswith("{"):
            data = yaml.safe_load(text)
        else:
            raise SimError(f"fleet spec file {text} does not exist")
    if not isinstance(data, Mapping) or not isinstance(data.get("clusters"), list):
        raise SimError("fleet spec: top level must be a mapping with a 'clusters' list")
    clusters = [_cluster(c, i) for i, c in enumerate(data["clusters"])]
    names = [c.name for c in clusters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SimError(f"fleet spec: cluster name {dupes[0]!r} appears twice")
    return FleetSpec(clusters=clusters)
