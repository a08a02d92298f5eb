"""The exec credential plugin, run as a real subprocess like client-go / the Python client do."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skymagic.sim.tokens import Identity, TokenMinter

SECRET = b"fleet-secret\n"


def _run(tmp: Path, *args: str, info: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_EXEC_INFO"}
    if info is not None:
        env["KUBERNETES_EXEC_INFO"] = info
    return subprocess.run(
        [sys.executable, "-m", "skymagic.sim.exec_plugin", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=30,
        cwd=tmp,
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    p = tmp_path / "secret"
    p.write_bytes(SECRET)
    return p


@pytest.mark.parametrize(
    "api_version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
)
def test_answers_same_api_version_with_valid_token(
    tmp_path: Path, secret_file: Path, api_version: str
) -> None:
    info = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    )
    before = time.time()
    res = _run(
        tmp_path,
        "--secret-file",
        str(secret_file),
        "--user",
        "alice",
        "--group",
        "g1",
        "--group",
        "g2",
        "--ttl",
        "120",
        info=info,
    )
    assert res.returncode == 0, res.stderr
    cred = json.loads(res.stdout)
    assert cred["apiVersion"] == api_version and cred["kind"] == "ExecCredential"
    tok = cred["status"]["token"]
    assert TokenMinter(SECRET).verify(tok) == Identity("alice", ("g1", "g2"))
    ts = cred["status"]["expirationTimestamp"]
    assert ts.endswith("Z") and len(ts) == 20
    exp = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    assert before + 118 <= exp <= time.time() + 120
    assert exp <= TokenMinter.expiry(tok)  # the client refreshes no later than the server refuses


def test_default_v1beta1_and_ttl(tmp_path: Path, secret_file: Path) -> None:
    res = _run(tmp_path, "--secret-file", str(secret_file), "--user", "bob")
    assert res.returncode == 0, res.stderr
    cred = json.loads(res.stdout)
    assert cred["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    exp = TokenMinter.expiry(cred["status"]["token"])
    assert exp is not None and 3590 < exp - time.time() <= 3600


def test_count_file_gets_a_line_per_run(tmp_path: Path, secret_file: Path) -> None:
    count = tmp_path / "runs"
    for _ in range(3):
        assert (
            _run(
                tmp_path,
                "--secret-file",
                str(secret_file),
                "--user",
                "c",
                "--count-file",
                str(count),
            ).returncode
            == 0
        )
    assert len(count.read_text().splitlines()) == 3


def test_missing_secret_file_fails_with_one_line(tmp_path: Path) -> None:
    res = _run(tmp_path, "--secret-file", str(tmp_path / "nope"), "--user", "x")
    assert res.returncode == 1
    assert res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "nope" in res.stderr


def _imported(*args: str) -> set[str]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-500:]
    return {line.split("|")[-1].strip() for line in res.stderr.splitlines() if "|" in line}


def test_imports_nothing_heavy(secret_file: Path) -> None:
    """The plugin itself adds only stdlib + skymagic.sim.tokens to what the package init imports.

    It runs on every credential refresh, so it must start fast; what it imports is the
    behaviour tested here (a wall-clock bound on a process start would only measure the load).

    (skymagic.sim/__init__.py's own imports are the package's business: keep them lazy.)
    """
    base = _imported("-c", "import skymagic.sim")
    run = _imported(
        "-m", "skymagic.sim.exec_plugin", "--secret-file", str(secret_file), "--user", "x"
    )
    added = {m.split(".")[0] for m in run - base}
    heavy = {"kubernetes", "pandas", "cryptography", "msgspec", "yaml", "IPython", "asyncio", "ssl"}
    assert not heavy & added, heavy & added
