"""Launch progress in a terminal: plain lines, one per event, the log verbatim.

Presentation only: it implements the core's LaunchObserver. In a notebook kernel the magics use
the live widget in `launch_widget.py` instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

from skymagic.launches.plan import Plan
from skymagic.launches.runner import Attempt

__all__ = ["TextProgress"]


class TextProgress:
    """Terminal progress: one line per event, the log verbatim."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last_phase: tuple[str, str] | None = None
        self._live = False  # a waiting line is on screen, to be rewritten in place

    def _say(self, text: str) -> None:
        if self._live:
            self._live = False
            self.stream.write("\n")
        print(text, file=self.stream, flush=True)

    def _waiting(self, line: str) -> None:
        """The waiting-for-capacity line: rewritten in place on a terminal (its clock ticks);
        elsewhere printed again only when what it says about the fleet changes."""
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self._live = True
            return
        key = ("", line.rsplit("; ", 1)[0])
        if key != self._last_phase:
            self._last_phase = key
            self._say(line)

    def on_plan(self, plan: Plan) -> None:
        self._say(str(plan))

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        if not context:
            self._waiting(phase)
            return
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
