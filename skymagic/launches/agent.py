"""The pod side of a launch: its entrypoint script and the wrapper around every exec'd command.

The pod's command is a small POSIX shell script (no skymagic, no Python, no API access in the
image): it waits for the launch's files when there are any, runs `setup` once in
~/sky_workdir (recording the setup's hash), then either runs `run` and exits with its code (a
task pod) or stays up (a dev pod, or any pod with autostop). With autostop it checks every few
seconds how long ago the last skymagic command ended and whether an exec session is still
open; idle past the limit, it exits 0, which ends the pod and frees its GPUs.

Activity is files under ~/.sky, written by the wrapper every skymagic exec goes through
(`%%sky_exec`, a re-run `%%sky_launch`, `skymagic ssh`): `sessions/<pid>` while a command runs
(a session whose process is gone no longer counts) and `last_active` (epoch seconds) when one
starts or ends.

A run can be stopped from outside (a multi-node launch whose other rank failed): setup and run
go through `_sky_job`, which records the running shell's pid in `runs/<run id>` (the
entrypoint's id is `launch`, a re-run's its own) and removes it when it ends. `stop_run`'s
script marks `runs/<id>.stop` (a job not started yet never starts), freezes that shell and
every process below it (SIGSTOP, level by level through /proc, so none forks away meanwhile),
sends SIGTERM, and SIGKILLs whatever is left after a grace. The entrypoint itself is not in
that tree: it sees the run end (128 + signal), prints `skymagic: stopped: WHY` (the reason
the mark holds) and goes on as after any run. The layout is the
contract between this module's scripts.
"""

from __future__ import annotations

import hashlib
import math
import shlex

__all__ = [
    "LAUNCH_RUN",
    "RUN_DONE",
    "SKY_DIR",
    "WORKDIR",
    "entrypoint",
    "exec_wrapper",
    "idle_note",
    "idle_probe",
    "idle_seconds",
    "run_done_code",
    "setup_hash",
    "stop_run",
]

SKY_DIR = ".sky"  # under $HOME
WORKDIR = "sky_workdir"  # under $HOME: SkyPilot's ~/sky_workdir
RUN_DONE = "skymagic: run finished, exit code"  # the log line ending a run that the pod outlives
SYNC_WAIT_S = 600  # how long the entrypoint waits for the launch's files before giving up
LAUNCH_RUN = "launch"  # the run id of the entrypoint's setup and run (stop_run's argument)
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL for whatever still runs after this long
STOPPED_CODE = 137  # a job stopped before it started exits as if SIGKILLed (SkyPilot's code)

# Pick bash when the image has it (SkyPilot runs setup/run with bash), else sh.
_SHELL = "if command -v bash >/dev/null 2>&1; then SH=bash; else SH=sh; fi"

# Runs "$1" with $SH as the stoppable job $RUN_ID: its pid in $S/runs/$RUN_ID while it runs.
# In the background only so that its pid is known; `wait` gives its exit code (128 + N when
# killed by signal N).
# A job stopped (stop_run) says why in its output, from the .stop mark.
_JOB = f"""_sky_job() {{
  if [ -e "$S/runs/$RUN_ID.stop" ]; then
    echo "skymagic: not started: $(cat "$S/runs/$RUN_ID.stop")"; return {STOPPED_CODE}
  fi
  $SH -c "$1" &
  echo $! > "$S/runs/$RUN_ID"
  wait $!; _sky_rc=$?
  rm -f "$S/runs/$RUN_ID"
  if [ -e "$S/runs/$RUN_ID.stop" ]; then
    echo "skymagic: stopped: $(cat "$S/runs/$RUN_ID.stop")"
  fi
  return $_sky_rc
}}"""


def run_done_code(line: str) -> int | None:
    """The run's exit code when `line` is the entrypoint's RUN_DONE line (-1: unreadable),
    else None."""
    if not line.startswith(RUN_DONE):
        return None
    try:
        return int(line[len(RUN_DONE) :].strip())
    except ValueError:
        return -1


def setup_hash(setup: str | None) -> str:
    """What "setup changed" compares: a hash of the script ('none' without one)."""
    if not (setup and setup.strip()):
        return "none"
    return hashlib.sha256(setup.encode()).hexdigest()[:16]


def idle_seconds(minutes: float) -> int:
    """Whole seconds of idleness allowed (at least 1), from SkyPilot's idle minutes."""
    return max(1, math.ceil(minutes * 60))


