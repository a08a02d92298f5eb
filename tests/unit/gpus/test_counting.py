"""Counting free GPUs/CPU/memory, no server involved.

The cases are written as plain dicts, as the API server sends them, and every one reaches the
rules through the inventory's decoders: pods as a list page (`wire.decode_pod_usage_list`, the
one-shot tally's, and `wire.decode_pod_list`, the live inventory's, on the page's JSON), nodes
and single pods through `wire.to_node` / `wire.to_pod` (the same typed structs, from the
dict's JSON).
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from skymagic.gpus.counting import (
    NodeInfo,
    Usage,
    context_rows,
    format_utilization,
    job_of,
    jobs_text,
    node_rows,
    node_status,
    parse_node,
    pod_binding,
    pod_binding_cached,
    pod_key,
    pod_requests,
    summary_rows,
)
from skymagic.gpus.quantity import effective_requests
from skymagic.gpus.wire import (
    JOB_ATTEMPT_LABEL,
    JOB_ID_LABEL,
    Pod,
    WireError,
    decode_pod_list,
    decode_pod_usage_list,
)

GIB = 2**30


def node(
    name: str = "n1",
    *,
    gpus: int = 8,
    resource: str = "nvidia.com/gpu",
    labels: dict[str, str] | None = None,
    cpu: str = "32",
    memory: str = "256Gi",
    ready: str = "True",
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if gpus:
        alloc[resource] = str(gpus)
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "metadata": {
            "name": name,
            "labels": labels
            if labels is not None
            else ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"} if gpus else {}),
        },
        "spec": spec,
        "status": {
            "allocatable": alloc,
            "capacity": {**alloc, "cpu": "64"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready},
            ],
        },
    }


def container(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Any:
    res: dict[str, Any] = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    return {"name": "c", "image": "x", "resources": res}


def pod(
    node_name: str | None = "n1",
    *,
    containers: list[Any] | None = None,
    init: list[Any] | None = None,
    phase: str = "Running",
    overhead: dict[str, str] | None = None,
    uid: str = "u1",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or []}
    if init is not None:
        spec["initContainers"] = init
    if node_name:
        spec["nodeName"] = node_name
    if overhead:
        spec["overhead"] = overhead
    meta: dict[str, Any] = {"uid": uid, "name": uid}
    if labels is not None:
        meta["labels"] = labels
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def job_labels(job: str, attempt: str | None = None, **others: str) -> dict[str, str]:
    """A managed job's pod labels (jobs/model.py's), among the pod's other labels."""
    labels = {"app": "train", **others, JOB_ID_LABEL: job}
    if attempt is not None:
        labels[JOB_ATTEMPT_LABEL] = attempt
    return labels


# --- pod requests ---------------------------------------------------------------------------


def test_sum_of_app_containers_and_limits_standing_in_for_requests() -> None:
    spec = pod(
        containers=[
            container({"cpu": "500m", "memory": "1Gi"}, {"nvidia.com/gpu": "2"}),
            container({"cpu": "1", "nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"}),
        ]
    )["spec"]
    assert pod_requests(spec) == {"cpu": 1.5, "memory": GIB, "nvidia.com/gpu": 3.0}


def test_init_container_larger_than_app_containers_wins() -> None:
    spec = pod(
        containers=[container({"nvidia.com/gpu": "2", "cpu": "2"})],
        init=[container({"nvidia.com/gpu": "4"}), container({"nvidia.com/gpu": "1", "cpu": "8"})],
    )["spec"]
    assert pod_requests(spec) == {"nvidia.com/gpu": 4.0, "cpu": 8.0}


def test_overhead_is_added() -> None:
    spec = pod(
        containers=[container({"cpu": "1", "memory": "1Gi"})],
        overhead={"cpu": "250m", "memory": "120Mi"},
    )["spec"]
    assert pod_requests(spec) == {"cpu": 1.25, "memory": GIB + 120 * 2**20}


def test_sidecar_init_containers_run_beside_the_app() -> None:
    sidecar = {**container({"cpu": "1", "nvidia.com/gpu": "1"}), "restartPolicy": "Always"}
    spec = pod(
        containers=[container({"cpu": "2", "nvidia.com/gpu": "2"})],
        init=[sidecar, container({"cpu": "4"})],
    )["spec"]
    # the sidecar runs with the app (1 + 2 GPUs); the later init runs beside the sidecar (1 + 4)
    assert pod_requests(spec) == {"cpu": 5.0, "nvidia.com/gpu": 3.0}


