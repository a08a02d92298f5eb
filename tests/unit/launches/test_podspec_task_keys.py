"""What the honoured task keys become in the pod: spot affinity, disk, secrets, pod_config."""

from __future__ import annotations

from typing import Any

from skymagic.launches.podspec import SPOT_LABELS, merge_pod_config, pod_manifest, secrets_manifest
from skymagic.launches.task import Task, parse_task


def manifest(task: Task, nodes: list[str] | None = None) -> dict[str, Any]:
    return pod_manifest(
        task,
        context="ctx",
        namespace="ns",
        attempt="a1",
        gpu_resource="nvidia.com/gpu",
        nodes=nodes or [],
        service_account=None,
        kubeconfig_secret_name=None,
    )


def terms(pod: dict[str, Any]) -> list[list[dict[str, Any]]]:
    req = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [t["matchExpressions"] for t in req["nodeSelectorTerms"]]


def test_spot_requires_one_providers_spot_label_and_the_gpu() -> None:
    pod = manifest(Task(name="t"))
    assert "affinity" not in pod["spec"]
    task = parse_task("resources:\n  accelerators: H100:1\n  use_spot: true\nrun: echo\n", name="t")
    got = terms(manifest(task))
    gpu_terms = {str(t[0]) for t in got}
    spot = {(t[1]["key"], t[1]["values"][0]) for t in got}
    assert spot == set(SPOT_LABELS) and len(got) == len(gpu_terms) * len(SPOT_LABELS)
    assert all(t[1]["operator"] == "In" for t in got)


def test_on_demand_avoids_every_spot_label() -> None:
    task = parse_task("resources:\n  use_spot: false\nrun: echo\n", name="t")
    [only] = terms(manifest(task))
    assert {(e["key"], e["operator"]) for e in only} == {(k, "NotIn") for k, _v in SPOT_LABELS}


def test_disk_secrets_labels_priority() -> None:
    body = """\
resources:
  disk_size: 100
  labels: {team: ml}
  priority_class: high
secrets:
  TOKEN: abc
run: echo
"""
    task = parse_task(body, name="t")
    pod = manifest(task)
    main = pod["spec"]["containers"][0]
    assert main["resources"]["requests"]["ephemeral-storage"] == "100Gi"
    [ref] = [e for e in main["env"] if e["name"] == "TOKEN"]
    assert ref == {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "t-secrets", "key": "TOKEN"}},
    }
    assert "abc" not in str(pod)
    assert pod["metadata"]["labels"]["team"] == "ml" and pod["spec"]["priorityClassName"] == "high"
    secret = secrets_manifest(task, context="ctx", namespace="ns", attempt="a1")
    assert secret["stringData"] == {"TOKEN": "abc"} and secret["metadata"]["name"] == "t-secrets"


def test_pod_config_merges_as_skypilot_does_and_keeps_skymagics_labels() -> None:
    body = """\
config:
  kubernetes:
    pod_config:
      metadata:
        labels: {kueue.x-k8s.io/queue-name: q, skymagic.dev/launch: evil}
      spec:
        imagePullSecrets: [{name: regcred}]
        nodeSelector: {pool: gpu}
        tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]
        containers:
          - securityContext: {capabilities: {add: [IPC_LOCK]}}
            env: [{name: EXTRA, value: "1"}]
            resources: {limits: {vpc.amazonaws.com/efa: 4}, requests: {vpc.amazonaws.com/efa: 4}}
resources:
  accelerators: H100:1
run: echo
"""
    pod = manifest(parse_task(body, name="t"))
    spec, main = pod["spec"], pod["spec"]["containers"][0]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}] and spec["nodeSelector"] == {
        "pool": "gpu"
    }
    keys = [t["key"] for t in spec["tolerations"]]
    assert "dedicated" in keys and "nvidia.com/gpu" in keys  # extended, not replaced
    assert main["name"] == "main" and main["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "1", "vpc.amazonaws.com/efa": 4}
    assert {"name": "EXTRA", "value": "1"} in main["env"]
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "q"
    assert pod["metadata"]["labels"]["skymagic.dev/launch"] == "t"


def test_merge_by_name() -> None:
    base = {"volumes": [{"name": "a", "emptyDir": {}}]}
    merge_pod_config(
        base, {"volumes": [{"name": "a", "emptyDir": {"medium": "Memory"}}, {"name": "b"}]}
    )
    assert base == {"volumes": [{"name": "a", "emptyDir": {"medium": "Memory"}}, {"name": "b"}]}
