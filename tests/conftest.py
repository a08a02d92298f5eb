"""Shared fixtures: simulated fleets (real HTTPS API servers in their own process).

`demo_fleet` is one session-wide demo fleet for read-only tests; tests that change a fleet
(faults, cordons, launches) start their own with `make_fleet(spec)`, which stops it afterwards.
`isolated_env` points KUBECONFIG / SKYPILOT_CONFIG / HOME at a temp dir so no test reads the
developer's real files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skymagic.sim import Fleet

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="session")
def demo_fleet() -> Iterator[Fleet]:
    with Fleet("demo") as fleet:
        yield fleet


@pytest.fixture
def make_fleet() -> Iterator[Callable[..., Fleet]]:
    started: list[Fleet] = []

    def start(spec: Any, **kwargs: Any) -> Fleet:
        fleet = Fleet(spec, **kwargs).start()
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean HOME with no kubeconfig and no ~/.sky/config.yaml."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("SKYPILOT_CONFIG", raising=False)
    return home


def write_sky_config(home: Path, body: str) -> Path:
    path = home / ".sky" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed on this machine (tests drive the real binary)"
)

os.environ.setdefault("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")


def shared_ipython() -> Any:
    """IPython's test shell, one per session for every test file.

    `globalipapp.get_ipython` answers None on a second call when imported by name (the module
    rebinds it after the first start), so always go through the module attribute.
    """
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    return globalipapp.get_ipython()


@pytest.fixture(scope="session")
def ipshell() -> Any:
    return shared_ipython()


@pytest.fixture
def jobs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private managed-jobs state directory ($SKYMAGIC_JOBS_DIR) for one test.

    Its controller (started by the test through skymagic.jobs) gets a 1 s node grace, and is
    stopped afterwards; its log is printed so a failing test shows what the controller did.
    """
    directory = tmp_path / "jobs"
    monkeypatch.setenv("SKYMAGIC_JOBS_DIR", str(directory))
    monkeypatch.setenv("SKYMAGIC_JOBS_NODE_GRACE_S", "1")
    monkeypatch.setenv("SKYMAGIC_JOBS_IDLE_EXIT_S", "120")  # a leaked one still goes away
    yield directory
    from skymagic.jobs import process

    process.stop(directory)
    log = directory / process.LOG_FILE
    if log.exists():
        print("--- jobs controller log ---\n" + log.read_text(errors="replace")[-6000:])
    assert not process.status(directory).running
