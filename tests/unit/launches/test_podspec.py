"""The manifests a launch creates: pod (resources, tolerations, affinity, Secret mount), Secret,
Service, and the labels status/logs/down find them by. Tolerations are checked with the
simulator's own Kubernetes toleration rule, not the product's."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from skymagic.gpus.accelerators import GPU_TAINT_KEYS, canonical_name
from skymagic.launches.podspec import (
    LABEL_LAUNCH,
    LABEL_MANAGED,
    LABEL_USER,
    kubeconfig_secret,
    pod_manifest,
    selector_for,
    service_manifest,
)
from skymagic.launches.task import Task
from skymagic.sim.scheduler import tolerates

GPU = Task(
    name="train",
    run="python train.py",
    setup="pip install x",
    gpu="H100",
    gpu_count=2,
    user="ada",
    envs={"B": "2", "A": "1"},
    ports=(8888,),
)
CPU = Task(name="cpu", run="echo hi", user="ada")


def pod(task: Task, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "context": "prod/eu:1",
        "namespace": "team",
        "attempt": "abc123",
        "gpu_resource": "nvidia.com/gpu" if task.gpu_count else None,
        "nodes": [],
        "service_account": None,
        "kubeconfig_secret_name": None,
    }
    args.update(kw)
    return pod_manifest(task, **args)


@pytest.mark.parametrize("effect", ["NoSchedule", "NoExecute", "PreferNoSchedule"])
@pytest.mark.parametrize("key", GPU_TAINT_KEYS)
def test_gpu_pods_tolerate_the_gpu_taints_with_every_effect(key: str, effect: str) -> None:
    # The inventory counts a node with a NoExecute GPU taint as usable; the pod must agree.
    taint = {"key": key, "value": "present", "effect": effect}
    assert tolerates(pod(GPU)["spec"]["tolerations"], taint)
    assert not tolerates(pod(GPU)["spec"]["tolerations"], {**taint, "key": "dedicated"})
    assert not tolerates(pod(CPU)["spec"].get("tolerations") or [], taint)


def test_gpu_resources_are_request_and_limit() -> None:
    container = pod(GPU)["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
        "limits": {"nvidia.com/gpu": "2"},
    }
    assert container["image"] == GPU.container_image
    # The entrypoint (launches/agent.py) gets setup and run as its arguments.
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][3:] == ["skymagic", "pip install x", "python train.py"]
    assert [e["name"] for e in container["env"]] == [
        "A",
        "B",
        "SKYMAGIC_LAUNCH",
        "SKYMAGIC_CONTEXT",
    ]
    assert container["ports"] == [{"containerPort": 8888, "protocol": "TCP"}]
    cpu = pod(CPU)["spec"]["containers"][0]["resources"]
    assert "limits" not in cpu and set(cpu["requests"]) == {"cpu", "memory"}


def test_affinity_allows_only_label_values_of_the_requested_gpu() -> None:
    task = Task(name="t", run="x", gpu="A100-80GB", gpu_count=1, user="u")
    terms = pod(task)["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert len(terms) >= 2  # one term per label scheme: any scheme may match (OR)
    for term in terms:
        (expr,) = term["matchExpressions"]
        assert expr["operator"] == "In"
        for value in expr["values"]:
            assert canonical_name(expr["key"], value) == "A100-80GB"


def test_a_mig_request_asks_for_that_profile_only() -> None:
    task = Task(name="t", run="x", gpu="H100 (MIG 1g.10gb)", gpu_count=1, user="u")
    spec = pod(task, gpu_resource="nvidia.com/mig-1g.10gb")["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    values = [(e["key"], v) for t in terms for e in t["matchExpressions"] for v in e["values"]]
    assert values and all(canonical_name(k, v) == "H100 (MIG 1g.10gb)" for k, v in values)
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1"}
    assert "affinity" not in pod(CPU)["spec"]


def test_dev_pods_sleep_until_stopped() -> None:
    dev = Task(name="dev", gpu="H100", gpu_count=1, user="u")
    command = pod(dev)["spec"]["containers"][0]["command"]
    assert command[2].endswith("exec sleep infinity") and command[3:] == ["skymagic", "", ""]


def test_labels_find_every_object_of_a_launch() -> None:
    manifest = pod(GPU)
    labels = manifest["metadata"]["labels"]
    assert labels[LABEL_MANAGED] == "true" and labels[LABEL_LAUNCH] == "train"
    assert labels[LABEL_USER] == "ada"
    assert labels["skymagic.dev/context"] == "prod-eu-1"  # a label value: no '/' or ':'
    assert selector_for() == f"{LABEL_MANAGED}=true"
    assert selector_for("train", "ada") == (
        f"{LABEL_MANAGED}=true,{LABEL_LAUNCH}=train,{LABEL_USER}=ada"
    )


def test_the_kubeconfig_secret_is_mounted_and_named_only() -> None:
    flat = {"apiVersion": "v1", "kind": "Config", "users": [{"name": "u", "user": {"token": "s"}}]}
    secret = kubeconfig_secret(GPU, context="c", namespace="team", attempt="a", kubeconfig=flat)
    assert yaml.safe_load(secret["stringData"]["config"]) == flat
    name = secret["metadata"]["name"]
    manifest = pod(GPU, kubeconfig_secret_name=name, service_account="sa")
    spec = manifest["spec"]
    assert spec["serviceAccountName"] == "sa"
    assert spec["volumes"] == [
        {"name": "skymagic-kubeconfig", "secret": {"secretName": name, "defaultMode": 0o400}}
    ]
    container = spec["containers"][0]
    assert container["volumeMounts"][0]["readOnly"] is True
    assert {"name": "KUBECONFIG", "value": "/root/.kube/config"} in container["env"]
    assert "s" not in yaml.safe_dump(manifest).split()  # the token is in the Secret only


def test_the_service_selects_the_launch_pod() -> None:
    svc = service_manifest(GPU, context="c", namespace="team", attempt="a")
    assert svc["spec"]["selector"] == {LABEL_LAUNCH: "train", LABEL_USER: "ada"}
    assert svc["spec"]["ports"] == [
        {"name": "p8888", "port": 8888, "targetPort": 8888, "protocol": "TCP"}
    ]
