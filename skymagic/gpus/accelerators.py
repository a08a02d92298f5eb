"""GPU identity on Kubernetes nodes: label schemes -> one canonical name per physical card.

Why this module exists: every provider labels GPU nodes its own way (the GKE, GFD, Karpenter,
CoreWeave, Nebius, AMD and SkyPilot keys below), and SkyPilot names the same card differently
depending on the scheme (GFD's H100 is "H100-80GB", GKE's is "H100"), so one aggregate table
shows the same GPU twice and a request for one name misses the other. Here the SAME physical
card gets the SAME canonical name whatever the scheme, and the canonical name is the unit that
inventory, matching and launch affinity all share.

Naming decisions (where schemes disagree, the card wins):

* H100 80 GB (SXM, PCIe) and H100 NVL (94 GB) are all "H100", as SkyPilot names them; the
  GKE A3 Mega machine's card is told apart as "H100-MEGA" because GKE labels it apart.
* A100 40 GB is "A100" and A100 80 GB is "A100-80GB"; V100 16 GB is "V100" and 32 GB is
  "V100-32GB". A request for one never matches the other (`gpu_names_match`).
* MIG slices are "<card> (MIG <profile>)", e.g. "A100-80GB (MIG 1g.10gb)"; time-sliced GPUs are
  "<card> (shared)". They are different things to request and count, so they get their own name.
* GKE TPUs keep GKE's accelerator value ("tpu-v5-lite-podslice"); the topology travels beside it.
* A value we have never seen is normalised (vendor prefixes stripped, upper-cased) rather than
  rejected, so a new card shows up with a sensible name instead of breaking the inventory.

Schemes are detected PER NODE, never per context: one context can mix GKE node pools with
GFD-labelled ones, or NVIDIA with AMD nodes (SkyPilot issue #8311).

Karpenter names both A100 sizes "a100" and both V100 sizes "v100"; only its
`instance-gpu-memory` label tells them apart. `detect_node_gpus` uses that label, but a single
label value cannot, so `matching_label_values` leaves those two values out (see its docstring).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from skymagic.gpus.quantity import parse_quantity

__all__ = [
    "GPU_LABEL_KEYS",
    "GPU_RESOURCES",
    "GPU_TAINT_KEYS",
    "MIG_RESOURCE_PREFIX",
    "GpuIdentity",
    "canonical_name",
    "detect_node_gpus",
    "gpu_names_match",
    "is_gpu_resource",
    "matching_label_values",
    "normalize_gpu_name",
    "parse_gpu_request",
    "requestable_quantities",
    "split_canonical",
]

# --- label keys and resources ---------------------------------------------------------------

SKYPILOT_KEY = "skypilot.co/accelerator"
GKE_KEY = "cloud.google.com/gke-accelerator"
GKE_TPU_KEY = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_KEY = "cloud.google.com/gke-tpu-topology"
GKE_PARTITION_KEY = "cloud.google.com/gke-gpu-partition-size"
GKE_SHARING_KEY = "cloud.google.com/gke-gpu-sharing-strategy"
KARPENTER_KEY = "karpenter.k8s.aws/instance-gpu-name"
KARPENTER_MEMORY_KEY = "karpenter.k8s.aws/instance-gpu-memory"
KARPENTER_MANUFACTURER_KEY = "karpenter.k8s.aws/instance-gpu-manufacturer"
GFD_KEY = "nvidia.com/gpu.product"
COREWEAVE_KEY = "gpu.nvidia.com/class"
NEBIUS_KEY = "nebius.com/gpu-name"
AMD_KEY = "amd.com/gpu.product-name"

GPU_RESOURCES: tuple[str, ...] = (
    "nvidia.com/gpu",
    "amd.com/gpu",
    "google.com/tpu",
    "nvidia.com/gpu.shared",
)
"""Allocatable resources that count accelerators; MIG slices are matched by prefix instead."""

MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
"""The MIG "mixed" strategy exposes one resource per profile: nvidia.com/mig-1g.10gb, ..."""

GPU_LABEL_KEYS: tuple[str, ...] = (
    SKYPILOT_KEY,
    GKE_KEY,
    GKE_TPU_KEY,
    KARPENTER_KEY,
    GFD_KEY,
    COREWEAVE_KEY,
    NEBIUS_KEY,
    AMD_KEY,
)
"""Every label key that names an accelerator model, in SkyPilot's scheme order (first wins)."""

