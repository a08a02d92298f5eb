"""Simulated node profiles per label scheme, judged by skymagic.gpus.accelerators' detection.

A cross-check of two independent implementations (the simulator has its own catalogue and never
calls the product's detection); test_sim_label_names.py judges the same labels by a table of
its own, so a naming mistake both shared would still be caught there.
"""

from __future__ import annotations

import pytest

from skymagic.gpus.accelerators import GPU_TAINT_KEYS, detect_node_gpus
from skymagic.sim.labels import SCHEMES, NodeProfile, gpu_node_profile

NVIDIA_SCHEMES = ("skypilot", "gke", "karpenter", "gfd", "coreweave", "nebius")
GPUS = ("H100", "A100", "A100-80GB", "T4", "L4", "V100-32GB")


def detect(profile: NodeProfile) -> list[tuple[str, str, int]]:
    allocatable = {k: str(v) for k, v in profile.gpu_resources.items()}
    return [
        (ident.canonical, ident.resource, profile.gpu_resources[ident.resource])
        for ident in detect_node_gpus(profile.labels, allocatable)
    ]


def test_schemes() -> None:
    assert SCHEMES == (
        "skypilot",
        "gke",
        "karpenter",
        "gfd",
        "gfd-mig-mixed",
        "gfd-shared",
        "coreweave",
        "nebius",
        "amd",
        "tpu",
    )


@pytest.mark.parametrize("gpu", GPUS)
@pytest.mark.parametrize("scheme", NVIDIA_SCHEMES)
def test_nvidia_schemes_detect_the_requested_gpu(scheme: str, gpu: str) -> None:
    profile = gpu_node_profile(scheme, gpu, 8)
    assert detect(profile) == [(gpu, "nvidia.com/gpu", 8)]


@pytest.mark.parametrize("scheme", NVIDIA_SCHEMES)
def test_lower_case_gpu_spelling_is_accepted(scheme: str) -> None:
    assert detect(gpu_node_profile(scheme, "h100", 4)) == [("H100", "nvidia.com/gpu", 4)]


@pytest.mark.parametrize(
    ("gpu", "mig_profile", "expected", "per_gpu"),
    [
        ("H100", None, "H100 (MIG 1g.10gb)", 7),
        ("A100-80GB", None, "A100-80GB (MIG 1g.10gb)", 7),
        ("A100", None, "A100 (MIG 1g.5gb)", 7),
        ("H200", None, "H200 (MIG 1g.18gb)", 7),
        ("A100-80GB", "3g.40gb", "A100-80GB (MIG 3g.40gb)", 2),
        ("H100", "mig-2g.20gb", "H100 (MIG 2g.20gb)", 3),
        ("A100-80GB", "1g.20gb", "A100-80GB (MIG 1g.20gb)", 4),
    ],
)
def test_gfd_mig_mixed(gpu: str, mig_profile: str | None, expected: str, per_gpu: int) -> None:
    profile = gpu_node_profile("gfd-mig-mixed", gpu, 8, mig_profile=mig_profile)
    (name, resource, count) = detect(profile)[0]
    assert name == expected
    assert resource == "nvidia.com/mig-" + expected.split("MIG ")[1].rstrip(")")
    assert count == 8 * per_gpu
    assert profile.labels["nvidia.com/mig.strategy"] == "mixed"
    assert "nvidia.com/gpu" not in profile.gpu_resources


def test_gfd_with_mig_profile_models_the_single_strategy() -> None:
    profile = gpu_node_profile("gfd", "A100", 8, mig_profile="1g.5gb")
    assert profile.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"
    assert profile.labels["nvidia.com/mig.strategy"] == "single"
    assert detect(profile) == [("A100 (MIG 1g.5gb)", "nvidia.com/gpu", 56)]


@pytest.mark.parametrize("gpu", GPUS)
def test_gfd_shared(gpu: str) -> None:
    profile = gpu_node_profile("gfd-shared", gpu, 2, replicas=4)
    assert detect(profile) == [(f"{gpu} (shared)", "nvidia.com/gpu", 8)]
    assert profile.labels["nvidia.com/gpu.replicas"] == "4"
    assert profile.labels["nvidia.com/gpu.product"].endswith("-SHARED")
    assert profile.labels["nvidia.com/gpu.count"] == "2"


@pytest.mark.parametrize("gpu", ["MI300X", "MI250X", "MI210", "mi325x"])
def test_amd(gpu: str) -> None:
    profile = gpu_node_profile("amd", gpu, 8, taint_gpu=True)
    assert detect(profile) == [(gpu.upper(), "amd.com/gpu", 8)]
    assert profile.labels["amd.com/gpu.product-name"].startswith("AMD_Instinct_MI")
    assert profile.labels["amd.com/gpu.vram"].endswith("G")
    assert profile.taints == [{"key": "amd.com/gpu", "value": "present", "effect": "NoSchedule"}]


@pytest.mark.parametrize("scheme", ["karpenter", "skypilot"])
def test_amd_card_on_vendor_neutral_schemes_uses_amd_resource(scheme: str) -> None:
    assert detect(gpu_node_profile(scheme, "MI300X", 8)) == [("MI300X", "amd.com/gpu", 8)]


