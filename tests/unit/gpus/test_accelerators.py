"""Label schemes -> canonical GPU identity (skymagic.gpus.accelerators)."""

from __future__ import annotations

import pytest

from skymagic.gpus.accelerators import (
    GPU_LABEL_KEYS,
    GPU_RESOURCES,
    GPU_TAINT_KEYS,
    GpuIdentity,
    canonical_name,
    detect_node_gpus,
    gpu_names_match,
    is_gpu_resource,
    matching_label_values,
    normalize_gpu_name,
    parse_gpu_request,
    requestable_quantities,
    split_canonical,
)

SKY = "skypilot.co/accelerator"
GKE = "cloud.google.com/gke-accelerator"
TPU = "cloud.google.com/gke-tpu-accelerator"
KARP = "karpenter.k8s.aws/instance-gpu-name"
GFD = "nvidia.com/gpu.product"
CW = "gpu.nvidia.com/class"
NEB = "nebius.com/gpu-name"
AMD = "amd.com/gpu.product-name"

# Real values as each scheme's own documentation shows them -> our canonical name.
LABEL_TABLE: list[tuple[str, str, str]] = [
    # SkyPilot's own label (lower case)
    (SKY, "h100", "H100"),
    (SKY, "a100-80gb", "A100-80GB"),
    (SKY, "a100", "A100"),
    (SKY, "l4", "L4"),
    (SKY, "h100-80gb", "H100"),
    # GKE
    (GKE, "nvidia-tesla-t4", "T4"),
    (GKE, "nvidia-tesla-a100", "A100"),
    (GKE, "nvidia-a100-80gb", "A100-80GB"),
    (GKE, "nvidia-h100-80gb", "H100"),
    (GKE, "nvidia-h100-mega-80gb", "H100-MEGA"),
    (GKE, "nvidia-h200-141gb", "H200"),
    (GKE, "nvidia-l4", "L4"),
    (GKE, "nvidia-tesla-v100", "V100"),
    (GKE, "nvidia-tesla-p100", "P100"),
    (GKE, "nvidia-tesla-k80", "K80"),
    (GKE, "nvidia-b200", "B200"),
    # GKE TPUs keep their accelerator value
    (TPU, "tpu-v5-lite-podslice", "tpu-v5-lite-podslice"),
    (TPU, "tpu-v5p-slice", "tpu-v5p-slice"),
    (TPU, "tpu-v6e-slice", "tpu-v6e-slice"),
    (TPU, "tpu-v4-podslice", "tpu-v4-podslice"),
    # Karpenter / EKS
    (KARP, "t4", "T4"),
    (KARP, "a10g", "A10G"),
    (KARP, "h100", "H100"),
    (KARP, "l40s", "L40S"),
    (KARP, "l4", "L4"),
    (KARP, "h200", "H200"),
    (KARP, "t4g", "T4G"),
    # NVIDIA GPU Feature Discovery
    (GFD, "NVIDIA-H100-80GB-HBM3", "H100"),
    (GFD, "NVIDIA-H100-PCIe", "H100"),
    (GFD, "NVIDIA-H100-NVL", "H100"),
    (GFD, "NVIDIA-H200", "H200"),
    (GFD, "NVIDIA-A100-SXM4-80GB", "A100-80GB"),
    (GFD, "NVIDIA-A100-80GB-PCIe", "A100-80GB"),
    (GFD, "NVIDIA-A100-SXM4-40GB", "A100"),
    (GFD, "NVIDIA-A100-PCIE-40GB", "A100"),
    (GFD, "Tesla-T4", "T4"),
    (GFD, "NVIDIA-L4", "L4"),
    (GFD, "NVIDIA-L40S", "L40S"),
    (GFD, "NVIDIA-A10G", "A10G"),
    (GFD, "Tesla-V100-SXM2-16GB", "V100"),
    (GFD, "Tesla-V100-SXM2-32GB", "V100-32GB"),
    (GFD, "NVIDIA-GeForce-RTX-4090", "RTX4090"),
    (GFD, "NVIDIA-RTX-A6000", "RTXA6000"),
    (GFD, "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100 (MIG 1g.5gb)"),
    (GFD, "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "H100 (MIG 1g.10gb)"),
    (GFD, "Tesla-T4-SHARED", "T4 (shared)"),
    (GFD, "NVIDIA-A100-SXM4-80GB-SHARED", "A100-80GB (shared)"),
    # CoreWeave
    (CW, "H100_NVLINK_80GB", "H100"),
    (CW, "H100_PCIE", "H100"),
    (CW, "A100_NVLINK_80GB", "A100-80GB"),
    (CW, "A100_PCIE_80GB", "A100-80GB"),
    (CW, "A100_NVLINK", "A100"),
    (CW, "A100_PCIE_40GB", "A100"),
    (CW, "A40", "A40"),
    (CW, "RTX_A6000", "RTXA6000"),
    (CW, "Tesla_V100_NVLINK", "V100"),
    (CW, "Quadro_RTX_5000", "RTX5000"),
    # Nebius
    (NEB, "H100", "H100"),
    (NEB, "H200", "H200"),
    # AMD node labeller
    (AMD, "AMD_Instinct_MI300X", "MI300X"),
    (AMD, "AMD_Instinct_MI300X_OAM", "MI300X"),
    (AMD, "AMD_Instinct_MI250X_MI250", "MI250X"),
    (AMD, "AMD_Instinct_MI210", "MI210"),
]


@pytest.mark.parametrize(("key", "value", "expected"), LABEL_TABLE)
def test_canonical_name_of_real_label_values(key: str, value: str, expected: str) -> None:
    assert canonical_name(key, value) == expected


def test_the_table_covers_every_scheme_with_forty_values() -> None:
    assert len(LABEL_TABLE) >= 40
    assert {key for key, _, _ in LABEL_TABLE} == set(GPU_LABEL_KEYS)


def test_same_card_gets_same_name_across_schemes() -> None:
    h100 = {
        canonical_name(GKE, "nvidia-h100-80gb"),
        canonical_name(GFD, "NVIDIA-H100-80GB-HBM3"),
        canonical_name(KARP, "h100"),
        canonical_name(CW, "H100_NVLINK_80GB"),
        canonical_name(NEB, "H100"),
        canonical_name(SKY, "h100"),
    }
    assert h100 == {"H100"}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (GFD, "NVIDIA-B300-SXM6-AC", "B300"),  # a card newer than our tables
        (GFD, "NVIDIA-A100-SXM4-80GB-rev2", "A100-80GB"),
        (GFD, "Tesla-V100-PCIE-32GB-X", "V100-32GB"),
        (GKE, "nvidia-rtx-pro-6000", "RTXPRO6000"),
        (GKE, "nvidia-x200-96gb", "X200"),
        (KARP, "gaudi-hl-205", "GAUDI"),
        (CW, "B200_NVLINK_180GB", "B200"),
        (AMD, "AMD_Instinct_MI355X_OAM", "MI355X"),
        (GFD, "nvidia-l4", "L4"),  # case-insensitive on known values
    ],
)
def test_unknown_values_are_normalised_not_rejected(key: str, value: str, expected: str) -> None:
    assert canonical_name(key, value) == expected