def test_only_counted_resources_are_kept() -> None:
    spec = pod(
        containers=[container({"cpu": "1", "ephemeral-storage": "10Gi", "example.com/foo": "3"})]
    )["spec"]
    assert pod_requests(spec) == {"cpu": 1.0}


@pytest.mark.parametrize("seed", range(30))
def test_pod_requests_is_the_one_rule_restricted_to_counted_resources(seed: int) -> None:
    """The inventory's counting uses the product's one rule, with sidecars, inits, overhead."""
    rng = random.Random(seed)
    resources = ["cpu", "memory", "nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "example.com/x"]
    values = {"cpu": ["100m", "1", "2.5"], "memory": ["512Mi", "1Gi", "3G"]}

    def random_container(init: bool) -> Any:
        req = {
            r: rng.choice(values.get(r, ["1", "2", "4"]))
            for r in rng.sample(resources, rng.randint(0, 3))
        }
        lim = {
            r: rng.choice(values.get(r, ["1", "2"]))
            for r in rng.sample(resources, rng.randint(0, 2))
        }
        c = container(req or None, lim or None)
        if init and rng.random() < 0.5:
            c["restartPolicy"] = "Always"
        return c

    spec = pod(
        containers=[random_container(False) for _ in range(rng.randint(1, 3))],
        init=[random_container(True) for _ in range(rng.randint(0, 3))],
        overhead={"cpu": "100m", "example.com/x": "1"} if rng.random() < 0.3 else None,
    )["spec"]
    everything = effective_requests(spec)
    counted = {r: q for r, q in everything.items() if r != "example.com/x"}
    assert pod_requests(spec) == pytest.approx(counted)


def test_pod_binding_counts_native_sidecars() -> None:
    sidecar = {**container({"nvidia.com/gpu": "1"}), "restartPolicy": "Always"}
    p = pod(containers=[container({"nvidia.com/gpu": "2"})], init=[sidecar])
    assert pod_binding(p) == ("n1", {"nvidia.com/gpu": 3.0})


def test_pod_binding_ignores_unbound_and_terminal_pods() -> None:
    c = [container({"nvidia.com/gpu": "1"})]
    assert pod_binding(pod(None, containers=c)) is None
    assert pod_binding(pod(containers=c, phase="Succeeded")) is None
    assert pod_binding(pod(containers=c, phase="Failed")) is None
    assert pod_binding(pod(containers=c, phase="Pending")) == ("n1", {"nvidia.com/gpu": 1.0})


# --- nodes ------------------------------------------------------------------------------------


def test_parse_node_reads_allocatable_not_capacity() -> None:
    info = parse_node(node(cpu="31500m", memory="250Gi"))
    assert info.allocatable["cpu"] == 31.5
    assert info.allocatable["memory"] == 250 * GIB
    assert [g.canonical for g in info.gpus] == ["H100"]
    assert info.ready and not info.unschedulable


@pytest.mark.parametrize(
    ("kwargs", "schedulable", "status"),
    [
        ({}, True, "Healthy"),
        ({"ready": "False"}, False, "NotReady"),
        ({"ready": "Unknown"}, False, "NotReady"),
        ({"unschedulable": True}, False, "Cordoned"),
        (
            {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
            True,
            "Healthy",
        ),
        ({"taints": [{"key": "google.com/tpu", "effect": "NoExecute"}]}, True, "Healthy"),
        (
            {"taints": [{"key": "dedicated", "value": "infra", "effect": "PreferNoSchedule"}]},
            True,
            "Healthy",
        ),
        (
            {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]},
            False,
            "NoSchedule Taint [dedicated=infra]",
        ),
        (
            {"taints": [{"key": "maintenance", "effect": "NoExecute"}]},
            False,
            "NoExecute Taint [maintenance]",
        ),
        (
            {
                "ready": "False",
                "unschedulable": True,
                "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
            },
            False,
            "NotReady",
        ),
        (
            {
                "unschedulable": True,
                "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
            },
            False,
            "Cordoned",
        ),
    ],
)
def test_node_status(kwargs: dict[str, Any], schedulable: bool, status: str) -> None:
    assert node_status(parse_node(node(**kwargs))) == (schedulable, status)


def _body(*pods: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"kind": "PodList", "metadata": {}, "items": list(pods)})