GPU_TAINT_KEYS: tuple[str, ...] = ("nvidia.com/gpu", "amd.com/gpu", "google.com/tpu")
"""Taint keys providers put on accelerator nodes; a GPU pod tolerates them with Exists."""

_SCHEME_BY_KEY: dict[str, str] = {
    SKYPILOT_KEY: "skypilot",
    GKE_KEY: "gke",
    GKE_TPU_KEY: "gke-tpu",
    KARPENTER_KEY: "karpenter",
    GFD_KEY: "gfd",
    COREWEAVE_KEY: "coreweave",
    NEBIUS_KEY: "nebius",
    AMD_KEY: "amd",
}

# Which label keys may name the devices of a resource's vendor. The SkyPilot label is
# vendor-neutral; the rest belong to one vendor, so a GFD label never names an AMD device on a
# node that carries both (mixed-vendor nodes are rare, mixed-vendor contexts are not).
_KEYS_BY_VENDOR: dict[str, tuple[str, ...]] = {
    "nvidia": (SKYPILOT_KEY, GKE_KEY, KARPENTER_KEY, GFD_KEY, COREWEAVE_KEY, NEBIUS_KEY),
    "amd": (SKYPILOT_KEY, KARPENTER_KEY, AMD_KEY),
    "google": (GKE_TPU_KEY,),
}

# --- known label values ---------------------------------------------------------------------
# Real values from each scheme's own documentation. They serve two purposes: an exact answer
# for values we know (the fallback parser is only a best guess), and the list of raw values that
# launch node affinity may name (`matching_label_values`).

_GKE_VALUES: dict[str, str] = {
    "nvidia-tesla-k80": "K80",
    "nvidia-tesla-p4": "P4",
    "nvidia-tesla-p100": "P100",
    "nvidia-tesla-v100": "V100",  # GCP only offers the 16 GB V100
    "nvidia-tesla-t4": "T4",
    "nvidia-tesla-a100": "A100",  # 40 GB (a2-highgpu / a2-megagpu)
    "nvidia-a100-80gb": "A100-80GB",  # a2-ultragpu
    "nvidia-l4": "L4",
    "nvidia-h100-80gb": "H100",
    "nvidia-h100-mega-80gb": "H100-MEGA",
    "nvidia-h200-141gb": "H200",
    "nvidia-b200": "B200",
    "nvidia-gb200": "GB200",
    "nvidia-rtx-pro-6000": "RTXPRO6000",
}

_GKE_TPU_VALUES: dict[str, str] = {
    "tpu-v4-podslice": "tpu-v4-podslice",
    "tpu-v5-lite-device": "tpu-v5-lite-device",
    "tpu-v5-lite-podslice": "tpu-v5-lite-podslice",
    "tpu-v5p-slice": "tpu-v5p-slice",
    "tpu-v6e-slice": "tpu-v6e-slice",
}

_KARPENTER_VALUES: dict[str, str] = {
    "t4": "T4",
    "t4g": "T4G",
    "a10g": "A10G",
    "a100": "A100",  # ambiguous: p4d (40 GB) and p4de (80 GB); refined by instance-gpu-memory
    "h100": "H100",
    "h200": "H200",
    "b200": "B200",
    "l4": "L4",
    "l40s": "L40S",
    "v100": "V100",  # ambiguous: p3 (16 GB) and p3dn (32 GB); refined by instance-gpu-memory
    "k80": "K80",
    "m60": "M60",
    "radeon-pro-v520": "RadeonProV520",
}