def test_canonical_name_rejects_unknown_key_and_empty_value() -> None:
    with pytest.raises(ValueError, match=r"unknown GPU label key 'example\.com/gpu'"):
        canonical_name("example.com/gpu", "H100")
    with pytest.raises(ValueError, match="empty value"):
        canonical_name(GFD, "  ")


def test_constants() -> None:
    assert GPU_RESOURCES == (
        "nvidia.com/gpu",
        "amd.com/gpu",
        "google.com/tpu",
        "nvidia.com/gpu.shared",
    )
    assert GPU_TAINT_KEYS == ("nvidia.com/gpu", "amd.com/gpu", "google.com/tpu")
    # SkyPilot's scheme order: its own label first, then GKE, Karpenter, GFD.
    assert GPU_LABEL_KEYS.index(SKY) < GPU_LABEL_KEYS.index(GKE) < GPU_LABEL_KEYS.index(KARP)
    assert GPU_LABEL_KEYS.index(KARP) < GPU_LABEL_KEYS.index(GFD)
    assert "cloud.google.com/gke-tpu-topology" not in GPU_LABEL_KEYS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nvidia.com/gpu", True),
        ("amd.com/gpu", True),
        ("google.com/tpu", True),
        ("nvidia.com/gpu.shared", True),
        ("nvidia.com/mig-1g.10gb", True),
        ("nvidia.com/mig-", False),
        ("cpu", False),
        ("nvidia.com/gpu.product", False),
        ("example.com/gpu", False),
    ],
)
def test_is_gpu_resource(name: str, expected: bool) -> None:
    assert is_gpu_resource(name) is expected


# --- per-node detection -----------------------------------------------------------------------


