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
starts or ends. The layout is the contract between this module's two scripts.
"""

from __future__ import annotations

import hashlib
import math
import shlex

__all__ = [
    "RUN_DONE",
    "SKY_DIR",
    "WORKDIR",
    "entrypoint",
    "exec_wrapper",
    "idle_note",
    "idle_probe",
    "idle_seconds",
    "setup_hash",
]

SKY_DIR = ".sky"  # under $HOME
WORKDIR = "sky_workdir"  # under $HOME: SkyPilot's ~/sky_workdir
RUN_DONE = "skymagic: run finished, exit code"  # the log line ending a run that the pod outlives
SYNC_WAIT_S = 600  # how long the entrypoint waits for the launch's files before giving up

# Pick bash when the image has it (SkyPilot runs setup/run with bash), else sh.
_SHELL = "if command -v bash >/dev/null 2>&1; then SH=bash; else SH=sh; fi"


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
        'mkdir -p "$S/sessions" "$W"',
        _SHELL,
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
        '  $SH -c "$1" || exit $?',
        "fi",
        f'echo {setup_hash(setup)} > "$S/setup_hash"',
    ]
    stays_up = idle_minutes is not None or not (run and run.strip())
    if run and run.strip():
        if stays_up:
            # With autostop the pod outlives its run, as a SkyPilot cluster does.
            lines += [
                '$SH -c "$2"; rc=$?; echo $rc > "$S/run_exit"; date +%s > "$S/last_active"',
                f'echo "{RUN_DONE} $rc"',
            ]
        else:
            lines += ['$SH -c "$2"', "exit $?"]
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
) -> list[str]:
    """The exec command running `script` in the pod, recording activity for autostop.

    With `setup`, it runs first when its hash differs from the one the pod recorded (setup
    runs once per pod, again only when it changed). `interactive` runs a login shell instead
    of a script (`skymagic ssh`); `background` returns at once, leaving the command running
    with its output in ~/.sky/last_run.log (a detached re-run).
    """
    lines = [
        f'S="$HOME/{SKY_DIR}"; mkdir -p "$S/sessions"',
        'echo $$ > "$S/sessions/$$"; date +%s > "$S/last_active"',
        'trap \'rm -f "$S/sessions/$$"; date +%s > "$S/last_active"\' EXIT',
        _SHELL,
    ]
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
                '  $SH -c "$2" || exit $?',
            ]
        lines += [f'  echo {wanted} > "$S/setup_hash"', "fi"]
    if interactive:
        lines.append('if [ "$SH" = bash ]; then bash -l; else sh; fi')
    else:
        lines.append('$SH -c "$1"')
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
