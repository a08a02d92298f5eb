"""What a launch reports: its attempts, its result, and the observer that hears its progress.

Apart from the runner so the modules that run parts of a launch (gang.py) return the same
values without importing the runner (which imports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from skymagic.launches.plan import Plan

__all__ = ["Attempt", "LaunchObserver", "LaunchResult", "Silent", "command"]


@dataclass
class Attempt:
    """One context tried (or skipped) by a launch."""

    context: str
    outcome: str  # skipped | running | finished | unschedulable | timeout | error | interrupted
    reason: str = ""
    seconds: float = 0.0
    pod_created: bool = False


@dataclass
class LaunchResult:
    """What a launch did: where it runs, how it ended, what was tried."""

    name: str
    context: str | None
    namespace: str | None
    status: str  # Running | Succeeded | Failed | Detached | Reused | Unreachable | Deleted
    plan: Plan | None = None
    attempts: list[Attempt] = field(default_factory=list)
    node: str | None = None
    exit_code: int | None = None
    seconds: float = 0.0
    hints: list[str] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C while following (the CLI exits 130)

    def __str__(self) -> str:
        where = f"{self.context}/{self.namespace}" if self.context else "nowhere"
        lines = [
            f"Launch '{self.name}': {self.status} on {where}"
            + (f" (node {self.node})" if self.node else "")
        ]
        if self.exit_code is not None:
            lines[0] += f", exit code {self.exit_code}"
        lines[0] += f" after {self.seconds:.1f} s."
        for a in self.attempts:
            lines.append(
                f"  {a.context}: {a.outcome}"
                f"{' - ' + a.reason if a.reason else ''} ({a.seconds:.1f} s)"
            )
        lines.extend(self.hints)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"


class LaunchObserver(Protocol):
    """Where a launch reports progress (presentation implements it)."""

    def on_plan(self, plan: Plan) -> None: ...
    def on_progress(self, context: str, phase: str, elapsed: float) -> None: ...
    def on_attempt(self, attempt: Attempt) -> None: ...
    def on_log(self, line: str) -> None: ...
    def on_message(self, text: str) -> None: ...


class Silent:
    """An observer that ignores everything (a launch called without one)."""

    def on_plan(self, plan: Plan) -> None:
        pass

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        pass

    def on_attempt(self, attempt: Attempt) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass

    def on_message(self, text: str) -> None:
        pass


def command(style: str, verb: str, name: str = "") -> str:
    """A hint's command in the caller's syntax: magic (%sky_down X) or CLI (skymagic down X)."""
    tail = f" {name}" if name else ""
    if style == "cli":
        return f"skymagic {verb}{tail}"
    return f"%sky_{verb}{tail}"
