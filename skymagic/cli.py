"""`skymagic` command line: the same core as the magics, for terminals and scripts.

Presentation only: parse arguments, call the core, print. Errors print one line to stderr and
exit 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from skymagic._exceptions import SkymagicError

if TYPE_CHECKING:
    from skymagic.fleet import Settings

__all__ = ["main"]


def _sim_up(args: argparse.Namespace) -> int:
    from skymagic.sim import Fleet, default_state_dir

    state_dir = default_state_dir()
    try:
        existing = Fleet.attach(state_dir)
        if existing.alive():
            print(f"# a simulated fleet is already running ({len(existing.contexts)} contexts)")
            print(f"export KUBECONFIG={existing.kubeconfig}")
            return 0
    except SkymagicError:
        pass
    kubeconfig = args.kubeconfig or str(state_dir / "kubeconfig")
    fleet = Fleet(args.spec or "demo", state_dir=state_dir, kubeconfig=kubeconfig)
    fleet.start(detach=True)
    print(f"# simulated fleet up: {', '.join(fleet.contexts)}")
    print(f"export KUBECONFIG={fleet.kubeconfig}")
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
    print(f"export KUBECONFIG={fleet.kubeconfig}")
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


def _settings(args: argparse.Namespace) -> Settings:
    from skymagic.api import ClientSettings
    from skymagic.fleet import Settings

    return Settings(client=ClientSettings(request_timeout=args.timeout))


def _check(args: argparse.Namespace) -> int:
    from skymagic.check import check

    report = check(_settings(args), infra=args.infra)
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return 0 if report.enabled else 1


def _demo(args: argparse.Namespace) -> int:
    from skymagic.demo import run_demo

    return int(run_demo(output_dir=args.output_dir))


def _common(p: argparse.ArgumentParser, formats: tuple[str, ...] = ("table", "json")) -> None:
    p.add_argument("--infra", help="'k8s' (all allowed contexts) or 'k8s/CONTEXT'")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per API request")
    p.add_argument("-o", "--output", choices=formats, default=formats[0], help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skymagic", description="GPUs across many Kubernetes clusters, from a terminal."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="run a simulated fleet of Kubernetes clusters")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    up = sim_sub.add_parser(
        "up", help="start a fleet in the background and print `export KUBECONFIG=...`"
    )
    up.add_argument("spec", nargs="?", help="fleet spec YAML (default: the demo fleet)")
    up.add_argument("--kubeconfig", help="where to write the fleet's kubeconfig")
    up.set_defaults(func=_sim_up)
    sim_sub.add_parser("status", help="show the running fleet").set_defaults(func=_sim_status)
    sim_sub.add_parser("down", help="stop the running fleet").set_defaults(func=_sim_down)

    chk = sub.add_parser("check", help="check which allowed Kubernetes contexts are usable")
    _common(chk)
    chk.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="start the demo fleet and run the quickstart notebook")
    demo.add_argument(
        "--output-dir", default="notebooks/rendered", help="where rendered notebooks go"
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
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