@pytest.mark.parametrize(
    ("gpu", "chips", "topology", "expected_name", "expected_topology"),
    [
        ("tpu-v5-lite-podslice", 4, None, "tpu-v5-lite-podslice", "2x2"),
        ("v5e", 8, None, "tpu-v5-lite-podslice", "2x4"),
        ("v6e", 4, None, "tpu-v6e-slice", "2x2"),
        ("v5p", 4, None, "tpu-v5p-slice", "2x2x1"),
        ("tpu-v5p-slice", 4, "2x2x4", "tpu-v5p-slice", "2x2x4"),
        ("v5e", 1, None, "tpu-v5-lite-podslice", "1x1"),
    ],
)
def test_tpu(
    gpu: str, chips: int, topology: str | None, expected_name: str, expected_topology: str
) -> None:
    profile = gpu_node_profile("tpu", gpu, chips, topology=topology, taint_gpu=True)
    allocatable = {k: str(v) for k, v in profile.gpu_resources.items()}
    (ident,) = detect_node_gpus(profile.labels, allocatable)
    assert (ident.canonical, ident.resource, ident.topology) == (
        expected_name,
        "google.com/tpu",
        expected_topology,
    )
    assert ident.is_tpu
    assert profile.gpu_resources == {"google.com/tpu": chips}
    assert profile.taints == [{"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_detects_and_taints_consistently(scheme: str) -> None:
    gpu = "v5e" if scheme == "tpu" else "MI300X" if scheme == "amd" else "H100"
    profile = gpu_node_profile(scheme, gpu, 8, taint_gpu=True)
    allocatable = {k: str(v) for k, v in profile.gpu_resources.items()}
    (ident,) = detect_node_gpus(profile.labels, allocatable)
    assert ident.scheme != "unlabelled"
    assert profile.gpu_resources[ident.resource] > 0
    taint_for_vendor = {
        "nvidia": "nvidia.com/gpu",
        "amd": "amd.com/gpu",
        "google": "google.com/tpu",
    }
    assert profile.taints == [
        {"key": taint_for_vendor[ident.vendor], "value": "present", "effect": "NoSchedule"}
    ]
    assert profile.taints[0]["key"] in GPU_TAINT_KEYS
    untainted = gpu_node_profile(scheme, gpu, 8)
    assert untainted.taints == []
    assert all(isinstance(v, str) for v in profile.labels.values())


def test_realistic_companion_labels() -> None:
    gke = gpu_node_profile("gke", "H100", 8).labels
    assert gke["node.kubernetes.io/instance-type"] == "a3-highgpu-8g"
    assert gke["cloud.google.com/gke-accelerator-count"] == "8"
    assert "cloud.google.com/gke-nodepool" in gke
    assert (
        gpu_node_profile("gke", "A100-80GB", 8).labels["node.kubernetes.io/instance-type"]
        == "a2-ultragpu-8g"
    )
    assert gpu_node_profile("gke", "L4", 1).labels["node.kubernetes.io/instance-type"] == (
        "g2-standard-4"
    )

    karp = gpu_node_profile("karpenter", "H100", 8).labels
    assert karp["node.kubernetes.io/instance-type"] == "p5.48xlarge"
    assert karp["karpenter.k8s.aws/instance-gpu-name"] == "h100"
    assert karp["karpenter.k8s.aws/instance-gpu-manufacturer"] == "nvidia"
    assert "karpenter.sh/nodepool" in karp
    assert (
        gpu_node_profile("karpenter", "A10G", 1).labels["node.kubernetes.io/instance-type"]
        == "g5.xlarge"
    )

    gfd = gpu_node_profile("gfd", "H100", 8).labels
    assert gfd["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert gfd["nvidia.com/gpu.present"] == "true"
    assert gfd["nvidia.com/gpu.count"] == "8"
    assert int(gfd["nvidia.com/gpu.memory"]) > 80_000  # MiB
    assert gfd["nvidia.com/gpu.family"] == "hopper"
    assert gpu_node_profile("gfd", "T4", 1).labels["nvidia.com/gpu.product"] == "Tesla-T4"

    assert gpu_node_profile("coreweave", "A100-80GB", 8).labels["gpu.nvidia.com/class"] == (
        "A100_NVLINK_80GB"
    )
    assert gpu_node_profile("nebius", "H200", 8).labels["nebius.com/gpu-name"] == "H200"
    assert gpu_node_profile("skypilot", "A100-80GB", 8).labels == {
        "skypilot.co/accelerator": "a100-80gb"
    }


def test_nvidia_taint() -> None:
    profile = gpu_node_profile("gfd", "H100", 8, taint_gpu=True)
    assert profile.taints == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "tpu"])
def test_unknown_gpu_gets_a_plausible_value(scheme: str) -> None:
    profile = gpu_node_profile(scheme, "B300", 8)
    (name, _, _) = detect(profile)[0]
    expected = {"gfd-mig-mixed": "B300 (MIG 1g.3gb)", "gfd-shared": "B300 (shared)"}
    assert name == expected.get(scheme, "B300")


def test_unknown_scheme_raises_one_line_naming_valid_ones() -> None:
    with pytest.raises(ValueError) as excinfo:
        gpu_node_profile("azure", "H100", 8)
    message = str(excinfo.value)
    assert "'azure'" in message
    assert "gfd-mig-mixed" in message and "tpu" in message
    assert "\n" not in message


def test_negative_count_raises() -> None:
    with pytest.raises(ValueError, match="gpus must be >= 0"):
        gpu_node_profile("gfd", "H100", -1)


def test_zero_gpus_node_has_label_but_nothing_to_offer() -> None:
    profile = gpu_node_profile("gfd", "H100", 0)
    assert profile.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert detect(profile) == []
