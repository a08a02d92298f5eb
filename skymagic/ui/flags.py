"""Flag values the magics and the CLI share, checked in one place.

A timeout of 0 or less (or nan) fails every context at once with a "timeout" nobody waited
for, and inf waits forever on a black-holed server; so every seconds-valued flag (`--timeout`,
`--interval`, `--provision-timeout`) and every seconds-valued `SkyMagics` setting goes through
`check_seconds`. The launch flags reach `parse_task` through `task_options`, so the magic and
the CLI cannot drift apart on which flags shape a task.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: `%load_ext skymagic` stays light
    from skymagic.launches.task import TaskOptions

__all__ = ["check_seconds", "port_spec", "positive_seconds", "task_options"]


def check_seconds(value: float) -> float:
    """`value` as a float if it is a finite number of seconds above zero, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a positive number of seconds, got {value:g}")
    return float(value)


def positive_seconds(text: str) -> float:
    """argparse `type=` for seconds-valued flags: a bad value is a usage error naming the flag."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    try:
        return check_seconds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_spec(text: str) -> int | str:
    """argparse `type=` for --ports: a port (an int) or a range LOW-HIGH (kept as text)."""
    low, sep, high = text.partition("-")
    if low.isdigit() and (not sep or high.isdigit()):
        return text if sep else int(low)
    raise argparse.ArgumentTypeError(f"must be a port or a range like 8000-8010, got {text!r}")


def task_options(args: argparse.Namespace, **overrides: Any) -> TaskOptions:
    """The TaskOptions from parsed launch flags (their dests are the field names)."""
    from skymagic.launches.task import TaskOptions

    values = {f.name: getattr(args, f.name) for f in fields(TaskOptions)}
    return TaskOptions(**{**values, **overrides})
