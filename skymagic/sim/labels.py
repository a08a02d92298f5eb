"""What a simulated GPU/TPU node carries under each label scheme: labels, resources, taints.

Why: skymagic's inventory must work on every provider's labelling (GKE's
cloud.google.com/gke-accelerator, NVIDIA GPU Feature Discovery's nvidia.com/gpu.product, ... as
SkyPilot's sky/provision/kubernetes/utils.py lists them), and the simulated fleet is where that
is proven. So each scheme here produces the labels the real
provider's tooling would put on such a node (GKE, Karpenter, NVIDIA GPU Feature Discovery,
CoreWeave, Nebius, the AMD node labeller, GKE TPU node pools, SkyPilot's own label), with
realistic companions (counts, memory, instance types), not just the one key detection reads.

Scheme notes:

* ``gfd``: whole GPUs on ``nvidia.com/gpu``. With ``mig_profile`` set it models the MIG
  *single* strategy instead: the product label gains ``-MIG-<profile>`` and ``nvidia.com/gpu``
  counts slices.
* ``gfd-mig-mixed``: MIG *mixed* strategy: the product label names the whole card, each slice
  profile is its own resource ``nvidia.com/mig-<profile>`` (default: the smallest 1g profile,
  7 per GPU, e.g. 1g.10gb on an 80 GB card).
* ``gfd-shared``: time-slicing as the GPU operator configures it by default
  (``renameByDefault: false``): the resource stays ``nvidia.com/gpu`` but counts
  ``gpus * replicas`` and the product label gains ``-SHARED``, plus ``nvidia.com/gpu.replicas``.
  We chose this over the renamed ``nvidia.com/gpu.shared`` resource because it is the default
  and the harder case (same resource name, only a label says the GPU is shared); detection of
  ``nvidia.com/gpu.shared`` is covered by the accelerators unit tests.
* ``tpu``: GKE TPU node pools. ``gpu`` is a GKE TPU accelerator value or a shortcut
  ("v5e", "v5p", "v6e", "v4"); a TPU ``gpu`` under any other scheme also gets a TPU profile,
  since no other scheme labels TPUs.

An unknown ``gpu`` never fails: it gets a plausible value in the scheme's own spelling
(``NVIDIA-<GPU>``, ``nvidia-<gpu>``, lower case for Karpenter...), which detection normalises
back to the same name.

The names come from the simulator's own catalogue (cards.yaml: each card as every provider
names and packages it; ``gpu_name``), never from the product's detection: the simulator is the
yardstick the product's GPU naming is measured against, so it must not share that code. Each
profile also says which GPU the node offers (``NodeProfile.gpu``, e.g. "H100", "A100-80GB (MIG
1g.10gb)", "T4 (shared)", "tpu-v5-lite-podslice"): the fleet places a spec's pods by that name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml

__all__ = ["SCHEMES", "NodeProfile", "gpu_name", "gpu_node_profile"]

SCHEMES: tuple[str, ...] = (
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


@dataclass
class NodeProfile:
    """Labels, accelerator resources (capacity == allocatable) and taints for one node.

    `gpu` is the name of what the node offers, in `gpu_name`'s spelling (a spec's pods ask for
    it); `gpu_resources` has one entry, the resource those pods request.
    """

    labels: dict[str, str]
    gpu_resources: dict[str, int]
    taints: list[dict[str, str]] = field(default_factory=list)
    gpu: str = ""

    @property
    def resource(self) -> str:
        """The device resource this node offers (nvidia.com/gpu, nvidia.com/mig-1g.10gb, ...)."""
        return next(iter(self.gpu_resources))


@dataclass(frozen=True)
class _Card:
    """One GPU model as each provider names and packages it (an entry of cards.yaml)."""

    canonical: str
    vendor: str  # "nvidia" | "amd"
    memory_gb: int  # nominal, as in the product name (decides default MIG slice sizes)
    memory_mib: int  # what GFD reports in nvidia.com/gpu.memory
    family: str  # GFD nvidia.com/gpu.family, or the AMD labeller's family
    compute: tuple[int, int] = (0, 0)  # CUDA compute capability
    gfd: str | None = None
    gke: str | None = None
    gke_machines: tuple[tuple[int, str], ...] = ()
    karpenter: str | None = None
    aws_instances: tuple[tuple[int, str], ...] = ()
    coreweave: str | None = None
    nebius: str | None = None
    amd_product: str | None = None
    amd_device_id: str | None = None


def _load_cards() -> dict[str, _Card]:
    """The catalogue in cards.yaml (vendor -> card -> fields), by canonical name."""
    text = resources.files("skymagic.sim").joinpath("cards.yaml").read_text(encoding="utf-8")
    cards: dict[str, _Card] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when built with it
    for vendor, models in yaml.load(text, Loader=loader).items():
        for name, spec in models.items():
            fields = dict(spec)
            if "compute" in fields:
                fields["compute"] = tuple(fields["compute"])
            for machines in ("gke_machines", "aws_instances"):
                if machines in fields:
                    fields[machines] = tuple(sorted(fields[machines].items()))
            cards[name] = _Card(canonical=name, vendor=vendor, **fields)
    return cards


_CARDS = _load_cards()

# GKE TPU accelerators: (machine types by chips per node, topology dimensions).
_TPUS: dict[str, tuple[tuple[tuple[int, str], ...], int]] = {
    "tpu-v5-lite-podslice": (
        ((1, "ct5lp-hightpu-1t"), (4, "ct5lp-hightpu-4t"), (8, "ct5lp-hightpu-8t")),
        2,
    ),
    "tpu-v5-lite-device": (
        ((1, "ct5l-hightpu-1t"), (4, "ct5l-hightpu-4t"), (8, "ct5l-hightpu-8t")),
        2,
    ),
    "tpu-v6e-slice": (
        ((1, "ct6e-standard-1t"), (4, "ct6e-standard-4t"), (8, "ct6e-standard-8t")),
        2,
    ),
    "tpu-v5p-slice": (((4, "ct5p-hightpu-4t"),), 3),
    "tpu-v4-podslice": (((4, "ct4p-hightpu-4t"),), 3),
}

_MIG_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb", re.IGNORECASE)

# Short TPU names people type, as GKE's TPU docs name the versions.
_TPU_SHORTCUTS: dict[str, str] = {
    "v4": "tpu-v4-podslice",
    "v5e": "tpu-v5-lite-podslice",
    "v5litepod": "tpu-v5-lite-podslice",
    "v5p": "tpu-v5p-slice",
    "v6e": "tpu-v6e-slice",
}
_TPU_SHORTCUTS.update({f"tpu-{short}": name for short, name in list(_TPU_SHORTCUTS.items())})


def _name_table() -> dict[str, str]:
    """Lower-cased spellings -> catalogue name: canonical names first, then each provider's."""
    table = {card.canonical.lower(): card.canonical for card in _CARDS.values()}
    for card in _CARDS.values():
        for spelling in (card.gfd, card.gke, card.coreweave, card.nebius, card.amd_product):
            if spelling:
                table.setdefault(spelling.lower(), card.canonical)
    table.update({tpu: tpu for tpu in _TPUS})
    table.update(_TPU_SHORTCUTS)
    return table


