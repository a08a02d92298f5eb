"""`skymagic` command line: the same core as the magics, for terminals and scripts.

Presentation only: parse arguments, call the core, print. Errors print one line to stderr and
exit 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from skymagic.errors import SkymagicError
from skymagic.ui.flags import (
    LAUNCH_FLAGS,
    PROVISION_TIMEOUT_FLAG,
    TASK_FLAGS,
    TIMEOUT_FLAG,
    add_flags,
    cli_settings,
    launch_controls,
    read_task_file,
    refuse_without_names,
    task_options,
)
from skymagic.ui.jobs_cli import add_jobs_commands

if TYPE_CHECKING:
    from skymagic.launches import LaunchResult
    from skymagic.sim import Fleet

__all__ = ["main"]


DEMO_CONFIG_NAME = "skymagic-config.yaml"


def write_fleet_config(fleet: Fleet) -> Path:
    """Write the fleet's own SkyPilot config (every context allowed) beside its kubeconfig.

    Why a file of its own: `sim up` must make all its clusters usable (a newcomer would
    otherwise see only the kubeconfig's current context, and `--infra k8s` would have nothing
    to fail over to) without touching the user's ~/.sky/config.yaml.
    """
    path = Path(fleet.state_dir) / DEMO_CONFIG_NAME
    path.write_text(
        "# Written by `skymagic sim up` for the simulated fleet; ~/.sky/config.yaml is untouched.\n"
        "kubernetes:\n"
        "  allowed_contexts:   # failover order\n"
        + "".join(f"    - {c}\n" for c in fleet.contexts)
        + "  remote_identity: LOCAL_CREDENTIALS\n",
        encoding="utf-8",
    )
    return path


def _print_exports(fleet: Fleet, config: Path) -> None:
    """The lines to copy (or `eval "$(skymagic sim up)"`): both variables, shell and notebook."""
    kubeconfig = shlex.quote(fleet.kubeconfig)
    print(f"# allows all {len(fleet.contexts)} contexts in their own config; yours is untouched")
    print(f"export KUBECONFIG={kubeconfig}")
    print(f"export SKYPILOT_CONFIG={shlex.quote(str(config))}")
    print(
        f"# in a running notebook instead: %env KUBECONFIG={fleet.kubeconfig}"
        f"  and  %env SKYPILOT_CONFIG={config}"
    )


def _sim_up(args: argparse.Namespace) -> int:
    from skymagic.sim import Fleet, default_state_dir

    state_dir = default_state_dir()
    try:
        existing = Fleet.attach(state_dir)
        if existing.alive():
            print(f"# a simulated fleet is already running ({len(existing.contexts)} contexts)")
            _print_exports(existing, write_fleet_config(existing))
            return 0
    except SkymagicError:
        pass
    kubeconfig = args.kubeconfig or str(state_dir / "kubeconfig")
    fleet = Fleet(args.spec or "demo", state_dir=state_dir, kubeconfig=kubeconfig)
    fleet.start(detach=True)
    print(f"# simulated fleet up: {', '.join(fleet.contexts)}")
    _print_exports(fleet, write_fleet_config(fleet))
    return 0


def _sim_status(args: argparse.Namespace) -> int:
    from skymagic.sim import Fleet

    fleet = Fleet.attach()
    if not fleet.alive():
        print(
            "no simulated fleet is running (its state is stale); start one with `skymagic sim up`"
        )
        return 1
    for name, info in fleet.status().items():
        state = "up" if info["listening"] else "down"
        faults = {k: v for k, v in info["faults"].items() if v and k != "token_ttl_s"}
        print(
            f"{name}: {state} on https://127.0.0.1:{info['port']}, {info['nodes']} nodes, "
            f"{info['pods']} pods{', faults: ' + str(faults) if faults else ''}"
        )
    _print_exports(fleet, write_fleet_config(fleet))
    return 0


def _sim_down(args: argparse.Namespace) -> int:
    from skymagic.sim import Fleet

    try:
        fleet = Fleet.attach()
    except SkymagicError:
        print("no simulated fleet is running")
        return 0
    fleet.stop()
    print("simulated fleet stopped")
    return 0


def _check(args: argparse.Namespace) -> int:
    from skymagic.health import check

    report = check(cli_settings(args), infra=args.infra)
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return 0 if report.enabled else 1


def _launch(args: argparse.Namespace) -> int:
    from skymagic.launches import Plan, launch_task, parse_task
    from skymagic.ui.progress import TextProgress

    body = read_task_file(args.file)
    if body is None:
        return 2
    result = launch_task(
        parse_task(body, task_options(args)),
        cli_settings(args),
        launch_controls(args, hint_style="cli"),
        observer=TextProgress(),
    )
    if isinstance(result, Plan):
        return 0
    print(result)
    return launch_exit_code(result)


def launch_exit_code(result: LaunchResult) -> int:
    """The task's own exit code (3 stays 3); 130 after Ctrl-C; 0 while it runs detached.

    A pod whose context became unreachable after it started is not known to have failed:
    exit 75 (EX_TEMPFAIL, "try again later"); a pod deleted under the follow exits 1.
    """
    if result.interrupted:
        return 130
    if result.status == "Succeeded":
        return 0
    if result.status == "Failed":
        return result.exit_code if result.exit_code else 1
    if result.status == "Unreachable":
        return 75
    return 0 if result.status in ("Running", "Reused", "Detached") else 1


def _exec(args: argparse.Namespace) -> int:
    from skymagic.launches.exec import print_to
    from skymagic.launches.rankexec import exec_ranks

    command = list(args.command)
    # `exec NAME --rank N -- CMD`: argparse leaves an option after NAME in the command.
    while command and (command[0] == "--rank" or command[0].startswith("--rank=")):
        if command[0] == "--rank" and len(command) > 1:
            args.rank, command = command[1], command[2:]
        else:
            args.rank, command = command[0].partition("=")[2], command[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("error: give the command to run: skymagic exec NAME [--] CMD...", file=sys.stderr)
        return 2
    # One argument is a script as written; several are one command line, quoted as given.
    script = command[0] if len(command) == 1 else shlex.join(command)
    out, err = print_to(sys.stdout), print_to(sys.stderr)
    result = exec_ranks(
        args.name, script, cli_settings(args), rank=args.rank, on_stdout=out, on_stderr=err
    )
    if result.exit_code != 0 and result.rank is not None:
        print(f"error: rank {result.rank} exited with code {result.exit_code}", file=sys.stderr)
    if result.message:
        print(f"error: {result.message}", file=sys.stderr)
    code = result.exit_code
    return code if 0 <= code < 256 else 1


def _port_forward(args: argparse.Namespace) -> int:
    from skymagic.launches.ports import forward_port

    fwd = forward_port(args.name, args.port, cli_settings(args), local_port=args.local_port)
    print(f"Forwarding {fwd.url} -> {args.name}:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        fwd.wait()
    except KeyboardInterrupt:
        fwd.stop()
        return 0
    print(f"{args.name} is gone; forward stopped", file=sys.stderr)
    return 1


def _ssh(args: argparse.Namespace) -> int:
    import os
    import shutil

    from skymagic.launches.exec import open_shell

    fd = sys.stdin.fileno()
    interactive = os.isatty(fd)

    def read_input() -> bytes:
        return os.read(fd, 4096)

    def write_output(data: bytes) -> None:
        os.write(sys.stdout.fileno(), data)

    def size() -> tuple[int, int]:
        cols, rows = shutil.get_terminal_size()
        return cols, rows

    def on_session(resize: Callable[[int, int], None]) -> None:
        import signal

        signal.signal(signal.SIGWINCH, lambda *_: resize(*size()))

    saved = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(fd)
        tty.setraw(fd)
    try:
        code = open_shell(
            args.name,
            cli_settings(args),
            read_input=read_input,
            write_output=write_output,
            size=size,
            on_session=on_session if interactive else None,
        )
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return code if 0 <= code < 256 else 1


def _status(args: argparse.Namespace) -> int:
    from skymagic.launches import status

    st = status(
        cli_settings(args),
        infra=args.infra,
        all_users=not args.mine,
        hint_style="cli",
        ranks=args.ranks,
    )
    if args.output == "json":
        print(st.frame.to_json(orient="records", indent=2))
        for warning in st.warnings:  # stdout stays a JSON list; the warning still shows
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print(st)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from skymagic.launches import logs

    for line in logs(
        args.name,
        cli_settings(args),
        follow=args.follow,
        tail=args.tail,
        rank=args.rank,
        hint_style="cli",
    ):
        print(line, flush=True)
    return 0


def _down(args: argparse.Namespace) -> int:
    from skymagic.launches import down

    if refuse_without_names(args, "the launches to stop"):
        return 2
    deleted = down(
        list(args.names), cli_settings(args), all_mine=args.all, force=args.force, hint_style="cli"
    )
    for launch, job in deleted.kept:
        print(f"kept {launch}: the pod of managed job {job} (skymagic jobs cancel {job} stops it)")
    for ctx, kind, what in deleted:
        print(f"deleted {kind} {what} in {ctx}")
    for ctx, message in deleted.errors:
        print(f"warning: could not check {ctx}: {message}", file=sys.stderr)
    return 1 if deleted.errors else 0


def _gpus_list(args: argparse.Namespace) -> int:
    from skymagic.gpus.inventory import show_gpus

    inv = show_gpus(cli_settings(args), infra=args.infra, gpu=args.gpu, all_nodes=args.all_nodes)
    if args.output == "json":
        print(json.dumps(inv.to_dict(), indent=2))
    elif args.output == "csv":
        sys.stdout.write(inv.nodes.to_csv(index=False))
    else:
        print(inv)
    return 0 if len(inv.errors) < max(1, len(inv.contexts)) else 1


def _demo(args: argparse.Namespace) -> int:
    from skymagic.ui.demo import NOTEBOOKS, run_demo

    return int(
        run_demo(output_dir=args.output_dir, notebooks=NOTEBOOKS if args.all else NOTEBOOKS[:1])
    )


def _common(p: argparse.ArgumentParser, formats: tuple[str, ...] = ("table", "json")) -> None:
    p.add_argument("--infra", help="'k8s' (all allowed contexts) or 'k8s/CONTEXT'")
    add_flags(p, TIMEOUT_FLAG)
    p.add_argument("-o", "--output", choices=formats, default=formats[0], help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skymagic", description="GPUs across many Kubernetes clusters, from a terminal."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="run a simulated fleet of Kubernetes clusters")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    up = sim_sub.add_parser(
        "up",
        help="start a fleet in the background and print the export lines to use it "
        "(KUBECONFIG, and SKYPILOT_CONFIG allowing all its contexts)",
    )
    up.add_argument("spec", nargs="?", help="fleet spec YAML (default: the demo fleet)")
    up.add_argument("--kubeconfig", help="where to write the fleet's kubeconfig")
    up.set_defaults(func=_sim_up)
    sim_sub.add_parser("status", help="show the running fleet").set_defaults(func=_sim_status)
    sim_sub.add_parser("down", help="stop the running fleet").set_defaults(func=_sim_down)

    chk = sub.add_parser("check", help="check which allowed Kubernetes contexts are usable")
    _common(chk)
    chk.set_defaults(func=_check)

    lau = sub.add_parser("launch", help="launch a script or task YAML with ordered failover")
    lau.add_argument("file", nargs="?", help="a shell script or SkyPilot task YAML")
    lau.add_argument("--name", help="launch name (unique per user)")
    add_flags(lau, TASK_FLAGS, LAUNCH_FLAGS)
    lau.add_argument(
        "-r",
        "--retry-until-up",
        action="store_true",
        default=None,
        help="wait for capacity when nothing fits now (Ctrl-C cancels)",
    )
    lau.add_argument(
        "--timeout-minutes",
        type=float,
        default=None,
        metavar="N",
        help="with -r: give up after N minutes",
    )
    lau.add_argument("--detach", action="store_true", help="return once Running")
    lau.add_argument("--dry-run", action="store_true", help="show the plan only")
    add_flags(lau, PROVISION_TIMEOUT_FLAG, TIMEOUT_FLAG)
    lau.set_defaults(func=_launch)

    exe = sub.add_parser(
        "exec",
        help="run a command in a launch's running pod, streaming its output; "
        "exits with the command's code",
    )
    exe.add_argument("name", help="the launch")
    exe.add_argument(
        "--rank",
        default="0",
        help="a multi-node launch's rank (default 0), or 'all': every rank at once, lines "
        "prefixed (rank=N), exiting with the first failing rank's code",
    )
    exe.add_argument(
        "command", nargs=argparse.REMAINDER, help="the command ([--] CMD ARGS..., or one script)"
    )
    add_flags(exe, TIMEOUT_FLAG)
    exe.set_defaults(func=_exec)

    pfw = sub.add_parser(
        "port-forward", help="forward http://127.0.0.1:PORT to PORT of a launch's pod"
    )
    pfw.add_argument("name", help="the launch")
    pfw.add_argument("port", type=int, help="the port in the pod")
    pfw.add_argument("--local-port", type=int, default=None, help="default: PORT when free")
    add_flags(pfw, TIMEOUT_FLAG)
    pfw.set_defaults(func=_port_forward)

    ssh = sub.add_parser("ssh", help="an interactive shell in a launch's running pod")
    ssh.add_argument("name", help="the launch")
    add_flags(ssh, TIMEOUT_FLAG)
    ssh.set_defaults(func=_ssh)

    sts = sub.add_parser("status", help="skymagic workloads across all allowed contexts")
    _common(sts)
    sts.add_argument("--mine", action="store_true", help="only my launches")
    sts.add_argument("--ranks", action="store_true", help="one row per pod (every rank)")
    sts.set_defaults(func=_status)

    lgs = sub.add_parser("logs", help="print a launch's log")
    lgs.add_argument("name")
    lgs.add_argument("--follow", "-f", action="store_true")
    lgs.add_argument("--tail", type=int, default=None)
    lgs.add_argument("--rank", type=int, default=None, help="a multi-node launch's rank N")
    add_flags(lgs, TIMEOUT_FLAG)
    lgs.set_defaults(func=_logs)

    dwn = sub.add_parser("down", help="stop launches in every allowed context")
    dwn.add_argument("names", nargs="*")
    dwn.add_argument("--all", action="store_true", help="all of my launches")
    dwn.add_argument(
        "--force",
        action="store_true",
        help="also delete managed jobs' pods (refused otherwise: the jobs controller would "
        "relaunch the job elsewhere; `skymagic jobs cancel N` stops a job)",
    )
    add_flags(dwn, TIMEOUT_FLAG)
    dwn.set_defaults(func=_down)

    gpus = sub.add_parser("gpus", help="GPU inventory across the allowed contexts")
    gpus_sub = gpus.add_subparsers(dest="gpus_command", required=True)
    gl = gpus_sub.add_parser(
        "list",
        help="which GPUs are free, and where (SkyPilot's `sky gpus list --infra k8s` layout)",
    )
    gl.add_argument(
        "gpu",
        nargs="?",
        help="only this GPU, NAME or NAME:N (nodes with at least N), e.g. H100:8",
    )
    gl.add_argument(
        "--all",
        dest="all_nodes",
        action="store_true",
        help="also list CPU-only nodes in the per-node table",
    )
    _common(gl, formats=("table", "json", "csv"))
    gl.set_defaults(func=_gpus_list)

    add_jobs_commands(sub)

    demo = sub.add_parser("demo", help="start the demo fleet and run the quickstart notebook")
    demo.add_argument(
        "--output-dir", default="notebooks/rendered", help="where rendered notebooks go"
    )
    demo.add_argument(
        "--all", action="store_true", help="run and render every notebook, not just the quickstart"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SkymagicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130 if getattr(exc, "interrupted", False) else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
