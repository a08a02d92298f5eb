"""Builders for the Kubernetes objects a simulated cluster starts with or creates.

They are shaped like what a real kubelet / API server produces (the fields kubectl and the
Python client read, realistic sizes), because the benchmarks compare clients on list bytes.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import msgspec

from skymagic.sim.labels import NodeProfile, gpu_node_profile
from skymagic.sim.quantity import format_cpu, format_memory
from skymagic.sim.spec import SPOT_LABELS, NodeGroup, PodGroup
from skymagic.sim.store import now_rfc3339

__all__ = [
    "SIM_ANNOTATION",
    "build_node",
    "build_pod",
    "event_for",
    "gpu_offer",
    "node_gpu_resources",
    "set_node_ready",
    "set_node_unschedulable",
    "taint_key_for",
]

SIM_ANNOTATION = "sim.skymagic.dev/"
GIB = 2**30


def _node_ip(cluster_index: int, i: int) -> str:
    return f"10.{cluster_index % 250}.{(i // 250) % 250}.{i % 250 + 1}"


def build_node(group: NodeGroup, index: int, cluster_index: int, version: str) -> dict[str, Any]:
    """One node of a node group, with labels/resources/taints from its label scheme."""
    name = f"{group.name}-{index}" if group.count > 1 or index else group.name
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": "sim-zone-a",
    }
    gpu_res: dict[str, int] = {}
    taints: list[dict[str, str]] = []
    if group.gpu:
        profile = _profile(group, group.gpu)
        labels.update(profile.labels)
        gpu_res = dict(profile.gpu_resources)
        taints.extend(profile.taints)
    if group.spot:
        key, value = SPOT_LABELS[group.spot]
        labels[key] = value
    labels.update(group.extra_labels)
    taints.extend(dict(t) for t in group.taints)
    cpu_reserved = 0.1 if group.cpu > 1 else 0.0
    mem_reserved = 1 if group.memory_gb > 4 else 0
    capacity: dict[str, str] = {
        "cpu": format_cpu(group.cpu),
        "memory": format_memory(group.memory_gb * GIB),
        "pods": "110",
        "ephemeral-storage": "203056560Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocatable = dict(capacity)
    allocatable["cpu"] = format_cpu(group.cpu - cpu_reserved)
    allocatable["memory"] = format_memory((group.memory_gb - mem_reserved) * GIB)
    allocatable["ephemeral-storage"] = "187136925387"
    for res, qty in gpu_res.items():
        capacity[res] = str(qty)
        allocatable[res] = str(qty)
    spec: dict[str, Any] = {
        "podCIDR": f"10.244.{index % 256}.0/24",
        "podCIDRs": [f"10.244.{index % 256}.0/24"],
        "providerID": f"sim://{name}",
    }
    ts = now_rfc3339()
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "creationTimestamp": ts,
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                _cond("MemoryPressure", "False", "KubeletHasSufficientMemory", ts),
                _cond("DiskPressure", "False", "KubeletHasNoDiskPressure", ts),
                _cond("PIDPressure", "False", "KubeletHasSufficientPID", ts),
                _cond("Ready", "True", "KubeletReady", ts, "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": _node_ip(cluster_index, index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(name.encode()).hexdigest(),
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": "6.1.0-28-cloud-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": version,
                "kubeProxyVersion": version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    if taints:
        spec["taints"] = taints
    set_node_ready(node, group.ready)
    set_node_unschedulable(node, group.unschedulable)
    return node


def gpu_offer(group: NodeGroup) -> tuple[str, str] | None:
    """(GPU name, device resource) a node of `group` offers to the spec's pods; None if nothing.

    Read from the group's own profile, the same one that labelled the node: the fleet places
    pods by what the spec says each node has, never by detecting it from the labels.
    """
    if not group.gpu or group.gpus <= 0:
        return None
    profile = _profile(group, group.gpu)
    return profile.gpu, profile.resource


def _profile(group: NodeGroup, gpu: str) -> NodeProfile:
    """The labels, devices and taints `group`'s label scheme gives each of its `gpu` nodes."""
    return gpu_node_profile(
        group.labels,
        gpu,
        group.gpus,
        taint_gpu=group.taint_gpu,
        topology=group.topology,
        mig_profile=group.mig_profile,
        replicas=group.replicas,
    )


