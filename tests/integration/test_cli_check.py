"""`skymagic check` as a subprocess: exit codes, `-o json` that parses, the tree as text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from checkkit import (
    BAD,
    BLACK,
    CERT,
    MIXED_SPEC,
    OFF,
    TOK,
    assert_no_secrets,
    bad_token_kubeconfig,
    secrets_in,
)
from conftest import write_sky_config

from skymagic.sim import Fleet


@pytest.fixture
def mixed(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(json.loads(json.dumps(MIXED_SPEC)))


def run(home: Path, kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SKYPILOT_CONFIG"}
    env.update(HOME=str(home), KUBECONFIG=kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "skymagic", "check", *args],
        check=False, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_json_output_parses_and_exit_code_zero(mixed: Fleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    kc = bad_token_kubeconfig(mixed, tmp_path / "kubeconfig")
    write_sky_config(home, f"kubernetes:\n  allowed_contexts: ['{TOK}', '{BAD}', '{BLACK}']\n")
    proc = run(home, str(kc), "-o", "json", "--timeout", "1")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["enabled"] is True
    verdicts = {c["context"]: (c["enabled"], c["error_kind"]) for c in data["contexts"]}
    assert verdicts == {TOK: (True, None), BAD: (False, "unauthorized"), BLACK: (False, "timeout")}
    assert_no_secrets(proc.stdout + proc.stderr, secrets_in(kc))
    assert not mixed.requests(OFF)


def test_table_prints_the_tree(mixed: Fleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_sky_config(home, "kubernetes:\n  allowed_contexts: all\n")
    proc = run(home, mixed.kubeconfig, "--infra", f"k8s/{CERT}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1] == "Kubernetes: enabled"
    assert f"  └── {CERT}: enabled." in lines
    assert proc.stderr == ""


def test_nothing_enabled_exits_one(mixed: Fleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_sky_config(home, f"kubernetes:\n  allowed_contexts: ['{BLACK}', 'ghost']\n")
    proc = run(home, mixed.kubeconfig, "--timeout", "0.5")
    assert proc.returncode == 1
    assert "Kubernetes: disabled" in proc.stdout
    assert "allowed context 'ghost' is not in the kubeconfig" in proc.stdout


@pytest.mark.parametrize(
    ("args", "config", "code", "needle"),
    [
        ((), "kubernetes:\n  allowed_contexts: 3\n", 1, "kubernetes.allowed_contexts"),
        (
            ("--infra", f"k8s/{OFF}"),
            f"kubernetes:\n  allowed_contexts: ['{TOK}']\n",
            1,
            "not allowed",
        ),
        (("--timeout", "0"), "", 2, "must be a positive number of seconds"),
        (("-o", "yaml"), "", 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_on_stderr(
    mixed: Fleet, tmp_path: Path, args: tuple[str, ...], config: str, code: int, needle: str
) -> None:
    home = tmp_path / "home"
    write_sky_config(home, config)
    proc = run(home, mixed.kubeconfig, *args)
    assert proc.returncode == code
    assert proc.stdout == ""
    assert needle in proc.stderr
    if code == 1:
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
        for name in mixed.clusters:
            assert not mixed.requests(name)