def _page(*pods: dict[str, Any]) -> list[Pod]:
    """The pods as the live inventory gets them: one PodList page, typed, with metadata."""
    return decode_pod_list(_body(*pods))


def _usage(*pods: dict[str, Any]) -> Usage:
    """The one-shot inventory's tally of one PodList page (typed, without metadata)."""
    usage = Usage()
    usage.add_pods(decode_pod_usage_list(_body(*pods)))
    return usage


def test_free_is_allocatable_minus_bound_non_terminal_requests() -> None:
    nodes = [parse_node(node("n1")), parse_node(node("n2", gpus=0))]
    usage = _usage(
        pod("n1", containers=[container({"nvidia.com/gpu": "2", "cpu": "4", "memory": "16Gi"})]),
        pod("n1", containers=[container(None, {"nvidia.com/gpu": "1"})], uid="u2"),
        pod("n1", containers=[container({"nvidia.com/gpu": "4"})], phase="Succeeded", uid="u3"),
        pod(None, containers=[container({"nvidia.com/gpu": "4"})], phase="Pending", uid="u4"),
        pod("n2", containers=[container({"cpu": "1"})], uid="u5"),
        pod("gone-node", containers=[container({"nvidia.com/gpu": "8"})], uid="u6"),
    )
    rows = node_rows("ctx", nodes, usage)
    assert len(rows) == 2
    gpu_row, cpu_row = rows
    assert (gpu_row["gpu"], gpu_row["gpu_total"], gpu_row["gpu_requested"]) == ("H100", 8, 3)
    assert gpu_row["gpu_free"] == 5
    assert gpu_row["cpu_total"] == 32 and gpu_row["cpu_free"] == 28
    assert gpu_row["memory_gb_total"] == 256 and gpu_row["memory_gb_free"] == 240
    assert cpu_row["gpu"] is None and cpu_row["gpu_total"] == 0
    assert cpu_row["cpu_free"] == 31


def test_unusable_nodes_have_no_free_capacity_tainted_ones_keep_theirs() -> None:
    nodes = [
        parse_node(node("ok")),
        parse_node(node("down", ready="False")),
        parse_node(node("cordoned", unschedulable=True)),
        parse_node(node("tainted", taints=[{"key": "team", "value": "a", "effect": "NoSchedule"}])),
    ]
    usage = _usage(pod("down", containers=[container({"nvidia.com/gpu": "2"})]))
    rows = {r["node"]: r for r in node_rows("ctx", nodes, usage)}
    assert rows["ok"]["gpu_free"] == 8
    for name in ("down", "cordoned", "tainted"):
        assert rows[name]["gpu_total"] == 8
        assert not rows[name]["schedulable"]
    for name in ("down", "cordoned"):
        assert rows[name]["gpu_free"] == 0
        assert rows[name]["cpu_free"] == 0
    # A tainted node keeps its real free counts (a pod that tolerates the taint may use them);
    # the per-GPU totals below leave them out, as for any unschedulable node.
    assert rows["tainted"]["gpu_free"] == 8
    assert rows["tainted"]["cpu_free"] == rows["ok"]["cpu_free"]
    assert rows["down"]["gpu_requested"] == 2
    assert rows["tainted"]["status"] == "NoSchedule Taint [team=a]"
    (by_ctx,) = context_rows(rows.values())
    assert by_ctx["gpu_total"] == 32 and by_ctx["gpu_free"] == 8
    assert by_ctx["utilization"] == "8 of 32 free (24 not ready)"
    assert by_ctx["nodes"] == 4


def test_unknown_pods_give_unknown_free() -> None:
    rows = node_rows("ctx", [parse_node(node()), parse_node(node("c", gpus=0))], None)
    assert rows[0]["gpu_total"] == 8
    assert rows[0]["gpu_requested"] is None and rows[0]["gpu_free"] is None
    assert rows[0]["cpu_free"] is None and rows[0]["memory_gb_free"] is None
    assert rows[1]["gpu_free"] is None
    (by_ctx,) = context_rows(rows)
    assert by_ctx["gpu_free"] is None
    assert by_ctx["utilization"] == "free unknown of 8"


