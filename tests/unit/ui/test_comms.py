"""ui/comms.py: a front end's comm_close no longer kills a widget's controls.

The kernel side is the real one: the `comm` package's CommManager handlers (`comm_close`,
`comm_msg`) are what ipykernel runs when a browser tab sends those messages, so these tests
replay the exact sequence Notebook 7's /tree tab causes (see the module docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import comm
import ipywidgets as w
import pytest

from skymagic.ui import comms


@pytest.fixture(autouse=True)
def _revive_on() -> Iterator[None]:
    comms.revive = True
    yield
    comms.revive = True


def front_end_closes(widget: Any) -> None:
    """What a tab without the widget target does on comm_open: comm_close to the kernel."""
    comm.get_comm_manager().comm_close(
        None, None, {"content": {"comm_id": widget.comm.comm_id, "data": {}}}
    )


def front_end_clicks(button: w.Button) -> None:
    """What the notebook tab sends when the button is clicked."""
    comm.get_comm_manager().comm_msg(
        None,
        None,
        {
            "content": {
                "comm_id": button.comm.comm_id,
                "data": {"method": "custom", "content": {"event": "click"}},
            },
            "buffers": [],
        },
    )


def clicker() -> tuple[w.Button, list[int]]:
    clicks: list[int] = []
    button = w.Button(description="Press")
    button.on_click(lambda _b: clicks.append(1))
    return button, clicks


def test_without_it_a_foreign_close_drops_every_later_click() -> None:
    # The upstream behaviour this module exists for: the click never reaches the handler.
    button, clicks = clicker()
    front_end_clicks(button)
    assert clicks == [1]
    front_end_closes(button)
    front_end_clicks(button)
    assert clicks == [1]
    button.close()


def test_kept_comms_take_clicks_after_a_foreign_close() -> None:
    button, clicks = clicker()
    box = w.VBox([button])
    closed: list[str] = []
    watched = comms.keep_comms_open([box], closed.append)
    # the box, the button, and their layout and style widgets
    assert watched == len(list(comms.walk_widgets([box]))) >= 5
    front_end_closes(button)
    assert closed == [button.comm.comm_id]
    front_end_clicks(button)
    assert clicks == [1]
    box.close()
    button.close()


def test_a_close_that_came_first_is_undone_at_once() -> None:
    button, clicks = clicker()
    front_end_closes(button)  # before keep_comms_open runs (a race with the kernel's threads)
    comms.keep_comms_open([button])
    front_end_clicks(button)
    assert clicks == [1]
    button.close()


def test_closing_from_python_still_closes() -> None:
    button, _ = clicker()
    comms.keep_comms_open([button])
    comm_id = button.comm.comm_id
    button.close()
    assert comm.get_comm_manager().get_comm(comm_id) is None


def test_revive_off_reports_the_close_and_leaves_it() -> None:
    comms.revive = False
    button, clicks = clicker()
    closed: list[str] = []
    comms.keep_comms_open([button], closed.append)
    front_end_closes(button)
    front_end_clicks(button)
    assert closed == [button.comm.comm_id] and clicks == []
    button.close()