def entrypoint(
    *,
    setup: str | None,
    run: str | None,
    wait_for_files: bool,
    idle_minutes: float | None,
) -> list[str]:
    """The container command: ["/bin/sh", "-c", SCRIPT, "skymagic", SETUP, RUN]."""
    lines = [
        "set -u",
        f'S="$HOME/{SKY_DIR}"; W="$HOME/{WORKDIR}"',
        'mkdir -p "$S/sessions" "$S/runs" "$W"',
        _SHELL,
        f"RUN_ID={LAUNCH_RUN}",
        _JOB,
    ]
    if wait_for_files:
        lines += [
            "n=0",
            'while [ ! -e "$S/synced" ]; do',
            "  sleep 0.2; n=$((n+1))",
            f"  if [ $n -gt {SYNC_WAIT_S * 5} ]; then",
            "    echo 'skymagic: the launch never sent its files; giving up' >&2; exit 97",
            "  fi",
            "done",
        ]
    lines += [
        'cd "$W"',
        'date +%s > "$S/last_active"',
        'if [ -n "$1" ]; then',
        '  _sky_job "$1" || exit $?',
        "fi",
        f'echo {setup_hash(setup)} > "$S/setup_hash"',
    ]
    stays_up = idle_minutes is not None or not (run and run.strip())
    if run and run.strip():
        if stays_up:
            # With autostop the pod outlives its run, as a SkyPilot cluster does.
            lines += [
                '_sky_job "$2"; rc=$?; echo $rc > "$S/run_exit"; date +%s > "$S/last_active"',
                f'echo "{RUN_DONE} $rc"',
            ]
        else:
            lines += ['_sky_job "$2"', "exit $?"]
    if not stays_up:
        pass
    elif idle_minutes is None:
        lines.append("exec sleep infinity")
    else:
        limit = idle_seconds(idle_minutes)
        poll = max(1, min(10, limit // 4))
        lines += [
            "while true; do",
            f"  sleep {poll}",
            "  busy=0",
            '  for f in "$S"/sessions/*; do',
            '    [ -e "$f" ] || continue',
            '    if kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; then busy=1; '
            'else rm -f "$f"; fi',
            "  done",
            "  now=$(date +%s)",
            '  if [ $busy = 1 ]; then echo $now > "$S/last_active"; continue; fi',
            '  last=$(cat "$S/last_active" 2>/dev/null || echo $now)',
            f"  if [ $((now - last)) -ge {limit} ]; then",
            f"    echo 'skymagic: idle for {_minutes(idle_minutes)}; autostop' ",
            '    echo $now > "$S/stopped"; exit 0',
            "  fi",
            "done",
        ]
    return ["/bin/sh", "-c", "\n".join(lines), "skymagic", setup or "", run or ""]


def _minutes(minutes: float) -> str:
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"


def exec_wrapper(
    script: str,
    *,
    envs: dict[str, str] | None = None,
    setup: str | None = None,
    in_workdir: bool = True,
    interactive: bool = False,
    background: bool = False,
    run_id: str | None = None,
) -> list[str]:
    """The exec command running `script` in the pod, recording activity for autostop.

    With `setup`, it runs first when its hash differs from the one the pod recorded (setup
    runs once per pod, again only when it changed). `interactive` runs a login shell instead
    of a script (`skymagic ssh`); `background` returns at once, leaving the command running
    with its output in ~/.sky/last_run.log (a detached re-run). With `run_id`, setup and the
    script run as that stoppable job (stop_run; a re-run on a multi-node launch).
    """
    lines = [
        f'S="$HOME/{SKY_DIR}"; mkdir -p "$S/sessions" "$S/runs"',
        'echo $$ > "$S/sessions/$$"; date +%s > "$S/last_active"',
        'trap \'rm -f "$S/sessions/$$"; date +%s > "$S/last_active"\' EXIT',
        _SHELL,
    ]
    job = "$SH -c"
    if run_id is not None:
        lines += [f"RUN_ID={shlex.quote(run_id)}", _JOB]
        job = "_sky_job"
    if in_workdir:
        lines.append(f'cd "$HOME/{WORKDIR}" 2>/dev/null || cd "$HOME"')
    for key, value in sorted((envs or {}).items()):
        lines.append(f"export {key}={shlex.quote(value)}")
    if setup is not None:
        wanted = setup_hash(setup)
        lines += [
            f'if [ "$(cat "$S/setup_hash" 2>/dev/null)" != {wanted} ]; then',
        ]
        if wanted != "none":
            lines += [
                "  echo 'skymagic: setup changed; running it' >&2",
                f'  {job} "$2" || exit $?',
            ]
        lines += [f'  echo {wanted} > "$S/setup_hash"', "fi"]
    if interactive:
        lines.append('if [ "$SH" = bash ]; then bash -l; else sh; fi')
    else:
        lines.append(f'{job} "$1"')
    # Not `exec`: the EXIT trap must run to close the session.
    inner = "\n".join(lines)
    if background:
        # Detached: the command outlives the exec; its output goes to ~/.sky/last_run.log.
        outer = (
            f'S="$HOME/{SKY_DIR}"; mkdir -p "$S"; '
            'nohup /bin/sh -c "$3" skymagic "$1" "$2" > "$S/last_run.log" 2>&1 < /dev/null & '
            "echo $!"
        )
        return ["/bin/sh", "-c", outer, "skymagic", script, setup or "", inner]
    return ["/bin/sh", "-c", inner, "skymagic", script, setup or ""]


# stop_run's script: $1 the run id, $2 the grace in tenths of a second, $3 why.
_STOP = r"""S="$HOME/.sky"; f="$S/runs/$1"; mkdir -p "$S/runs"; printf '%s' "$3" > "$f.stop"
_kids() {  # the pids whose parent is one of $1 (a space-separated list)
  for _st in /proc/[0-9]*/status; do
    _p=; _pp=
    { while read -r _k _v _r; do
        case $_k in Pid:) _p=$_v ;; PPid:) _pp=$_v; break ;; esac
      done; } 2>/dev/null < "$_st" || continue
    case " $1 " in *" $_pp "*) echo "$_p" ;; esac
  done
}
_alive() {  # running (a zombie has ended)
  { while read -r _k _v _r; do
      if [ "$_k" = State: ]; then [ "$_v" != Z ]; return; fi
    done; } 2>/dev/null < "/proc/$1/status" || return 1
  return 1
}
_freeze() {  # SIGSTOP $1 and everything below it, level by level; print them all
  kill -STOP "$1" 2>/dev/null || return 0
  _all=" $1 "; _new="$1"
  while [ -n "$_new" ]; do
    _found=$(_kids "$_new"); _new=""
    for _p in $_found; do
      case "$_all" in *" $_p "*) continue ;; esac
      if kill -STOP "$_p" 2>/dev/null; then _all="$_all$_p "; _new="$_new $_p"; fi
    done
  done
  echo $_all
}
seen=" "; stopped=""; n=0
while :; do
  root=$(cat "$f" 2>/dev/null || true)
  case "$seen" in *" $root "*) ;; *)
    if [ -n "$root" ] && _alive "$root"; then
      tree=$(_freeze "$root"); seen="$seen$root "
      kill -TERM $tree 2>/dev/null; kill -CONT $tree 2>/dev/null
      stopped="$stopped $tree"
    fi ;;
  esac
  left=""; for _p in $stopped; do if _alive "$_p"; then left="$left $_p"; fi; done
  # The pid file is read for a few tenths even when nothing runs: a job starting just now
  # (it checked for the .stop mark before it was made) is caught too.
  if [ -z "$left" ] && [ $n -ge 3 ]; then break; fi
  if [ $n -ge "$2" ]; then
    for _p in $left; do kill -KILL $(_freeze "$_p") 2>/dev/null; done
    break
  fi
  sleep 0.1; n=$((n+1))
done
if [ -n "$stopped" ]; then echo "stopped:$stopped"; else echo "not running"; fi
"""


def stop_run(run_id: str, grace_s: float = STOP_GRACE_S, why: str = "") -> list[str]:
    """The exec command stopping job `run_id` in a pod: its shell and everything it started.

    SIGTERM first, SIGKILL for what is left after `grace_s`; a job that has not started yet
    never will. The job's own output then ends with `skymagic: stopped: WHY`. Prints
    `stopped: PID...` or `not running`.
    """
    tenths = str(max(3, round(grace_s * 10)))
    return ["/bin/sh", "-c", _STOP, "skymagic", run_id, tenths, why or "stopped from outside"]


def idle_probe() -> list[str]:
    """An exec printing: now, last activity, open sessions (what %sky_status shows)."""
    script = (
        f'S="$HOME/{SKY_DIR}"; date +%s; cat "$S/last_active" 2>/dev/null || echo; n=0; '
        'for f in "$S"/sessions/*; do [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null '
        "&& n=$((n+1)); done; echo $n"
    )
    return ["/bin/sh", "-c", script]


def idle_note(probe_output: str, idle_minutes: float | None) -> str:
    """'idle 3m, stops in 2m' (or 'busy: 1 session') from idle_probe's output."""
    parts = probe_output.split("\n")
    try:
        now, last, sessions = int(parts[0]), int(parts[1] or parts[0]), int(parts[2])
    except (IndexError, ValueError):
        return ""
    if sessions:
        return f"busy: {sessions} session{'s' if sessions != 1 else ''} open"
    idle = max(0, now - last)
    note = f"idle {_span(idle)}"
    if idle_minutes is not None:
        left = idle_seconds(idle_minutes) - idle
        note += f", stops in {_span(max(0, left))}" if left > 0 else ", stopping"
    return note


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