def test_requestable_quantities_per_context_and_tpu_slices() -> None:
    tpu_labels = {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x4",
    }
    nodes = [
        parse_node(node("a", gpus=12)),
        parse_node(node("b", gpus=2)),
        parse_node(node("t", gpus=8, resource="google.com/tpu", labels=tpu_labels)),
    ]
    rows = context_rows(node_rows("ctx", nodes, Usage()))
    by_gpu = {r["gpu"]: r for r in rows}
    assert by_gpu["H100"]["requestable_qty_per_node"] == [1, 2, 4, 8, 12]
    assert by_gpu["H100"]["utilization"] == "14 of 14 free"
    assert by_gpu["tpu-v5-lite-podslice"]["requestable_qty_per_node"] == [8]


def test_summary_aggregates_over_contexts() -> None:
    a = node_rows(
        "a", [parse_node(node())], _usage(pod(containers=[container({"nvidia.com/gpu": "2"})]))
    )
    b = node_rows("b", [parse_node(node())], None)
    c = node_rows("c", [parse_node(node())], Usage())
    (summary,) = summary_rows(context_rows([*a, *b, *c]))
    assert summary["gpu"] == "H100"
    assert summary["gpu_total"] == 24
    assert summary["gpu_free"] == 14
    assert summary["utilization"] == "14 of 24 free (8 unknown)"
    assert summary["contexts"] == "a, b, c"


def test_mig_mixed_node_has_a_row_per_profile() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    raw = node(gpus=0, labels=labels)
    raw["status"]["allocatable"].update(
        {"nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-3g.40gb": "2"}
    )
    usage = _usage(pod(containers=[container({"nvidia.com/mig-1g.10gb": "3"})]))
    rows = node_rows("ctx", [parse_node(raw)], usage)
    assert [(r["gpu"], r["gpu_total"], r["gpu_free"]) for r in rows] == [
        ("A100-80GB (MIG 1g.10gb)", 14, 11),
        ("A100-80GB (MIG 3g.40gb)", 2, 2),
    ]


def test_format_utilization() -> None:
    assert format_utilization(6, 8) == "6 of 8 free"
    assert format_utilization(6, 8, 2) == "6 of 8 free (2 not ready)"
    assert format_utilization(None, 8) == "free unknown of 8"


def test_node_info_defaults() -> None:
    info = NodeInfo(name="x", gpus=[], allocatable={})
    assert node_status(info) == (True, "Healthy")


def test_malformed_resources_fail_the_page_not_silently() -> None:
    """Resources are decoded lazily (once per distinct text): a wrong type still fails."""
    bad = pod(containers=[container({"nvidia.com/gpu": ["1"]})], uid="bad")  # type: ignore[dict-item]
    with pytest.raises(WireError, match=r"Expected `float \| str`, got `array` - at `\$.requests"):
        _usage(pod(containers=[container({"cpu": "1"})]), bad)


def test_typed_page_and_plain_dicts_count_the_same() -> None:
    """The page decoder and the dict path (pods.py, tests) reach the same rule."""
    sidecar = {**container({"nvidia.com/gpu": "1"}), "restartPolicy": "Always"}
    pods = [
        pod(containers=[container({"nvidia.com/gpu": "2", "cpu": "1"})], uid="a"),
        pod(containers=[container({"cpu": "1"})], init=[sidecar], uid="b"),
        pod(containers=[container(limits={"memory": "1Gi"})], overhead={"cpu": "1"}, uid="c"),
        pod(containers=[container({"nvidia.com/gpu": "8"})], phase="Failed", uid="d"),
    ]
    decoded = [pod_binding_cached(p) for p in _page(*pods)]
    assert decoded == [pod_binding(p) for p in pods]
    assert [pod_key(p) for p in _page(*pods)] == [pod_key(p) for p in pods] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("seed", range(10))