_GFD_VALUES: dict[str, str] = {
    "NVIDIA-H100-80GB-HBM3": "H100",
    "NVIDIA-H100-PCIe": "H100",
    "NVIDIA-H100-NVL": "H100",  # 94 GB, named H100 as SkyPilot does
    "NVIDIA-H200": "H200",
    "NVIDIA-H20": "H20",
    "NVIDIA-GH200-480GB": "GH200",
    "NVIDIA-B200": "B200",
    "NVIDIA-A100-SXM4-80GB": "A100-80GB",
    "NVIDIA-A100-80GB-PCIe": "A100-80GB",
    "NVIDIA-A100-SXM4-40GB": "A100",
    "NVIDIA-A100-PCIE-40GB": "A100",
    "NVIDIA-A10G": "A10G",
    "NVIDIA-A10": "A10",
    "NVIDIA-A30": "A30",
    "NVIDIA-A40": "A40",
    "NVIDIA-L4": "L4",
    "NVIDIA-L40": "L40",
    "NVIDIA-L40S": "L40S",
    "Tesla-T4": "T4",
    "Tesla-V100-SXM2-16GB": "V100",
    "Tesla-V100-PCIE-16GB": "V100",
    "Tesla-V100-SXM2-32GB": "V100-32GB",
    "Tesla-V100-PCIE-32GB": "V100-32GB",
    "Tesla-P100-PCIE-16GB": "P100",
    "Tesla-P4": "P4",
    "Tesla-K80": "K80",
    "NVIDIA-GeForce-RTX-4090": "RTX4090",
    "NVIDIA-GeForce-RTX-3090": "RTX3090",
    "NVIDIA-RTX-A6000": "RTXA6000",
    "NVIDIA-RTX-A5000": "RTXA5000",
    "NVIDIA-RTX-A4000": "RTXA4000",
    "NVIDIA-RTX-6000-Ada-Generation": "RTX6000-Ada",
}

_COREWEAVE_VALUES: dict[str, str] = {
    "H100_NVLINK_80GB": "H100",
    "H100_PCIE": "H100",
    "A100_NVLINK_80GB": "A100-80GB",
    "A100_PCIE_80GB": "A100-80GB",
    "A100_NVLINK": "A100",  # 40 GB HGX
    "A100_PCIE_40GB": "A100",
    "Tesla_A100_NVLINK": "A100",  # older name of the 40 GB HGX class
    "A40": "A40",
    "RTX_A6000": "RTXA6000",
    "RTX_A5000": "RTXA5000",
    "RTX_A4000": "RTXA4000",
    "Tesla_V100_NVLINK": "V100",  # 16 GB
    "Quadro_RTX_6000": "RTX6000",
    "Quadro_RTX_5000": "RTX5000",
    "Quadro_RTX_4000": "RTX4000",
    "L40": "L40",
    "L40S": "L40S",
}

_NEBIUS_VALUES: dict[str, str] = {
    "H100": "H100",
    "H200": "H200",
    "B200": "B200",
    "L40S": "L40S",
}

_AMD_VALUES: dict[str, str] = {
    "AMD_Instinct_MI300X": "MI300X",
    "AMD_Instinct_MI300X_OAM": "MI300X",
    "AMD_Instinct_MI325_OAM": "MI325X",  # the labeller drops the X; MI325X is the only MI325
    "AMD_Instinct_MI250X_MI250": "MI250X",
    "AMD_Instinct_MI210": "MI210",
    "AMD_Instinct_MI100": "MI100",
}

_KNOWN_VALUES: dict[str, dict[str, str]] = {
    GKE_KEY: _GKE_VALUES,
    GKE_TPU_KEY: _GKE_TPU_VALUES,
    KARPENTER_KEY: _KARPENTER_VALUES,
    GFD_KEY: _GFD_VALUES,
    COREWEAVE_KEY: _COREWEAVE_VALUES,
    NEBIUS_KEY: _NEBIUS_VALUES,
    AMD_KEY: _AMD_VALUES,
}

# (key, value) pairs whose card size depends on another label; a lone value cannot be a safe
# node-affinity term for either size, so matching_label_values never returns them.
_AMBIGUOUS_VALUES: frozenset[tuple[str, str]] = frozenset(
    {(KARPENTER_KEY, "a100"), (KARPENTER_KEY, "v100")}
)

# Case-insensitive lookups, built once.
_KNOWN_CI: dict[str, dict[str, str]] = {
    key: {value.lower(): canon for value, canon in table.items()}
    for key, table in _KNOWN_VALUES.items()
}

# Every canonical name we know, by upper case, so user input in any case finds its spelling.
_CANONICAL_BY_UPPER: dict[str, str] = {
    canon.upper(): canon for table in _KNOWN_VALUES.values() for canon in table.values()
}

