"""The compact notebook view of an Inventory's node frame (skymagic/ui/frames.py): no fleet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from skymagic.gpus.counting import NODE_COLUMNS
from skymagic.ui import frames

LONG = "gke-my-tpu-cluster-default-pool-7f3a9c2e-abcd"


def node_frame(n_cpu: int = 1) -> pd.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "context": "my-h100-cluster",
            "node": "h100-node-0",
            "gpu": "H100",
            "gpu_label": "NVIDIA-H100-80GB-HBM3",
            "label_scheme": "gfd",
            "resource": "nvidia.com/gpu",
            "gpu_total": 8,
            "gpu_requested": 4,
            "gpu_free": 4,
            "cpu_total": 192.0,
            "cpu_free": 180.5,
            "memory_gb_total": 1800.0,
            "memory_gb_free": 1700.0,
            "ready": True,
            "schedulable": True,
            "status": "Healthy",
            "taints": "nvidia.com/gpu=present:NoSchedule",
        }
    ]
    rows += [
        {
            **dict.fromkeys(NODE_COLUMNS),
            "context": "gke_my-project_us-central2-b_my-tpu-cluster",
            "node": f"{LONG}-{i}",
            "cpu_total": 4.0,
            "cpu_free": 2.0,
            "memory_gb_total": 16.0,
            "memory_gb_free": 8.0,
            "ready": True,
            "schedulable": True,
            "status": "Healthy",
            "taints": "",
        }
        for i in range(n_cpu)
    ]
    frame = pd.DataFrame(rows, columns=list(NODE_COLUMNS))
    for col in ("gpu_total", "gpu_requested", "gpu_free"):
        frame[col] = frame[col].astype("Int64")
    return frame


@pytest.fixture
def shell(ipshell: Any) -> Iterator[Any]:
    frames.register(ipshell)
    yield ipshell
    frames.unregister(ipshell)


def test_the_view_has_the_columns_scanned_first_on_one_line_and_blanks_for_missing() -> None:
    page = frames.nodes_html(node_frame())
    for col in frames.SCAN_FIRST[1:]:
        assert f">{col}</th>" in page
    for hidden in ("gpu_label", "label_scheme", "resource", "gpu_requested", "taints"):
        assert f">{hidden}</th>" not in page
    # the (long) context heads its rows instead of taking a column
    assert ">context</th>" not in page
    assert page.count("<tr class='sky-ctx'><th colspan='8'>") == 2
    assert "<th colspan='8'>gke_my-project_us-central2-b_my-tpu-cluster</th>" in page
    assert "white-space:nowrap" in page and f">{LONG}-0<" in page
    assert "None" not in page and "<NA>" not in page and "nan" not in page
    assert "<td class=num>180.5</td>" in page
    assert "2 rows · 8 of 19 columns shown (context heads its rows); the DataFrame has" in page


def test_long_frames_are_cut_like_pandas() -> None:
    page = frames.nodes_html(node_frame(n_cpu=99), max_rows=10)
    body = page.split("<tbody>")[1]
    assert body.count("<tr><th>") == 10 and "… 90 more rows …" in body
    assert body.count("class='sky-ctx'") == 3  # again after the cut
    assert ">99</th>" in page  # the last row keeps its index


def html_of(shell: Any, obj: Any) -> str:
    """What a notebook front end gets as text/html (a kernel's HTML formatter).

    A terminal shell keeps its HTML formatter switched off; a kernel's is on.
    """
    formatter = shell.display_formatter.formatters["text/html"]
    enabled, formatter.enabled = formatter.enabled, True
    try:
        result: str = formatter(obj)
    finally:
        formatter.enabled = enabled
    return result


def test_the_formatter_picks_node_frames_only(shell: Any) -> None:
    frame = node_frame()
    page = html_of(shell, frame)
    assert "sky-nodes" in page and "8 of 19 columns shown" in page
    # a row subset is still the node frame; the data itself is untouched
    subset = frame[frame["gpu"].notna()]
    assert "sky-nodes" in html_of(shell, subset)
    assert list(frame.columns) == list(NODE_COLUMNS) and len(frame) == 2
    # columns chosen by hand, or any other frame: pandas' own table
    picked = frame[["context", "taints"]]
    assert html_of(shell, picked) == picked._repr_html_()
    other = pd.DataFrame({"a": [1]})
    assert html_of(shell, other) == other._repr_html_()


def test_unregister_gives_dataframes_back_to_pandas(ipshell: Any) -> None:
    frames.register(ipshell)
    frames.unregister(ipshell)
    frame = node_frame()
    assert html_of(ipshell, frame) == frame._repr_html_()
