"""ui/flags.py and the CLI's flags: seconds are checked in one place, launch flags map once."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
from IPython.core.magic_arguments import parse_argstring

from skymagic.launches import LaunchControls
from skymagic.launches.task import TaskOptions
from skymagic.ui.cli import build_parser, main
from skymagic.ui.flags import (
    check_seconds,
    launch_controls,
    positive_seconds,
    read_task_file,
    task_options,
)
from skymagic.ui.magics import SkyMagics


@pytest.mark.parametrize(("value", "expected"), [(0.001, 0.001), (5, 5.0), (1e6, 1e6)])
def test_check_seconds_accepts_finite_positive_numbers(value: float, expected: float) -> None:
    out = check_seconds(value)
    assert out == expected and isinstance(out, float)


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf])
def test_check_seconds_refuses_the_rest(value: float) -> None:
    with pytest.raises(ValueError, match="must be a positive number of seconds, got "):
        check_seconds(value)


@pytest.mark.parametrize("value", [True, "5", None])
def test_check_seconds_refuses_what_is_not_a_number(value: object) -> None:
    with pytest.raises(ValueError, match="must be a number of seconds"):
        check_seconds(value)  # type: ignore[arg-type]


def test_positive_seconds_is_an_argparse_type() -> None:
    assert positive_seconds("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match="got 'soon'"):
        positive_seconds("soon")
    with pytest.raises(argparse.ArgumentTypeError, match="positive number of seconds, got 0"):
        positive_seconds("0")


SECONDS_FLAGS = [
    ["check", "--timeout"],
    ["status", "--timeout"],
    ["gpus", "list", "--timeout"],
    ["launch", "--timeout"],
    ["launch", "--provision-timeout"],
    ["logs", "job", "--timeout"],
    ["down", "job", "--timeout"],
]


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf"])
@pytest.mark.parametrize("argv", SECONDS_FLAGS, ids=" ".join)
def test_every_cli_seconds_flag_refuses_bad_values(
    argv: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-1]}: must be a positive number of seconds" in err


@pytest.mark.parametrize("argv", SECONDS_FLAGS, ids=" ".join)
def test_every_cli_seconds_flag_takes_a_positive_number(argv: list[str]) -> None:
    args = build_parser().parse_args([*argv, "0.25"])
    assert getattr(args, argv[-1].lstrip("-").replace("-", "_")) == 0.25


LAUNCH_FLAGS = (
    "--gpus H100:2 --cpus 4+ --memory 16 --infra k8s/c --image img:1 "
    "--env A=1 --env B=2 --ports 80 443"
)
EXPECTED = TaskOptions(
    name="job",
    gpus="H100:2",
    cpus="4+",
    memory="16",
    infra="k8s/c",
    image="img:1",
    env=["A=1", "B=2"],
    secret=[],
    ports=[80, 443],
)


def test_cli_launch_flags_become_task_options() -> None:
    args = build_parser().parse_args(
        ["launch", "task.yaml", "--name", "job", *LAUNCH_FLAGS.split()]
    )
    assert task_options(args) == EXPECTED


def test_magic_launch_flags_become_the_same_task_options() -> None:
    args = parse_argstring(SkyMagics.sky_launch, f"job {LAUNCH_FLAGS}")
    assert task_options(args) == EXPECTED
    assert task_options(args, infra="k8s/d").infra == "k8s/d"


def test_no_flags_are_no_options() -> None:
    assert task_options(build_parser().parse_args(["launch"])) == TaskOptions(
        env=[], secret=[], ports=[]
    )
    assert task_options(parse_argstring(SkyMagics.sky_launch, "")) == TaskOptions(
        env=[], secret=[], ports=[]
    )


CONTROL_FLAGS = "--detach --dry-run -r --timeout-minutes 3"
CONTROLS = LaunchControls(
    detach=True, dry_run=True, provision_timeout=7.0, retry_until_up=True, timeout_minutes=3.0
)


def test_magic_and_cli_launch_flags_become_the_same_controls() -> None:
    """The provision timeout is the magic's --timeout and the CLI's --provision-timeout."""
    magic = parse_argstring(SkyMagics.sky_launch, f"job {CONTROL_FLAGS} --timeout 7")
    assert launch_controls(magic) == CONTROLS
    cli = build_parser().parse_args(
        ["launch", *CONTROL_FLAGS.split(), "--provision-timeout", "7", "--timeout", "2"]
    )
    assert launch_controls(cli, hint_style="cli") == LaunchControls(
        **{**vars(CONTROLS), "hint_style": "cli"}
    )


def test_no_control_flags_are_the_default_controls() -> None:
    """-r unset is None (the config's retry_until_up decides), not False."""
    assert launch_controls(parse_argstring(SkyMagics.sky_launch, "")) == LaunchControls()
    assert launch_controls(build_parser().parse_args(["launch"])) == LaunchControls()


@pytest.mark.parametrize("command", [["launch"], ["jobs", "launch"]])
def test_a_task_file_that_cannot_be_read_is_exit_2_naming_it(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main([*command, str(missing)]) == 2
    assert capsys.readouterr().err == f"error: cannot read {missing}: No such file or directory\n"


def test_read_task_file(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("run: echo hi\n", encoding="utf-8")
    assert read_task_file(str(task)) == "run: echo hi\n"
    assert read_task_file(None) == "" and read_task_file("") == ""


def _task_actions(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
    """The parser's flags that set a TaskOptions field, by dest: how each is declared."""
    fields = set(TaskOptions.__dataclass_fields__) - {"name"}
    return {
        a.dest: (tuple(a.option_strings), a.type, a.default, a.nargs, a.metavar, a.help)
        for a in parser._actions
        if a.dest in fields
    }


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_every_launch_command_declares_the_task_flags_alike() -> None:
    from skymagic.ui.jobs_magics import JobsMagics

    cli = _task_actions(_subparser(build_parser(), "launch"))
    launch_only = {"idle_minutes_to_autostop", "down", "num_nodes"}
    assert set(cli) == set(TaskOptions.__dataclass_fields__) - {"name"}
    assert _task_actions(SkyMagics.sky_launch.parser) == cli
    jobs = {k: v for k, v in cli.items() if k not in launch_only}
    assert _task_actions(_subparser(build_parser(), "jobs", "launch")) == jobs
    assert _task_actions(JobsMagics.sky_jobs_launch.parser) == jobs


@pytest.mark.parametrize(
    ("command", "what"),
    [(["down"], "the launches to stop"), (["jobs", "cancel"], "the jobs to cancel (names or ids)")],
)
def test_a_command_on_names_without_names_or_all_is_exit_2(
    command: list[str], what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    assert capsys.readouterr().err == f"error: name {what}, or use --all\n"


@pytest.mark.parametrize("magic", ["sky_down", "sky_jobs_cancel"])
def test_a_magic_on_names_without_names_or_all_is_a_usage_error(magic: str) -> None:
    from IPython.core.error import UsageError
    from IPython.testing.globalipapp import get_ipython

    from skymagic.ui import magics

    shell = get_ipython()
    magics.load(shell)
    try:
        with pytest.raises(UsageError, match=r"^name the .*, or use --all$"):
            shell.run_line_magic(magic, "")
    finally:
        magics.unload(shell)
