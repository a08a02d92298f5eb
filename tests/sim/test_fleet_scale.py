"""A 5,000-node, 100,000-pod cluster starts and serves full lists (issue #2, "Scale").

Counts are asserted, not timings; the timings are in bench/sim_throughput.py.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from simkit import api_client, raw

from skymagic.sim import Fleet

BIG: dict[str, Any] = {
    "clusters": [
        {
            "name": "big",
            "nodes": [
                {"count": 4000, "name": "gpu", "gpu": "H100", "gpus": 8, "labels": "gfd",
                 "cpu": 192, "memory_gb": 1800, "taint_gpu": True},
                {"count": 1000, "name": "cpu", "cpu": 32, "memory_gb": 128},
            ],
            "pods": [
                {"count": 30000, "name": "train", "gpu": "H100", "gpus": 1, "namespace": "ml"},
                {"count": 60000, "name": "svc", "namespace": "web"},
                {"count": 10000, "name": "batch", "namespace": "web", "phase": "Succeeded"},
            ],
        }
    ]
}  # fmt: skip
NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
POD = b'"kind":"Pod"'


@pytest.fixture(scope="module")
def big() -> Iterator[Fleet]:
    start = time.monotonic()
    with Fleet(BIG) as fleet:
        print(f"\n5,000 nodes / 100,000 pods started in {time.monotonic() - start:.1f} s")
        yield fleet


@pytest.mark.slow
def test_big_cluster_serves_full_lists(big: Fleet) -> None:
    api = api_client(big, "big")
    status = big.status()["big"]
    assert (status["nodes"], status["pods"]) == (5000, 100_000)

    code, nodes, _ = raw(api, "GET", "/api/v1/nodes", {"resourceVersion": "0"}, timeout=120)
    assert code == 200 and len(nodes["items"]) == 5000

    body = _get_bytes(api, "/api/v1/pods", {"resourceVersion": "0"})
    pods = _decode(body)
    assert len(body) > 200_000_000  # ~2.6 KB a pod, like a real cluster's
    items = pods["items"]
    assert len(items) == 100_000
    assert len({(p["metadata"]["namespace"], p["metadata"]["name"]) for p in items}) == 100_000
    phases = {"Running": 0, "Succeeded": 0}
    for p in items:
        phases[p["status"]["phase"]] += 1
    assert phases == {"Running": 90_000, "Succeeded": 10_000}
    gpus_used = sum(
        int(p["spec"]["containers"][0]["resources"]["requests"].get("nvidia.com/gpu", 0))
        for p in items
    )
    assert gpus_used == 30_000
    del pods, items, body

    # The other lists are counted without decoding: every pod carries "kind":"Pod" once.
    live = _get_bytes(api, "/api/v1/pods", {"fieldSelector": NON_TERMINAL})
    assert live.count(POD) == 90_000 and live.count(b'"phase":"Succeeded"') == 0
    ml = _get_bytes(api, "/api/v1/namespaces/ml/pods", {})
    assert ml.count(POD) == 30_000 and ml.count(b'"namespace":"web"') == 0


@pytest.mark.slow
def test_big_cluster_paginates(big: Fleet) -> None:
    api = api_client(big, "big")
    seen = 0
    token = ""
    pages = 0
    while True:
        query = {"limit": "20000", **({"continue": token} if token else {})}
        page = _get_bytes(api, "/api/v1/pods", query)
        seen += page.count(POD)
        pages += 1
        # The list metadata comes first: read it without decoding the items.
        meta = msgspec.json.decode(
            page[page.index(b'"metadata":') + 11 : page.index(b',"items":[')]
        )
        token = meta.get("continue", "")
        if not token:
            break
        assert meta["remainingItemCount"] == 100_000 - seen
    assert (seen, pages) == (100_000, 5)


def _decode(body: bytes) -> Any:
    """msgspec with the cyclic GC paused: a 260 MB list is millions of containers, and GC
    passes over them while they are created make decoding ~4x slower."""
    gc.disable()
    try:
        return msgspec.json.decode(body)
    finally:
        gc.enable()


def _get_bytes(api: Any, path: str, query: dict[str, str]) -> bytes:
    code, body, _ = raw(api, "GET", path, query, timeout=120, decode=False)
    assert code == 200 and isinstance(body, bytes)
    return body