# Spellings users type that the token parser below would not turn into the canonical name.
_ALIASES: dict[str, str] = {
    "V4": "tpu-v4-podslice",
    "TPU-V4": "tpu-v4-podslice",
    "V5E": "tpu-v5-lite-podslice",
    "TPU-V5E": "tpu-v5-lite-podslice",
    "V5LITEPOD": "tpu-v5-lite-podslice",
    "V5P": "tpu-v5p-slice",
    "TPU-V5P": "tpu-v5p-slice",
    "V6E": "tpu-v6e-slice",
    "TPU-V6E": "tpu-v6e-slice",
    "RTX-PRO-6000": "RTXPRO6000",
    "RADEON-PRO-V520": "RadeonProV520",
}

# --- normalisation of unknown values ----------------------------------------------------------

_VENDOR_PREFIXES = ("nvidia-", "tesla-", "geforce-", "quadro-")
_MEMORY_TOKEN = re.compile(r"(\d+)GB?")
_AMD_MODEL_TOKEN = re.compile(r"MI\d+[A-Z]*")
_GFD_SHARED_SUFFIX = re.compile(r"-SHARED$", re.IGNORECASE)
_GFD_MIG_SUFFIX = re.compile(r"-MIG-(\S+)$", re.IGNORECASE)
_CANONICAL_PARTS = re.compile(
    r"^(?P<base>.*?)(?: \(MIG (?P<mig>[^)]+)\))?(?P<shared> \(shared\))?$"
)
_USER_PARTS = re.compile(
    r"^(?P<base>.*?)\s*(?:\(\s*mig\s+(?P<mig>[^)\s]+)\s*\))?\s*(?P<shared>\(\s*shared\s*\))?$",
    re.IGNORECASE,
)


def _parse_model(text: str) -> str:
    """Best-guess canonical name for an NVIDIA-style model string we have no table entry for.

    Strips vendor words, keeps the model token, and keeps memory only where it tells two cards
    apart (A100 40/80 GB, V100 16/32 GB); interface words (SXM4, PCIe, NVLINK, HBM3) are dropped
    because they never change which card it is. Works for GFD, GKE, CoreWeave and Nebius values
    alike, since they differ mainly in separators and case.
    """
    s = re.sub(r"[\s_]+", "-", text.strip()).strip("-")
    stripped = True
    while stripped:
        stripped = False
        for prefix in _VENDOR_PREFIXES:
            if s.lower().startswith(prefix) and len(s) > len(prefix):
                s = s[len(prefix) :]
                stripped = True
    tokens = [t.upper() for t in s.split("-") if t]
    if not tokens:
        return text.strip().upper()
    model, rest = tokens[0], tokens[1:]
    if model == "RTX":
        while rest and rest[0] == "PRO":
            model += rest.pop(0)
        if rest:
            model += rest.pop(0)
    memory_gb: int | None = None
    suffix = ""
    for token in rest:
        match = _MEMORY_TOKEN.fullmatch(token)
        if match and memory_gb is None:
            memory_gb = int(match.group(1))
        elif token == "MEGA":
            suffix += "-MEGA"
        elif token == "ADA":
            suffix += "-Ada"
    if model == "A100" and memory_gb is not None and memory_gb >= 80:
        model = "A100-80GB"
    elif model == "V100" and memory_gb == 32:
        model = "V100-32GB"
    return model + suffix


def _parse_amd_model(text: str) -> str:
    """Best-guess name for an AMD labeller product name: the Instinct model token if any.

    The labeller writes "AMD_Instinct_MI300X_OAM" or "AMD_Radeon_Pro_V520"; the model is the MI
    token for Instinct cards, the joined words for Radeon, and otherwise whatever the NVIDIA-style
    parser makes of the rest (a mislabelled node still gets a readable name).
    """
    rest = re.sub(r"^(amd[\s_-]+)?(instinct[\s_-]+)?", "", text.strip(), flags=re.IGNORECASE)
    tokens = [t.upper() for t in re.split(r"[\s_-]+", rest) if t]
    for token in tokens:
        if _AMD_MODEL_TOKEN.fullmatch(token):
            return token
    if tokens and tokens[0] == "RADEON":
        return "".join(t for t in tokens if t != "GRAPHICS")
    return _parse_model(rest) if rest else text.strip().upper()


def _compose(base: str, mig: str | None, shared: bool) -> str:
    """The one place the MIG / shared decoration of a canonical name is spelled."""
    name = base
    if mig:
        name += f" (MIG {mig.lower()})"
    if shared:
        name += " (shared)"
    return name


