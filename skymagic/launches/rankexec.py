"""A command on one rank of a multi-node launch, or on every rank at once (`--rank all`).

`%%sky_exec NAME`, `skymagic exec NAME` and `skymagic.exec` run on rank 0 (the pod named
NAME) unless told `--rank N`. With `--rank all` the command runs on every rank in parallel
(one exec stream each); each line is handed over whole, prefixed `(rank=N)` as the launch's
own output is, from the caller's thread (a notebook cell's output stays in its cell).

The ranks' commands are one job: as for a launch or a re-run of a gang (gangstop.py), the
first rank whose command fails fails the whole (its rank and exit code in the result), and the
command still running on every other rank is stopped at once (each runs as a stoppable job of
one id, agent.exec_wrapper's `run_id`), so no rank is left waiting in a collective. The
stopped ranks end with `skymagic: stopped: rank N failed (exit code C)` in their output and
are named as stopped in the result, not as failures; the pods keep running. Each rank's result
is in `.ranks`. `run_on_ranks` is that rule for any per-rank commands (gangrerun.py runs a
re-run's body with it).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from skymagic.core.targets import Settings
from skymagic.errors import ConfigError, SkymagicError
from skymagic.launches.agent import exec_wrapper
from skymagic.launches.exec import ExecResult, Output, exec_command, run_in_pod
from skymagic.launches.gangstop import FirstFailure, ranks_named, stop_note
from skymagic.launches.pods import LivePod, find_ranks
from skymagic.launches.values import whole_number

__all__ = [
    "ALL",
    "RankItem",
    "RanksRun",
    "exec_ranks",
    "parse_rank",
    "run_on_ranks",
    "run_rank",
    "start_ranks",
]

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
    """Run `script` on rank `rank` of launch `name` (a number, or ALL for every rank: the
    first failing rank stops the others, see the module docstring)."""
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


@dataclass
class RanksRun:
    """How per-rank commands ended: the rule's account (rule.ends: codes, failed, stopped),
    each ended rank's result, and the ranks whose command could not run at all."""

    rule: FirstFailure
    results: dict[int, ExecResult] = field(default_factory=dict)
    errors: dict[int, SkymagicError] = field(default_factory=dict)


class _Said:
    """FirstFailure reports through an observer; exec has only a message sink."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def on_log(self, line: str) -> None:
        self.say(line)

    def on_progress(self, context: str, phase: str, elapsed: float) -> None:
        pass

    def on_message(self, text: str) -> None:
        self.say(text)


def run_on_ranks(
    lives: list[LivePod],
    commands: list[list[str]],
    run_id: str,
    on_line: Callable[[int, str, str], None],
    say: Callable[[str], None],
    what: str = "run",
) -> RanksRun:
    """Run each rank's command (stoppable as job `run_id`) at once; at the first failure, stop
    it on the others (gangstop.FirstFailure). `on_line(rank, stream, line)` gets each whole
    line and `say(text)` what the rule and the ranks report, both on the caller's thread;
    `what` names the threads.

    KeyboardInterrupt propagates (the commands keep running; the caller says so).
    """
    first = lives[0]
    rule = FirstFailure(
        first.client,
        first.namespace,
        {r: live.name for r, live in enumerate(lives)},
        run_id,
        annotate=False,  # the pods keep running: their status is Running, rightly
    )
    run = RanksRun(rule)
    said = _Said(say)
    start_ranks(zip(lives, commands, strict=True), rule.queue.put, what)
    for rank, stream, item in rule.events():
        if isinstance(item, str):
            on_line(rank, stream, item)
        elif isinstance(item, ExecResult):
            item.rank = rank
            run.results[rank] = item
            if item.message:
                say(f"rank {rank}: {item.message}")
            rule.end(rank, item.exit_code, item.exit_code != 0, said)
        elif isinstance(item, SkymagicError):
            run.errors[rank] = item
            say(f"rank {rank}: {item.message}")
            rule.end(rank, None, True, said)
    for rank in rule.ends.stopped:
        if rank in run.results:
            run.results[rank].stopped = True
            run.results[rank].message = f"stopped: {stop_note(*rule.ends.failed[0])}"
    return run


def _run_all(
    lives: list[LivePod],
    script: str,
    envs: dict[str, str] | None,
    on_stdout: Output | None,
    on_stderr: Output | None,
) -> ExecResult:
    started = time.monotonic()
    run_id = f"exec-{secrets.token_hex(3)}"
    command = exec_wrapper(script, envs=envs, run_id=run_id)
    sinks = {"out": on_stdout, "err": on_stderr}

    def on_line(rank: int, stream: str, line: str) -> None:
        sink = sinks[stream]
        if sink is not None:
            sink(f"(rank={rank}) {line}\n")

    def say(text: str) -> None:
        if on_stderr is not None:
            on_stderr(f"skymagic: {text}\n")

    run = run_on_ranks(lives, [command] * len(lives), run_id, on_line, say, "exec")
    ends = run.rule.ends
    failing = ends.failed[0][0] if ends.failed else None
    if failing in run.errors:  # its stream could not run at all: that is the cell's error
        exc = run.errors[failing]
        exc.message = f"rank {failing} of '{lives[0].name}': {exc.message}"
        exc.args = (exc.message,)
        raise exc
    first = lives[0]
    head = run.results[ends.failed[0][0]] if ends.failed else None
    notes = [head.message] if head is not None and head.message else []
    for r, c in ends.failed[1:]:
        notes.append(
            f"rank {r}: {run.errors[r].message}"
            if r in run.errors
            else f"rank {r} exited with code {c}"
        )
    if ends.stopped:
        notes.append(f"stopped the command on {ranks_named(ends.stopped)}")
    notes += [f"could not stop rank {r} ({why})" for r, why in sorted(ends.not_stopped.items())]
    return ExecResult(
        first.name,
        first.context,
        first.namespace,
        head.exit_code if head else 0,
        time.monotonic() - started,
        "; ".join(notes),
        rank=head.rank if head else None,
        ranks=[run.results[r] for r in sorted(run.results)],
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