def _cond(ctype: str, status: str, reason: str, ts: str, message: str = "") -> dict[str, str]:
    return {
        "type": ctype,
        "status": status,
        "lastHeartbeatTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message or reason,
    }


def set_node_ready(node: dict[str, Any], ready: bool) -> None:
    """Flip the Ready condition and the not-ready taint the node lifecycle controller adds."""
    for cond in node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["status"] = "True" if ready else "False"
            cond["reason"] = "KubeletReady" if ready else "KubeletNotReady"
            cond["message"] = (
                "kubelet is posting ready status" if ready else "container runtime is down"
            )
            cond["lastTransitionTime"] = now_rfc3339()
    _set_taint(node, "node.kubernetes.io/not-ready", not ready)


def set_node_unschedulable(node: dict[str, Any], unschedulable: bool) -> None:
    """Cordon / uncordon: spec.unschedulable plus the taint the API server adds with it."""
    if unschedulable:
        node["spec"]["unschedulable"] = True
    else:
        node["spec"].pop("unschedulable", None)
    _set_taint(node, "node.kubernetes.io/unschedulable", unschedulable)


def _set_taint(node: dict[str, Any], key: str, present: bool) -> None:
    taints = [t for t in node["spec"].get("taints", []) if t.get("key") != key]
    if present:
        taints.append({"key": key, "effect": "NoSchedule", "timeAdded": now_rfc3339()})
    if taints:
        node["spec"]["taints"] = taints
    else:
        node["spec"].pop("taints", None)


def taint_key_for(resource: str) -> str:
    """The taint GPU/TPU node pools carry for a device resource.

    GKE taints GPU node pools `nvidia.com/gpu=present:NoSchedule` and TPU node pools
    `google.com/tpu=present:NoSchedule` (cloud.google.com/kubernetes-engine/docs/how-to/gpus,
    .../tpus); the AMD GPU operator's guides use `amd.com/gpu` the same way.
    """
    vendor = resource.split("/", 1)[0]
    return {"amd.com": "amd.com/gpu", "google.com": "google.com/tpu"}.get(vendor, "nvidia.com/gpu")


def node_gpu_resources(node: dict[str, Any]) -> dict[str, int]:
    """The accelerator resources a node offers (for placing spec pods on matching nodes)."""
    out = {}
    for res, qty in node["status"]["allocatable"].items():
        if res.endswith(("/gpu", "/tpu", "/gpu.shared")) or res.startswith("nvidia.com/mig-"):
            out[res] = int(qty)
    return out


def build_pod(
    group: PodGroup,
    index: int,
    *,
    node: dict[str, Any] | None,
    gpu_resource: str | None,
    pod_ip: str,
) -> dict[str, Any]:
    """A pod of the start-up load, already bound to `node` (unless Pending)."""
    digest = hashlib.sha1(f"{group.name}{index}".encode()).hexdigest()
    name = f"{group.name}-{digest[:10]}-{digest[10:15]}"
    requests: dict[str, str] = {
        "cpu": format_cpu(group.cpu),
        "memory": format_memory(group.memory_gb * GIB),
    }
    limits: dict[str, str] = {}
    if gpu_resource and group.gpus:
        requests[gpu_resource] = str(group.gpus)
        limits[gpu_resource] = str(group.gpus)
    ts = now_rfc3339(time.time() - 3600)
    labels = {"app": group.name, "pod-template-hash": digest[:10], **group.labels}
    container: dict[str, Any] = {
        "name": "main",
        "image": "nvcr.io/nvidia/pytorch:24.05-py3" if gpu_resource else "python:3.11-slim",
        "command": ["python", "train.py"],
        "env": [
            {"name": "NCCL_DEBUG", "value": "WARN"},
            {"name": "JOB_NAME", "value": group.name},
        ],
        "resources": {"requests": requests, **({"limits": limits} if limits else {})},
        "volumeMounts": [
            {
                "name": "kube-api-access",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "restartPolicy": "Never" if group.phase in ("Succeeded", "Failed") else "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420}}],
    }
    if gpu_resource:
        spec["tolerations"].append(
            {"key": taint_key_for(gpu_resource), "operator": "Exists", "effect": "NoSchedule"}
        )
    if group.init_gpus and gpu_resource:
        spec["initContainers"] = [
            {
                "name": "warmup",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "true"],
                "resources": {
                    "requests": {gpu_resource: str(group.init_gpus)},
                    "limits": {gpu_resource: str(group.init_gpus)},
                },
            }
        ]
    status: dict[str, Any] = {"phase": group.phase, "qosClass": "Burstable"}
    if node is not None:
        spec["nodeName"] = node["metadata"]["name"]
        host_ip = node["status"]["addresses"][0]["address"]
        status.update(
            hostIP=host_ip,
            hostIPs=[{"ip": host_ip}],
            podIP=pod_ip,
            podIPs=[{"ip": pod_ip}],
            startTime=ts,
        )
        terminated = group.phase in ("Succeeded", "Failed")
        state: dict[str, Any]
        if terminated:
            code = 0 if group.phase == "Succeeded" else 1
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": ts,
                    "finishedAt": ts,
                    "containerID": f"containerd://{digest}{digest[:24]}",
                }
            }
        else:
            state = {"running": {"startedAt": ts}}
        status["conditions"] = [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {
                "type": "Ready",
                "status": "False" if terminated else "True",
                "lastTransitionTime": ts,
            },
            {
                "type": "ContainersReady",
                "status": "False" if terminated else "True",
                "lastTransitionTime": ts,
            },
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
        ]
        status["containerStatuses"] = [
            {
                "name": "main",
                "state": state,
                "lastState": {},
                "ready": not terminated,
                "restartCount": 0,
                "image": container["image"],
                "imageID": f"{container['image'].split(':')[0]}@sha256:{digest}{digest[:24]}",
                "containerID": f"containerd://{digest}{digest[:24]}",
                "started": not terminated,
            }
        ]
    else:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": ts,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": group.namespace,
            "uid": _uid(digest),
            "labels": labels,
            "creationTimestamp": ts,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{group.name}-{digest[:10]}",
                    "uid": _uid(digest[8:40]),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": status,
    }


