"""A launch progress widget: the LaunchObserver for notebooks with ipywidgets.

Top to bottom: a header that ends in the launch's final state ("succeeded in 12.4 s on CTX",
"failed: <reason>" in red, "detached: running on NODE in CTX"), the plan, the phase line
that follows the pod ("CTX: running on NODE, 3.2 s", its seconds ticking while nothing else
happens), the attempts in order (context, outcome, reason, seconds), notes, and the live log
(the last lines, newest at the bottom).

Every update is a trait assignment (safe from the launch's threads; never `with out:`); log
lines are batched: at most one update per `min_interval` seconds, the last batch flushed by a
short timer. `_repr_mimebundle_` adds text/plain and text/html snapshots beside the widget
view, and `finish()` refreshes the displayed output so a saved notebook keeps the final
picture. The magic shows nothing else: the widget IS the cell's result (`_sky_launch` holds
the LaunchResult).

    progress = LaunchProgressWidget.show()     # displays itself
    result = launch_task(task, settings, observer=progress)
    progress.finish(result)                    # or progress.finish(None, error)
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Any

import ipywidgets as w

from skymagic.errors import ProvisionFailedError
from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt
from skymagic.ui.comms import keep_comms_open

__all__ = ["LaunchProgressWidget", "final_state"]

_OUTCOME_COLOURS = {
    "running": "#3a9a5b",
    "finished": "#3a9a5b",
    "skipped": "#888",
    "unschedulable": "#d79a1e",
    "timeout": "#d79a1e",
    "error": "#c8383a",
    "interrupted": "#c8383a",
}
_STATE_COLOURS = {"ok": "#1a7f37", "failed": "#c8383a", "info": "#57606a", "busy": "inherit"}
# The plan and the attempts as compact tables: left-aligned, one line per row. Heavier than
# the notebook's own `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`, which would
# centre the headings and wrap "4CPU--16GB--1H100" over two lines.
_TABLE_STYLE = (
    "<style>div.sky-launch-progress div.sky-tables table{border-collapse:collapse;margin:0}"
    "div.sky-launch-progress div.sky-tables table th,"
    "div.sky-launch-progress div.sky-tables table td"
    "{white-space:nowrap;text-align:left;padding:1px 8px;font-weight:normal}"
    "div.sky-launch-progress div.sky-tables table thead th{font-weight:600}"
    "div.sky-launch-progress div.sky-tables{overflow-x:auto}</style>"
)


def _wrapped(text: str, width: str) -> str:
    """A cell that wraps within `width` (long context names, reasons), as the plan's do."""
    return (
        f"<td style='white-space:normal'><div style='max-width:{width};"
        f"overflow-wrap:anywhere'>{html.escape(text)}</div></td>"
    )


def final_state(result: Any, error: BaseException | None) -> tuple[str, str]:
    """(text, kind) for the header once a launch is over; kind: ok | failed | info.

    `result` is a LaunchResult (or None when `error` ended the launch).
    """
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "failed"
    if isinstance(error, ProvisionFailedError):
        # "no such GPU: H200 (has H100, L4)" and "... (has A100-80GB)" say the same thing
        reasons = list(dict.fromkeys(r.split(" (")[0] for _c, r in error.failures if r))
        if len(reasons) == 1:
            n = len(error.failures)
            return f"failed: {reasons[0]}" + (f" (all {n} contexts)" if n > 1 else ""), "failed"
        return (
            f"failed: no allowed context could run it ({len(error.failures)} tried; see below)",
            "failed",
        )
    if error is not None:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"failed: {first}", "failed"
    if result is None:
        return "ended", "info"
    status = str(getattr(result, "status", ""))
    ctx = getattr(result, "context", None) or "?"
    node = getattr(result, "node", None)
    seconds = float(getattr(result, "seconds", 0.0) or 0.0)
    if status == "Succeeded":
        return f"succeeded in {seconds:.1f} s on {ctx}", "ok"
    if status == "Failed":
        code = getattr(result, "exit_code", None)
        why = f"exit code {code}" if code is not None else "the task failed"
        return f"failed: {why} on {ctx} after {seconds:.1f} s", "failed"
    if status == "Running":
        where = f"on {node} in {ctx}" if node else f"in {ctx}"
        return f"detached: running {where}", "info"
    if status == "Detached":
        return f"detached: the pod keeps running in {ctx}", "info"
    if status == "Reused":
        return f"reused: a launch of that name is already running in {ctx}", "info"
    return f"{status.lower() or 'ended'} in {ctx}", "info"