def test_the_page_tally_counts_what_each_pods_binding_says(seed: int) -> None:
    """`Usage.add_pods` (the hot loop, inlined) agrees with `pod_binding` pod by pod."""
    rng = random.Random(seed)
    gpu = ["nvidia.com/gpu", "nvidia.com/mig-1g.10gb"]
    pods = []
    for i in range(200):
        app = [
            container({"cpu": rng.choice(["100m", "1"]), rng.choice(gpu): str(rng.randint(1, 4))})
            for _ in range(rng.choice([1, 1, 1, 2]))
        ]
        init = [container({"nvidia.com/gpu": "2"})] if rng.random() < 0.1 else None
        if init and rng.random() < 0.5:
            init[0]["restartPolicy"] = "Always"
        pods.append(
            pod(
                rng.choice(["n1", "n2", None]),
                containers=app,
                init=init,
                phase=rng.choice(["Running", "Pending", "Succeeded"]),
                overhead={"cpu": "100m"} if rng.random() < 0.1 else None,
                uid=f"u{i}",
            )
        )
    expected = Usage()
    for p in pods:
        b = pod_binding(p)
        if b is not None:
            expected.add(*b)
    got = _usage(*pods)
    assert got.by_node.keys() == expected.by_node.keys()
    for node, req in expected.by_node.items():
        assert got.by_node[node] == pytest.approx(req)


# --- managed jobs on nodes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "job"),
    [
        (job_labels("3", "1"), "3"),
        (job_labels("3"), "3"),
        (job_labels("3", "2"), "3 (attempt 2)"),
        ({"skymagic.dev/user": "alice", "app": "web"}, ""),
        ({}, ""),
        (None, ""),
    ],
)
def test_job_of_is_one_rule_on_dicts_and_on_both_decoders(
    labels: dict[str, str] | None, job: str
) -> None:
    raw = pod(containers=[container({"nvidia.com/gpu": "1"})], labels=labels)
    assert job_of(raw["metadata"]) == job
    (live,) = _page(raw)  # the live inventory's decoder (name, namespace, uid and the labels)
    (tally,) = decode_pod_usage_list(_body(raw))  # the one-shot tally's (the labels only)
    assert job_of(live.metadata) == job_of(tally.metadata) == job
    assert job_of(None) == ""


def test_jobs_text_orders_by_job_number_and_names_each_job_once() -> None:
    assert jobs_text(["12 (attempt 2)", "3", "", "3", "9"]) == "3, 9, 12 (attempt 2)"
    assert jobs_text([]) == ""
    assert jobs_text(["3", "12"]).split(", ") == ["3", "12"]  # reads back


def test_a_rows_jobs_are_the_managed_jobs_holding_its_resource() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    mig = node("mig", gpus=0, labels=labels)
    mig["status"]["allocatable"].update(
        {"nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-3g.40gb": "2"}
    )
    nodes = [parse_node(mig), parse_node(node("cpu", gpus=0)), parse_node(node("idle"))]
    small = container({"nvidia.com/mig-1g.10gb": "1", "cpu": "1"})
    usage = _usage(
        pod("mig", containers=[small], labels=job_labels("12", "2"), uid="a"),
        pod("mig", containers=[small], labels=job_labels("3", "1"), uid="b"),
        pod("mig", containers=[small], labels=job_labels("3", "1"), uid="c"),  # a second rank
        pod("mig", containers=[container({"cpu": "2"})], labels=job_labels("5"), uid="d"),
        pod("mig", containers=[small], labels={"skymagic.dev/user": "alice"}, uid="e"),
        pod("mig", containers=[small], labels=job_labels("7"), phase="Succeeded", uid="f"),
        pod(None, containers=[small], labels=job_labels("8"), phase="Pending", uid="g"),
        pod("cpu", containers=[container({"cpu": "1"})], labels=job_labels("9"), uid="h"),
    )
    rows = {(r["node"], r["gpu"]): r for r in node_rows("ctx", nodes, usage)}
    # a GPU row lists the jobs requesting its resource (5 asks for CPU only), each once
    assert rows[("mig", "A100-80GB (MIG 1g.10gb)")]["jobs"] == "3, 12 (attempt 2)"
    assert rows[("mig", "A100-80GB (MIG 3g.40gb)")]["jobs"] == ""
    assert rows[("cpu", None)]["jobs"] == "9"  # a CPU-only node: the jobs running there
    assert rows[("idle", "H100")]["jobs"] == ""
    assert rows[("mig", "A100-80GB (MIG 1g.10gb)")]["gpu_free"] == 14 - 4  # counted as before
    # pods that could not be listed: no jobs either (never a guess)
    assert {r["jobs"] for r in node_rows("ctx", nodes, None)} == {""}