_NAMES = _name_table()
_DECORATED = re.compile(
    r"(?P<base>.*?)\s*(?:\(\s*mig\s+(?P<mig>[^)\s]+)\s*\))?\s*(?P<shared>\(\s*shared\s*\))?",
    re.IGNORECASE,
)


def gpu_name(text: str) -> str:
    """The catalogue's name for a GPU a spec names, in any case or provider spelling.

    "h100" -> "H100", "nvidia-a100-80gb" -> "A100-80GB", "v5e" -> "tpu-v5-lite-podslice"; the
    decorated forms keep their decoration ("a100-80gb (mig 1g.10gb)" -> "A100-80GB (MIG
    1g.10gb)", "t4 (shared)" -> "T4 (shared)"). An unknown card is upper-cased ("b300" ->
    "B300"), so a spec can try a card the catalogue has not heard of.
    """
    match = _DECORATED.fullmatch(text.strip())
    base = (match.group("base") if match else text).strip()
    key = base.lower()
    if key in _NAMES:
        name = _NAMES[key]
    elif key.startswith("tpu"):
        name = key
    else:
        for prefix in ("nvidia-", "amd-"):
            if key.startswith(prefix) and len(key) > len(prefix):
                base = base[len(prefix) :]
        name = _NAMES.get(base.lower(), base.upper())
    if match and match.group("mig"):
        name += f" (MIG {_mig_name(match.group('mig'))})"
    if match and match.group("shared"):
        name += " (shared)"
    return name


def _mig_name(profile: str) -> str:
    """A MIG profile as GFD spells it in resource names: "MIG-1G.10GB" -> "1g.10gb"."""
    profile = profile.strip().lower()
    return profile[len("mig-") :] if profile.startswith("mig-") else profile


def _taint(key: str) -> dict[str, str]:
    return {"key": key, "value": "present", "effect": "NoSchedule"}


def _pick(options: tuple[tuple[int, str], ...], gpus: int, default: str) -> str:
    """The smallest machine with at least `gpus` devices (the largest if none is big enough)."""
    if not options:
        return default
    for count, name in options:
        if count >= gpus:
            return name
    return options[-1][1]


