"""Magics that work on a launched pod: `%%sky_exec`, `%sky_port_forward` (presentation only).

`%%sky_exec NAME [--rank N|all]` runs the cell in the pod (from ~/sky_workdir; a multi-node
launch's rank 0, another rank, or every rank), printing stdout and stderr as they arrive, and
fails the cell with CommandFailedError when the exit code is not 0 (the code is in the error
and in `_sky_exec`). `%sky_port_forward NAME PORT` serves
http://127.0.0.1:PORT from the kernel (background threads) until the pod goes away.
`after_launch` starts the forwards of a launch's `--ports` (called by `%%sky_launch`).
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

__all__ = ["PodMagics", "after_launch"]


@magics_class
class PodMagics(Magics):
    """Magics on a running launch; session settings come from SkyMagics."""

    def __init__(self, shell: Any, settings: Any) -> None:
        super().__init__(shell=shell)
        self._settings = settings  # SkyMagics.settings: one source of session settings

    @magic_arguments(name="%sky_exec")
    @argument("name", help="The launch whose pod runs the command (found in any allowed context).")
    @argument(
        "--rank",
        default="0",
        help="A multi-node launch's rank to run on (default 0), or 'all': every rank at once, "
        "each line prefixed (rank=N); the first rank to fail fails the cell and stops the "
        "command on the other ranks.",
    )
    @argument(
        "command",
        nargs="*",
        help="As a line magic: the command to run. As a cell magic, the cell is the script.",
    )
    @no_var_expand
    @line_cell_magic
    def sky_exec(self, line: str, cell: str | None = None) -> Any:
        """Run a script in a launch's running pod, streaming its output; fail on non-zero exit.

        `%%sky_exec NAME` runs the cell (a shell script, bash when the image has it) in the
        pod from ~/sky_workdir, with the task's environment. `%sky_exec NAME CMD...` runs one
        command line. Each run counts as activity for autostop. A multi-node launch runs it
        on rank 0 unless `--rank N`, or on every rank with `--rank all` (the first rank that
        fails stops the command on the others). Returns nothing on success; the ExecResult is
        kept in `_sky_exec`.
        """
        from skymagic.launches.exec import print_to
        from skymagic.launches.rankexec import exec_ranks

        args = parse_argstring(self.sky_exec, line)
        script = cell if cell is not None else " ".join(args.command)
        if cell is None and not args.command:
            from IPython.core.error import UsageError

            raise UsageError("give a command: %sky_exec NAME CMD..., or use %%sky_exec NAME")
        result = exec_ranks(
            args.name,
            script,
            self._settings(),
            rank=args.rank,
            on_stdout=print_to(sys.stdout),
            on_stderr=print_to(sys.stderr),
            check=False,
        )
        assert self.shell is not None
        self.shell.user_ns["_sky_exec"] = result
        result.raise_for_exit()
        return None

    @magic_arguments()
    @argument("name", help="The launch.")
    @argument("port", type=int, help="The port in the pod.")
    @argument(
        "--local-port",
        type=int,
        default=None,
        help="The port on 127.0.0.1 (default: the same number when free, else any free one).",
    )
    @argument("--stop", action="store_true", help="Stop this launch's forwards instead.")
    @line_magic
    def sky_port_forward(self, line: str) -> Any:
        """Forward http://127.0.0.1:PORT to PORT of a launch's pod, from this kernel.

        Runs in the background until the pod goes away (or `--stop`); every new connection
        opens its own stream, so a dropped one does not end the forward. %sky_status shows
        the URL in its endpoint column.
        """
        from skymagic.launches.ports import forward_port, stop_forwards

        args = parse_argstring(self.sky_port_forward, line)
        if args.stop:
            n = stop_forwards(args.name)
            return f"stopped {n} forward{'s' if n != 1 else ''} of '{args.name}'"
        return forward_port(args.name, args.port, self._settings(), local_port=args.local_port)


def after_launch(result: Any, task: Any, settings: Any) -> list[Any]:
    """Start the port-forwards of a running launch's ports; their URLs join its hints."""
    from skymagic.launches.ports import forward_port

    if not task.ports or getattr(result, "status", "") not in ("Running", "Reused"):
        return []
    from skymagic.errors import SkymagicError

    forwards = []
    for port in task.ports:
        try:
            fwd = forward_port(task.name, port, settings)
        except (SkymagicError, OSError) as exc:
            result.hints.append(f"Port {port}: could not forward it from here: {exc}")
            continue
        forwards.append(fwd)
        result.hints = [h for h in result.hints if not h.startswith(f"Port {port}:")]
        result.hints.insert(0, f"Port {port}: {fwd.url} (forwarded from this kernel)")
    return forwards
