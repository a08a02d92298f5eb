"""The simulator labels each node with its spec's GPU, judged by a table written here.

No product code is involved: if the simulator and skymagic's detection shared a naming mistake,
tests that judge one by the other would both pass. The table below is what each provider writes
for each card (GKE: cloud.google.com/kubernetes-engine/docs/how-to/gpus; GPU Feature Discovery:
the nvidia-smi product name with spaces as dashes; Karpenter: the EC2 instance's GPU name and
memory; CoreWeave: docs.coreweave.com node types; Nebius: the platform's GPU name; AMD device
labeller: the product name from amdgpu; GKE TPU: cloud.google.com/kubernetes-engine/docs/
concepts/plan-tpus), each value with the GPU a person means by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skymagic.sim.cluster import SimCluster
from skymagic.sim.labels import SCHEMES, NodeProfile, gpu_name, gpu_node_profile
from skymagic.sim.spec import load_fleet_spec

GKE = "cloud.google.com/gke-accelerator"
GFD = "nvidia.com/gpu.product"
KARPENTER = "karpenter.k8s.aws/instance-gpu-name"
KARPENTER_MEMORY = "karpenter.k8s.aws/instance-gpu-memory"
TPU = "cloud.google.com/gke-tpu-accelerator"

# scheme -> (label value -> GPU). Karpenter's name alone cannot tell an A100 40 GB from 80 GB
# (p4d and p4de both say "a100"), so its values here are "name/memory MiB".
WRITTEN_BY_PROVIDER: dict[str, dict[str, str]] = {
    "skypilot": {"h100": "H100", "a100": "A100", "a100-80gb": "A100-80GB", "t4": "T4",
                 "l4": "L4", "v100-32gb": "V100-32GB", "h200": "H200", "mi300x": "MI300X"},
    "gke": {"nvidia-h100-80gb": "H100", "nvidia-h100-mega-80gb": "H100-MEGA",
            "nvidia-h200-141gb": "H200", "nvidia-b200": "B200", "nvidia-tesla-a100": "A100",
            "nvidia-a100-80gb": "A100-80GB", "nvidia-l4": "L4", "nvidia-tesla-t4": "T4",
            "nvidia-tesla-v100": "V100"},
    "karpenter": {"h100/81920": "H100", "h200/144384": "H200", "a100/40960": "A100",
                  "a100/81920": "A100-80GB", "l4/24576": "L4", "l40s/49152": "L40S",
                  "t4/16384": "T4", "a10g/24576": "A10G", "v100/16384": "V100",
                  "v100/32768": "V100-32GB", "b200/184320": "B200"},
    "gfd": {"NVIDIA-H100-80GB-HBM3": "H100", "NVIDIA-H200": "H200", "NVIDIA-B200": "B200",
            "NVIDIA-A100-SXM4-40GB": "A100", "NVIDIA-A100-SXM4-80GB": "A100-80GB",
            "NVIDIA-L4": "L4", "NVIDIA-L40S": "L40S", "Tesla-T4": "T4", "NVIDIA-A10G": "A10G",
            "Tesla-V100-SXM2-16GB": "V100", "Tesla-V100-SXM2-32GB": "V100-32GB",
            "NVIDIA-GeForce-RTX-4090": "RTX4090"},
    "coreweave": {"H100_NVLINK_80GB": "H100", "A100_NVLINK": "A100",
                  "A100_NVLINK_80GB": "A100-80GB", "L40S": "L40S", "Tesla_V100_NVLINK": "V100"},
    "nebius": {"H100": "H100", "H200": "H200", "B200": "B200", "L40S": "L40S"},
    "amd": {"AMD_Instinct_MI300X_OAM": "MI300X", "AMD_Instinct_MI325_OAM": "MI325X",
            "AMD_Instinct_MI250X_MI250": "MI250X", "AMD_Instinct_MI210": "MI210"},
    "tpu": {"tpu-v5-lite-podslice": "tpu-v5-lite-podslice", "tpu-v5p-slice": "tpu-v5p-slice",
            "tpu-v6e-slice": "tpu-v6e-slice", "tpu-v4-podslice": "tpu-v4-podslice"},
}  # fmt: skip
LABEL_KEY = {
    "skypilot": "skypilot.co/accelerator",
    "gke": GKE,
    "karpenter": KARPENTER,
    "gfd": GFD,
    "coreweave": "gpu.nvidia.com/class",
    "nebius": "nebius.com/gpu-name",
    "amd": "amd.com/gpu.product-name",
    "tpu": TPU,
}
RESOURCE = {"amd": "amd.com/gpu", "tpu": "google.com/tpu"}


def written_value(scheme: str, profile: NodeProfile) -> str:
    value = profile.labels[LABEL_KEY[scheme]]
    if scheme == "karpenter":
        value += "/" + profile.labels[KARPENTER_MEMORY]
    return value


CASES = [(scheme, gpu) for scheme, values in WRITTEN_BY_PROVIDER.items() for gpu in values.values()]


def test_the_table_covers_every_whole_card_scheme() -> None:
    assert set(WRITTEN_BY_PROVIDER) | {"gfd-mig-mixed", "gfd-shared"} == set(SCHEMES)


@pytest.mark.parametrize(("scheme", "gpu"), CASES)
def test_a_node_is_labelled_with_the_spec_gpu(scheme: str, gpu: str) -> None:
    profile = gpu_node_profile(scheme, gpu, 4)
    assert WRITTEN_BY_PROVIDER[scheme][written_value(scheme, profile)] == gpu
    assert profile.gpu == gpu
    vendor_resource = "amd.com/gpu" if gpu.startswith("MI") else "nvidia.com/gpu"
    assert profile.gpu_resources == {RESOURCE.get(scheme, vendor_resource): 4}


@pytest.mark.parametrize(
    ("scheme", "gpu", "options", "product", "offers", "resources"),
    [
        ("gfd-mig-mixed", "A100-80GB", {}, "NVIDIA-A100-SXM4-80GB",
         "A100-80GB (MIG 1g.10gb)", {"nvidia.com/mig-1g.10gb": 8 * 7}),
        ("gfd-mig-mixed", "H100", {"mig_profile": "3g.40gb"}, "NVIDIA-H100-80GB-HBM3",
         "H100 (MIG 3g.40gb)", {"nvidia.com/mig-3g.40gb": 8 * 2}),
        ("gfd", "A100", {"mig_profile": "1g.5gb"}, "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
         "A100 (MIG 1g.5gb)", {"nvidia.com/gpu": 8 * 7}),
        ("gfd-shared", "T4", {"replicas": 4}, "Tesla-T4-SHARED", "T4 (shared)",
         {"nvidia.com/gpu": 8 * 4}),
    ],
)  # fmt: skip
def test_mig_and_time_sliced_nodes(
    scheme: str,
    gpu: str,
    options: dict[str, Any],
    product: str,
    offers: str,
    resources: dict[str, int],
) -> None:
    profile = gpu_node_profile(scheme, gpu, 8, **options)
    assert profile.labels[GFD] == product
    assert profile.gpu == offers
    assert profile.gpu_resources == resources
    assert profile.resource == next(iter(resources))


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("H100", "H100"),
        ("h100", "H100"),
        (" a100-80gb ", "A100-80GB"),
        ("nvidia-tesla-a100", "A100"),
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("mi325x", "MI325X"),
        ("v5e", "tpu-v5-lite-podslice"),
        ("TPU-V6E", "tpu-v6e-slice"),
        ("tpu-v5p-slice", "tpu-v5p-slice"),
        ("b300", "B300"),
        ("nvidia-b300", "B300"),
        ("a100-80gb (mig 1g.10gb)", "A100-80GB (MIG 1g.10gb)"),
        ("H100 (MIG mig-2g.20gb)", "H100 (MIG 2g.20gb)"),
        ("t4 (Shared)", "T4 (shared)"),
    ],
)
def test_gpu_name(spelling: str, name: str) -> None:
    assert gpu_name(spelling) == name


def test_pods_are_placed_by_the_spec_not_by_reading_labels(tmp_path: Path) -> None:
    """The same card under four schemes is one GPU to the spec's pods; MIG slices are another."""
    spec = load_fleet_spec(
        {
            "clusters": [
                {
                    "name": "c",
                    "nodes": [
                        {"name": "gke", "gpu": "H100", "gpus": 8, "labels": "gke"},
                        {"name": "gfd", "gpu": "h100", "gpus": 8, "labels": "gfd"},
                        {"name": "cw", "gpu": "H100", "gpus": 8, "labels": "coreweave"},
                        {"name": "mig", "gpu": "H100", "gpus": 1, "labels": "gfd-mig-mixed"},
                        {"name": "a100", "gpu": "A100-80GB", "gpus": 8, "labels": "karpenter"},
                        {"name": "cpu"},
                    ],
                    "pods": [
                        {"count": 6, "name": "train", "gpu": "H100", "gpus": 4},
                        {"count": 2, "name": "slice", "gpu": "h100 (mig 1g.10gb)", "gpus": 3},
                        {"count": 1, "name": "big", "gpu": "A100-80GB", "gpus": 8},
                        {"count": 2, "name": "web"},
                    ],
                }
            ]
        }
    ).clusters[0]
    cluster = SimCluster(spec, 0, tmp_path)
    cluster.load()
    placed: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for entry in cluster.store.objects["pods"].values():
        pod = entry.obj
        group = pod["metadata"]["labels"]["app"]
        requests = pod["spec"]["containers"][0]["resources"]["requests"]
        gpu_requests = {k: v for k, v in requests.items() if k not in ("cpu", "memory")}
        placed.setdefault(group, []).append((pod["spec"]["nodeName"], gpu_requests))
    assert sorted(node for node, _ in placed["train"]) == ["cw", "cw", "gfd", "gfd", "gke", "gke"]
    assert {str(r) for _, r in placed["train"]} == {str({"nvidia.com/gpu": "4"})}
    assert placed["slice"] == [("mig", {"nvidia.com/mig-1g.10gb": "3"})] * 2
    assert placed["big"] == [("a100", {"nvidia.com/gpu": "8"})]
    assert all(r == {} for _, r in placed["web"])
    assert cluster.usage.by_node["mig"]["nvidia.com/mig-1g.10gb"] == 6
    assert cluster.usage.by_node["gke"]["nvidia.com/gpu"] == 8
