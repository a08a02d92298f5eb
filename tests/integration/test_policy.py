"""Admin policies and dynamic contexts (issue 7), against a simulated fleet.

The shipped DynamicKubernetesContextsUpdatePolicy reads cluster credentials from a directory
(or a command), so these tests play the administrator: they drop single-cluster kubeconfig
files into the source directory and remove them, and check what the next operation sees.
"""

from __future__ import annotations

import hashlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import shared_ipython, write_sky_config

from skymagic.core.targets import Settings
from skymagic.errors import PolicyError
from skymagic.health import check
from skymagic.launches import LaunchControls, launch_task, parse_task
from skymagic.sim import Fleet

SPEC = {
    "clusters": [
        {
            "name": f"team-{c}",
            "auth": "token",
            "nodes": [{"count": 1, "name": "gpu", "gpu": "H100", "gpus": 8, "labels": "gfd"}],
        }
        for c in ("alpha", "beta", "gamma")
    ]
}


def split_kubeconfig(kubeconfig: str, dest: Path) -> dict[str, Path]:
    """One kubeconfig file per context, as a cluster-credentials service would hand out."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    out = {}
    for ctx in doc["contexts"]:
        cluster = next(c for c in doc["clusters"] if c["name"] == ctx["context"]["cluster"])
        user = next(u for u in doc["users"] if u["name"] == ctx["context"]["user"])
        single = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [user],
            "contexts": [ctx],
            "current-context": ctx["name"],
        }
        path = dest / f"{ctx['name']}.yaml"
        out[ctx["name"]] = path
        dest.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(single))
    return out


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(SPEC)


@pytest.fixture
def admin(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A user whose own kubeconfig knows only team-alpha; clusters come from the policy source."""
    files = split_kubeconfig(fleet.kubeconfig, tmp_path / "all")
    user_kc = isolated_env / ".kube" / "config"
    user_kc.parent.mkdir(parents=True)
    user_kc.write_text(files["team-alpha"].read_text())
    monkeypatch.setenv("KUBECONFIG", str(user_kc))
    source = tmp_path / "source"
    source.mkdir()
    managed = tmp_path / "managed" / "kubeconfig"
    config = write_sky_config(
        isolated_env,
        textwrap.dedent(
            f"""\
            admin_policy: skymagic.policy.DynamicKubernetesContextsUpdatePolicy
            dynamic_kubernetes_contexts:
              source: {{directory: {source}}}
              kubeconfig: {managed}
              exclude: ["*-gamma"]
              max_gpus_per_launch: 4
            kubernetes:
              allowed_contexts: [team-alpha]
            """
        ),
    )
    yield {
        "files": files,
        "source": source,
        "user_kc": user_kc,
        "config": config,
        "managed": managed,
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_cluster_in_the_source_is_usable_in_the_next_call(admin: dict[str, Any]) -> None:
    source: Path = admin["source"]
    (source / "team-beta.yaml").write_text(admin["files"]["team-beta"].read_text())
    first = check(Settings())
    assert [c.context for c in first.contexts] == ["team-beta"]
    assert first["team-beta"].enabled
    assert any(
        "Admin policy skymagic.policy.DynamicKubernetesContextsUpdatePolicy" in n
        for n in first.notes
    )
    text = str(first)
    assert "allowed_contexts set to ['team-beta']" in text
    # The administrator adds a cluster: the very next call sees it, no restart.
    (source / "team-alpha.yaml").write_text(admin["files"]["team-alpha"].read_text())
    second = check(Settings())
    assert [c.context for c in second.contexts] == ["team-alpha", "team-beta"]
    assert all(c.enabled for c in second.contexts)
    # ... and removes one: it disappears.
    (source / "team-beta.yaml").unlink()
    third = check(Settings())
    assert [c.context for c in third.contexts] == ["team-alpha"]


def test_exclude_patterns_filter_the_source(admin: dict[str, Any]) -> None:
    for name in ("team-beta", "team-gamma"):
        (admin["source"] / f"{name}.yaml").write_text(admin["files"][name].read_text())
    report = check(Settings())
    assert [c.context for c in report.contexts] == ["team-beta"]


def test_the_users_files_are_never_edited(admin: dict[str, Any]) -> None:
    (admin["source"] / "team-beta.yaml").write_text(admin["files"]["team-beta"].read_text())
    before = (digest(admin["user_kc"]), digest(admin["config"]))
    check(Settings())
    assert (digest(admin["user_kc"]), digest(admin["config"])) == before
    managed: Path = admin["managed"]
    assert managed.exists() and managed.stat().st_mode & 0o077 == 0  # private: it holds tokens


def test_launch_over_the_gpu_cap_is_refused_with_the_policys_reason(
    admin: dict[str, Any], fleet: Fleet
) -> None:
    (admin["source"] / "team-beta.yaml").write_text(admin["files"]["team-beta"].read_text())
    task = parse_task("echo hi", name="too-big", gpus="H100:8")
    with pytest.raises(PolicyError) as err:
        launch_task(task, Settings())
    assert "at most 4 GPUs per launch" in str(err.value) and "asks for 8" in str(err.value)
    assert not [
        r
        for r in fleet.requests("team-beta")
        if r["method"] == "POST" and r["path"].endswith("/pods")
    ]
    # Under the cap, the same policy lets it through, on the policy's cluster.
    ok = launch_task(
        parse_task("echo hi", name="small", gpus="H100:2", cpus="1", memory="1"),
        Settings(),
        LaunchControls(detach=True),
    )
    assert getattr(ok, "context", None) == "team-beta"


def _write_policy_module(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "policies"
    pkg.mkdir(exist_ok=True)
    (pkg / "mypolicy.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("mypolicy", None)


@pytest.mark.parametrize(
    ("body", "policy", "expected"),
    [
        ("", "nosuchpkg.Policy", "cannot be imported"),
        (
            """
            class Refuse:
                def validate_and_mutate(self, request):
                    raise RuntimeError("GPU launches are frozen until Monday")
            """,
            "mypolicy.Refuse",
            "GPU launches are frozen until Monday",
        ),
        (
            """
            class WrongType:
                def validate_and_mutate(self, request):
                    return {"allowed_contexts": ["x"]}
            """,
            "mypolicy.WrongType",
            "returned dict",
        ),
        (
            """
            class NoMethod:
                pass
            """,
            "mypolicy.NoMethod",
            "no validate_and_mutate",
        ),
    ],
)
def test_a_broken_policy_is_one_clear_error_and_touches_nothing(
    fleet: Fleet,
    isolated_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    policy: str,
    expected: str,
) -> None:
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    if body:
        _write_policy_module(tmp_path, body, monkeypatch)
    config = write_sky_config(
        isolated_env, f"admin_policy: {policy}\nkubernetes:\n  allowed_contexts: all\n"
    )
    before = (digest(Path(fleet.kubeconfig)), digest(config))
    with pytest.raises(PolicyError) as err:
        check(Settings())
    message = str(err.value)
    assert expected in message and "\n" not in message
    assert err.value._render_traceback_()[0].count("\n") == 0
    assert (digest(Path(fleet.kubeconfig)), digest(config)) == before
    for cluster in fleet.clusters:
        assert fleet.requests(cluster) == []  # refused before any cluster was contacted


def test_a_custom_policy_can_restrict_contexts_per_operation(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    _write_policy_module(
        tmp_path,
        """
        class OnlyAlphaForGpus:
            def validate_and_mutate(self, request):
                if request.operation == "gpus":
                    request.config.setdefault("kubernetes", {})["allowed_contexts"] = ["team-alpha"]
                return request
        """,
        monkeypatch,
    )
    write_sky_config(
        isolated_env,
        "admin_policy: mypolicy.OnlyAlphaForGpus\nkubernetes:\n  allowed_contexts: all\n",
    )
    from skymagic.gpus.inventory import show_gpus

    assert [c.context for c in check(Settings()).contexts] == [
        "team-alpha",
        "team-beta",
        "team-gamma",
    ]
    assert show_gpus(Settings()).contexts == ["team-alpha"]


def test_command_source_and_check_magic_show_the_policy(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = split_kubeconfig(fleet.kubeconfig, tmp_path / "all")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    script = tmp_path / "fetch-clusters"
    script.write_text(f"#!/bin/sh\ncat {files['team-gamma']}\n")
    script.chmod(0o755)
    write_sky_config(
        isolated_env,
        textwrap.dedent(
            f"""\
            admin_policy: skymagic.policy.DynamicKubernetesContextsUpdatePolicy
            dynamic_kubernetes_contexts:
              source: {{command: {script}}}
              kubeconfig: {tmp_path / "managed.yaml"}
            """
        ),
    )
    ip = shared_ipython()
    ip.run_line_magic("load_ext", "skymagic")
    report = ip.run_line_magic("sky_check", "")
    assert [c.context for c in report.contexts] == ["team-gamma"] and report.enabled
    assert "Admin policy skymagic.policy.DynamicKubernetesContextsUpdatePolicy is active." in str(
        report
    )
    assert "token" not in str(report).lower() or "token)" in str(
        report
    )  # auth kind only, no secret


def test_a_failing_source_command_is_one_clear_error(isolated_env: Path, tmp_path: Path) -> None:
    write_sky_config(
        isolated_env,
        textwrap.dedent(
            """\
            admin_policy: skymagic.policy.DynamicKubernetesContextsUpdatePolicy
            dynamic_kubernetes_contexts:
              source: {command: "echo 'login expired' >&2; exit 3"}
            """
        ),
    )
    with pytest.raises(PolicyError, match=r"exit 3\): login expired"):
        check(Settings())


def test_contexts_a_policy_removes_show_in_the_plan_as_excluded(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    _write_policy_module(
        tmp_path,
        """
        class NoBetaLaunches:
            def validate_and_mutate(self, request):
                if request.operation == "launch":
                    k8s = request.config.setdefault("kubernetes", {})
                    k8s["allowed_contexts"] = ["team-alpha", "team-gamma"]
                return request
        """,
        monkeypatch,
    )
    write_sky_config(
        isolated_env,
        "admin_policy: mypolicy.NoBetaLaunches\n"
        "kubernetes:\n  allowed_contexts: [team-beta, team-alpha, team-gamma]\n",
    )
    plan = launch_task(
        parse_task("echo hi", name="p", gpus="H100:1"), Settings(), LaunchControls(dry_run=True)
    )
    rows = {r.context: r for r in plan.rows}  # type: ignore[union-attr]
    assert [r.context for r in plan.rows] == ["team-alpha", "team-gamma", "team-beta"]  # type: ignore[union-attr]
    assert not rows["team-beta"].fits
    assert (
        rows["team-beta"].reason
        == "excluded by policy: removed by admin policy mypolicy.NoBetaLaunches"
    )
    assert plan.chosen == "team-alpha"  # type: ignore[union-attr]
    with pytest.raises(
        PolicyError, match="context 'team-beta': not available: removed by admin policy"
    ):
        launch_task(
            parse_task("echo hi", name="p", infra="k8s/team-beta"),
            Settings(),
            LaunchControls(dry_run=True),
        )
    # Other operations are untouched by this policy: check still sees all three.
    assert [c.context for c in check(Settings()).contexts] == [
        "team-beta",
        "team-alpha",
        "team-gamma",
    ]