class LaunchProgressWidget:
    """LaunchObserver as widgets: header, plan, phase line, attempts table, notes, live log."""

    def __init__(
        self,
        *,
        max_log_lines: int = 2000,
        shown_log_lines: int = 300,
        min_interval: float = 0.1,
        tick: float = 0.5,
        name: str | None = None,
    ) -> None:
        self.attempts: list[Attempt] = []
        self.messages: list[str] = []
        self.log: deque[str] = deque(maxlen=max_log_lines)
        self.current = ""  # the phase line's text
        self.state = "launching…"  # the header's text
        self.state_kind = "busy"
        self.name = name
        self.result: Any = None
        self.error: BaseException | None = None
        self.shown_log_lines = shown_log_lines
        self.min_interval = min_interval
        self.tick = tick
        self._plan_html = ""
        self._plan_text = ""
        self._lock = threading.RLock()
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None
        self._log_dirty = False
        # (context, phase, elapsed as reported, when reported): what the ticker redraws
        self._phase: tuple[str, str, float, float] | None = None
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None
        self.handle: Any = None

        self.header = w.HTML(self._header_html())
        self.phase = w.HTML("")
        self.plan = w.HTML("")
        self.table = w.HTML("")
        self.notes = w.HTML("")
        self.log_view = w.HTML("", layout=w.Layout(display="none"))
        # The plan right under the header, as SkyPilot prints "Considered resources" first.
        self.view = w.VBox(
            [self.header, self.plan, self.phase, self.table, self.notes, self.log_view]
        )
        self.view.add_class("sky-launch-progress")
        keep_comms_open([self.view])

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
            self.name = plan.task.name
            self._plan_text = str(plan)
            render = getattr(plan, "_repr_html_", None)
            self._plan_html = (
                render() if render is not None else f"<pre>{html.escape(str(plan))}</pre>"
            )
            self.plan.value = (
                f"{_TABLE_STYLE}<details open><summary>plan</summary>"
                f"<div class='sky-tables'>{self._plan_html}</div></details>"
            )
            self.header.value = self._header_html()

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._phase = (context, phase, elapsed, time.monotonic())
            self._draw_phase()
            if self._ticker is None and self.tick > 0:
                self._ticker = threading.Thread(
                    target=self._tick, name="skymagic-launch-tick", daemon=True
                )
                self._ticker.start()

    def on_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)
            if attempt.outcome != "skipped":
                self._phase = None  # the next context's progress starts a new phase
                self.current = f"{attempt.context}: {attempt.outcome}"
                self.phase.value = f"<span>{html.escape(self.current)}</span>"
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
    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """Flush the log, end the header in the final state, refresh the displayed snapshot."""
        with self._lock:
            self._done.set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush_log()
            self.result, self.error = result, error
            self.state, self.state_kind = final_state(result, error)
            self.header.value = self._header_html()
            # What to do next (stop it, follow it, enter the dev pod, port-forward): the
            # widget is the cell's only output, so the result's hints belong here.
            hints = [h for h in getattr(result, "hints", None) or [] if h not in self.messages]
            if hints:
                self.messages.extend(hints)
                self.notes.value = "".join(
                    f"<div>{html.escape(m)}</div>" for m in self.messages[-10:]
                )
            # Nothing left to follow: the header and the attempts say how it ended.
            self._phase = None
            self.phase.layout.display = "none"
        if self.handle is not None:
            self.handle.update(self)

    def close(self) -> None:
        """Stop the timers and close the widgets."""
        with self._lock:
            self._done.set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for widget in (*self.view.children, self.view):
            widget.close()

    # -- rendering ---------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self._done.wait(self.tick):
            with self._lock:
                if self._phase is not None and not self._done.is_set():
                    self._draw_phase()

    def _draw_phase(self) -> None:
        assert self._phase is not None
        context, phase, elapsed, at = self._phase
        # No context: a line that stands alone (waiting for capacity names its contexts and
        # carries its own clock).
        self.current = (
            f"{context}: {phase}, {elapsed + time.monotonic() - at:.1f} s" if context else phase
        )
        self.phase.value = f"<span class='sky-phase'>{html.escape(self.current)}</span>"

    def _title(self) -> str:
        return f"launch '{self.name}'" if self.name else "launch"

    def _header_html(self) -> str:
        colour = _STATE_COLOURS.get(self.state_kind, "inherit")
        return (
            f"<div class='sky-launch-state' data-state='{self.state_kind}'>"
            f"<b>{html.escape(self._title())}</b>: "
            f"<span style='color:{colour};font-weight:600'>{html.escape(self.state)}</span></div>"
        )

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
            f"<td>{n}</td>{_wrapped(a.context, '10em')}"
            f"<td style='color:{_OUTCOME_COLOURS.get(a.outcome, 'inherit')}'>"
            f"{html.escape(a.outcome)}</td>{_wrapped(a.reason, '26em')}"
            f"<td style='text-align:right'>{a.seconds:.1f}</td></tr>"
            for n, a in _numbered(self.attempts)
        )
        return (
            "<div class='sky-tables'><table class='sky-attempts'><thead><tr><th>#</th>"
            "<th>context</th><th>outcome</th><th>reason</th><th>seconds</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )

    def to_text(self) -> str:
        """The current picture as plain text (header, plan, attempts, the log's last lines)."""
        with self._lock:
            lines = [f"{self._title()}: {self.state}"]
            if self._plan_text:
                lines.append(self._plan_text)
            if self.current and self.state_kind == "busy":
                lines.append(self.current)
            for n, a in _numbered(self.attempts):
                reason = f": {a.reason}" if a.reason else ""
                mark = f"{n}." if n != "-" else "-"
                lines.append(f"{mark} [{a.context}] {a.outcome}{reason} ({a.seconds:.1f} s)")
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
            phase = (
                f"<div>{html.escape(self.current)}</div>"
                if self.current and self.state_kind == "busy"
                else ""
            )
            return (
                f"<div class='sky-launch-static'>{self._header_html()}{self._plan_html}"
                f"{phase}{self._attempts_html()}{notes}{log}</div>"
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


def _numbered(attempts: list[Attempt]) -> list[tuple[str, Attempt]]:
    """Each attempt with its number in the order contexts were tried; a context the plan
    skipped (nothing created there) gets "-", so a skipped context listed first never reads
    as the first one tried."""
    tried = iter(range(1, len(attempts) + 1))
    return [("-" if a.outcome == "skipped" else str(next(tried)), a) for a in attempts]
