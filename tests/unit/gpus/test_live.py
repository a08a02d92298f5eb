"""The live inventory's reducer on plain values: no threads, no network."""

from __future__ import annotations

from skymagic.errors import ForbiddenError, RequestTimeoutError, TransportError
from skymagic.gpus.accelerators import GpuIdentity
from skymagic.gpus.counting import ContextData, NodeInfo, node_rows
from skymagic.gpus.live import (
    ListFailed,
    LiveState,
    NodeDeleted,
    NodeSet,
    NodesListed,
    PodSet,
    PodsListed,
)

GPU = "nvidia.com/gpu"
CTX = "c1"


def gpu_node(name: str, gpus: int = 8, *, unschedulable: bool = False) -> NodeInfo:
    ident = GpuIdentity(
        canonical="H100",
        scheme="gfd",
        label_key="nvidia.com/gpu.product",
        label_value="NVIDIA-H100-80GB-HBM3",
        resource=GPU,
        vendor="nvidia",
    )
    return NodeInfo(
        name=name,
        gpus=[ident],
        allocatable={"cpu": 32.0, "memory": 2.0**38, GPU: float(gpus)},
        unschedulable=unschedulable,
    )


def data(state: LiveState, ctx: str = CTX) -> ContextData:
    view = state.view(ctx)
    assert isinstance(view, ContextData), view
    return view


def free(state: LiveState) -> dict[str, int | None]:
    d = data(state)
    return {r["node"]: r["gpu_free"] for r in node_rows(CTX, d.nodes, d.usage)}


def synced() -> LiveState:
    state = LiveState([CTX, "c2"])
    state.apply(NodesListed(CTX, {"a": gpu_node("a"), "b": gpu_node("b", 4)}, took_s=0.25))
    state.apply(PodsListed(CTX, {"p1": ("a", {GPU: 2.0}), "p2": ("b", {GPU: 1.0, "cpu": 1.0})}))
    return state


def test_nothing_listed_yet_is_a_still_listing_row() -> None:
    state = LiveState([CTX])
    view = state.view(CTX)
    assert isinstance(view, RequestTimeoutError)
    assert "still listing" in view.message and view.context == CTX
    assert not state.contexts[CTX].settled


def test_nodes_without_pods_show_free_unknown() -> None:
    state = LiveState([CTX])
    state.apply(NodesListed(CTX, {"a": gpu_node("a")}))
    d = data(state)
    assert d.usage is None
    assert isinstance(d.pods_error, RequestTimeoutError)
    assert free(state) == {"a": None}


def test_lists_give_usage_and_latency() -> None:
    state = synced()
    assert free(state) == {"a": 6, "b": 3}
    assert state.contexts[CTX].latency_ms == 250.0
    assert state.contexts[CTX].settled
    assert not state.contexts["c2"].settled  # contexts are independent


def test_pod_events_patch_the_usage() -> None:
    state = synced()
    state.apply(PodSet(CTX, "p3", ("a", {GPU: 4.0})))  # added
    assert free(state) == {"a": 2, "b": 3}
    state.apply(PodSet(CTX, "p3", ("b", {GPU: 1.0})))  # changed (moved and shrunk)
    assert free(state) == {"a": 6, "b": 2}
    state.apply(PodSet(CTX, "p1", None))  # deleted or finished
    state.apply(PodSet(CTX, "never-seen", None))  # a no-op, not an error
    assert free(state) == {"a": 8, "b": 2}


def test_node_events_patch_the_nodes() -> None:
    state = synced()
    state.apply(NodeSet(CTX, gpu_node("a", unschedulable=True)))
    state.apply(NodeSet(CTX, gpu_node("c", 2)))
    state.apply(NodeDeleted(CTX, "b"))
    assert free(state) == {"a": 0, "c": 2}
    assert {n.name: n.unschedulable for n in data(state).nodes} == {"a": True, "c": False}


def test_a_relist_replaces_everything() -> None:
    state = synced()
    state.apply(NodesListed(CTX, {"z": gpu_node("z")}))
    state.apply(PodsListed(CTX, {"q": ("z", {GPU: 8.0})}))
    assert free(state) == {"z": 0}


def test_a_pods_error_shows_until_the_next_pod_list() -> None:
    state = synced()
    err = ForbiddenError("403 Forbidden", context=CTX, status=403)
    state.apply(ListFailed(CTX, "pods", err))
    d = data(state)
    assert d.pods_error is err and d.usage is None
    assert free(state) == {"a": None, "b": None}
    state.apply(PodsListed(CTX, {}))
    assert data(state).pods_error is None
    assert free(state) == {"a": 8, "b": 4}


def test_a_nodes_error_before_the_first_list_is_the_row() -> None:
    state = LiveState([CTX])
    err = TransportError("connection refused", context=CTX)
    state.apply(ListFailed(CTX, "nodes", err))
    assert state.view(CTX) is err
    state.apply(ListFailed(CTX, "pods", err))
    assert state.contexts[CTX].settled  # both answered (with errors): no more waiting


def test_a_nodes_error_after_a_list_keeps_the_nodes() -> None:
    state = synced()
    state.apply(ListFailed(CTX, "nodes", TransportError("gone away", context=CTX)))
    assert free(state) == {"a": 6, "b": 3}
    state.apply(NodesListed(CTX, {"a": gpu_node("a")}))
    assert state.contexts[CTX].nodes_error is None


def test_views_are_copies() -> None:
    state = synced()
    d = data(state)
    assert d.usage is not None
    d.usage.add("a", {GPU: 8.0})
    d.nodes.clear()
    assert free(state) == {"a": 6, "b": 3}


def jobs(state: LiveState) -> dict[str, str]:
    d = data(state)
    return {r["node"]: r["jobs"] for r in node_rows(CTX, d.nodes, d.usage)}


def test_managed_jobs_follow_the_pods_they_run_in() -> None:
    state = LiveState([CTX])
    state.apply(NodesListed(CTX, {"a": gpu_node("a"), "b": gpu_node("b", 4)}))
    state.apply(
        PodsListed(
            CTX,
            {"p1": ("a", {GPU: 8.0}), "p2": ("b", {GPU: 1.0}), "p3": ("b", {"cpu": 1.0})},
            {"p1": "3", "p3": "4", "gone": "9"},  # 4 holds no GPU; 9 holds nothing at all
        )
    )
    assert jobs(state) == {"a": "3", "b": ""}
    # a recovery: the old pod goes, the next attempt's pod comes (another key, another node)
    state.apply(PodSet(CTX, "p1", None))
    state.apply(PodSet(CTX, "p5", ("b", {GPU: 2.0}), "3 (attempt 2)"))
    assert jobs(state) == {"a": "", "b": "3 (attempt 2)"}
    state.apply(PodSet(CTX, "p2", ("b", {GPU: 1.0}), "11"))  # a pod's labels changed
    assert jobs(state) == {"a": "", "b": "3 (attempt 2), 11"}
    state.apply(PodSet(CTX, "p2", ("b", {GPU: 1.0})))  # ... and changed back
    state.apply(PodSet(CTX, "p5", None))  # finished (terminal) or deleted
    assert jobs(state) == {"a": "", "b": ""}
    assert free(state) == {"a": 8, "b": 3}
    # a re-list replaces the jobs as it replaces the pods
    state.apply(PodsListed(CTX, {"q": ("a", {GPU: 1.0})}, {"q": "6"}))
    assert jobs(state) == {"a": "6", "b": ""}
    state.apply(PodsListed(CTX, {"q": ("a", {GPU: 1.0})}))
    assert jobs(state) == {"a": "", "b": ""}