def test_gfd_node() -> None:
    labels = {GFD: "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
    assert detect_node_gpus(labels, {"cpu": "192", "nvidia.com/gpu": "8"}) == [
        GpuIdentity(
            canonical="H100",
            scheme="gfd",
            label_key=GFD,
            label_value="NVIDIA-H100-80GB-HBM3",
            resource="nvidia.com/gpu",
            vendor="nvidia",
        )
    ]


def test_scheme_order_first_label_wins() -> None:
    # A GKE node that also runs GFD: SkyPilot's order picks the GKE label.
    labels = {GFD: "NVIDIA-H100-80GB-HBM3", GKE: "nvidia-h100-80gb"}
    (ident,) = detect_node_gpus(labels, {"nvidia.com/gpu": "8"})
    assert (ident.scheme, ident.label_key, ident.canonical) == ("gke", GKE, "H100")


def test_mixed_vendor_node_each_resource_named_by_its_vendor_label() -> None:
    labels = {GFD: "NVIDIA-L4", AMD: "AMD_Instinct_MI300X_OAM"}
    idents = detect_node_gpus(labels, {"nvidia.com/gpu": "1", "amd.com/gpu": "8"})
    assert [(i.resource, i.canonical, i.vendor, i.scheme) for i in idents] == [
        ("nvidia.com/gpu", "L4", "nvidia", "gfd"),
        ("amd.com/gpu", "MI300X", "amd", "amd"),
    ]


def test_mig_mixed_node_yields_one_identity_per_profile() -> None:
    labels = {GFD: "NVIDIA-A100-SXM4-80GB", "nvidia.com/mig.strategy": "mixed"}
    allocatable = {
        "nvidia.com/mig-3g.40gb": "2",
        "nvidia.com/mig-1g.10gb": "14",
        "nvidia.com/gpu": "0",
        "cpu": "96",
    }
    idents = detect_node_gpus(labels, allocatable)
    assert [(i.resource, i.canonical) for i in idents] == [
        ("nvidia.com/mig-1g.10gb", "A100-80GB (MIG 1g.10gb)"),
        ("nvidia.com/mig-3g.40gb", "A100-80GB (MIG 3g.40gb)"),
    ]
    assert all(i.label_value == "NVIDIA-A100-SXM4-80GB" for i in idents)


def test_mig_single_product_label() -> None:
    labels = {GFD: "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/mig.strategy": "single"}
    (ident,) = detect_node_gpus(labels, {"nvidia.com/gpu": "56"})
    assert ident.canonical == "A100 (MIG 1g.5gb)"
    assert ident.resource == "nvidia.com/gpu"


def test_mig_single_seen_through_gfd_even_when_another_scheme_names_the_card() -> None:
    labels = {KARP: "a100", GFD: "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}
    (ident,) = detect_node_gpus(labels, {"nvidia.com/gpu": "56"})
    assert (ident.scheme, ident.canonical) == ("karpenter", "A100 (MIG 1g.5gb)")


def test_time_sliced_shared_product_label() -> None:
    labels = {GFD: "Tesla-T4-SHARED", "nvidia.com/gpu.replicas": "4"}
    (ident,) = detect_node_gpus(labels, {"nvidia.com/gpu": "16"})
    assert ident.canonical == "T4 (shared)"
    assert ident.label_value == "Tesla-T4-SHARED"


def test_time_sliced_renamed_shared_resource() -> None:
    labels = {GFD: "Tesla-T4", "nvidia.com/gpu.replicas": "4"}
    (ident,) = detect_node_gpus(labels, {"nvidia.com/gpu.shared": "16"})
    assert (ident.canonical, ident.resource) == ("T4 (shared)", "nvidia.com/gpu.shared")


def test_gke_partitioned_and_time_shared_gpus() -> None:
    mig = {GKE: "nvidia-tesla-a100", "cloud.google.com/gke-gpu-partition-size": "1g.5gb"}
    assert detect_node_gpus(mig, {"nvidia.com/gpu": "7"})[0].canonical == "A100 (MIG 1g.5gb)"
    shared = {GKE: "nvidia-l4", "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing"}
    assert detect_node_gpus(shared, {"nvidia.com/gpu": "4"})[0].canonical == "L4 (shared)"


def test_tpu_node_keeps_topology() -> None:
    labels = {TPU: "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x4"}
    (ident,) = detect_node_gpus(labels, {"google.com/tpu": "8"})
    assert ident == GpuIdentity(
        canonical="tpu-v5-lite-podslice",
        scheme="gke-tpu",
        label_key=TPU,
        label_value="tpu-v5-lite-podslice",
        resource="google.com/tpu",
        vendor="google",
        is_tpu=True,
        topology="2x4",
    )


@pytest.mark.parametrize("resource", ["nvidia.com/gpu", "amd.com/gpu", "google.com/tpu"])
def test_unlabelled_gpu_node_is_still_counted(resource: str) -> None:
    (ident,) = detect_node_gpus({"kubernetes.io/hostname": "n1"}, {resource: "4"})
    assert ident.scheme == "unlabelled"
    assert ident.canonical == f"unknown ({resource})"
    assert ident.label_key is None
    assert ident.label_value is None
    assert ident.resource == resource


def test_label_of_other_vendor_does_not_name_a_device() -> None:
    # A GFD label must not name AMD devices: the AMD devices are unlabelled.
    idents = detect_node_gpus({GFD: "NVIDIA-H100-80GB-HBM3"}, {"amd.com/gpu": "8"})
    assert [i.scheme for i in idents] == ["unlabelled"]


def test_labelled_node_without_devices_offers_nothing() -> None:
    labels = {GFD: "NVIDIA-H100-80GB-HBM3"}
    assert detect_node_gpus(labels, {"cpu": "8"}) == []
    assert detect_node_gpus(labels, {"nvidia.com/gpu": "0"}) == []
    assert detect_node_gpus({}, {"cpu": "8", "memory": "32Gi"}) == []


def test_karpenter_a100_and_v100_sizes_told_apart_by_memory() -> None:
    def detect(name: str, mib: str) -> str:
        labels = {KARP: name, "karpenter.k8s.aws/instance-gpu-memory": mib}
        return detect_node_gpus(labels, {"nvidia.com/gpu": "8"})[0].canonical

    assert detect("a100", "40960") == "A100"
    assert detect("a100", "81920") == "A100-80GB"
    assert detect("v100", "16384") == "V100"
    assert detect("v100", "32768") == "V100-32GB"


def test_karpenter_manufacturer_keeps_names_on_their_vendor() -> None:
    labels = {
        KARP: "radeon-pro-v520",
        "karpenter.k8s.aws/instance-gpu-manufacturer": "amd",
    }
    (ident,) = detect_node_gpus(labels, {"amd.com/gpu": "1"})
    assert (ident.canonical, ident.vendor) == ("RadeonProV520", "amd")
    (nv,) = detect_node_gpus(labels, {"nvidia.com/gpu": "1"})
    assert nv.scheme == "unlabelled"


# --- requests, normalisation, matching ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H100", ("H100", 1)),
        ("h100:8", ("H100", 8)),
        (" a100-80gb:4 ", ("A100-80GB", 4)),
        ("tpu-v5-lite-podslice:4", ("tpu-v5-lite-podslice", 4)),
        ("A100 (MIG 1g.10gb):2", ("A100 (MIG 1g.10gb)", 2)),
    ],
)
def test_parse_gpu_request(text: str, expected: tuple[str, int]) -> None:
    assert parse_gpu_request(text) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", ":8", "H100:", "H100:0", "H100:-1", "H100:x", "H100:1:2"]
)
def test_parse_gpu_request_rejects_bad_text_in_one_line(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_gpu_request(text)
    message = str(excinfo.value)
    assert repr(text) in message or "not a GPU name" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a100-80gb", "A100-80GB"),
        ("A100 80GB", "A100-80GB"),
        ("a100", "A100"),
        ("A100-40GB", "A100"),
        ("h100-80gb", "H100"),
        ("nvidia-h100-80gb", "H100"),
        ("h100-mega", "H100-MEGA"),
        ("rtx4090", "RTX4090"),
        ("RTX-4090", "RTX4090"),
        ("l40s", "L40S"),
        ("mi300x", "MI300X"),
        ("rtx6000-ada", "RTX6000-Ada"),
        ("v5e", "tpu-v5-lite-podslice"),
        ("TPU-V5P-SLICE", "tpu-v5p-slice"),
        ("v6e", "tpu-v6e-slice"),
        ("t4 (SHARED)", "T4 (shared)"),
        ("a100-80gb (mig 1G.10GB)", "A100-80GB (MIG 1g.10gb)"),
    ],
)
def test_normalize_gpu_name(text: str, expected: str) -> None:
    assert normalize_gpu_name(text) == expected


