"""`%sky_check` in a real IPython shell against a simulated fleet.

What a notebook user sees: `%load_ext`, the returned report (`r = %sky_check`), flags and
`%sky_check?`, `%config SkyMagics...` overriding the config file, domain errors as one line
with no secret, a clean unload/reload, and an import that stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    BLACK,
    CERT,
    EXEC,
    MIXED_SPEC,
    OFF,
    TOK,
    assert_no_secrets,
    entry,
    fresh_clients,
    load_doc,
    python_script,
    secrets_in,
    write_doc,
)
from conftest import shared_ipython, write_sky_config
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from skymagic.errors import ConfigError, KubeconfigError
from skymagic.health import CheckReport
from skymagic.sim import Fleet


@pytest.fixture(scope="module")
def ip() -> InteractiveShell:
    shell: InteractiveShell = shared_ipython()
    return shell


@pytest.fixture
def shell(ip: InteractiveShell) -> Iterator[InteractiveShell]:
    """The session shell with skymagic loaded and its settings back at their defaults."""
    fresh_clients()
    ip.run_line_magic("load_ext", "skymagic")
    ip.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    ip.run_line_magic("config", "SkyMagics.request_timeout = 1.0")
    yield ip
    ip.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    ip.run_line_magic("config", "SkyMagics.request_timeout = 5.0")
    fresh_clients()


@pytest.fixture
def mixed(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Fleet:
    fleet = make_fleet(json.loads(json.dumps(MIXED_SPEC)))
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    return fleet


def run_cell(ip: InteractiveShell, code: str) -> tuple[Any, str]:
    """Run a cell as a notebook would; return (ExecutionResult, captured stdout+stderr)."""
    with capture_output() as cap:
        result = ip.run_cell(code)
    return result, cap.stdout + cap.stderr


def test_sky_check_returns_and_assigns_the_report(shell: InteractiveShell, mixed: Fleet) -> None:
    write_sky_config(
        Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}', '{EXEC}']\n"
    )
    report = shell.run_line_magic("sky_check", "")
    assert isinstance(report, CheckReport)
    assert [(c.context, c.enabled) for c in report.contexts] == [(TOK, True), (EXEC, True)]

    result, out = run_cell(shell, "r = %sky_check")
    assert result.success, out
    assert isinstance(shell.user_ns["r"], CheckReport)
    assert out == ""  # assignment keeps it quiet
    # as the last expression the tree is the cell's output
    result, out = run_cell(shell, "%sky_check")
    assert result.success
    assert f"├── {TOK}: enabled." in out and f"└── {EXEC}: enabled." in out
    assert not mixed.requests(OFF)


def test_infra_flag_pins_one_context(shell: InteractiveShell, mixed: Fleet) -> None:
    write_sky_config(Path(os.environ["HOME"]), "kubernetes:\n  allowed_contexts: all\n")
    report = shell.run_line_magic("sky_check", f"--infra k8s/{CERT}")
    assert [c.context for c in report.contexts] == [CERT] and report[CERT].enabled
    # a quoted name works too, and nothing else was contacted
    report = shell.run_line_magic("sky_check", f'--infra "k8s/{CERT}" --timeout 3')
    assert [c.context for c in report.contexts] == [CERT]
    for name in mixed.clusters:
        assert bool(mixed.requests(name)) == (name == CERT), name


@pytest.mark.parametrize("line", ["--bogus", "--timeout soon", "--timeout 0", "--infra"])
def test_bad_flags_raise_usage_error(shell: InteractiveShell, line: str) -> None:
    with pytest.raises(UsageError):
        shell.run_line_magic("sky_check", line)


def test_help_explains_every_flag(shell: InteractiveShell) -> None:
    doc = shell.find_line_magic("sky_check").__doc__ or ""
    for flag in ("--infra", "--timeout", "k8s/CONTEXT"):
        assert flag in doc
    with capture_output() as cap:
        shell.run_line_magic("pinfo", "%sky_check")
    assert "--infra" in cap.stdout and "--timeout" in cap.stdout
    # every magic's help starts at its usage line (no reST "::" above it)
    magics = shell.magics_manager.magics
    ours = {
        name: fn
        for kind in ("line", "cell")
        for name, fn in magics[kind].items()
        if name.startswith("sky_")
    }
    assert len(ours) >= 8
    for name, fn in ours.items():
        assert (fn.__doc__ or "").lstrip().startswith(("%sky_", "%%sky_")), name
        assert "::" not in (fn.__doc__ or "").splitlines()[0], name


def test_config_overrides_the_file_and_flags_override_config(
    shell: InteractiveShell, mixed: Fleet
) -> None:
    write_sky_config(Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}']\n")
    shell.run_line_magic("config", f"SkyMagics.allowed_contexts = ['{EXEC}', '{BLACK}']")
    report = shell.run_line_magic("sky_check", "")
    assert [c.context for c in report.contexts] == [EXEC, BLACK]
    assert report.allowed_source == "override"
    assert "timed out after 1 s" in report[BLACK].reason  # %config request_timeout = 1
    assert not mixed.requests(TOK)
    # a flag overrides the session setting for one call only
    report = shell.run_line_magic("sky_check", f"--timeout 0.5 --infra k8s/{BLACK}")
    assert "timed out after 0.5 s" in report[BLACK].reason
    report = shell.run_line_magic("sky_check", f"--infra k8s/{BLACK}")
    assert "timed out after 1 s" in report[BLACK].reason
    # `all` as a string works from %config too
    shell.run_line_magic("config", "SkyMagics.allowed_contexts = 'all'")
    shell.run_line_magic("config", "SkyMagics.request_timeout = 0.5")
    assert len(shell.run_line_magic("sky_check", "").contexts) == len(mixed.contexts)


def test_domain_errors_are_one_line_and_fail_the_cell(
    shell: InteractiveShell, mixed: Fleet
) -> None:
    write_sky_config(Path(os.environ["HOME"]), "kubernetes:\n  allowed_contexts: 3\n")
    result, out = run_cell(shell, "%sky_check")
    assert isinstance(result.error_in_exec, ConfigError)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "ConfigError" in lines[0] and "kubernetes.allowed_contexts" in lines[0]
    assert "Traceback" not in out

    write_sky_config(Path(os.environ["HOME"]), f"kubernetes:\n  allowed_contexts: ['{TOK}']\n")
    result, out = run_cell(shell, f"%sky_check --infra k8s/{CERT}")
    assert isinstance(result.error_in_exec, ConfigError)
    assert "not allowed" in out and len(out.strip().splitlines()) == 1
    assert not mixed.requests(CERT)


def test_broken_kubeconfig_error_shows_no_secret(
    shell: InteractiveShell, mixed: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = secrets_in(mixed.kubeconfig)
    broken = tmp_path / "broken.yaml"
    # a valid file with the fleet's secrets, then a YAML error right after a token line
    broken.write_text(Path(mixed.kubeconfig).read_text() + "\nextra: [unclosed\n")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    result, out = run_cell(shell, "%sky_check")
    assert isinstance(result.error_in_exec, KubeconfigError)
    assert str(broken) in out and len(out.strip().splitlines()) == 1
    assert_no_secrets(out, secrets)


def test_unload_then_load_again(shell: InteractiveShell, mixed: Fleet) -> None:
    shell.run_line_magic("unload_ext", "skymagic")
    assert shell.find_line_magic("sky_check") is None
    result, _ = run_cell(shell, "%sky_check")
    assert not result.success  # UsageError: line magic not found
    shell.run_line_magic("load_ext", "skymagic")
    assert shell.find_line_magic("sky_check") is not None
    assert shell.run_line_magic("sky_check", "").enabled
    # loading twice does not register the magics twice
    shell.run_line_magic("reload_ext", "skymagic")
    assert shell.run_line_magic("sky_check", "").enabled


def test_gke_exec_plugin_end_to_end(
    shell: InteractiveShell,
    mixed: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exact stanza `gcloud container clusters get-credentials` writes, with a fake
    gke-gcloud-auth-plugin on PATH that prints a token the fleet minted."""
    token = mixed.mint_token(TOK, "gke-user@example.com", groups=["system:masters"])
    seen = tmp_path / "exec-info.json"
    python_script(
        tmp_path / "bin" / "gke-gcloud-auth-plugin",
        "import json, os\n"
        f"open({str(seen)!r}, 'w').write(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'kind': 'ExecCredential', 'apiVersion': info['apiVersion'],\n"
        f"  'status': {{'token': {token!r}, 'expirationTimestamp': '2999-01-01T00:00:00Z'}}}}))\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    fleet_doc = load_doc(mixed.kubeconfig)
    gke = "gke_my-project_us-central1-a_gpu-cluster"
    cluster = dict(entry(fleet_doc, "clusters", TOK)["cluster"])
    write_doc(
        tmp_path / "gke.yaml",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": gke, "cluster": cluster}],
            "users": [
                {
                    "name": gke,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "installHint": "Install gke-gcloud-auth-plugin for use with kubectl "
                            "by following https://cloud.google.com/kubernetes-engine/docs/how-to/"
                            "cluster-access-for-kubectl#install_plugin",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
            "contexts": [{"name": gke, "context": {"cluster": gke, "user": gke}}],
            "current-context": gke,
        },
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gke.yaml"))
    mixed.clear_requests()
    report = shell.run_line_magic("sky_check", "")
    assert [c.context for c in report.contexts] == [gke]
    assert report[gke].enabled, report[gke].reason
    assert report[gke].auth == "exec"
    assert {r["user"] for r in mixed.requests(TOK)} == {"gke-user@example.com"}
    info = json.loads(seen.read_text())
    assert info["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == mixed.server(TOK)
    assert_no_secrets(str(report) + json.dumps(report.to_dict()), [token])
