"""The Dashboard app over a hand-made source (no fleet): shown once per cell, details that
follow the filters, and the "controls are not connected" line.

The comms are the `comm` package's real ones (what ipykernel subclasses), so a front end's
`comm_close` and `comm_msg` go through the kernel-side handlers a browser tab reaches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import comm
import pytest
from dashkit import inventory, node
from IPython.display import display
from IPython.utils.capture import capture_output

from skymagic.gpus.inventory import Inventory
from skymagic.gpus.pods import PodRow
from skymagic.ui import comms
from skymagic.ui.dashboard import Dashboard
from skymagic.ui.dashboard.app import NOT_CONNECTED

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Source:
    """A DashboardSource over a fixed Inventory."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def fetch(self) -> Inventory:
        return self.inv

    def modes(self) -> Mapping[str, str]:
        return {}

    def pods(self, context: str, nodes: Sequence[str], resources: Sequence[str]) -> list[PodRow]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def dash() -> Iterator[Dashboard]:
    inv = inventory(
        [
            node("a", "a-0", "H100", 8, 4),
            node("a", "a-1", "H100", 8, 8),
            node("b", "b-0", "L4", 4, 1),
        ],
        contexts=["a", "b"],
    )
    d = Dashboard(Source(inv), interval=60, auto_refresh=False)
    yield d
    d.close()
    comms.revive = True


def test_shown_once_per_cell_then_again_in_a_later_one(dash: Dashboard, ipshell: Any) -> None:
    with capture_output() as cap:
        dash.show()  # what %sky_dashboard does
        dash._ipython_display_()  # the cell ends in the handle: IPython's display hook
        display(dash)
    assert len(cap.outputs) == 1 and WIDGET_VIEW in cap.outputs[0].data
    assert cap.outputs[0].data[WIDGET_VIEW]["model_id"] == dash.view.model_id
    ipshell.execution_count += 1  # the next cell
    with capture_output() as cap:
        display(dash)
    assert len(cap.outputs) == 1


def test_the_display_hook_prints_no_text_result_after_the_magic(
    dash: Dashboard, ipshell: Any
) -> None:
    with capture_output() as cap:
        dash.show()
        ipshell.displayhook(dash)  # `%sky_dashboard` alone in a cell returns the dashboard
    assert len(cap.outputs) == 1 and "skymagic dashboard" not in cap.stdout


def test_details_clear_when_a_filter_hides_the_node(dash: Dashboard) -> None:
    dash.grid.set_state({"selected": {"context": "a", "node": "a-0"}})  # a click
    assert dash.details.layout.display == "" and "a-0" in dash.details.value
    dash.gpu_filter.value = "H100"  # still shown: the details stay
    assert dash.details.layout.display == ""
    dash.context_filter.value = "b"
    assert dash.details.layout.display == "none" and dash.grid.selected == {}


def test_gpu_details_clear_when_a_filter_hides_that_gpu(dash: Dashboard) -> None:
    dash.cards.set_state({"selected_gpu": {"context": "b", "gpu": "L4"}})
    assert dash.details.layout.display == ""
    dash.gpu_filter.value = "H100"
    assert dash.details.layout.display == "none" and dash.cards.selected_gpu == {}


def test_cards_count_nodes_like_the_grid(dash: Dashboard) -> None:
    assert [c["nodes_text"] for c in dash.cards.cards] == ["2 nodes", "1 node"]
    dash.gpu_filter.value = "L4"
    assert [c["empty"] for c in dash.cards.cards] == ["no L4", "no L4"]
    assert dash.cards.cards[0]["gpus"] == []


def front_end_closes(widget: Any) -> None:
    comm.get_comm_manager().comm_close(
        None, None, {"content": {"comm_id": widget.comm.comm_id, "data": {}}}
    )


def front_end_sets(widget: Any, state: dict[str, Any]) -> None:
    """A trait update from a browser tab, through the kernel's comm_msg handler."""
    comm.get_comm_manager().comm_msg(
        None,
        None,
        {
            "content": {
                "comm_id": widget.comm.comm_id,
                "data": {"method": "update", "state": state, "buffer_paths": []},
            },
            "buffers": [],
        },
    )


def test_controls_survive_another_tab_closing_their_comms(dash: Dashboard) -> None:
    for widget in (dash.context_filter, dash.grid):
        front_end_closes(widget)
    assert dash.foreign_closes == 2
    front_end_sets(dash.context_filter, {"index": 2})  # the dropdown's "b"
    assert dash.context_filter.value == "b"
    assert [n["context"] for n in dash.grid.nodes] == ["b"]
    front_end_sets(dash.grid, {"rendered": 1})
    assert dash.grid.rendered == 1
    dash._check_connected()  # the ack timer's check: the view answered
    assert dash.warning.layout.display == "none"


def test_not_connected_line_when_a_closed_view_never_answers(dash: Dashboard) -> None:
    comms.revive = False  # as if the workaround could not help
    front_end_closes(dash.grid)
    front_end_sets(dash.grid, {"rendered": 1})  # dropped: the kernel forgot that comm
    assert dash.grid.rendered == 0
    dash._check_connected()
    assert dash.warning.layout.display == "" and "controls are not connected" in (
        dash.warning.value
    )
    assert "close the other Jupyter tab on this kernel" in NOT_CONNECTED
    dash.grid.rendered = 1  # an answer after all (a re-run cell's view)
    assert dash.warning.layout.display == "none"


def test_no_line_without_a_sign_of_another_front_end(dash: Dashboard) -> None:
    dash._check_connected()  # a headless run: nobody rendered, nobody closed anything
    assert dash.warning.layout.display == "none"


def test_each_refresh_adds_a_point_to_the_chart(dash: Dashboard) -> None:
    assert [s["gpu"] for s in dash.chart.series] == ["H100", "L4"]
    assert all(len(s["points"]) == 1 for s in dash.chart.series)
    source = dash.source
    assert isinstance(source, Source)
    source.inv.fetched_at += 10  # a later fetch
    dash.refresh()
    assert all(len(s["points"]) == 2 for s in dash.chart.series)
    dash.gpu_filter.value = "L4"
    assert [(s["context"], s["gpu"]) for s in dash.chart.series] == [("b", "L4")]


def test_launch_here_says_whether_the_typed_count_fits(dash: Dashboard) -> None:
    dash.cards.set_state({"selected_gpu": {"context": "a", "gpu": "H100"}})  # a GPU row
    assert "1 x H100 fits now on 2 nodes of a" in dash.launch_fit.value
    dash.launch_gpus.value = 6  # typed: more than a-0's 4 free, less than a-1's 8
    assert "6 x H100 fits now on 1 node of a" in dash.launch_fit.value
    dash.launch_gpus.value = 8
    assert "8 x H100 fits now on 1 node of a" in dash.launch_fit.value
