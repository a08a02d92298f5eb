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

import shlex
from typing import Any

import yaml

from skymagic.gpus.accelerators import GPU_TAINT_KEYS, matching_label_values, split_canonical
from skymagic.gpus.quantity import format_cpu, format_memory
from skymagic.launches.task import Task

__all__ = [
    "LABEL_LAUNCH",
    "LABEL_MANAGED",
    "LABEL_USER",
    "kubeconfig_secret",
    "pod_manifest",
    "selector_for",
    "service_manifest",
]

LABEL_MANAGED = "skymagic.dev/managed"
LABEL_LAUNCH = "skymagic.dev/launch"
LABEL_USER = "skymagic.dev/user"
LABEL_CLUSTER = "skymagic.dev/context"
LABEL_ATTEMPT = "skymagic.dev/attempt"
KUBE_DIR = "/root/.kube"
GIB = 2**30


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
    if task.is_dev_pod:
        return ["/bin/sh", "-c", "sleep infinity"]
    script = ""
    if task.setup:
        script += task.setup.rstrip() + "\n"
    script += (task.run or "").rstrip() + "\n"
    return ["/bin/sh", "-c", script]


def _affinity(task: Task, nodes: list[str]) -> dict[str, Any] | None:
    if not task.gpu_count or not task.gpu:
        return None
    base, _mig, _shared = split_canonical(task.gpu)
    values = matching_label_values(task.gpu) or matching_label_values(base)
    terms: list[dict[str, Any]]
    if values:
        terms = [
            {"matchExpressions": [{"key": key, "operator": "In", "values": sorted(vals)}]}
            for key, vals in sorted(values.items())
            if vals
        ]
    else:
        terms = []
    if not terms and nodes:
        # No label value names this GPU exactly (e.g. MIG-mixed nodes): pin to the nodes the
        # inventory saw with it.
        terms = [
            {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": sorted(nodes)}
                ]
            }
        ]
    if not terms:
        return None
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


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
    env = [{"name": k, "value": v} for k, v in sorted(task.envs.items())]
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
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": task.name,
            "namespace": namespace,
            "labels": _labels(task, context, attempt),
            "annotations": {"skymagic.dev/command": shlex.join(_command(task))[:1000]},
        },
        "spec": spec,
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
