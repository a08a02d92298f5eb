"""Where ready-made load goes: the spec's start-up pods (bulk, first fit, no scheduler run per
pod) and pods added at run time (`Fleet.add_pods`), bound straight to nodes with room.

Which GPU a node has comes from its node group's offer (objects.gpu_offer), never from
reading its labels with the product's detection code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from skymagic.sim import objects
from skymagic.sim.labels import gpu_name
from skymagic.sim.scheduler import TERMINAL, NodeUsage
from skymagic.sim.spec import ClusterSpec, PodGroup

__all__ = ["place_live", "place_startup"]

Offers = Mapping[str, tuple[str, str]]  # node name -> (GPU name, device resource)


def place_startup(
    spec: ClusterSpec, index: int, nodes: list[dict[str, Any]], offers: Offers
) -> Iterator[dict[str, Any]]:
    """Spread the spec's pods over matching nodes without running the scheduler per pod."""
    free: dict[str, dict[str, float]] = {}
    by_gpu: dict[str | None, list[tuple[dict[str, Any], str | None]]] = {}
    for candidate in nodes:
        name = candidate["metadata"]["name"]
        free[name] = {
            "cpu": 1e9,
            **{r: float(q) for r, q in objects.node_gpu_resources(candidate).items()},
        }
        by_gpu.setdefault(None, []).append((candidate, None))
        offer = offers.get(name)
        if offer is not None:
            by_gpu.setdefault(offer[0], []).append((candidate, offer[1]))
    counter = 0
    for group in spec.pods:
        candidates = by_gpu.get(gpu_name(group.gpu) if group.gpu else None, [])
        if group.gpu and not candidates:
            raise ValueError(
                f"cluster '{spec.name}': pods want gpu {group.gpu!r} but no node has it"
            )
        terminal = group.phase in TERMINAL
        bound = group.phase != "Pending" and bool(candidates)
        resource = candidates[0][1] if candidates else None
        stamper = objects.PodStamper(group, resource, candidates[0][0] if bound else None)
        need = group.gpus if resource else 0
        cursor = 0
        for i in range(group.count):
            counter += 1
            node: dict[str, Any] | None = None
            if bound:
                for step in range(len(candidates)):
                    cand = candidates[(cursor + step) % len(candidates)][0]
                    name = cand["metadata"]["name"]
                    if not need or terminal or free[name].get(resource or "", 0) >= need:
                        node = cand
                        if need and not terminal:
                            free[name][resource or ""] -= need
                        cursor = (cursor + step + 1) % len(candidates)
                        break
                if node is None:
                    raise ValueError(
                        f"cluster '{spec.name}': not enough {group.gpu} for the spec's "
                        f"pods (group {group.name!r}, pod {i})"
                    )
            ip = f"10.{100 + index % 100}.{(counter // 250) % 250}.{counter % 250 + 1}"
            yield stamper.make(i + counter * 7919, node, ip)


def place_live(
    spec: ClusterSpec,
    index: int,
    group: PodGroup,
    nodes: list[dict[str, Any]],
    offers: Offers,
    usage: NodeUsage,
    base: int,
) -> Iterator[dict[str, Any]]:
    """The group's pods, each on the first node with its GPU free now (`usage`)."""
    want = gpu_name(group.gpu) if group.gpu else None
    for i in range(group.count):
        placed = None
        for node in nodes:
            offer = offers.get(node["metadata"]["name"])
            if want is not None and (offer is None or offer[0] != want):
                continue
            res = offer[1] if want is not None and offer is not None else None
            if res:
                alloc = float(node["status"]["allocatable"].get(res, 0))
                used = usage.by_node.get(node["metadata"]["name"], {}).get(res, 0.0)
                if group.phase not in TERMINAL and alloc - used < group.gpus:
                    continue
            placed = (node, res)
            break
        if placed is None:
            raise ValueError(f"no node in '{spec.name}' has room for {group.gpus} x {group.gpu}")
        ip = f"10.{100 + index % 100}.200.{(base + i) % 250 + 1}"
        yield objects.build_pod(group, base + i, node=placed[0], gpu_resource=placed[1], pod_ip=ip)
