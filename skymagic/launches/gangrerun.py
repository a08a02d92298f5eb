"""Re-running `%%sky_launch NAME` on a running multi-node launch: the new body on every rank.

SkyPilot's `sky launch -c NAME` on an UP multi-node cluster runs the new task as a job on the
cluster's nodes, with SKYPILOT_NODE_RANK, SKYPILOT_NODE_IPS and the rest set again on each;
a task asking for fewer nodes than the cluster has runs on the first ones, one asking for
more is refused. skymagic does the same on the gang's running pods (a single pod's re-run is
rerun.py):

- every rank must fit the task (GPU type and count, vCPUs, memory, image), as for one pod;
- the launch's files go to every rank at once (only what changed, gangfiles.py);
- a body without `run` only sends the files (dev pods);
- otherwise the body runs through exec on ranks 0..num_nodes-1 at once, setup first where its
  hash changed, with the rendezvous environment (rendezvous.rerun_env: the ranks' pod IPs, a
  new SKYPILOT_TASK_ID, MASTER_ADDR/PORT) as a stoppable job of its own id; each rank's lines
  reach the observer whole, prefixed `(rank=N)`, from the caller's thread;
- the first rank that fails fails the re-run and stops the body on the other ranks
  (gangstop.FirstFailure); the pods keep running, as they do after any re-run.

`detach` starts the body on every rank in the background (output in ~/.sky/last_run.log on
each) and returns.
"""

from __future__ import annotations

import secrets
import time

from skymagic.errors import ConfigError
from skymagic.launches.agent import exec_wrapper
from skymagic.launches.exec import fits_running_pod, run_in_pod
from skymagic.launches.files import FileSet
from skymagic.launches.follow import PodObserver
from skymagic.launches.gangfiles import send_to_ranks
from skymagic.launches.gangstop import FirstFailure, ranks_named
from skymagic.launches.pods import LivePod
from skymagic.launches.rankexec import run_on_ranks
from skymagic.launches.rendezvous import rerun_env, task_id
from skymagic.launches.rerun import Outcome, reused_dev_pod
from skymagic.launches.task import Task

__all__ = ["rerun_on_gang"]


def _check(task: Task, lives: list[LivePod]) -> None:
    n, name, ctx = len(lives), task.name, lives[0].context
    if task.num_nodes > n:
        raise ConfigError(
            f"launch '{name}' runs on {n} node{'s' if n != 1 else ''}, the task asks for "
            f"{task.num_nodes}; stop it "
            f"with %sky_down {name} and launch again, or launch under another name",
            context=ctx,
        )
    for live in lives:
        why = fits_running_pod(task, live.pod)
        if why:
            raise ConfigError(why, context=ctx)


def rerun_on_gang(
    task: Task,
    lives: list[LivePod],
    files: FileSet | None,
    obs: PodObserver,
    *,
    detach: bool = False,
) -> Outcome:
    """Run `task` on the running ranks `lives` (rank order) of its gang (the module docstring)."""
    _check(task, lives)
    first = lives[0]
    name, ctx, n = task.name, first.context, len(lives)
    pods = {r: live.pod for r, live in enumerate(lives)}
    send_to_ranks(first.client, first.namespace, pods, files, obs, time.monotonic())
    if task.is_dev_pod:
        return reused_dev_pod(name, ctx, files, ranks=n)
    out = Outcome()
    used = lives[: task.num_nodes]
    ips = [str(live.pod.get("status", {}).get("podIP") or "") for live in used]
    if not all(ips):
        missing = ips.index("")
        raise ConfigError(
            f"rank {missing} of launch '{name}' has no pod IP yet; try again in a moment",
            context=ctx,
        )
    run_id = f"rerun-{secrets.token_hex(3)}"
    tid = task_id(name, run_id.removeprefix("rerun-"))
    which = "every rank" if len(used) == n else f"{ranks_named(list(range(len(used))))} of {n}"
    obs.on_message(
        f"'{name}' is already running on {n} ranks in {ctx}: running the new body on {which} "
        "(setup only where it changed)"
    )
    commands = [
        exec_wrapper(
            task.run or "",
            envs={**task.envs, **rerun_env(task, rank, tid, ips)},
            setup=task.setup,
            background=detach,
            run_id=None if detach else run_id,
        )
        for rank in range(len(used))
    ]
    if detach:
        for live, command in zip(used, commands, strict=True):
            run_in_pod(live, command, check=True, what="detached start")
        out.hints.append(
            f"Started the new body on {which} of '{name}' (detached); each rank's output goes "
            f"to ~/.sky/last_run.log there: %sky_exec {name} --rank all cat ~/.sky/last_run.log"
        )
        return out
    rule = _run_everywhere(used, commands, run_id, obs)
    out.exit_code = rule.ends.exit_code
    if rule.ends.failed:
        out.hints.append(f"The re-run failed: {rule.ends.reason()}.")
    out.hints.append(
        f"Ran on the existing {n} ranks of '{name}', which keep running; "
        f"stop them with %sky_down {name}."
    )
    return out


def _run_everywhere(
    lives: list[LivePod], commands: list[list[str]], run_id: str, obs: PodObserver
) -> FirstFailure:
    """Run each rank's command at once; stop the others at the first failure."""
    try:
        run = run_on_ranks(
            lives,
            commands,
            run_id,
            lambda rank, _stream, line: obs.on_log(f"(rank={rank}) {line}"),
            obs.on_message,
            "rerun",
        )
    except KeyboardInterrupt:
        # As for one pod: the body keeps running on every rank; the cell stops following.
        obs.on_message(
            f"Stopped following; the new body keeps running on the ranks of '{lives[0].name}'."
        )
        raise
    return run.rule
