"""Kubernetes manifests for a launch: the pod, its kubeconfig Secret, its Service.

Labels name the skymagic launch, the user and the attempt, so status/logs/down find every
object a launch made in every context. GPU pods request the GPU as request AND limit, require
node affinity on the GPU label keys with ALL raw values that map to the requested canonical GPU
(an A100-80GB request never lands on a 40 GB card whatever the scheme), and tolerate the GPU
and TPU taints. With remote_identity LOCAL_CREDENTIALS the user's flattened kubeconfig goes in
a Secret mounted at ~/.kube/config; the pod spec only names the Secret. CPU-only pods do not
tolerate the GPU taints, so they stay off tainted GPU nodes (as the plan assumes).
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from skymagic.core.flatten import flatten_for_contexts
from skymagic.gpus.accelerators import GPU_TAINT_KEYS, matching_label_values, split_canonical
from skymagic.gpus.quantity import format_cpu, format_memory
from skymagic.launches.agent import entrypoint, setup_hash
from skymagic.launches.task import Task

if TYPE_CHECKING:
    from skymagic.core.targets import Targets

__all__ = [
    "LABEL_LAUNCH",
    "LABEL_MANAGED",
    "LABEL_USER",
    "SPOT_LABELS",
    "AttemptManifests",
    "attempt_manifests",
    "kubeconfig_secret",
    "merge_pod_config",
    "pod_manifest",
    "secrets_manifest",
    "selector_for",
    "service_manifest",
]

LABEL_MANAGED = "skymagic.dev/managed"
LABEL_LAUNCH = "skymagic.dev/launch"
LABEL_USER = "skymagic.dev/user"
LABEL_CLUSTER = "skymagic.dev/context"
LABEL_ATTEMPT = "skymagic.dev/attempt"
ANNOTATION_GPU = "skymagic.dev/gpu"
ANNOTATION_IMAGE = "skymagic.dev/image"
ANNOTATION_SETUP = "skymagic.dev/setup-hash"
ANNOTATION_AUTOSTOP = "skymagic.dev/autostop-minutes"
ANNOTATION_DOWN = "skymagic.dev/down"
ANNOTATION_DEV = "skymagic.dev/dev-pod"
KUBE_DIR = "/root/.kube"
GIB = 2**30
# How providers label spot (preemptible) nodes: GKE (two generations), Karpenter, EKS managed
# node groups. A spot task requires one of them; an on-demand one (use_spot: false) none.
SPOT_LABELS: tuple[tuple[str, str], ...] = (
    ("cloud.google.com/gke-spot", "true"),
    ("cloud.google.com/gke-provisioning", "spot"),
    ("karpenter.sh/capacity-type", "spot"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
)


def selector_for(name: str | None = None, user: str | None = None) -> str:
    parts = [f"{LABEL_MANAGED}=true"]
    if name:
        parts.append(f"{LABEL_LAUNCH}={name}")
    if user:
        parts.append(f"{LABEL_USER}={user}")
    return ",".join(parts)


def _labels(task: Task, context: str, attempt: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_LAUNCH: task.name,
        LABEL_USER: task.user,
        LABEL_CLUSTER: _label_value(context),
        LABEL_ATTEMPT: attempt,
    }


def _label_value(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:63]
    return cleaned.strip("-_.") or "context"


def _command(task: Task) -> list[str]:
    """The pod's entrypoint (agent.py): files, setup once, run or stay up, autostop."""
    return entrypoint(
        setup=task.setup,
        run=task.run,
        wait_for_files=task.has_files,
        idle_minutes=task.idle_minutes,
    )


def launch_annotations(task: Task) -> dict[str, str]:
    """What later skymagic calls read back from a running pod (re-runs, autostop, ports)."""
    notes = {
        ANNOTATION_GPU: f"{task.gpu}:{task.gpu_count}" if task.gpu_count else "",
        ANNOTATION_IMAGE: task.container_image,
        ANNOTATION_SETUP: setup_hash(task.setup),
    }
    if task.idle_minutes is not None:
        notes[ANNOTATION_AUTOSTOP] = f"{task.idle_minutes:g}"
    if task.down:
        notes[ANNOTATION_DOWN] = "true"
    if task.is_dev_pod:
        notes[ANNOTATION_DEV] = "true"
    return notes