def test_normalize_gpu_name_rejects_blank() -> None:
    with pytest.raises(ValueError, match="not a GPU name"):
        normalize_gpu_name("   ")


def test_gpu_names_match_is_exact_after_normalisation() -> None:
    assert gpu_names_match("h100", "H100")
    assert gpu_names_match("a100-80gb", "A100-80GB")
    assert not gpu_names_match("A100-80GB", "A100")
    assert not gpu_names_match("A100", "A100-80GB")
    assert not gpu_names_match("H100", "H100 (shared)")
    assert not gpu_names_match("A100", "A100 (MIG 1g.5gb)")
    assert not gpu_names_match("", "H100")


def test_split_canonical() -> None:
    assert split_canonical("A100-80GB (MIG 1g.10gb)") == ("A100-80GB", "1g.10gb", False)
    assert split_canonical("T4 (shared)") == ("T4", None, True)
    assert split_canonical("H100") == ("H100", None, False)


@pytest.mark.parametrize(
    ("counts", "is_tpu", "expected"),
    [
        ([12], False, [1, 2, 4, 8, 12]),
        ([8], False, [1, 2, 4, 8]),
        ([1], False, [1]),
        ([3, 6], False, [1, 2, 3, 4, 6]),
        ([0], False, []),
        ([], False, []),
        ([4], True, [4]),
        ([4, 8], True, [4, 8]),
    ],
)
def test_requestable_quantities(counts: list[int], is_tpu: bool, expected: list[int]) -> None:
    assert requestable_quantities(counts, is_tpu=is_tpu) == expected


