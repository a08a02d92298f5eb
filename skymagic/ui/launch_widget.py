"""A launch progress widget: the LaunchObserver for notebooks with ipywidgets.

It shows the plan, the phase being waited on (context, phase, elapsed), the attempts in order
(context, outcome, reason, seconds) and the live log (the last lines, newest at the bottom).
Every update is a trait assignment (safe from the launch's threads; never `with out:`); log
lines are batched: at most one update per `min_interval` seconds, the last batch flushed by a
short timer. `_repr_mimebundle_` adds text/plain and text/html snapshots beside the widget view,
and `finish()` refreshes the displayed output so a saved notebook keeps the final picture.

    progress = LaunchProgressWidget.show()     # displays itself
    result = launch_task(task, settings, observer=progress)
    progress.finish(result)
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Any

import ipywidgets as w

from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt

__all__ = ["LaunchProgressWidget"]

_OUTCOME_COLOURS = {
    "running": "#3a9a5b",
    "finished": "#3a9a5b",
    "skipped": "#888",
    "unschedulable": "#d79a1e",
    "timeout": "#d79a1e",
    "error": "#c8383a",
    "interrupted": "#c8383a",
}


class LaunchProgressWidget:
    """LaunchObserver as widgets: phase line, attempts table, plan, live log."""

    def __init__(
        self, *, max_log_lines: int = 2000, shown_log_lines: int = 300, min_interval: float = 0.1
    ) -> None:
        self.attempts: list[Attempt] = []
        self.messages: list[str] = []
        self.log: deque[str] = deque(maxlen=max_log_lines)
        self.current = ""
        self.result: Any = None
        self.shown_log_lines = shown_log_lines
        self.min_interval = min_interval
        self._plan_html = ""
        self._plan_text = ""
        self._lock = threading.RLock()
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None
        self._log_dirty = False
        self.handle: Any = None

        self.phase = w.HTML("<b>launching…</b>")
        self.plan = w.HTML("")
        self.table = w.HTML("")
        self.notes = w.HTML("")
        self.log_view = w.HTML("", layout=w.Layout(display="none"))
        # The plan first, as SkyPilot prints "Considered resources" before anything happens.
        self.view = w.VBox([self.plan, self.phase, self.table, self.notes, self.log_view])
        self.view.add_class("sky-launch-progress")

    @classmethod
    def show(cls, **kwargs: Any) -> LaunchProgressWidget:
        """Create one and display it (keeping the display handle for `finish()`)."""
        from IPython.display import display

        progress = cls(**kwargs)
        progress.handle = display(progress, display_id=True)
        return progress

    # -- LaunchObserver --------------------------------------------------------------------
    def on_plan(self, plan: Plan) -> None:
        with self._lock:
            self._plan_text = str(plan)
            render = getattr(plan, "_repr_html_", None)
            self._plan_html = (
                render() if render is not None else f"<pre>{html.escape(str(plan))}</pre>"
            )
            self.plan.value = f"<details open><summary>plan</summary>{self._plan_html}</details>"

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        with self._lock:
            self.current = f"{context}: {phase} ({elapsed:.1f} s)"
            self.phase.value = f"<b>{html.escape(self.current)}</b>"

    def on_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)
            if attempt.outcome != "skipped":
                self.current = f"{attempt.context}: {attempt.outcome}"
                self.phase.value = f"<b>{html.escape(self.current)}</b>"
            self.table.value = self._attempts_html()

    def on_log(self, line: str) -> None:
        with self._lock:
            self.log.append(line.rstrip("\n"))
            self._log_dirty = True
            now = time.monotonic()
            wait = self.min_interval - (now - self._last_flush)
            if wait <= 0:
                self._flush_log()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.name = "skymagic-launch-log"
                self._timer.start()

    def on_message(self, text: str) -> None:
        with self._lock:
            self.messages.append(text)
            self.notes.value = "".join(f"<div>{html.escape(m)}</div>" for m in self.messages[-10:])

    # -- the end -----------------------------------------------------------------------------
    def finish(self, result: Any = None) -> None:
        """Flush the log, show the outcome, and refresh the displayed snapshot."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush_log()
            self.result = result
            if result is not None:
                status = getattr(result, "status", None)
                where = getattr(result, "context", None)
                text = f"{status} in {where}" if where else str(status)
                self.current = text
                self.phase.value = f"<b>{html.escape(text)}</b>"
        if self.handle is not None:
            self.handle.update(self)

    def close(self) -> None:
        """Stop the flush timer and close the widgets."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for widget in (*self.view.children, self.view):
            widget.close()

    # -- rendering ---------------------------------------------------------------------------
    def _flush_from_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._flush_log()

    def _flush_log(self) -> None:
        if not self._log_dirty:
            return
        self._log_dirty = False
        self._last_flush = time.monotonic()
        lines = list(self.log)[-self.shown_log_lines :]
        self.log_view.value = (
            "<div style='display:flex;flex-direction:column-reverse;max-height:240px;"
            "overflow:auto;border:1px solid #ddd;padding:2px 6px'>"
            f"<pre style='margin:0'>{html.escape(chr(10).join(lines))}</pre></div>"
        )
        self.log_view.layout.display = ""

    def _attempts_html(self) -> str:
        if not self.attempts:
            return ""
        rows = "".join(
            f"<tr style='color:{'#888' if a.outcome == 'skipped' else 'inherit'}'>"
            f"<td>{i}</td><td>{html.escape(a.context)}</td>"
            f"<td style='color:{_OUTCOME_COLOURS.get(a.outcome, 'inherit')}'>"
            f"{html.escape(a.outcome)}</td><td>{html.escape(a.reason)}</td>"
            f"<td style='text-align:right'>{a.seconds:.1f}</td></tr>"
            for i, a in enumerate(self.attempts, 1)
        )
        return (
            "<table class='sky-attempts'><thead><tr><th>#</th><th>context</th><th>outcome</th>"
            f"<th>reason</th><th>seconds</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    def to_text(self) -> str:
        """The current picture as plain text (attempts, then the log's last lines)."""
        with self._lock:
            lines = [self._plan_text] if self._plan_text else []
            lines.append(self.current or "launching")
            for i, a in enumerate(self.attempts, 1):
                reason = f": {a.reason}" if a.reason else ""
                lines.append(f"{i}. [{a.context}] {a.outcome}{reason} ({a.seconds:.1f} s)")
            lines.extend(self.messages[-10:])
            tail = list(self.log)[-20:]
            if tail:
                lines.append("log:")
                lines.extend(f"  {x}" for x in tail)
            return "\n".join(lines)

    def to_html(self) -> str:
        with self._lock:
            tail = list(self.log)[-self.shown_log_lines :]
            log = f"<pre>{html.escape(chr(10).join(tail))}</pre>" if tail else ""
            notes = "".join(f"<div>{html.escape(m)}</div>" for m in self.messages[-10:])
            return (
                f"<div class='sky-launch-static'>{self._plan_html}"
                f"<b>{html.escape(self.current or 'launching')}"
                f"</b>{self._attempts_html()}{notes}{log}</div>"
            )

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        widget_repr = getattr(self.view, "_repr_mimebundle_", None)
        if widget_repr is not None:
            bundle.update(widget_repr(**kwargs) or {})
        bundle["text/plain"] = self.to_text()
        bundle["text/html"] = self.to_html()
        return bundle
