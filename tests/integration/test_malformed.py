"""Malformed answers from one API server never sink the inventory.

The simulated fleet's `corrupt` fault serves a 200 answer whose JSON is not what the API
promises: cut in half, a field of the wrong type, a 16 MB string where a name belongs. The
context that sent it gets one error row (kind `malformed`) naming the list; every other context
is read as usual. A pod list that does not decode degrades its context (nodes shown, free
unknown), like a 403; a node list that does not decode fails it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.targets import Settings
from skymagic.gpus.inventory import show_gpus
from skymagic.gpus.watcher import InventoryWatcher
from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "alpha",
            "nodes": [{"name": "g", "count": 2, "gpu": "H100", "gpus": 8, "labels": "gfd"}],
            "pods": [{"count": 3, "gpu": "H100", "gpus": 2}, {"count": 20, "name": "web"}],
        },
        {
            "name": "beta",
            "nodes": [{"name": "a", "count": 2, "gpu": "A100", "gpus": 4, "labels": "gke"}],
            "pods": [{"count": 1, "gpu": "A100", "gpus": 1}, {"count": 20, "name": "web"}],
        },
    ]
}
PODS = "/api/v1/pods"
NODES = "/api/v1/nodes"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


@pytest.fixture
def settings(fleet: Fleet) -> Iterator[Settings]:
    yield Settings(
        client=ClientSettings(request_timeout=5.0, retries=0),
        kubeconfig=(fleet.kubeconfig,),
        allowed_contexts=("alpha", "beta"),
    )
    fleet.set_faults("beta", corrupt="", corrupt_path="")


def one(frame: pd.DataFrame, **match: Any) -> dict[str, Any]:
    sel = frame
    for k, v in match.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, (match, frame)
    row: dict[str, Any] = sel.iloc[0].to_dict()
    return row


@pytest.mark.parametrize("mode", ["truncate", "wrong-type", "huge-string"])
def test_a_malformed_pod_list_degrades_only_its_context(
    fleet: Fleet, settings: Settings, mode: str
) -> None:
    fleet.set_faults("beta", corrupt=mode, corrupt_path=PODS)
    inv = show_gpus(settings)
    assert one(inv.by_context, context="alpha")["gpu_free"] == 10
    err = one(inv.errors, context="beta")
    assert err["kind"] == "malformed"
    assert "the pod list from https://127.0.0.1:" in err["message"]
    assert "is malformed" in err["message"]
    beta = one(inv.by_context, context="beta")
    assert beta["gpu_total"] == 8 and pd.isna(beta["gpu_free"])  # nodes shown, free unknown


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("truncate", "truncated"),
        ("wrong-type", "Expected `str`, got `int`"),
        ("huge-string", "length <= 1024"),
    ],
)
def test_a_malformed_node_list_is_an_error_row_for_its_context(
    fleet: Fleet, settings: Settings, mode: str, detail: str
) -> None:
    fleet.set_faults("beta", corrupt=mode, corrupt_path=NODES)
    inv = show_gpus(settings)
    assert set(inv.nodes["context"]) == {"alpha"}
    assert one(inv.by_context, context="alpha")["gpu_free"] == 10
    err = one(inv.errors, context="beta")
    assert err["kind"] == "malformed"
    assert "the node list from" in err["message"] and detail in err["message"]
    assert "beta" in str(inv)  # the text view shows the error row too


def test_the_live_inventory_shows_a_malformed_list_and_recovers(
    fleet: Fleet, settings: Settings
) -> None:
    fleet.set_faults("beta", corrupt="wrong-type", corrupt_path=PODS)
    with InventoryWatcher(settings, watch_timeout_s=5, retry_s=0.2) as watcher:
        snap = watcher.snapshot()
        assert one(snap.by_context, context="alpha")["gpu_free"] == 10
        err = one(snap.errors, context="beta")
        assert err["kind"] == "malformed" and "the pod list" in err["message"]
        fleet.set_faults("beta", corrupt="", corrupt_path="")
        snap = watcher.wait_for(lambda i: i.errors.empty, 15)
        assert snap.errors.empty
        assert one(snap.by_context, context="beta")["gpu_free"] == 7


def test_a_huge_string_in_a_field_the_inventory_skips_costs_nothing(
    fleet: Fleet, settings: Settings
) -> None:
    """16 MB of annotation on a GPU pod: skipped by the decoder, the pod still counts."""
    client = ContextClient(
        load_kubeconfig([fleet.kubeconfig]).resolve("alpha"), ClientSettings(retries=0)
    )
    client.post_json(
        "/api/v1/namespaces/default/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "chatty", "annotations": {"notes": "x" * (16 << 20)}},
            "spec": {
                "containers": [
                    {"name": "m", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                ]
            },
        },
    )
    try:
        deadline = time.monotonic() + 10  # the simulated scheduler binds it in a moment
        while True:
            inv = show_gpus(settings)
            free = one(inv.by_context, context="alpha")["gpu_free"]
            if free == 9 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert inv.errors.empty
        assert free == 9
    finally:
        fleet.remove_pods("alpha", prefix="chatty")
