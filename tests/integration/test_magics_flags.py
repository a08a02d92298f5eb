"""Seconds-valued flags and settings in a real IPython shell: bad values are refused up front.

`--timeout 0` (or -1, nan, inf) on any magic is a one-line UsageError naming the flag, and
`%config SkyMagics.request_timeout = 0` is refused with a TraitError naming the setting, which
keeps its old value: before, either one made every request of the session time out at once.
Nothing here reaches a cluster: the environment has no kubeconfig, so a value that slipped
through would end in some other error, never in the UsageError these tests wait for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError

BAD_SECONDS = ["0", "-1", "-0.5", "nan", "inf", "soon"]
SECONDS_FLAGS = [
    ("sky_check", "--timeout"),
    ("sky_show_gpus", "--timeout"),
    ("sky_dashboard", "--timeout"),
    ("sky_dashboard", "--interval"),
    ("sky_launch", "--timeout"),
    ("sky_jobs_launch", "--timeout"),
]


@pytest.fixture
def shell(ipshell: InteractiveShell, isolated_env: Path) -> Iterator[InteractiveShell]:
    ipshell.run_line_magic("load_ext", "skymagic")
    yield ipshell
    for name, value in (("request_timeout", 5.0), ("exec_timeout", 30.0), ("retries", 2)):
        setattr(magics(ipshell), name, value)


def magics(shell: InteractiveShell) -> Any:
    return shell.magics_manager.registry["SkyMagics"]


def run(shell: InteractiveShell, magic: str, line: str) -> Any:
    if magic in ("sky_launch", "sky_jobs_launch"):
        return shell.run_cell_magic(magic, line, "echo hi\n")
    return shell.run_line_magic(magic, line)


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize(("magic", "flag"), SECONDS_FLAGS)
def test_seconds_flags_refuse_what_is_not_a_positive_number(
    shell: InteractiveShell, magic: str, flag: str, value: str
) -> None:
    with pytest.raises(UsageError, match=rf"^argument {flag}: must be a .*number of seconds"):
        run(shell, magic, f"{flag} {value}")


@pytest.mark.parametrize("trait", ["request_timeout", "exec_timeout"])
@pytest.mark.parametrize(
    ("value", "number"),
    [("0", 0.0), ("-3", -3.0), ("float('nan')", math.nan), ("float('inf')", math.inf)],
)
def test_config_refuses_a_timeout_that_is_not_positive(
    shell: InteractiveShell,
    caplog: pytest.LogCaptureFixture,
    trait: str,
    value: str,
    number: float,
) -> None:
    before = getattr(magics(shell), trait)
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", f"SkyMagics.{trait} = {value}")
    assert getattr(magics(shell), trait) == before  # refused, not half-applied
    expected = f"SkyMagics.{trait} must be a positive number of seconds"
    assert expected in caplog.text  # %config reports a refused value as an error line
    with pytest.raises(TraitError, match=rf"^{expected}, got .*; e.g. %config SkyMagics\.{trait}"):
        setattr(magics(shell), trait, number)


def test_config_accepts_a_positive_timeout(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "SkyMagics.request_timeout = 2")
    shell.run_line_magic("config", "SkyMagics.exec_timeout = 0.5")
    settings = magics(shell).settings()
    assert settings.client.request_timeout == 2.0 and settings.client.exec_timeout == 0.5


def test_config_refuses_negative_retries(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", "SkyMagics.retries = -1")
    assert magics(shell).retries == 2
    assert "'retries' trait" in caplog.text
    shell.run_line_magic("config", "SkyMagics.retries = 0")
    assert magics(shell).settings().client.retries == 0
