"""Live views that a magic displays itself and still returns: shown once per cell.

IPython does not display the value of an assignment, so `dash = %sky_dashboard` would show
nothing while the dashboard's refresh thread runs unseen. A magic whose point is a live view
therefore displays it (`show()`) and returns the handle; when the same cell then ends in that
handle (`%sky_dashboard` alone), IPython's display hook calls `_ipython_display_`, which sees
it was shown in this execution and shows nothing (`_ipython_display_` takes precedence over
the mime reprs, so no text result repeats the view either). In a later cell, `dash` or
`display(dash)` shows it again, as any object.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ShownOnce", "execution_key"]


def execution_key() -> tuple[int, str] | None:
    """What identifies the running cell: the execution count and, in a kernel, the request."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    if ip is None:
        return None
    msg_id = ""
    kernel = getattr(ip, "kernel", None)
    if kernel is not None:
        try:
            msg_id = str(kernel.get_parent().get("header", {}).get("msg_id", ""))
        except Exception:
            msg_id = ""
    return int(getattr(ip, "execution_count", 0) or 0), msg_id


class ShownOnce:
    """A mixin for objects with `_repr_mimebundle_`: `show()` displays them, once per cell."""

    _shown_in: tuple[int, str] | None = None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The view's bundle (widget view, text/html, text/plain): the subclass says what."""
        raise NotImplementedError

    def show(self) -> None:
        """Display this view now (what the magic does) and remember in which cell."""
        from IPython.display import display

        self._shown_in = execution_key()
        display(self._repr_mimebundle_(), raw=True)

    def _ipython_display_(self) -> None:
        key = execution_key()
        if key is not None and key == self._shown_in:
            return  # the magic showed it in this cell already
        self.show()