def _card(name: str) -> _Card:
    """The catalogue card named `name` (`gpu_name`'s spelling), or a plausible one if unknown."""
    if name in _CARDS:
        return _CARDS[name]
    vendor = "amd" if name.upper().startswith("MI") else "nvidia"
    return _Card(name, vendor, 24, 24576, "unknown" if vendor == "nvidia" else "AI")


def _default_topology(chips: int, dims: int) -> str:
    """GKE's topology for a single-host slice of `chips` chips (4 -> 2x2 or 2x2x1)."""
    if dims == 3:
        if chips >= 4 and chips % 4 == 0:
            return f"2x2x{chips // 4}"
        return f"1x1x{max(chips, 1)}"
    side = math.isqrt(max(chips, 1))
    while side > 1 and chips % side:
        side -= 1
    return f"{side}x{max(chips, 1) // side}"


def _tpu_profile(accelerator: str, chips: int, taint: bool, topology: str | None) -> NodeProfile:
    machines, dims = _TPUS.get(accelerator, ((), 2))
    labels = {
        "cloud.google.com/gke-tpu-accelerator": accelerator,
        "cloud.google.com/gke-tpu-topology": topology or _default_topology(chips, dims),
        "cloud.google.com/gke-nodepool": f"{accelerator}-pool",
        "cloud.google.com/gke-accelerator-count": str(chips),
        "node.kubernetes.io/instance-type": _pick(machines, chips, f"ct-{chips}t"),
        "cloud.google.com/machine-family": _pick(machines, chips, "ct").split("-")[0],
    }
    taints = [_taint("google.com/tpu")] if taint else []
    return NodeProfile(labels, {"google.com/tpu": chips}, taints, gpu=accelerator)


