"""GPU inventory end to end against simulated fleets: Python API, magic and CLI.

One read-only fleet (module scope) carries every label scheme, mixed in one context, plus
MIG-mixed, time-slicing and TPU nodes, pods with init-container requests, terminal pods, a
tainted node group, a CPU-only cluster and a user who may list nodes but not pods. Tests that
change a cluster (cordon, NotReady, a context going down) start their own small fleet.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.targets import Settings
from skymagic.gpus.inventory import (
    BY_CONTEXT_COLUMNS,
    ERROR_COLUMNS,
    NODE_COLUMNS,
    SUMMARY_COLUMNS,
    Inventory,
    show_gpus,
)
from skymagic.gpus.lists import cached_fetch
from skymagic.gpus.watcher import InventoryWatcher
from skymagic.sim import Fleet
from skymagic.ui import cli

MIXED = "mixed-schemes"
CPU = "cpu-only"
ALICE = "mixed-schemes-alice"

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": MIXED,
            "nodes": [
                {"name": "sky", "gpu": "H100", "gpus": 8, "labels": "skypilot"},
                {"name": "gke", "gpu": "L4", "gpus": 4, "labels": "gke", "taint_gpu": True},
                {"name": "karp", "gpu": "A10G", "gpus": 4, "labels": "karpenter"},
                {"name": "gfd", "gpu": "H100", "gpus": 8, "labels": "gfd", "taint_gpu": True},
                {"name": "mig", "gpu": "A100-80GB", "gpus": 2, "labels": "gfd-mig-mixed"},
                {"name": "shared", "gpu": "T4", "gpus": 1, "labels": "gfd-shared", "replicas": 4},
                {"name": "cw", "gpu": "H100", "gpus": 8, "labels": "coreweave"},
                {"name": "neb", "gpu": "H200", "gpus": 8, "labels": "nebius"},
                {"name": "amd", "gpu": "MI300X", "gpus": 8, "labels": "amd", "taint_gpu": True},
                {
                    "name": "tpu",
                    "gpu": "tpu-v5-lite-podslice",
                    "gpus": 4,
                    "labels": "tpu",
                    "topology": "2x2",
                    "taint_gpu": True,
                },
                {
                    "name": "reserved",
                    "gpu": "H200",
                    "gpus": 8,
                    "labels": "nebius",
                    "taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}],
                },
                {"name": "cpu", "count": 2, "cpu": 16, "memory_gb": 64},
            ],
            "pods": [
                # 3 x 2 H100 spread over the three H100 nodes (sky, gfd, cw)
                {"count": 3, "name": "train", "gpu": "H100", "gpus": 2, "cpu": 4, "memory_gb": 8},
                # init container wants 4: the pod holds 4, not 1
                {"count": 1, "name": "initq", "gpu": "H200", "gpus": 1, "init_gpus": 4},
                # finished pods hold nothing
                {"count": 2, "name": "done", "gpu": "L4", "gpus": 2, "phase": "Succeeded"},
                {"count": 1, "name": "crashed", "gpu": "L4", "gpus": 4, "phase": "Failed"},
                {"count": 1, "name": "slices", "gpu": "A100-80GB (MIG 1g.10gb)", "gpus": 3},
                {"count": 1, "name": "ts", "gpu": "T4 (shared)", "gpus": 1},
                {"count": 1, "name": "tpujob", "gpu": "tpu-v5-lite-podslice", "gpus": 4},
                {"count": 2, "name": "mi", "gpu": "MI300X", "gpus": 2},
            ],
            "users": [{"name": "alice", "context": ALICE, "auth": "token", "groups": []}],
            "rbac": [
                {
                    "user": "alice",
                    "rules": [
                        {"verbs": ["get", "list", "watch"], "resources": ["nodes"]},
                        {"verbs": ["*"], "resources": ["pods"], "namespaces": ["team-a"]},
                    ],
                }
            ],
        },
        {
            "name": CPU,
            "nodes": [{"name": "plain", "count": 2, "cpu": 8, "memory_gb": 32}],
            "pods": [{"count": 2, "name": "web", "cpu": 2, "memory_gb": 4}],
        },
    ]
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(SPEC) as f:
        yield f


def settings_for(fleet: Fleet, *contexts: str, timeout: float = 5.0) -> Settings:
    return Settings(
        client=ClientSettings(request_timeout=timeout, retries=0),
        kubeconfig=(fleet.kubeconfig,),
        allowed_contexts=contexts or "all",
    )


@pytest.fixture(scope="module")
def inv(fleet: Fleet) -> Inventory:
    return show_gpus(settings_for(fleet, MIXED, CPU))


def rows(frame: pd.DataFrame, **match: Any) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for col, value in match.items():
        mask &= frame[col] == value
    found: pd.DataFrame = frame[mask]
    return found


def one(frame: pd.DataFrame, **match: Any) -> dict[str, Any]:
    found = rows(frame, **match)
    assert len(found) == 1, f"{match}: {len(found)} rows\n{frame}"
    return {str(k): v for k, v in found.iloc[0].to_dict().items()}


# --- shape ----------------------------------------------------------------------------------


def test_frames_have_the_documented_columns(inv: Inventory) -> None:
    assert tuple(inv.nodes.columns) == NODE_COLUMNS
    assert tuple(inv.by_context.columns) == BY_CONTEXT_COLUMNS
    assert tuple(inv.summary.columns) == SUMMARY_COLUMNS
    assert tuple(inv.errors.columns) == ERROR_COLUMNS
    assert inv.contexts == [MIXED, CPU]
    assert set(inv.latency_ms) == {MIXED, CPU}
    assert abs(inv.fetched_at - time.time()) < 60
    assert inv.errors.empty


# --- identity: every scheme, mixed in one context -------------------------------------------


@pytest.mark.parametrize(
    ("node", "gpu", "scheme", "resource", "total"),
    [
        ("sky", "H100", "skypilot", "nvidia.com/gpu", 8),
        ("gke", "L4", "gke", "nvidia.com/gpu", 4),
        ("karp", "A10G", "karpenter", "nvidia.com/gpu", 4),
        ("gfd", "H100", "gfd", "nvidia.com/gpu", 8),
        ("mig", "A100-80GB (MIG 1g.10gb)", "gfd", "nvidia.com/mig-1g.10gb", 14),
        ("shared", "T4 (shared)", "gfd", "nvidia.com/gpu", 4),
        ("cw", "H100", "coreweave", "nvidia.com/gpu", 8),
        ("neb", "H200", "nebius", "nvidia.com/gpu", 8),
        ("amd", "MI300X", "amd", "amd.com/gpu", 8),
        ("tpu", "tpu-v5-lite-podslice", "gke-tpu", "google.com/tpu", 4),
    ],
)
def test_each_label_scheme_in_one_context(
    inv: Inventory, node: str, gpu: str, scheme: str, resource: str, total: int
) -> None:
    row = one(inv.nodes, context=MIXED, node=node)
    assert (row["gpu"], row["label_scheme"], row["resource"]) == (gpu, scheme, resource)
    assert row["gpu_total"] == total
    assert row["gpu_label"]  # the raw label value is kept


def test_same_card_from_three_schemes_is_one_gpu(inv: Inventory) -> None:
    h100 = one(inv.by_context, context=MIXED, gpu="H100")
    assert h100["nodes"] == 3 and h100["gpu_total"] == 24
    assert h100["gpu_free"] == 24 - 6
    assert h100["utilization"] == "18 of 24 free"
    assert h100["requestable_qty_per_node"] == [1, 2, 4, 8]


# --- counting -------------------------------------------------------------------------------


def test_init_container_request_counts(inv: Inventory) -> None:
    neb = one(inv.nodes, node="neb")
    assert neb["gpu_requested"] == 4 and neb["gpu_free"] == 4


def test_terminal_pods_are_ignored(inv: Inventory) -> None:
    l4 = one(inv.nodes, node="gke")
    assert l4["gpu_requested"] == 0 and l4["gpu_free"] == 4


def test_mig_time_slicing_tpu_and_amd(inv: Inventory) -> None:
    mig = one(inv.by_context, gpu="A100-80GB (MIG 1g.10gb)")
    assert (mig["gpu_total"], mig["gpu_free"]) == (14, 11)
    shared = one(inv.by_context, gpu="T4 (shared)")
    assert (shared["gpu_total"], shared["gpu_free"]) == (4, 3)
    tpu = one(inv.by_context, gpu="tpu-v5-lite-podslice")
    assert (tpu["gpu_total"], tpu["gpu_free"]) == (4, 0)
    assert tpu["requestable_qty_per_node"] == [4]
    amd = one(inv.by_context, gpu="MI300X")
    assert (amd["gpu_total"], amd["gpu_free"]) == (8, 4)


def test_cpu_and_memory_free_from_allocatable(inv: Inventory) -> None:
    cpu_nodes = rows(inv.nodes, context=CPU)
    assert len(cpu_nodes) == 2
    assert cpu_nodes["gpu"].map(lambda v: v is None).all()
    assert (cpu_nodes["gpu_total"] == 0).all()
    # allocatable (7.9 CPUs, 31 GiB) is below capacity (8, 32): free starts from allocatable
    assert (cpu_nodes["cpu_total"] < 8).all() and (cpu_nodes["memory_gb_total"] < 32).all()
    used_cpu = (cpu_nodes["cpu_total"] - cpu_nodes["cpu_free"]).sum()
    used_mem = (cpu_nodes["memory_gb_total"] - cpu_nodes["memory_gb_free"]).sum()
    assert math.isclose(used_cpu, 4.0)  # 2 web pods x 2 CPUs
    assert math.isclose(used_mem, 8.0, abs_tol=0.02)  # 2 web pods x 4 GB


def test_tainted_node_is_not_counted_free_and_says_why(inv: Inventory) -> None:
    row = one(inv.nodes, node="reserved")
    assert row["status"] == "NoSchedule Taint [dedicated=infra]"
    assert not row["schedulable"] and row["ready"]
    # Its own free GPUs stay (a pod tolerating the taint may take them); the totals skip them.
    assert row["gpu_total"] == 8 and row["gpu_free"] == 8
    assert "dedicated=infra:NoSchedule" in row["taints"]
    h200 = one(inv.by_context, gpu="H200")
    assert h200["utilization"] == "4 of 16 free (8 not ready)"
    # GPU taints are tolerated by GPU pods: those nodes stay healthy
    assert one(inv.nodes, node="gfd")["status"] == "Healthy"


def test_summary_spans_contexts(fleet: Fleet) -> None:
    inv = show_gpus(settings_for(fleet, MIXED, CPU, ALICE))
    h100 = one(inv.summary, gpu="H100")
    assert h100["gpu_total"] == 48
    assert h100["gpu_free"] == 18
    assert h100["utilization"] == "18 of 48 free (24 unknown)"
    assert h100["contexts"] == f"{MIXED}, {ALICE}"


# --- permissions and failures -----------------------------------------------------------------


def test_forbidden_pods_give_nodes_with_unknown_free(fleet: Fleet) -> None:
    inv = show_gpus(settings_for(fleet, ALICE))
    assert len(rows(inv.nodes, context=ALICE)) == len(
        rows(show_gpus(settings_for(fleet, MIXED)).nodes)
    )
    assert inv.nodes["gpu_free"].isna().all()
    assert inv.nodes["gpu_total"].sum() > 0
    err = one(inv.errors, context=ALICE)
    assert err["kind"] == "forbidden"
    assert "403" in err["message"] and "free GPUs unknown" in err["message"]
    h100 = one(inv.by_context, gpu="H100")
    assert pd.isna(h100["gpu_free"]) and h100["utilization"] == "free unknown of 24"
    text = str(inv)
    assert "free unknown of 24" in text and "forbidden" in text


def test_exactly_two_list_requests_per_context(fleet: Fleet) -> None:
    for c in fleet.clusters:
        fleet.clear_requests(c)
    show_gpus(settings_for(fleet, MIXED, CPU))
    for cluster in (MIXED, CPU):
        log = fleet.requests(cluster)
        assert sorted((r["method"], r["path"]) for r in log) == [
            ("GET", "/api/v1/nodes"),
            ("GET", "/api/v1/pods"),
        ], log
        by_path = {r["path"]: r["query"] for r in log}
        assert by_path["/api/v1/nodes"]["resourceVersion"] == "0"
        assert by_path["/api/v1/pods"]["resourceVersion"] == "0"
        assert (
            by_path["/api/v1/pods"]["fieldSelector"]
            == "status.phase!=Succeeded,status.phase!=Failed"
        )
        assert int(by_path["/api/v1/pods"]["limit"]) >= 1000


def test_cache_ttl_reuses_lists(fleet: Fleet) -> None:
    s = settings_for(fleet, CPU)
    show_gpus(s, cache_ttl=60)
    fleet.clear_requests(CPU)
    show_gpus(s, cache_ttl=60)
    assert fleet.requests(CPU) == []
    show_gpus(s)
    assert len(fleet.requests(CPU)) == 2


def test_cache_follows_the_kubeconfig_entry_not_the_client_object(fleet: Fleet) -> None:
    resolved = load_kubeconfig([fleet.kubeconfig]).resolve(CPU)
    settings = ClientSettings(retries=0)
    first = ContextClient(resolved, settings)
    data = cached_fetch(first, 60)
    fleet.clear_requests(CPU)
    # a new client for the same entry (e.g. after clear_clients) reuses the answer
    assert cached_fetch(ContextClient(resolved, settings), 60) is data
    assert fleet.requests(CPU) == []
    # an edited entry under the same context name does not
    edited = dataclasses.replace(
        resolved, context=dataclasses.replace(resolved.context, namespace="elsewhere")
    )
    assert cached_fetch(ContextClient(edited, settings), 60) is not data
    assert len(fleet.requests(CPU)) == 2
    assert first.fingerprint != ContextClient(edited, settings).fingerprint


def test_infra_pins_one_context(fleet: Fleet) -> None:
    inv = show_gpus(settings_for(fleet, MIXED, CPU), infra=f"k8s/{CPU}")
    assert inv.contexts == [CPU]
    assert set(inv.nodes["context"]) == {CPU}


# --- GPU:N filter -----------------------------------------------------------------------------


def test_gpu_filter_matches_normalised_names_and_quantity(fleet: Fleet) -> None:
    s = settings_for(fleet, MIXED)
    inv = show_gpus(s, gpu="h100")
    assert set(inv.nodes["gpu"]) == {"H100"} and len(inv.nodes) == 3
    inv8 = show_gpus(s, gpu="H100:8")
    assert one(inv8.by_context, gpu="H100")["requestable_qty_per_node"] == [8]
    assert show_gpus(s, gpu="L4:8").nodes.empty  # L4 nodes have 4
    a100 = show_gpus(s, gpu="A100")
    assert a100.nodes.empty and a100.by_context.empty
    assert "No GPU matching A100" in str(a100)
    assert len(show_gpus(s, gpu="H100-80GB").nodes) == 3  # GFD's spelling of the same card


def test_bad_gpu_filter_is_a_config_error(fleet: Fleet) -> None:
    from skymagic import ConfigError

    with pytest.raises(ConfigError, match="H100:x"):
        show_gpus(settings_for(fleet, MIXED), gpu="H100:x")


# --- display ----------------------------------------------------------------------------------


def test_text_layout_like_skypilot(inv: Inventory) -> None:
    text = str(inv)
    lines = text.splitlines()
    assert lines[0] == "Kubernetes GPUs"
    assert f"Context: {MIXED}" in lines
    assert any(ln.split() == ["GPU", "REQUESTABLE_QTY_PER_NODE", "UTILIZATION"] for ln in lines)
    assert any(ln.startswith("H100") and ln.endswith("18 of 24 free") for ln in lines)
    assert "Kubernetes per-node GPU availability" in lines
    header = next(ln for ln in lines if ln.startswith("CONTEXT"))
    for col in ("NODE", "vCPU", "Memory (GB)", "GPU", "GPU UTILIZATION", "NODE STATUS"):
        assert col in header
    assert "NoSchedule Taint [dedicated=infra]" in text
    assert "plain-0" not in text  # CPU-only nodes only with --all
    assert f"Context: {CPU}" in lines and "No GPUs found." in lines
    assert repr(inv) == text
    html = inv._repr_html_()
    assert "<table>" in html and "Kubernetes per-node GPU availability" in html
    assert "18 of 24 free" in html


def test_all_nodes_shows_cpu_only_nodes(fleet: Fleet) -> None:
    inv = show_gpus(settings_for(fleet, CPU), all_nodes=True)
    assert "plain-0" in str(inv) and "plain-1" in str(inv)


def test_to_dict_is_json(inv: Inventory) -> None:
    data = json.loads(json.dumps(inv.to_dict()))
    assert data["contexts"] == [MIXED, CPU]
    node = next(n for n in data["nodes"] if n["node"] == "plain-0")
    assert node["gpu"] is None and node["gpu_total"] == 0
    assert {r["gpu"] for r in data["summary"]} >= {"H100", "H200", "MI300X"}


# --- magic and CLI ----------------------------------------------------------------------------


@pytest.fixture
def shell(fleet: Fleet) -> Iterator[InteractiveShell]:
    from conftest import shared_ipython  # one shell type for the whole session

    ip = shared_ipython()
    ip.run_line_magic("load_ext", "skymagic")
    ip.run_line_magic("config", f"SkyMagics.kubeconfig = {fleet.kubeconfig!r}")
    ip.run_line_magic("config", f"SkyMagics.allowed_contexts = {[MIXED, CPU]!r}")
    yield ip
    ip.run_line_magic("config", "SkyMagics.kubeconfig = None")
    ip.run_line_magic("config", "SkyMagics.allowed_contexts = None")


def test_magic_returns_and_displays_the_inventory(shell: InteractiveShell) -> None:
    inv = shell.run_line_magic("sky_show_gpus", f"h100:2 --infra k8s/{MIXED} --timeout 5")
    assert isinstance(inv, Inventory)
    assert inv.contexts == [MIXED] and set(inv.nodes["gpu"]) == {"H100"}
    quoted = shell.run_line_magic("sky_show_gpus", f'--infra "k8s/{MIXED}"')  # as %sky_check
    assert quoted.contexts == [MIXED] and quoted.errors.empty
    with capture_output() as cap:
        result = shell.run_cell(f"%sky_show_gpus --infra k8s/{CPU} --all")
    assert result.success and isinstance(result.result, Inventory)
    assert "Kubernetes per-node GPU availability" in cap.stdout  # the cell's displayed value
    assert "plain-0" in cap.stdout
    html = result.result._repr_html_()  # what a notebook frontend shows
    assert "plain-0" in html and "<table>" in html
    doc = shell.find_line_magic("sky_show_gpus").__doc__ or ""
    assert "Inventory" in doc


def test_magic_bad_flag_is_a_usage_error(shell: InteractiveShell) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        shell.run_line_magic("sky_show_gpus", "--no-such-flag")


def test_cli_json_and_csv(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "config.yaml"
    config.write_text(f"kubernetes:\n  allowed_contexts: [{MIXED}, {CPU}]\n")
    monkeypatch.setenv("SKYPILOT_CONFIG", str(config))
    assert cli.main(["gpus", "list", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["contexts"] == [MIXED, CPU]
    assert cli.main(["gpus", "list", "H100", "--infra", f"k8s/{MIXED}", "-o", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ",".join(NODE_COLUMNS)
    assert len(out) == 4 and all(",H100," in ln for ln in out[1:])
    assert cli.main(["gpus", "list"]) == 0
    assert "Kubernetes per-node GPU availability" in capsys.readouterr().out


# --- clusters that change or fail -------------------------------------------------------------

SMALL: dict[str, Any] = {
    "clusters": [
        {
            "name": "alpha",
            "nodes": [{"name": "g", "count": 2, "gpu": "H100", "gpus": 8, "labels": "gfd"}],
            "pods": [{"count": 1, "gpu": "H100", "gpus": 2}],
        },
        {
            "name": "beta",
            "nodes": [{"name": "a", "count": 1, "gpu": "A100", "gpus": 4, "labels": "gke"}],
        },
    ]
}


@pytest.fixture
def small(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(SMALL)


def test_cordoned_and_not_ready_nodes(small: Fleet) -> None:
    s = settings_for(small, "alpha")
    before = one(show_gpus(s).by_context, gpu="H100")
    assert before["utilization"] == "14 of 16 free"
    small.cordon("alpha", "g-0")
    inv = show_gpus(s)
    assert one(inv.nodes, node="g-0")["status"] == "Cordoned"
    assert one(inv.nodes, node="g-0")["gpu_free"] == 0
    small.uncordon("alpha", "g-0")
    small.set_ready("alpha", "g-1", False)
    inv = show_gpus(s)
    row = one(inv.nodes, node="g-1")
    assert (row["status"], row["ready"], row["gpu_free"]) == ("NotReady", False, 0)
    assert one(inv.nodes, node="g-0")["status"] == "Healthy"
    assert one(inv.by_context, gpu="H100")["utilization"] == "6 of 16 free (8 not ready)"


def test_down_and_black_holed_contexts_give_partial_results(small: Fleet) -> None:
    s = settings_for(small, "alpha", "beta", timeout=1.0)
    small.set_faults("beta", down=True)
    inv = show_gpus(s)
    assert set(inv.nodes["context"]) == {"alpha"}
    err = one(inv.errors, context="beta")
    assert err["kind"] == "unreachable"
    assert "Contexts with errors" in str(inv)
    small.set_faults("beta", down=False, blackhole=True)
    started = time.monotonic()
    inv = show_gpus(s)
    took = time.monotonic() - started
    assert took < 1.0 * 3 + 1.5, took  # never past the timeout budget
    assert one(inv.errors, context="beta")["kind"] == "timeout"
    assert one(inv.by_context, context="alpha", gpu="H100")["gpu_free"] == 14


# --- watch mode -------------------------------------------------------------------------------


def test_watcher_follows_pods_and_nodes(small: Fleet) -> None:
    s = settings_for(small, "alpha", "beta")
    with InventoryWatcher(s, watch_timeout_s=5) as watcher:
        snap = watcher.snapshot()
        assert snap.errors.empty
        assert one(snap.by_context, context="alpha", gpu="H100")["gpu_free"] == 14
        small.clear_requests("alpha")
        small.add_pods("alpha", count=2, gpu="H100", gpus=4, name="more")
        snap = watcher.wait_for(
            lambda i: one(i.by_context, context="alpha", gpu="H100")["gpu_free"] == 6, 10
        )
        assert one(snap.by_context, context="alpha", gpu="H100")["gpu_free"] == 6
        small.remove_pods("alpha", prefix="more")
        small.cordon("alpha", "g-0")
        snap = watcher.wait_for(
            lambda i: one(i.by_context, context="alpha", gpu="H100")["gpu_free"] == 8, 10
        )
        assert one(snap.nodes, node="g-0")["status"] == "Cordoned"
        assert one(snap.by_context, context="alpha", gpu="H100")["utilization"] == (
            "8 of 16 free (8 not ready)"
        )
        # no re-list: only watches after the initial lists
        assert all(r.get("watch") for r in small.requests("alpha")), small.requests("alpha")
    assert watcher.closed


def test_native_sidecars_count_like_the_scheduler_counts_them(small: Fleet) -> None:
    """A GPU sidecar runs beside the app: 2 + 1 GPUs held, in the one-shot and the live view."""
    s = settings_for(small, "alpha")
    with InventoryWatcher(s, watch_timeout_s=5) as watcher:
        client = ContextClient(
            load_kubeconfig([small.kubeconfig]).resolve("alpha"), ClientSettings(retries=0)
        )
        gpus = {"nvidia.com/gpu": "2"}
        helper = {"nvidia.com/gpu": "1"}
        client.post_json(
            "/api/v1/namespaces/default/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "with-sidecar"},
                "spec": {
                    "containers": [{"name": "main", "image": "x", "resources": {"limits": gpus}}],
                    "initContainers": [
                        {
                            "name": "helper",
                            "image": "x",
                            "restartPolicy": "Always",
                            "resources": {"limits": helper},
                        }
                    ],
                },
            },
        )
        snap = watcher.wait_for(lambda i: one(i.by_context, gpu="H100")["gpu_free"] != 14, 10)
        assert one(snap.by_context, gpu="H100")["gpu_free"] == 11  # 16 - 2 - (2 + 1)
        assert one(show_gpus(s).by_context, gpu="H100")["gpu_free"] == 11


def test_watcher_relists_after_410(small: Fleet) -> None:
    s = settings_for(small, "alpha")
    with InventoryWatcher(s, watch_timeout_s=1) as watcher:
        assert watcher.snapshot().errors.empty
        small.clear_requests("alpha")
        small.compact("alpha")  # the next watch from the list's resourceVersion gets 410

        def relisted() -> bool:
            log = small.requests("alpha")
            return any(r["path"] == "/api/v1/pods" and not r.get("watch") for r in log)

        deadline = time.monotonic() + 10
        while not relisted() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert relisted()
        small.add_pods("alpha", count=1, gpu="H100", gpus=8, name="big")
        snap = watcher.wait_for(lambda i: one(i.by_context, gpu="H100")["gpu_free"] == 6, 10)
        assert one(snap.by_context, gpu="H100")["gpu_free"] == 6
        assert snap.errors.empty


BIG_PAGES: dict[str, Any] = {
    "clusters": [
        {
            "name": "gamma",
            "nodes": [{"name": "g", "count": 4, "gpu": "H100", "gpus": 8, "labels": "gfd"}],
            "pods": [
                {"count": 12, "name": "train", "gpu": "H100", "gpus": 2},
                {"count": 240, "name": "web", "cpu": 0.1, "memory_gb": 0.1},
            ],
        }
    ]
}


def test_gzip_lists_give_the_same_inventory_and_the_server_compresses_like_kube_apiserver(
    make_fleet: Callable[..., Fleet],
) -> None:
    fleet = make_fleet(BIG_PAGES)
    plain = show_gpus(settings_for(fleet, "gamma"))
    # off by default (http.client says "identity")
    assert {r.get("accept_encoding") for r in fleet.requests("gamma")} <= {None, "identity"}
    fleet.clear_requests("gamma")
    s = settings_for(fleet, "gamma")
    gz = show_gpus(
        dataclasses.replace(s, client=ClientSettings(retries=0, page_size=100, gzip_lists=True))
    )
    pages = [r for r in fleet.requests("gamma") if r["path"] == "/api/v1/pods"]
    assert len(pages) == 3 and all(r["accept_encoding"] == "gzip" for r in pages)
    assert one(gz.by_context, gpu="H100")["gpu_free"] == 32 - 24
    pd.testing.assert_frame_equal(gz.nodes, plain.nodes)
    pd.testing.assert_frame_equal(gz.by_context, plain.by_context)

    client = ContextClient(load_kubeconfig([fleet.kubeconfig]).resolve("gamma"))

    def answer(path: str, accept: str, **query: Any) -> tuple[dict[str, str], bytes]:
        resp = client.request(
            "GET", path, query=query, headers={"Accept-Encoding": accept}, stream=True
        )
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return headers, resp.read(decode_content=False)

    head, body = answer("/api/v1/pods", "gzip", limit=100)  # ~250 KB: over 128 KiB
    assert head.get("content-encoding") == "gzip" and head.get("vary") == "Accept-Encoding"
    assert "content-length" not in head and head.get("transfer-encoding") == "chunked"
    items = json.loads(zlib.decompress(body, 31))["items"]
    assert len(items) == 100
    for path, accept, query in (
        ("/api/v1/pods", "gzip", {"limit": 10}),  # ~25 KB: never compressed
        ("/api/v1/pods", "gzip;q=0", {"limit": 100}),  # refused
        ("/api/v1/pods", "identity", {"limit": 100}),
    ):
        head, body = answer(path, accept, **query)
        assert "content-encoding" not in head, (accept, query)
        assert len(json.loads(body)["items"]) == query["limit"]
