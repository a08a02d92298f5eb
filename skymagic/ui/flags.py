"""Flag values the magics and the CLI share, checked in one place.

A timeout of 0 or less (or nan) fails every context at once with a "timeout" nobody waited
for, and inf waits forever on a black-holed server; so every seconds-valued flag (`--timeout`,
`--interval`, `--provision-timeout`) and every seconds-valued `SkyMagics` setting goes through
`check_seconds`. The launch flags reach `parse_task` through `task_options` and `launch_task`
through `launch_controls`, so the magic and the CLI cannot drift apart on which flags shape a
task or how its launch runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: `%load_ext skymagic` stays light
    from skymagic.core.targets import Settings
    from skymagic.launches.controls import LaunchControls
    from skymagic.launches.task import TaskOptions

__all__ = [
    "LAUNCH_FLAGS",
    "LAUNCH_ONLY",
    "PROVISION_TIMEOUT_FLAG",
    "TASK_FLAGS",
    "TIMEOUT_FLAG",
    "Flags",
    "add_flags",
    "check_seconds",
    "cli_settings",
    "launch_controls",
    "names_missing",
    "port_spec",
    "positive_seconds",
    "read_task_file",
    "refuse_without_names",
    "task_options",
]


# Flags as (names, keyword arguments) for argparse's `add_argument` and IPython's
# `magic_arguments.argument` alike.
Flags = list[tuple[tuple[str, ...], dict[str, Any]]]


def add_flags(parser: argparse.ArgumentParser, *flag_lists: Flags) -> None:
    """Declare shared flags on a command, in their order (`magic_args.declare_flags` for a
    magic)."""
    for flags in flag_lists:
        for names, kwargs in flags:
            parser.add_argument(*names, **kwargs)


def check_seconds(value: float) -> float:
    """`value` as a float if it is a finite number of seconds above zero, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a positive number of seconds, got {value:g}")
    return float(value)


def positive_seconds(text: str) -> float:
    """argparse `type=` for seconds-valued flags: a bad value is a usage error naming the flag."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    try:
        return check_seconds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_spec(text: str) -> int | str:
    """argparse `type=` for --ports: a port (an int) or a range LOW-HIGH (kept as text)."""
    low, sep, high = text.partition("-")
    if low.isdigit() and (not sep or high.isdigit()):
        return text if sep else int(low)
    raise argparse.ArgumentTypeError(f"must be a port or a range like 8000-8010, got {text!r}")


def cli_settings(args: argparse.Namespace) -> Settings:
    """The Settings of one `skymagic` command: its --timeout is every request's timeout."""
    from skymagic.core.client import ClientSettings
    from skymagic.core.targets import Settings

    return Settings(client=ClientSettings(request_timeout=args.timeout))


def task_options(args: argparse.Namespace, **overrides: Any) -> TaskOptions:
    """The TaskOptions from parsed launch flags (their dests are the field names)."""
    from skymagic.launches.task import TaskOptions

    values = {
        f.name: getattr(args, f.name, f.default) if f.name in LAUNCH_ONLY else getattr(args, f.name)
        for f in fields(TaskOptions)
    }
    return TaskOptions(**{**values, **overrides})


def launch_controls(args: argparse.Namespace, **overrides: Any) -> LaunchControls:
    """How a launch runs, from the parsed flags of `%%sky_launch` or `skymagic launch` (their
    dests are the field names; the magic's --timeout is the CLI's --provision-timeout);
    `overrides` set the fields no flag sets, e.g. the CLI's `hint_style="cli"`."""
    from skymagic.launches.controls import LaunchControls

    values = {name: getattr(args, name) for name in _CONTROL_FLAGS}
    return LaunchControls(**{**values, **overrides})


def names_missing(args: argparse.Namespace, what: str) -> str | None:
    """The usage error of a command that acts on names or on --all but got neither, else None.

    `what` says what to name, e.g. "the launches to stop".
    """
    if not args.names and not args.all:
        return f"name {what}, or use --all"
    return None


def refuse_without_names(args: argparse.Namespace, what: str) -> bool:
    """True after saying on stderr that a command needs names or --all (it then exits with
    2, as for a bad flag); False when it got either."""
    problem = names_missing(args, what)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return problem is not None


def read_task_file(path: str | None) -> str | None:
    """The text of the task file a command names ("" without one), or None after saying on
    stderr why it cannot be read (the command then exits with 2, as for a bad flag)."""
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None


