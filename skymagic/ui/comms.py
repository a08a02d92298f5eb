"""Keep a widget's comms registered when a front end that cannot show widgets closes them.

Why (reproduced in Notebook 7.6 with ipykernel 7 and ipywidgets 8, see README "Widgets with
another Jupyter tab open"): a kernel sends every `comm_open` on IOPub, so EVERY browser tab
connected to the kernel receives it. Notebook 7's file browser (/tree) keeps a kernel
connection of its own after "New -> Python 3"; that connection handles comms but has no
`jupyter.widget` target, so, as the messaging protocol asks of a receiver without the target,
it answers each `comm_open` with a `comm_close` ("Exception opening new comm" in that tab's
console). The kernel's CommManager then forgets the comm, and every later message from the
notebook tab (a click, a dropdown change, a trait set by the widget's JavaScript) names a comm
the kernel no longer knows and is dropped without a word: the widget still draws and still
updates from Python, but its controls are dead (jupyter-widgets/ipywidgets#2628 is the same
family: several front ends on one kernel).

`keep_comms_open(widget)` gives each comm under `widget` (children, layout, style) an
on-close callback that registers the comm again: the kernel side of a live widget stays
reachable whichever front end closed it. Closing from Python (`widget.close()`) is unchanged.
`revive = False` turns the workaround off (the dashboard then shows its "controls are not
connected" line instead; see `skymagic/ui/dashboard/app.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["keep_comms_open", "revive", "walk_widgets"]

revive = True  # module switch: re-register comms a front end closed (tests turn it off)


def walk_widgets(roots: Iterable[Any]) -> Iterator[Any]:
    """Every ipywidgets Widget reachable from `roots` through synced traits, each once."""
    from ipywidgets import Widget

    seen: set[int] = set()
    stack = list(roots)
    while stack:
        widget = stack.pop()
        if not isinstance(widget, Widget) or id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for key in widget.keys:
            value = getattr(widget, key, None)
            if isinstance(value, Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, Widget))


def keep_comms_open(
    roots: Iterable[Any], on_foreign_close: Callable[[str], None] | None = None
) -> int:
    """Re-register the comm of every widget under `roots` when a front end closes it.

    `on_foreign_close(comm_id)` is told each time a front end closed one (the sign of another
    tab on the kernel). Safe from any thread and in any order with the close itself: a comm
    already closed when this runs is registered again at once. Returns how many comms it
    watches.
    """
    import comm as comm_module

    manager = comm_module.get_comm_manager()
    count = 0
    for widget in walk_widgets(roots):
        c = getattr(widget, "comm", None)
        if c is None or not hasattr(c, "on_close"):
            continue

        def reopen(_msg: Any, c: Any = c) -> None:
            if on_foreign_close is not None:
                on_foreign_close(str(c.comm_id))
            if revive:
                manager.register_comm(c)
                c._closed = False  # so a later close from Python still tells the front ends

        c.on_close(reopen)
        # The close came first: the manager set `_closed` and forgot the comm, while the
        # widget still holds it (a close from Python would have dropped `widget.comm`).
        closed_first = getattr(c, "_closed", False) and c.comm_id not in manager.comms
        if closed_first and widget.comm is c:
            reopen(None)
        count += 1
    return count
