"""What the magic classes share: quote handling, the task flags, streaming, "names or --all".

`SkyMagics` and `JobsMagics` declare and read their arguments the same way; one copy here keeps
a launch magic and a managed-job magic from drifting apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from skymagic.ui.flags import Flags, names_missing

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable

__all__ = ["cell_body", "declare_flags", "require_names", "stream", "unquote"]


def declare_flags(*flag_lists: Flags) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare shared flags (ui/flags.py) on a magic, in their order."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for names, kwargs in reversed([flag for flags in flag_lists for flag in flags]):
            fn = argument(*names, **kwargs)(fn)
        return fn

    return decorate


def unquote(value: str | None) -> str | None:
    """Drop one pair of surrounding quotes from a flag value.

    IPython splits magic lines non-POSIX style, which keeps quotes: `--infra "k8s/my ctx"` (the
    way to pass a context name with spaces) would otherwise arrive with its quotes on.
    """
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def stream(lines: Iterable[str], on_interrupt: str) -> bool:
    """Print lines as they come; False (after saying `on_interrupt`) if the user interrupts."""
    try:
        for line in lines:
            print(line, flush=True)
    except KeyboardInterrupt:
        print(on_interrupt, flush=True)
        return False
    return True


def require_names(args: argparse.Namespace, what: str) -> None:
    """UsageError unless the magic names what to act on or says --all."""
    problem = names_missing(args, what)
    if problem:
        raise UsageError(problem)


def cell_body(shell: Any, cell: str, expand: bool) -> str:
    """The cell, with {var} expanded from the notebook's variables when `expand` (--format).

    Off by default so a task YAML's braces survive; a name the notebook lacks is a UsageError.
    """
    if not expand:
        return cell
    assert shell is not None
    try:
        return cell.format(**shell.user_ns)
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"--format: cannot expand the cell: {exc}") from None