def _uid(hexdigest: str) -> str:
    h = hexdigest
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class PodStamper:
    """Stamp many start-up pods of one group from a single template.

    Why: building each pod dict field by field costs ~80 us, so a 100,000-pod cluster would take
    many seconds to start; decoding a ready template and patching the few per-pod fields is a
    fraction of that.
    """

    def __init__(
        self, group: PodGroup, gpu_resource: str | None, node: dict[str, Any] | None
    ) -> None:
        self.group = group
        self.template = msgspec.json.encode(
            build_pod(group, 0, node=node, gpu_resource=gpu_resource, pod_ip="0.0.0.0")
        )

    def make(self, index: int, node: dict[str, Any] | None, pod_ip: str) -> dict[str, Any]:
        pod: dict[str, Any] = msgspec.json.decode(self.template)
        digest = hashlib.sha1(f"{self.group.name}{index}".encode()).hexdigest()
        meta = pod["metadata"]
        meta["name"] = f"{self.group.name}-{digest[:10]}-{digest[10:15]}"
        meta["uid"] = _uid(digest)
        meta["labels"]["pod-template-hash"] = digest[:10]
        owner = meta["ownerReferences"][0]
        owner["name"] = f"{self.group.name}-{digest[:10]}"
        owner["uid"] = _uid(digest[8:40])
        if node is not None:
            pod["spec"]["nodeName"] = node["metadata"]["name"]
            host_ip = node["status"]["addresses"][0]["address"]
            status = pod["status"]
            status["hostIP"] = host_ip
            status["hostIPs"] = [{"ip": host_ip}]
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
            for cs in status.get("containerStatuses", []):
                cs["containerID"] = f"containerd://{digest}{digest[:24]}"
        return pod


_last_stamp = 0


def _event_stamp() -> int:
    """client-go's recorder names events "<object>.<UnixNano as hex>": unique and time-ordered."""
    global _last_stamp
    _last_stamp = max(_last_stamp + 1, time.time_ns())
    return _last_stamp


def event_for(
    obj: dict[str, Any],
    *,
    reason: str,
    message: str,
    etype: str = "Normal",
    component: str = "kubelet",
    host: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about `obj`, as the scheduler or kubelet records it."""
    meta = obj["metadata"]
    ts = now_rfc3339()
    ev: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{_event_stamp():x}",
            "namespace": meta.get("namespace", "default"),
        },
        "involvedObject": {
            "kind": obj.get("kind", "Pod"),
            "namespace": meta.get("namespace", "default"),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "type": etype,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
    return ev