def _gpu_terms(task: Task, nodes: list[str]) -> list[list[dict[str, Any]]]:
    """Node selector terms (ORed; each a list of ANDed expressions) for the task's GPU."""
    if not task.gpu_count or not task.gpu:
        return []
    base, _mig, _shared = split_canonical(task.gpu)
    values = matching_label_values(task.gpu) or matching_label_values(base)
    terms = [
        [{"key": key, "operator": "In", "values": sorted(vals)}]
        for key, vals in sorted(values.items())
        if vals
    ]
    if not terms and nodes:
        # No label value names this GPU exactly (e.g. MIG-mixed nodes): pin to the nodes the
        # inventory saw with it.
        terms = [[{"key": "kubernetes.io/hostname", "operator": "In", "values": sorted(nodes)}]]
    return terms


def _affinity(task: Task, nodes: list[str]) -> dict[str, Any] | None:
    terms = _gpu_terms(task, nodes)
    if task.use_spot:
        # Terms are ORed and expressions in a term ANDed: every GPU term times every spot label.
        spot = [{"key": k, "operator": "In", "values": [v]} for k, v in SPOT_LABELS]
        terms = [[*t, s] for t in terms or [[]] for s in spot]
    elif task.use_spot is False:
        never = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in SPOT_LABELS]
        terms = [[*t, *never] for t in terms or [[]]]
    if not terms:
        return None
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
            }
        }
    }


def merge_pod_config(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a task's config.kubernetes.pod_config into the pod, the way SkyPilot merges it.

    Mappings merge key by key; `containers` merges into the first container; `volumes`,
    `volumeMounts`, `env` and `imagePullSecrets` merge by `name` (an unnamed item is added);
    other lists (tolerations, ...) are extended; anything else is replaced by the override.
    """
    for key, value in override.items():
        have = base.get(key)
        if isinstance(value, Mapping) and isinstance(have, dict):
            merge_pod_config(have, value)
        elif isinstance(value, list) and isinstance(have, list):
            if key == "containers" and have and value and isinstance(value[0], Mapping):
                merge_pod_config(have[0], value[0])
            elif key in ("volumes", "volumeMounts", "env", "imagePullSecrets"):
                for item in value:
                    name = item.get("name") if isinstance(item, Mapping) else None
                    same = next(
                        (h for h in have if isinstance(h, dict) and name and h.get("name") == name),
                        None,
                    )
                    if same is not None:
                        merge_pod_config(same, item)
                    else:
                        have.append(copy.deepcopy(item))
            else:
                have.extend(copy.deepcopy(value))
        else:
            base[key] = copy.deepcopy(value)
    return base


def pod_manifest(
    task: Task,
    *,
    context: str,
    namespace: str,
    attempt: str,
    gpu_resource: str | None,
    nodes: list[str],
    service_account: str | None,
    kubeconfig_secret_name: str | None,
) -> dict[str, Any]:
    """The pod for one attempt in one context."""
    requests: dict[str, str] = {
        "cpu": format_cpu(task.cpu_request),
        "memory": format_memory(task.memory_request_gb * GIB),
    }
    limits: dict[str, str] = {}
    if task.gpu_count and gpu_resource:
        requests[gpu_resource] = str(task.gpu_count)
        limits[gpu_resource] = str(task.gpu_count)
    if task.disk_gb:
        requests["ephemeral-storage"] = format_memory(task.disk_gb * GIB)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(task.envs.items())]
    env.extend(
        {
            "name": k,
            "valueFrom": {"secretKeyRef": {"name": secrets_name(task), "key": k}},
        }
        for k in sorted(task.secrets)
    )
    env.append({"name": "SKYMAGIC_LAUNCH", "value": task.name})
    env.append({"name": "SKYMAGIC_CONTEXT", "value": context})
    container: dict[str, Any] = {
        "name": "main",
        "image": task.container_image,
        "command": _command(task),
        "env": env,
        "resources": {"requests": requests, **({"limits": limits} if limits else {})},
    }
    if task.ports:
        container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in task.ports]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "terminationGracePeriodSeconds": 10,
    }
    if task.gpu_count:
        # Only GPU pods tolerate the GPU/TPU taints: a CPU task that tolerated them could land
        # on (and take CPU and memory from) a tainted GPU node, where the plan never put it.
        # Every effect (no `effect`): the inventory counts a node with a NoExecute GPU taint
        # as usable, so a pod tolerating NoSchedule only would be planned onto a node that
        # refuses it.
        spec["tolerations"] = [{"key": key, "operator": "Exists"} for key in GPU_TAINT_KEYS]
    if service_account:
        spec["serviceAccountName"] = service_account
    if task.priority_class:
        spec["priorityClassName"] = task.priority_class
    affinity = _affinity(task, nodes)
    if affinity:
        spec["affinity"] = affinity
    if kubeconfig_secret_name:
        spec["volumes"] = [
            {
                "name": "skymagic-kubeconfig",
                "secret": {"secretName": kubeconfig_secret_name, "defaultMode": 0o400},
            }
        ]
        container["volumeMounts"] = [
            {"name": "skymagic-kubeconfig", "mountPath": KUBE_DIR, "readOnly": True}
        ]
        env.append({"name": "KUBECONFIG", "value": f"{KUBE_DIR}/config"})
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": task.name,
            "namespace": namespace,
            "labels": {**task.labels, **_labels(task, context, attempt)},
            "annotations": {
                "skymagic.dev/command": shlex.join(_command(task))[:1000],
                **launch_annotations(task),
            },
        },
        "spec": spec,
    }
    if task.custom_metadata:
        merge_pod_config(pod["metadata"], task.custom_metadata)
    if task.pod_config:
        merge_pod_config(pod, task.pod_config)
    # skymagic's own labels and name win: status, logs and down find the pod by them.
    pod["metadata"].update(name=task.name, namespace=namespace)
    pod["metadata"].setdefault("labels", {}).update(_labels(task, context, attempt))
    return pod


def secrets_name(task: Task) -> str:
    return f"{task.name}-secrets"


def secrets_manifest(task: Task, *, context: str, namespace: str, attempt: str) -> dict[str, Any]:
    """The Secret holding the task's `secrets:` values (the pod reads them by secretKeyRef)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secrets_name(task),
            "namespace": namespace,
            "labels": _labels(task, context, attempt),
        },
        "type": "Opaque",
        "stringData": dict(task.secrets),
    }