def split_canonical(canonical: str) -> tuple[str, str | None, bool]:
    """Split "A100-80GB (MIG 1g.10gb)" into ("A100-80GB", "1g.10gb", False).

    The launcher needs the parts: a MIG-mixed node exposes the slice as its own resource
    (nvidia.com/mig-<profile>) while its model label still names the whole card, so node
    affinity goes on the base name and the request on the slice resource.
    """
    match = _CANONICAL_PARTS.match(canonical)
    if match is None:  # pragma: no cover - the pattern matches every string
        return canonical, None, False
    return match.group("base"), match.group("mig"), bool(match.group("shared"))


def _normalize_base(text: str) -> str:
    """Canonical spelling of an undecorated GPU/TPU name typed by a user or a label."""
    key = text.strip().upper()
    if key in _CANONICAL_BY_UPPER:
        return _CANONICAL_BY_UPPER[key]
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("TPU"):
        return text.strip().lower()
    parsed = _parse_model(text)
    return _CANONICAL_BY_UPPER.get(parsed.upper(), parsed)


def normalize_gpu_name(text: str) -> str:
    """Turn a user's GPU name into the canonical spelling used everywhere else.

    Case-insensitive so "a100-80gb", "A100-80GB" and "a100 80gb" are one request; also accepts
    scheme spellings ("nvidia-h100-80gb", "H100-80GB" -> "H100"), TPU shortcuts ("v5e") and the
    decorated forms "<GPU> (MIG <profile>)" / "<GPU> (shared)". Raises ValueError on blank text.
    """
    stripped = text.strip()
    match = _USER_PARTS.match(stripped)
    if not stripped or match is None or not match.group("base"):
        raise ValueError(f"not a GPU name: {text!r}")
    base = _normalize_base(match.group("base"))
    return _compose(base, match.group("mig"), bool(match.group("shared")))


def _lookup(key: str, value: str, fallback: Callable[[str], str]) -> str:
    table = _KNOWN_VALUES.get(key, {})
    if value in table:
        return table[value]
    ci = _KNOWN_CI.get(key, {}).get(value.lower())
    if ci is not None:
        return ci
    return _CANONICAL_BY_UPPER.get(fallback(value).upper(), fallback(value))


def canonical_name(label_key: str, value: str) -> str:
    """Canonical GPU/TPU name for one label's raw value.

    Known values come from the tables above; unknown ones are normalised (never rejected), so a
    new card appears under a readable name. GFD values may carry the MIG single-strategy suffix
    "-MIG-<profile>" and the time-slicing suffix "-SHARED", which become the decorated names.
    Raises ValueError for a key that names no accelerator, or an empty value.
    """
    if label_key not in _SCHEME_BY_KEY:
        raise ValueError(
            f"unknown GPU label key {label_key!r}; known keys: {', '.join(GPU_LABEL_KEYS)}"
        )
    raw = value.strip()
    if not raw:
        raise ValueError(f"empty value for GPU label {label_key!r}")
    if label_key == SKYPILOT_KEY:
        return normalize_gpu_name(raw)
    if label_key == GKE_TPU_KEY:
        return _GKE_TPU_VALUES.get(raw, raw.lower())
    if label_key == AMD_KEY:
        return _lookup(label_key, raw, _parse_amd_model)
    mig: str | None = None
    shared = False
    if label_key == GFD_KEY:
        if _GFD_SHARED_SUFFIX.search(raw):
            shared = True
            raw = _GFD_SHARED_SUFFIX.sub("", raw)
        mig_match = _GFD_MIG_SUFFIX.search(raw)
        if mig_match:
            mig = mig_match.group(1)
            raw = raw[: mig_match.start()]
    return _compose(_lookup(label_key, raw, _parse_model), mig, shared)


# --- per-node detection -----------------------------------------------------------------------


@dataclass(frozen=True)
class GpuIdentity:
    """What one accelerator resource on one node is, and which label said so.

    `label_value` is kept raw (shown as the gpu_label column) so a user can see exactly what
    the cluster publishes when our canonical name surprises them.
    """

    canonical: str
    scheme: str
    label_key: str | None
    label_value: str | None
    resource: str
    vendor: str
    is_tpu: bool = False
    topology: str | None = None