# The LaunchControls fields both launch commands set from a flag of the same dest.
_CONTROL_FLAGS = ("detach", "dry_run", "provision_timeout", "retry_until_up", "timeout_minutes")


# Task options only `%%sky_launch` / `skymagic launch` take: a pod's autostop means nothing for a
# managed job (its pod ends with its run), so the jobs commands do not declare them; a managed
# job's controller follows one pod, so multi-node (num_nodes) is launch-only for now.
LAUNCH_ONLY = frozenset({"idle_minutes_to_autostop", "down", "num_nodes"})


# The flags that shape a task, as (names, keyword arguments) for argparse's `add_argument`
# and IPython's `magic_arguments.argument` alike, so a magic and a command declare them the
# same way (their dests are TaskOptions fields; the launch name is declared by each, as a
# positional NAME in magics and --name on the command line). Help texts carry no '%': argparse
# formats them.
TASK_FLAGS: Flags = [
    (
        ("--gpus",),
        {
            "default": None,
            "help": "GPU and count, e.g. H100 or H100:8 (names as the GPU inventory shows them).",
        },
    ),
    (("--cpus",), {"default": None, "help": "vCPUs, e.g. 4 or 4+ (default: 4 per GPU, or 2)."}),
    (
        ("--memory",),
        {"default": None, "help": "Memory in GB, e.g. 16 or 16+ (default: 16 per GPU, or 2)."},
    ),
    (
        ("--infra",),
        {
            "default": None,
            "help": "'k8s': the allowed contexts in failover order (default); 'k8s/CONTEXT': "
            "only CONTEXT.",
        },
    ),
    (
        ("--image",),
        {
            "default": None,
            "help": "Container image (default: a CUDA PyTorch image for GPU tasks, "
            "python:3.11-slim otherwise).",
        },
    ),
    (
        ("--env",),
        {
            "action": "append",
            "default": [],
            "metavar": "K=V",
            "help": "An environment variable for the task (K alone: its value from your "
            "environment); repeatable.",
        },
    ),
    (
        ("--secret",),
        {
            "action": "append",
            "default": [],
            "metavar": "K=V",
            "help": "A secret for the task (K alone: its value from your environment); stored "
            "in a Kubernetes Secret, never printed; repeatable.",
        },
    ),
    (
        ("--ports",),
        {
            "type": port_spec,
            "nargs": "+",
            "default": [],
            "metavar": "PORT",
            "help": "Expose these ports (or ranges, e.g. 8000-8010) through a Kubernetes Service.",
        },
    ),
    (
        ("--workdir",),
        {
            "default": None,
            "help": "A local folder copied to ~/sky_workdir in the pod before setup and run "
            "(.skyignore, else .gitignore, leaves files out; a re-run sends only what changed).",
        },
    ),
]

# The LAUNCH_ONLY flags, declared after TASK_FLAGS by `%%sky_launch` and `skymagic launch`.
LAUNCH_FLAGS: Flags = [
    (
        ("-i", "--idle-minutes-to-autostop"),
        {
            "type": float,
            "default": None,
            "metavar": "N",
            "help": "Autostop: the pod stops itself (freeing its GPUs) after N minutes with no "
            "exec or launch command running.",
        },
    ),
    (
        ("--down",),
        {
            "action": "store_true",
            "help": "Also remove the pod's objects once it has ended (after autostop, or after "
            "its run).",
        },
    ),
    (
        ("--num-nodes",),
        {
            "dest": "num_nodes",
            "type": int,
            "default": None,
            "metavar": "N",
            "help": "Run on N nodes at once (a gang in one context, all or nothing); every rank "
            "gets SKYPILOT_NODE_RANK, SKYPILOT_NODE_IPS, MASTER_ADDR, ... (default: the YAML's "
            "num_nodes, else 1).",
        },
    ),
]

# The CLI's limits (a magic takes the request timeout from `%config SkyMagics`, and calls the
# provision timeout `--timeout`): every command that calls the API takes TIMEOUT_FLAG, both
# launch commands PROVISION_TIMEOUT_FLAG.
TIMEOUT_FLAG: Flags = [
    (
        ("--timeout",),
        {"type": positive_seconds, "default": 5.0, "help": "seconds per API request"},
    )
]
PROVISION_TIMEOUT_FLAG: Flags = [
    (
        ("--provision-timeout",),
        {
            "type": positive_seconds,
            "default": None,
            "help": "seconds each context gets to schedule the pod before failover (a managed "
            "job: on every launch and recovery; default: kubernetes.provision_timeout)",
        },
    )
]
