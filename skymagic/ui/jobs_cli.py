"""`skymagic jobs launch|queue|logs|cancel|controller`: managed jobs from a terminal.

Presentation only, over `skymagic.jobs`; `skymagic.ui.cli` adds these commands to its parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from skymagic.ui import flags

__all__ = ["add_jobs_commands"]


def _launch(args: argparse.Namespace) -> int:
    from skymagic import jobs

    body = flags.read_task_file(args.file)
    if body is None:
        return 2
    job = jobs.launch(
        body,
        flags.task_options(args),
        settings=flags.cli_settings(args),
        max_restarts_on_errors=args.max_restarts_on_errors,
        provision_timeout=args.provision_timeout,
    )
    print(f"Managed job {job.id} ({job.name}) submitted.", flush=True)
    if args.detach:
        print(f"Follow it with `skymagic jobs logs {job.name} --follow`.")
        return 0
    print(
        f"Streaming its log; Ctrl-C stops the streaming only (cancel the job with "
        f"`skymagic jobs cancel {job.name}`).",
        flush=True,
    )
    try:
        for line in job.logs(follow=True):
            print(line, flush=True)
    except KeyboardInterrupt:
        print(f"(stopped streaming; job {job.id} keeps running)", file=sys.stderr)
        return 130
    return 0 if job.status == jobs.JobStatus.SUCCEEDED else 1


def _queue(args: argparse.Namespace) -> int:
    from skymagic import jobs

    frame = jobs.queue()
    if args.output == "json":
        records: list[dict[str, Any]] = []
        for raw in frame.to_dict(orient="records"):
            row = {str(k): v for k, v in raw.items()}
            for key in ("submitted", "started"):
                value = row[key]
                row[key] = value.isoformat() if hasattr(value, "isoformat") else None
            if row["duration"] is not None and row["duration"] != row["duration"]:  # NaN
                row["duration"] = None
            records.append(row)
        print(json.dumps(records, indent=2, default=str))
    elif frame.empty:
        print("No managed jobs.")
    else:
        shown = frame.copy()
        for key in ("submitted", "started"):
            shown[key] = shown[key].map(
                lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if hasattr(t, "strftime") else "-"
            )
        print(shown.to_string(index=False))
    return 0


def _logs(args: argparse.Namespace) -> int:
    from skymagic import jobs

    try:
        for line in jobs.logs(args.name, follow=args.follow):
            print(line, flush=True)
    except KeyboardInterrupt:
        return 130
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from skymagic import jobs

    if flags.refuse_without_names(args, "the jobs to cancel (names or ids)"):
        return 2
    cancelled = jobs.cancel(args.names, all=args.all, wait_s=args.wait)
    for job in cancelled:
        print(f"cancelling job {job.id} ({job.name})" + (f": {job.status}" if args.wait else ""))
    if not cancelled:
        print("no active job to cancel")
    return 0


def _controller(args: argparse.Namespace) -> int:
    from skymagic.jobs import process

    if args.action == "start":
        print(process.start())
    elif args.action == "stop":
        print(
            "jobs controller stopped (jobs keep running; the next one re-adopts them)"
            if process.stop()
            else "no jobs controller was running"
        )
    else:
        status = process.status()
        print(status)
        return 0 if status.running else 1
    return 0


def add_jobs_commands(sub: Any) -> None:
    """Add `jobs ...` to the `skymagic` parser's subcommands."""
    jobs = sub.add_parser(
        "jobs", help="managed jobs: recovered on another context when their pod goes away"
    )
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    seconds = flags.positive_seconds

    lau = jsub.add_parser("launch", help="submit a script or task YAML as a managed job")
    lau.add_argument("file", nargs="?", help="a shell script or SkyPilot task YAML")
    lau.add_argument("--name", help="job name")
    flags.add_flags(lau, flags.TASK_FLAGS)
    lau.add_argument(
        "--max-restarts-on-errors",
        type=int,
        default=None,
        metavar="N",
        help="restart after the job's own non-zero exit up to N times (default: the YAML's "
        "resources.job_recovery, else 0)",
    )
    lau.add_argument("--detach", action="store_true", help="return once submitted")
    flags.add_flags(lau, flags.PROVISION_TIMEOUT_FLAG, flags.TIMEOUT_FLAG)
    lau.set_defaults(func=_launch)

    que = jsub.add_parser("queue", help="every managed job and its state")
    que.add_argument("-o", "--output", choices=("table", "json"), default="table")
    que.set_defaults(func=_queue)

    lgs = jsub.add_parser("logs", help="a job's log: every attempt, each headed by its context")
    lgs.add_argument("name", help="job name or id")
    lgs.add_argument("--follow", "-f", action="store_true", help="until the job ends")
    lgs.set_defaults(func=_logs)

    can = jsub.add_parser("cancel", help="cancel managed jobs")
    can.add_argument("names", nargs="*", help="job names or ids")
    can.add_argument("--all", action="store_true", help="every active job")
    can.add_argument("--wait", type=seconds, metavar="SECONDS", help="wait until done")
    can.set_defaults(func=_cancel)

    ctl = jsub.add_parser("controller", help="the local jobs controller process")
    ctl.add_argument("action", choices=("start", "stop", "status"))
    ctl.set_defaults(func=_controller)
