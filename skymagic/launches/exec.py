"""Run commands in a launch's live pod: `%%sky_exec`, a re-run `%%sky_launch`, `skymagic ssh`.

Every command goes through agent.exec_wrapper, so it starts in ~/sky_workdir and counts as
activity for autostop. Output is handed over as it arrives (decoded as UTF-8 across chunk
boundaries), and the result carries the command's exit code; `check=True` turns a non-zero
one into CommandFailedError (what fails a notebook cell).
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from skymagic.core.podstreams import exec_stream
from skymagic.core.targets import Settings
from skymagic.errors import CommandFailedError, ConfigError
from skymagic.gpus.accelerators import gpu_names_match
from skymagic.gpus.quantity import parse_quantity
from skymagic.launches.agent import exec_wrapper
from skymagic.launches.pods import LivePod, find_pod
from skymagic.launches.podspec import ANNOTATION_GPU, ANNOTATION_IMAGE
from skymagic.launches.ranks import rank_of
from skymagic.launches.task import Task

__all__ = [
    "ExecResult",
    "exec_command",
    "fits_running_pod",
    "open_shell",
    "print_to",
    "run_in_pod",
    "shell_line",
]

Output = Callable[[str], None]


@dataclass
class ExecResult:
    """How a command in a launch's pod ended."""

    name: str
    context: str
    namespace: str
    exit_code: int
    seconds: float
    message: str = ""
    hints: list[str] = field(default_factory=list)
    rank: int | None = None  # a multi-node launch's rank (the failing one, for `--rank all`)
    ranks: list[ExecResult] = field(default_factory=list)  # `--rank all`: each rank's, in order
    stopped: bool = False  # `--rank all`: stopped because another rank failed

    def __str__(self) -> str:
        which = "" if self.rank is None else f" rank {self.rank}"
        text = (
            f"'{self.name}'{which} ({self.context}/{self.namespace}): exit code {self.exit_code} "
            f"after {self.seconds:.1f} s"
        )
        if self.message:
            text += f": {self.message}"
        return "\n".join([text, *self.hints])

    def __repr__(self) -> str:
        return str(self)

    def raise_for_exit(self, what: str = "command") -> None:
        """CommandFailedError (what fails a notebook cell) unless the exit code is 0."""
        if self.exit_code != 0:
            detail = f": {self.message}" if self.message else ""
            which = "" if self.rank is None else f" (rank {self.rank})"
            raise CommandFailedError(
                f"the {what} in '{self.name}'{which} exited with code {self.exit_code}{detail}",
                exit_code=self.exit_code,
                context=self.context,
            )


def print_to(stream: TextIO) -> Output:
    """An output sink that writes to `stream` at once (a notebook or a terminal shows it live)."""

    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def _decoder(sink: Output | None) -> Callable[[bytes], None]:
    dec = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(data: bytes) -> None:
        text = dec.decode(data)
        if text and sink is not None:
            sink(text)

    return feed


def run_in_pod(
    live: LivePod,
    command: list[str],
    *,
    on_stdout: Output | None = None,
    on_stderr: Output | None = None,
    check: bool = False,
    what: str = "command",
) -> ExecResult:
    """Run an already wrapped `command` in `live`'s pod, streaming its output."""
    started = time.monotonic()
    outcome = exec_stream(
        live.client,
        live.namespace,
        live.name,
        command,
        on_stdout=_decoder(on_stdout),
        on_stderr=_decoder(on_stderr),
    )
    labels = live.pod["metadata"].get("labels") or {}
    rank, num_nodes = rank_of(labels)
    result = ExecResult(
        labels.get("skymagic.dev/launch", live.name),
        live.context,
        live.namespace,
        outcome.exit_code,
        time.monotonic() - started,
        outcome.message,
        rank=rank if num_nodes > 1 else None,
    )
    if check:
        result.raise_for_exit(what)
    return result