def is_gpu_resource(name: str) -> bool:
    """True for resources that count accelerators (incl. every MIG slice resource)."""
    return name in GPU_RESOURCES or (
        name.startswith(MIG_RESOURCE_PREFIX) and len(name) > len(MIG_RESOURCE_PREFIX)
    )


def _vendor_of(resource: str) -> str:
    if resource.startswith("amd.com/"):
        return "amd"
    if resource.startswith("google.com/"):
        return "google"
    return "nvidia"


def _resource_order(resource: str) -> tuple[int, str]:
    """Stable output order: whole GPUs, shared, MIG slices, AMD, TPU."""
    rank = {"nvidia.com/gpu": 0, "nvidia.com/gpu.shared": 1, "amd.com/gpu": 3}
    if resource in rank:
        return rank[resource], resource
    if resource.startswith(MIG_RESOURCE_PREFIX):
        return 2, resource
    return 4, resource


def _count(value: str | float) -> float:
    try:
        return parse_quantity(value)
    except ValueError:
        return 0.0


def _refine_by_memory(base: str, labels: Mapping[str, str]) -> str:
    """Karpenter's "a100"/"v100" cover two card sizes; its memory label (MiB) decides."""
    try:
        mib = int(labels.get(KARPENTER_MEMORY_KEY, "0"))
    except ValueError:
        return base
    if base == "A100" and mib >= 80 * 1000:
        return "A100-80GB"
    if base == "V100" and mib >= 32 * 1000:
        return "V100-32GB"
    return base


def _model_label(labels: Mapping[str, str], vendor: str) -> tuple[str, str] | None:
    """The first label (in SkyPilot's scheme order) that names this vendor's devices."""
    manufacturer = labels.get(KARPENTER_MANUFACTURER_KEY, "").strip().lower()
    for key in _KEYS_BY_VENDOR[vendor]:
        value = labels.get(key, "").strip()
        if not value:
            continue
        if key == KARPENTER_KEY and manufacturer and manufacturer != vendor:
            continue
        return key, labels[key]
    return None


def _identify(resource: str, labels: Mapping[str, str]) -> GpuIdentity:
    vendor = _vendor_of(resource)
    is_tpu = vendor == "google"
    topology = labels.get(GKE_TPU_TOPOLOGY_KEY) if is_tpu else None
    found = _model_label(labels, vendor)
    key: str | None = None
    value: str | None = None
    if found is None:
        canonical, scheme = f"unknown ({resource})", "unlabelled"
    else:
        key, value = found
        canonical, scheme = _named_canonical(key, value, resource, vendor, labels)
    return GpuIdentity(
        canonical=canonical,
        scheme=scheme,
        label_key=key,
        label_value=value,
        resource=resource,
        vendor=vendor,
        is_tpu=is_tpu,
        topology=topology,
    )


def _named_canonical(
    key: str, value: str, resource: str, vendor: str, labels: Mapping[str, str]
) -> tuple[str, str]:
    """(canonical name, label scheme) of a device a label names."""
    base, mig, shared = split_canonical(canonical_name(key, value))
    if key == KARPENTER_KEY:
        base = _refine_by_memory(base, labels)
    if vendor == "nvidia":
        # MIG and time-slicing are facts about the node, whichever label named the card.
        gfd_mig = _GFD_MIG_SUFFIX.search(_GFD_SHARED_SUFFIX.sub("", labels.get(GFD_KEY, "")))
        if resource.startswith(MIG_RESOURCE_PREFIX):
            mig = resource[len(MIG_RESOURCE_PREFIX) :]
        elif mig is None and gfd_mig:
            mig = gfd_mig.group(1)
        elif mig is None and labels.get(GKE_PARTITION_KEY):
            mig = labels[GKE_PARTITION_KEY]
        shared = (
            shared
            or resource == "nvidia.com/gpu.shared"
            or bool(_GFD_SHARED_SUFFIX.search(labels.get(GFD_KEY, "")))
            or bool(labels.get(GKE_SHARING_KEY))
        )
    return _compose(base, mig, shared), _SCHEME_BY_KEY[key]


