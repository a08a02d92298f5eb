"""Launch progress for people: plain lines in a terminal, a live-updating view in a notebook.

Presentation only: these implement the core's LaunchObserver. The notebook view updates one
display handle (throttled), so a launch that takes a while shows the context being tried, the
phase and the elapsed time, then the attempts and the live log.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from typing import Any, TextIO

from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt

__all__ = ["NotebookProgress", "TextProgress"]


class TextProgress:
    """Terminal progress: one line per event, the log verbatim."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last_phase: tuple[str, str] | None = None

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_plan(self, plan: Plan) -> None:
        self._say(str(plan))

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        key = (context, phase)
        if key != self._last_phase:
            self._last_phase = key
            self._say(f"[{context}] {phase} ({elapsed:.1f} s)")

    def on_attempt(self, attempt: Attempt) -> None:
        if attempt.outcome == "skipped":
            return
        reason = f": {attempt.reason}" if attempt.reason else ""
        self._say(f"[{attempt.context}] {attempt.outcome}{reason} ({attempt.seconds:.1f} s)")

    def on_log(self, line: str) -> None:
        self._say(line)

    def on_message(self, text: str) -> None:
        self._say(text)


class _View:
    """One rendering of the status block, as HTML and as text.

    Why both: a saved notebook opened without a kernel (or a text front end) shows text/plain,
    which for a bare IPython.display.HTML would be "<IPython.core.display.HTML object>".
    """

    def __init__(self, html_text: str, plain: str) -> None:
        self.html_text = html_text
        self.plain = plain

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html_text, "text/plain": self.plain}


class NotebookProgress:
    """A live status block (display handle) plus the log streamed as cell output."""

    def __init__(self) -> None:
        from IPython.display import display

        self.attempts: list[Attempt] = []
        self.current = ""
        self.messages: list[str] = []
        self._last_update = 0.0
        self._lock = threading.Lock()
        self.handle: Any = display(self._view(), display_id=True)

    def _view(self) -> _View:
        return _View(self._render(), self._render_text())

    def _render_text(self) -> str:
        lines = [self.current] if self.current else []
        lines += [
            f"{a.context}: {a.outcome}{' - ' + a.reason if a.reason else ''} ({a.seconds:.1f} s)"
            for a in self.attempts
            if a.outcome != "skipped"
        ]
        return "\n".join(lines + self.messages[-5:]) or "starting"

    def _render(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(a.context)}</td><td>{html.escape(a.outcome)}</td>"
            f"<td>{html.escape(a.reason)}</td><td>{a.seconds:.1f} s</td></tr>"
            for a in self.attempts
            if a.outcome != "skipped"
        )
        table = (
            "<table><thead><tr><th>context</th><th>outcome</th><th>reason</th><th>seconds</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
            if rows
            else ""
        )
        msgs = "".join(f"<div>{html.escape(m)}</div>" for m in self.messages[-5:])
        return f"<div><b>{html.escape(self.current)}</b>{table}{msgs}</div>"

    def _update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_update < 0.2:
            return
        self._last_update = now
        if self.handle is not None:
            self.handle.update(self._view())

    def on_plan(self, plan: Plan) -> None:
        from IPython.display import display

        display(plan)

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        with self._lock:
            self.current = f"{context}: {phase} ({elapsed:.1f} s)"
            self._update()

    def on_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)
            self.current = f"{attempt.context}: {attempt.outcome}"
            self._update(force=True)

    def on_log(self, line: str) -> None:
        print(line, flush=True)

    def on_message(self, text: str) -> None:
        with self._lock:
            self.messages.append(text)
            self._update(force=True)
