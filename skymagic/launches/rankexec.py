"""A command on one rank of a multi-node launch, or on every rank at once (`--rank all`).

`%%sky_exec NAME`, `skymagic exec NAME` and `skymagic.exec` run on rank 0 (the pod named
NAME) unless told `--rank N`. With `--rank all` the command runs on every rank in parallel
(one exec stream each); each line is handed over whole, prefixed `(rank=N)` as the launch's
own output is, from the caller's thread (a notebook cell's output stays in its cell). It
waits for every rank, then the result is the first non-zero exit in the order the ranks
ended, naming that rank (0 when all succeeded); each rank's result is in `.ranks`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable

from skymagic.core.targets import Settings
from skymagic.errors import ConfigError, SkymagicError
from skymagic.launches.agent import exec_wrapper
from skymagic.launches.exec import ExecResult, Output, exec_command, run_in_pod
from skymagic.launches.pods import LivePod, find_ranks
from skymagic.launches.values import whole_number

__all__ = ["ALL", "RankItem", "exec_ranks", "parse_rank", "run_rank", "start_ranks"]

ALL = "all"
Rank = int | str  # a rank number, or ALL

# What the rank threads hand the caller's thread: (rank, stream, text) for a line,
# (rank, "", result) when the rank's command ended.
RankItem = tuple[int, str, "str | ExecResult | SkymagicError"]


def parse_rank(text: str | int | None) -> Rank:
    """`--rank`'s value: 'all' or a rank number (0 when not given); else a one-line error."""
    if text is None:
        return 0
    if isinstance(text, str) and text.strip().lower() == ALL:
        return ALL
    return whole_number(text, "--rank", fix="give a rank number (0, 1, ...) or 'all'")


def exec_ranks(
    name: str,
    script: str,
    settings: Settings | None = None,
    *,
    rank: Rank = 0,
    on_stdout: Output | None = None,
    on_stderr: Output | None = None,
    check: bool = False,
    envs: dict[str, str] | None = None,
) -> ExecResult:
    """Run `script` on rank `rank` of launch `name` (a number, or ALL for every rank)."""
    rank = parse_rank(rank)
    if rank != ALL:
        assert isinstance(rank, int)
        return exec_command(
            name,
            script,
            settings,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            check=check,
            envs=envs,
            rank=rank,
        )
    if not script.strip():
        raise ConfigError("nothing to run: give a command (or a cell body) to exec")
    lives = find_ranks(name, settings)
    if len(lives) == 1:  # a single-pod launch: its output as it is, unprefixed
        result = run_in_pod(
            lives[0], exec_wrapper(script, envs=envs), on_stdout=on_stdout, on_stderr=on_stderr
        )
    else:
        result = _run_all(lives, script, envs, on_stdout, on_stderr)
    if check:
        result.raise_for_exit()
    return result


def _run_all(
    lives: list[LivePod],
    script: str,
    envs: dict[str, str] | None,
    on_stdout: Output | None,
    on_stderr: Output | None,
) -> ExecResult:
    started = time.monotonic()
    q: queue.Queue[RankItem] = queue.Queue()
    command = exec_wrapper(script, envs=envs)
    start_ranks(((live, command) for live in lives), q.put, "exec")
    sinks = {"out": on_stdout, "err": on_stderr}
    ended: list[ExecResult] = []
    errors: list[tuple[int, SkymagicError]] = []
    while len(ended) + len(errors) < len(lives):
        rank, stream, item = q.get()
        if isinstance(item, str):
            sink = sinks[stream]
            if sink is not None:
                sink(f"(rank={rank}) {item}\n")
        elif isinstance(item, ExecResult):
            item.rank = rank
            ended.append(item)
        else:
            errors.append((rank, item))
    if errors:  # a rank's stream could not run at all: that is the cell's error
        rank, exc = errors[0]
        exc.message = f"rank {rank} of '{lives[0].name}': {exc.message}"
        exc.args = (exc.message,)
        raise exc
    first = lives[0]
    failed = [r for r in ended if r.exit_code != 0]
    head = failed[0] if failed else None
    others = ", ".join(f"rank {r.rank} exited with code {r.exit_code}" for r in failed[1:])
    return ExecResult(
        ended[0].name,
        first.context,
        first.namespace,
        head.exit_code if head else 0,
        time.monotonic() - started,
        "; ".join(m for m in ((head.message if head else ""), others) if m),
        rank=head.rank if head else None,
        ranks=sorted(ended, key=lambda r: r.rank or 0),
    )


def start_ranks(
    runs: Iterable[tuple[LivePod, list[str]]], put: Callable[[RankItem], None], what: str
) -> None:
    """Run each rank's command (in rank order) on a daemon thread of its own (`run_rank`)."""
    for rank, (live, command) in enumerate(runs):
        threading.Thread(
            target=run_rank,
            args=(rank, live, command, put),
            name=f"skymagic-{what}-rank-{rank}",
            daemon=True,
        ).start()


def run_rank(rank: int, live: LivePod, command: list[str], put: Callable[[RankItem], None]) -> None:
    """Run on one rank; whole lines (and the end) go to the caller's thread through `put`."""
    sinks: dict[str, Callable[[str], None]] = {}
    flushes = []
    for stream in ("out", "err"):
        buf = [""]

        def sink(text: str, stream: str = stream, buf: list[str] = buf) -> None:
            buf[0] += text
            *lines, buf[0] = buf[0].split("\n")
            for line in lines:
                put((rank, stream, line))

        def flush(stream: str = stream, buf: list[str] = buf) -> None:
            if buf[0]:
                put((rank, stream, buf[0]))

        sinks[stream] = sink
        flushes.append(flush)
    try:
        result = run_in_pod(live, command, on_stdout=sinks["out"], on_stderr=sinks["err"])
    except SkymagicError as exc:
        for flush in flushes:
            flush()
        put((rank, "", exc))
        return
    except Exception as exc:  # never leave the caller waiting for this rank
        put((rank, "", SkymagicError(f"{type(exc).__name__}: {exc}")))
        return
    for flush in flushes:
        flush()
    put((rank, "", result))