def kubeconfig_secret(
    task: Task, *, context: str, namespace: str, attempt: str, kubeconfig: dict[str, Any]
) -> dict[str, Any]:
    """The Secret holding the flattened kubeconfig (LOCAL_CREDENTIALS)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{task.name}-kubeconfig",
            "namespace": namespace,
            "labels": _labels(task, context, attempt),
        },
        "type": "Opaque",
        "stringData": {"config": yaml.safe_dump(kubeconfig, sort_keys=False)},
    }


def service_manifest(task: Task, *, context: str, namespace: str, attempt: str) -> dict[str, Any]:
    """A ClusterIP Service exposing the task's ports (reach it with kubectl port-forward)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": task.name,
            "namespace": namespace,
            "labels": _labels(task, context, attempt),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_LAUNCH: task.name, LABEL_USER: task.user},
            "ports": [
                {"name": f"p{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in task.ports
            ],
        },
    }


class Placed(Protocol):
    """Where an attempt goes: a plan's Candidate (plan.py, which reads this module's pod
    spec to count nodes, so it is named by shape here, not imported)."""

    @property
    def context(self) -> str: ...
    @property
    def resource(self) -> str | None: ...
    @property
    def nodes(self) -> list[str]: ...


@dataclass
class AttemptManifests:
    """What one attempt creates for its pod: the Secrets first (in order), then the pod."""

    secrets: list[tuple[str, dict[str, Any]]]  # (kind: "secret" | "task_secret", manifest)
    pod: dict[str, Any]


def attempt_manifests(
    task: Task,
    cand: Placed,
    targets: Targets,
    identity: str,
    service_account: str | None,
    namespace: str,
    attempt: str,
) -> AttemptManifests:
    """The Secrets and the pod one attempt creates in `cand.context`.

    One place for a single pod and a gang's base pod alike: the kubeconfig Secret (with
    remote_identity LOCAL_CREDENTIALS, holding only the allowed contexts), the task's secrets,
    and the pod that mounts and reads them.
    """
    ctx = cand.context
    made: list[tuple[str, dict[str, Any]]] = []
    secret_name = None
    if identity == "LOCAL_CREDENTIALS":
        flat = flatten_for_contexts(targets.kubeconfig, list(targets.allowed.names))
        secret = kubeconfig_secret(
            task, context=ctx, namespace=namespace, attempt=attempt, kubeconfig=flat
        )
        secret_name = str(secret["metadata"]["name"])
        made.append(("secret", secret))
    if task.secrets:
        made.append(
            (
                "task_secret",
                secrets_manifest(task, context=ctx, namespace=namespace, attempt=attempt),
            )
        )
    pod = pod_manifest(
        task,
        context=ctx,
        namespace=namespace,
        attempt=attempt,
        gpu_resource=cand.resource,
        nodes=cand.nodes,
        service_account=service_account,
        kubeconfig_secret_name=secret_name,
    )
    return AttemptManifests(made, pod)