def detect_node_gpus(
    labels: Mapping[str, str], allocatable: Mapping[str, str | float]
) -> list[GpuIdentity]:
    """One GpuIdentity per accelerator resource the node can actually offer (allocatable > 0).

    Driven by resources, not labels: a label without devices (driver not up, GPUs drained to 0)
    offers nothing to count, while devices without a label we recognise must still be counted,
    so they appear as scheme "unlabelled" rather than vanish from the inventory. A MIG-mixed
    node yields one entry per slice profile, since each is requested as its own resource.
    """
    resources = [
        name for name, qty in allocatable.items() if is_gpu_resource(name) and _count(qty) > 0
    ]
    return [_identify(name, labels) for name in sorted(resources, key=_resource_order)]


# --- requests and matching ------------------------------------------------------------------


def matching_label_values(canonical: str) -> dict[str, list[str]]:
    """Every raw label value, per label key, that names this canonical GPU: for node affinity.

    Built from the known-values tables across all schemes, so one launch spec lands on any
    provider's node with that card. Each value returned maps back to exactly `canonical`
    through `canonical_name` (so "A100-80GB" never yields a 40 GB value). Karpenter's "a100"
    and "v100" are left out because they name both sizes; for a MIG or shared name only the GFD
    single-strategy / time-slicing product values match (a MIG-mixed node's label names the
    whole card: use `split_canonical` and affinity on the base name plus the slice resource).
    """
    target = normalize_gpu_name(canonical)
    base, mig, shared = split_canonical(target)
    out: dict[str, list[str]] = {}
    for key in GPU_LABEL_KEYS:
        candidates: list[str]
        if key == SKYPILOT_KEY:
            # SkyPilot labels GPU nodes only; its label never names a MIG slice or a TPU.
            plain_gpu = not (mig or shared or base.startswith("tpu"))
            candidates = [target.lower()] if plain_gpu else []
        else:
            bases = [
                value
                for value, canon in _KNOWN_VALUES[key].items()
                if canon == base and (key, value) not in _AMBIGUOUS_VALUES
            ]
            if mig or shared:
                if key != GFD_KEY:
                    bases = []
                suffix = (f"-MIG-{mig}" if mig else "") + ("-SHARED" if shared else "")
                candidates = [value + suffix for value in bases]
            else:
                candidates = bases
        kept = [value for value in candidates if canonical_name(key, value) == target]
        if kept:
            out[key] = kept
    return out


def parse_gpu_request(text: str) -> tuple[str, int]:
    """Parse "H100" or "h100:8" into (canonical name, count).

    Raises ValueError with a one-line message naming the text, so the magic and CLI can show it
    as is (a bad flag must not print a traceback).
    """
    stripped = text.strip()
    name, count = stripped, 1
    if ":" in stripped:
        name, _, count_text = stripped.rpartition(":")
        try:
            count = int(count_text)
        except ValueError:
            count = 0
        if count < 1 or ":" in name:
            raise ValueError(
                f"invalid GPU request {text!r}: expected NAME or NAME:COUNT with COUNT a "
                "positive integer, e.g. H100:8"
            )
    if not name.strip():
        raise ValueError(f"invalid GPU request {text!r}: no GPU name, e.g. H100:8")
    return normalize_gpu_name(name), count


def gpu_names_match(requested: str, canonical: str) -> bool:
    """Exact match after normalisation: no fuzzy or prefix matching.

    "A100" must not match an "A100-80GB" node nor the reverse (40 GB and 80 GB cards are
    different SKUs): a fuzzy match would launch on the wrong card, which is worse than reporting
    none free.
    """
    try:
        return normalize_gpu_name(requested) == normalize_gpu_name(canonical)
    except ValueError:
        return False


def requestable_quantities(per_node_counts: Iterable[int], *, is_tpu: bool = False) -> list[int]:
    """SkyPilot's REQUESTABLE_QTY_PER_NODE: the per-node counts a user can ask for.

    A node with c devices serves any power of two up to c, and c itself (12 -> 1, 2, 4, 8, 12);
    a TPU slice is only usable whole, so TPUs offer exactly their slice size.
    """
    quantities: set[int] = set()
    for count in per_node_counts:
        if count <= 0:
            continue
        quantities.add(count)
        if is_tpu:
            continue
        for exponent in range(int(math.log2(count)) + 1):
            quantities.add(2**exponent)
    return sorted(quantities)
