"""Work on a launch's pod once it runs: send its files, re-run a body on it, follow a run.

Re-running `%%sky_launch NAME` while NAME's pod runs is SkyPilot's `sky launch -c NAME`: the
pod is reused, not replaced. The task must fit it (GPU type and count, vCPUs, memory, an
explicit image), else the launch is refused with what to do. The files are sent (only what
changed), setup runs when its hash differs from the pod's, and the new run goes through exec
with its output streamed to the observer. A dev-pod body (no run) only sends the files. A
multi-node launch's re-run runs on every rank (gangrerun.py).

A new pod with autostop outlives its run (agent.py): its entrypoint runs setup and run, logs
`RUN_DONE <code>`, then idles. The launch follows that log up to the line instead of to the
container's end, with the launch's own bounded follow (follow.follow_pod with `run_done`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from skymagic.errors import ConfigError
from skymagic.launches.agent import exec_wrapper
from skymagic.launches.exec import fits_running_pod, run_in_pod
from skymagic.launches.files import FileSet, send_files
from skymagic.launches.follow import PodObserver
from skymagic.launches.pods import LivePod
from skymagic.launches.task import Task

__all__ = ["Outcome", "rerun_on_pod", "reused_dev_pod", "send_launch_files"]


@dataclass
class Outcome:
    """What working on the pod did: the run's exit code (None: nothing ran) and hints."""

    exit_code: int | None = None
    hints: list[str] = field(default_factory=list)


def reused_dev_pod(name: str, context: str, files: FileSet | None, ranks: int = 1) -> Outcome:
    """A re-run of a dev pod (no run command) on its running pod, or on a gang's `ranks` pods:
    nothing runs; the hint says it was reused, whether files were sent, and how to run there."""
    sent = files is not None and files.uploads
    if ranks == 1:
        where, it, to, flag = f"in {context}", "it", "", ""
    else:
        where, it, to, flag = (
            f"on {ranks} ranks in {context}",
            "them",
            " to every rank",
            " --rank all",
        )
    hint = (
        f"'{name}' is already running {where}; reused {it}"
        + (f" and sent the files{to}" if sent else "")
        + f". Run commands there with %%sky_exec {name}{flag}."
    )
    return Outcome(hints=[hint])


def _lines(obs: PodObserver) -> tuple[Callable[[str], None], Callable[[], None]]:
    """An output sink handing whole lines to obs.on_log, and its flush."""
    buf = [""]

    def sink(text: str) -> None:
        buf[0] += text
        *done, buf[0] = buf[0].split("\n")
        for line in done:
            obs.on_log(line)

    def flush() -> None:
        if buf[0]:
            obs.on_log(buf[0])
            buf[0] = ""

    return sink, flush


def send_launch_files(live: LivePod, files: FileSet | None, obs: PodObserver) -> None:
    """Send what changed of the launch's files (then the waiting entrypoint goes on)."""
    if files is None or not files.uploads:
        return
    image = live.annotations.get("skymagic.dev/image", "")
    report = send_files(
        live.client,
        live.namespace,
        live.name,
        files,
        image=image,
        progress=lambda text, elapsed: obs.on_progress(live.context, text, elapsed),
    )
    obs.on_message(
        f"{live.context}: sent {report.sent_files} changed file(s), {report.sent_bytes:,} bytes "
        f"({report.skipped_files} unchanged)"
    )


def rerun_on_pod(
    task: Task, live: LivePod, files: FileSet | None, obs: PodObserver, *, detach: bool = False
) -> Outcome:
    """Run `task` in its already running pod (see the module docstring)."""
    why = fits_running_pod(task, live.pod)
    if why:
        raise ConfigError(why, context=live.context)
    send_launch_files(live, files, obs)
    if task.is_dev_pod:
        return reused_dev_pod(task.name, live.context, files)
    out = Outcome()
    obs.on_message(
        f"'{task.name}' is already running in {live.context}: running the new body there "
        "(setup only if it changed)"
    )
    if detach:
        command = exec_wrapper(task.run or "", envs=task.envs, setup=task.setup, background=True)
        run_in_pod(live, command, check=True, what="detached start")
        out.hints.append(
            f"Started the new body on the existing pod '{task.name}' (detached); its output "
            f"goes to ~/.sky/last_run.log there: %sky_exec {task.name} cat ~/.sky/last_run.log"
        )
        return out
    sink, flush = _lines(obs)
    command = exec_wrapper(task.run or "", envs=task.envs, setup=task.setup)
    result = run_in_pod(live, command, on_stdout=sink, on_stderr=sink)
    flush()
    if result.message:
        obs.on_message(f"{live.context}: {result.message}")
    out.exit_code = result.exit_code
    out.hints.append(
        f"Ran on the existing pod '{task.name}', which keeps running; "
        f"stop it with %sky_down {task.name}."
    )
    return out
