"""The SkyPilot-style tables, rendered from plain frames (no server, no Inventory needed)."""

from __future__ import annotations

from skymagic.errors import TransportError
from skymagic.gpus.counting import ContextData, Usage, parse_node
from skymagic.gpus.inventory import build_inventory
from skymagic.gpus.render import Tables, render_html, render_text


def _node(name: str, gpus: int) -> ContextData:
    obj = {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    usage = Usage()
    usage.add(name, {"nvidia.com/gpu": 2.0, "cpu": 4.0})
    return ContextData(nodes=[parse_node(obj)], usage=usage)


def tables() -> Tables:
    inv = build_inventory(
        ["east", "west", "down<1>"],
        [
            ("east", _node("e-0", 8), None, None),
            ("west", _node("w-0", 4), None, None),
            ("down<1>", None, TransportError("connection refused", context="down<1>"), None),
        ],
        {},
        gpu=None,
        all_nodes=False,
    )
    return Tables(
        nodes=inv.nodes,
        by_context=inv.by_context,
        summary=inv.summary,
        errors=inv.errors,
        contexts=inv.contexts,
    )


def test_text_has_skypilots_sections_in_order() -> None:
    text = render_text(tables())
    order = [
        "Kubernetes GPUs",
        "GPU   UTILIZATION",
        "H100  8 of 12 free",
        "Context: east",
        "H100  1, 2, 4, 8                6 of 8 free",
        "Context: west",
        "Kubernetes per-node GPU availability",
        "east     e-0   28 of 32 free",
        "Contexts with errors",
        "down<1>  unreachable  connection refused",
    ]
    positions = [text.find(line) for line in order]
    assert all(p >= 0 for p in positions), (text, positions)
    assert positions == sorted(positions), text


def test_html_escapes_and_marks_bad_cells() -> None:
    html = render_html(tables())
    assert "down&lt;1&gt;" in html and "down<1>" not in html
    assert '<td class="bad">unreachable</td>' in html
    assert '<td class="bad">Healthy</td>' not in html


def test_a_query_with_no_match_says_so() -> None:
    t = tables()
    empty = Tables(
        nodes=t.nodes.iloc[0:0],
        by_context=t.by_context.iloc[0:0],
        summary=t.summary.iloc[0:0],
        errors=t.errors.iloc[0:0],
        contexts=["east"],
        query="A100:2",
    )
    assert "No GPU matching A100:2 found in east." in render_text(empty)