def exec_command(
    name: str,
    script: str,
    settings: Settings | None = None,
    *,
    on_stdout: Output | None = None,
    on_stderr: Output | None = None,
    check: bool = False,
    envs: dict[str, str] | None = None,
    rank: int = 0,
) -> ExecResult:
    """Run `script` (a shell script) in launch `name`'s pod, from ~/sky_workdir.

    A multi-node launch runs it on rank `rank` (rank 0, the pod named NAME, by default);
    rankexec.exec_ranks runs it on every rank.
    """
    if not script.strip():
        raise ConfigError("nothing to run: give a command (or a cell body) to exec")
    live = find_pod(name, settings, rank=rank)
    return run_in_pod(
        live,
        exec_wrapper(script, envs=envs),
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        check=check,
    )


def shell_line(live: LivePod) -> str:
    """The `kubectl exec -it` line that opens a shell in the pod."""
    return f"{live.kubectl()} exec -it {live.name} -- /bin/bash"


def fits_running_pod(task: Task, pod: dict[str, Any]) -> str:
    """'' when `task` can run in this pod; else why not, with what to do."""
    notes = pod.get("metadata", {}).get("annotations") or {}
    name = task.name
    redo = f"stop it with %sky_down {name} and launch again, or launch under another name"
    have_gpu, _, have_count = (notes.get(ANNOTATION_GPU) or "").partition(":")
    if task.gpu_count:
        count = int(have_count or 0)
        if not have_gpu or not gpu_names_match(task.gpu or "", have_gpu):
            has = f"{have_count} {have_gpu}" if have_gpu else "no GPU"
            return f"the running pod '{name}' has {has}, the task asks for {task.gpu}; {redo}"
        if task.gpu_count > count:
            return (
                f"the running pod '{name}' has {count} {have_gpu}, the task asks for "
                f"{task.gpu_count}; {redo}"
            )
    requests: dict[str, Any] = {}
    for c in pod.get("spec", {}).get("containers") or []:
        requests = (c.get("resources") or {}).get("requests") or {}
        break
    if task.cpus is not None and "cpu" in requests and task.cpus > parse_quantity(requests["cpu"]):
        return (
            f"the running pod '{name}' has {requests['cpu']} vCPU, the task asks for "
            f"{task.cpus:g}; {redo}"
        )
    if task.memory_gb is not None and "memory" in requests:
        have_gb = parse_quantity(requests["memory"]) / 2**30
        if task.memory_gb > have_gb + 1e-9:
            return (
                f"the running pod '{name}' has {have_gb:g} GB of memory, the task asks for "
                f"{task.memory_gb:g}; {redo}"
            )
    if task.image and notes.get(ANNOTATION_IMAGE) and task.image != notes[ANNOTATION_IMAGE]:
        return (
            f"the running pod '{name}' runs image {notes[ANNOTATION_IMAGE]}, the task asks for "
            f"{task.image}; {redo}"
        )
    return ""


def open_shell(
    name: str,
    settings: Settings | None,
    *,
    read_input: Callable[[], bytes],
    write_output: Callable[[bytes], None],
    size: Callable[[], tuple[int, int]] | None = None,
    on_session: Callable[[Callable[[int, int], None]], None] | None = None,
) -> int:
    """An interactive shell (tty) in launch `name`'s pod; its exit code.

    `read_input()` blocks for the user's next bytes (b'' at end of input) and runs on its own
    thread; `size()` gives (columns, rows) for the first resize; `on_session(resize)` hands
    the caller a function to call when the terminal changes size (SIGWINCH).
    """
    import threading

    from skymagic.core.podstreams import RESIZE, STDIN, resize_message

    live = find_pod(name, settings)

    def opened(ws: Any) -> None:
        if size is not None:
            ws.write_channel(RESIZE, resize_message(*size()))

        def resize(cols: int, rows: int) -> None:
            ws.write_channel(RESIZE, resize_message(cols, rows))

        if on_session is not None:
            on_session(resize)

        def pump() -> None:
            try:
                while True:
                    data = read_input()
                    if not data:
                        ws.close_channel(STDIN)
                        return
                    ws.write_channel(STDIN, data)
            except Exception:  # the session ended under us: nothing left to send to
                return

        threading.Thread(target=pump, daemon=True, name="shell-stdin").start()

    outcome = exec_stream(
        live.client,
        live.namespace,
        live.name,
        exec_wrapper("", interactive=True),
        on_stdout=write_output,
        tty=True,
        on_open=opened,
    )
    return outcome.exit_code