def _mig_slices(card: _Card, mig_profile: str | None) -> tuple[str, int, int]:
    """(profile, slices per GPU, slice memory MiB) for a MIG profile on `card`.

    Slices per GPU follow the A100/H100 geometry: 7 compute slices and 8 memory slices, so a
    profile fits min(7 // g, 8 // memory-slices) times (1g.10gb -> 7, 3g.40gb -> 2 on 80 GB).
    """
    slice_gb = math.ceil(card.memory_gb / 8)
    profile = _mig_name(mig_profile or f"1g.{slice_gb}gb")
    match = _MIG_PROFILE.match(profile)
    if match is None:
        return profile, 1, card.memory_mib
    compute, memory = int(match.group(1)), int(match.group(2))
    memory_slices = max(1, round(memory / (card.memory_gb / 8)))
    per_gpu = max(1, min(7 // max(compute, 1), 8 // memory_slices))
    return profile, per_gpu, memory * 1024 - 512


def _gfd_labels(card: _Card, product: str, gpus: int, memory_mib: int) -> dict[str, str]:
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.memory": str(memory_mib),
        "nvidia.com/gpu.family": card.family,
        "nvidia.com/gpu.machine": "SIM-GPU-SERVER",
        "nvidia.com/gpu.compute.major": str(card.compute[0]),
        "nvidia.com/gpu.compute.minor": str(card.compute[1]),
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "127",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/cuda.runtime.minor": "4",
        "nvidia.com/mig.capable": "true" if card.memory_gb >= 40 else "false",
        "nvidia.com/gfd.timestamp": "1735689600",
        "feature.node.kubernetes.io/pci-10de.present": "true",
    }
    return labels


def gpu_node_profile(
    scheme: str,
    gpu: str,
    gpus: int,
    *,
    taint_gpu: bool = False,
    topology: str | None = None,
    mig_profile: str | None = None,
    replicas: int = 4,
) -> NodeProfile:
    """Labels, accelerator resources and taints of one simulated node with `gpus` x `gpu`.

    `gpu` is any spelling `gpu_name` accepts ("H100", "a100-80gb", "v5e"). Raises a
    one-line ValueError for an unknown scheme or a negative count; an unknown GPU gets plausible
    values instead, so a spec can try a card the catalogue has not heard of.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    if gpus < 0:
        raise ValueError(f"gpus must be >= 0 for a {scheme} node, got {gpus}")
    name = gpu_name(gpu)
    if scheme == "tpu" or name.startswith("tpu"):
        accelerator = name if name.startswith("tpu") else f"tpu-{name.lower()}"
        return _tpu_profile(accelerator, gpus, taint_gpu, topology)

    card = _card(name)
    amd = card.vendor == "amd"
    resource = "amd.com/gpu" if amd else "nvidia.com/gpu"
    taints = [_taint(resource)] if taint_gpu else []
    resources: dict[str, int] = {resource: gpus}
    offers = card.canonical
    labels: dict[str, str]
    if scheme == "skypilot":
        labels = {"skypilot.co/accelerator": card.canonical.lower()}
    elif scheme == "gke":
        gke = card.gke or f"nvidia-{card.canonical.lower()}"
        labels = {
            "cloud.google.com/gke-accelerator": gke,
            "cloud.google.com/gke-accelerator-count": str(gpus),
            "cloud.google.com/gke-nodepool": f"{card.canonical.lower()}-pool",
            "cloud.google.com/gke-gpu-driver-version": "default",
            "cloud.google.com/gke-os-distribution": "cos",
            "node.kubernetes.io/instance-type": _pick(card.gke_machines, gpus, "n1-standard-8"),
        }
    elif scheme == "karpenter":
        instance = _pick(card.aws_instances, gpus, "g5.xlarge")
        labels = {
            "karpenter.k8s.aws/instance-gpu-name": card.karpenter or card.canonical.lower(),
            "karpenter.k8s.aws/instance-gpu-count": str(gpus),
            "karpenter.k8s.aws/instance-gpu-memory": str(card.memory_gb * 1024),
            "karpenter.k8s.aws/instance-gpu-manufacturer": card.vendor,
            "karpenter.k8s.aws/instance-family": instance.split(".")[0],
            "karpenter.sh/nodepool": "gpu",
            "karpenter.sh/capacity-type": "on-demand",
            "node.kubernetes.io/instance-type": instance,
        }
    elif scheme in ("gfd", "gfd-mig-mixed", "gfd-shared"):
        product = card.gfd or f"NVIDIA-{card.canonical}"
        if scheme == "gfd-mig-mixed":
            profile, per_gpu, slice_mib = _mig_slices(card, mig_profile)
            labels = _gfd_labels(card, product, gpus, card.memory_mib)
            labels.update(
                {
                    "nvidia.com/mig.capable": "true",
                    "nvidia.com/mig.strategy": "mixed",
                    "nvidia.com/mig.config": f"all-{profile}",
                    "nvidia.com/mig.config.state": "success",
                    f"nvidia.com/mig-{profile}.count": str(gpus * per_gpu),
                    f"nvidia.com/mig-{profile}.memory": str(slice_mib),
                    f"nvidia.com/mig-{profile}.slices.gi": profile.split("g.")[0],
                    f"nvidia.com/mig-{profile}.slices.ci": profile.split("g.")[0],
                }
            )
            resources = {f"nvidia.com/mig-{profile}": gpus * per_gpu}
            offers = f"{card.canonical} (MIG {profile})"
        elif scheme == "gfd" and mig_profile:
            profile, per_gpu, slice_mib = _mig_slices(card, mig_profile)
            labels = _gfd_labels(card, f"{product}-MIG-{profile}", gpus * per_gpu, slice_mib)
            labels.update(
                {
                    "nvidia.com/mig.capable": "true",
                    "nvidia.com/mig.strategy": "single",
                    "nvidia.com/mig.config": f"all-{profile}",
                    "nvidia.com/mig.config.state": "success",
                }
            )
            resources = {"nvidia.com/gpu": gpus * per_gpu}
            offers = f"{card.canonical} (MIG {profile})"
        elif scheme == "gfd-shared":
            replicas = max(replicas, 1)
            labels = _gfd_labels(card, f"{product}-SHARED", gpus, card.memory_mib)
            labels.update(
                {
                    "nvidia.com/gpu.replicas": str(replicas),
                    "nvidia.com/gpu.sharing-strategy": "time-slicing",
                }
            )
            resources = {"nvidia.com/gpu": gpus * replicas}
            offers = f"{card.canonical} (shared)"
        else:
            labels = _gfd_labels(card, product, gpus, card.memory_mib)
    elif scheme == "coreweave":
        labels = {
            "gpu.nvidia.com/class": card.coreweave or card.canonical.replace("-", "_"),
            "gpu.nvidia.com/count": str(gpus),
            "gpu.nvidia.com/vram": str(card.memory_gb),
            "node.coreweave.cloud/class": "gpu",
        }
    elif scheme == "nebius":
        labels = {
            "nebius.com/gpu-name": card.nebius or card.canonical,
            "node.kubernetes.io/instance-type": f"gpu-{card.canonical.lower()}-sxm",
        }
    else:  # amd
        labels = {
            "amd.com/gpu.product-name": card.amd_product or f"AMD_Instinct_{card.canonical}",
            "amd.com/gpu.family": card.family if amd else "AI",
            "amd.com/gpu.vram": f"{card.memory_gb}G",
            "amd.com/gpu.device-id": card.amd_device_id or "74a1",
            "amd.com/gpu.cu-count": "304",
        }
        resource = "amd.com/gpu"
        resources = {resource: gpus}
        taints = [_taint(resource)] if taint_gpu else []
    return NodeProfile(labels, resources, taints, gpu=offers)
