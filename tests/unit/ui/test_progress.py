"""TextProgress: the waiting-for-capacity line in a terminal and in a log file."""

from __future__ import annotations

import io

from skymagic.ui.progress import TextProgress

LINE = "waiting for H100:8: best now a 6/8 free on n3; {}"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_the_waiting_line_again_only_when_the_fleet_changes() -> None:
    out = io.StringIO()
    progress = TextProgress(out)
    for clock in ("1 s", "2 s", "3 s"):
        progress.on_progress("", LINE.format(clock), 0.0)
    progress.on_progress("", LINE.replace("6/8", "7/8").format("4 s"), 0.0)
    progress.on_message("capacity")
    assert out.getvalue().splitlines() == [
        LINE.format("1 s"),
        LINE.replace("6/8", "7/8").format("4 s"),
        "capacity",
    ]


def test_a_terminal_rewrites_the_waiting_line_in_place() -> None:
    out = Tty()
    progress = TextProgress(out)
    progress.on_progress("", LINE.format("1 s"), 0.0)
    progress.on_progress("", LINE.format("2 s"), 0.0)
    progress.on_progress("ctx", "creating pod", 0.0)
    assert out.getvalue() == (
        f"\r{LINE.format('1 s')}\x1b[K\r{LINE.format('2 s')}\x1b[K\n[ctx] creating pod (0.0 s)\n"
    )