def test_requestable_quantities_accepts_any_iterable() -> None:
    assert requestable_quantities(c for c in (2, 2)) == [1, 2]


# Values that name a 40 GB A100 in some scheme; an A100-80GB request must never select them.
A100_40GB_VALUES = {
    (GKE, "nvidia-tesla-a100"),
    (GFD, "NVIDIA-A100-SXM4-40GB"),
    (GFD, "NVIDIA-A100-PCIE-40GB"),
    (CW, "A100_NVLINK"),
    (CW, "A100_PCIE_40GB"),
    (CW, "Tesla_A100_NVLINK"),
    (KARP, "a100"),  # p4d is 40 GB (and p4de 80 GB): ambiguous, so never selected
    (SKY, "a100"),
}


def test_a100_80gb_never_selects_a_40gb_value() -> None:
    values = matching_label_values("A100-80GB")
    pairs = {(key, value) for key, vals in values.items() for value in vals}
    assert pairs
    assert not pairs & A100_40GB_VALUES
    assert pairs >= {
        (GKE, "nvidia-a100-80gb"),
        (GFD, "NVIDIA-A100-SXM4-80GB"),
        (CW, "A100_NVLINK_80GB"),
        (SKY, "a100-80gb"),
    }


def test_a100_does_not_select_80gb_values() -> None:
    pairs = {(k, v) for k, vals in matching_label_values("a100").items() for v in vals}
    assert (GFD, "NVIDIA-A100-SXM4-40GB") in pairs
    assert not any("80" in value for _, value in pairs)
    assert (KARP, "a100") not in pairs


def test_matching_label_values_for_h100_spans_schemes() -> None:
    values = matching_label_values("H100")
    assert values[GKE] == ["nvidia-h100-80gb"]
    assert "NVIDIA-H100-80GB-HBM3" in values[GFD]
    assert values[KARP] == ["h100"]
    assert "H100_NVLINK_80GB" in values[CW]
    assert values[NEB] == ["H100"]
    assert values[SKY] == ["h100"]
    assert "nvidia-h100-mega-80gb" not in values[GKE]


@pytest.mark.parametrize(
    "canonical",
    [
        *sorted({expected for _, _, expected in LABEL_TABLE}),
        "A100-80GB (MIG 1g.10gb)",
        "T4 (shared)",
        "B300",
    ],
)
def test_matching_label_values_round_trip(canonical: str) -> None:
    values = matching_label_values(canonical)
    assert values, canonical
    for key, raw_values in values.items():
        assert raw_values
        for raw in raw_values:
            assert canonical_name(key, raw) == canonical, (key, raw)


def test_matching_label_values_for_mig_and_tpu() -> None:
    assert matching_label_values("A100 (MIG 1g.5gb)") == {
        GFD: ["NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "NVIDIA-A100-PCIE-40GB-MIG-1g.5gb"]
    }
    assert matching_label_values("v5e") == {TPU: ["tpu-v5-lite-podslice"]}
