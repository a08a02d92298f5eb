"""Targets are resolved once per operation, against a simulated fleet.

One check, one GPU listing, one launch (pinned or not, dry run or not) and one down each run
the admin policy exactly once and read each kubeconfig file exactly once: the launch hands
its Targets to the inventory and to the search for an existing launch instead of resolving
again. File reads are counted with a Python audit hook (every `open` of the file, whoever
opens it), the policy's calls by the policy itself.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import write_sky_config

import skymagic
from skymagic.core.client import ClientSettings, clear_clients
from skymagic.core.targets import Settings
from skymagic.errors import ConfigError
from skymagic.gpus.inventory import show_gpus
from skymagic.health import check
from skymagic.launches import LaunchControls, LaunchResult, Plan, down, launch_task, parse_task
from skymagic.sim import Fleet

SPEC = {
    "clusters": [
        {
            "name": name,
            "pod_start_s": 0.05,
            "nodes": [{"count": 1, "name": "gpu", "gpu": "H100", "gpus": 8, "labels": "gfd"}],
        }
        for name in ("team-alpha", "team-beta")
    ]
}

_opened: Counter[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened[os.path.abspath(args[0])] += 1


_hooked = False


@contextmanager
def opens() -> Iterator[Counter[str]]:
    """Count the opens of every file by path while the block runs."""
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # audit hooks cannot be removed; it idles outside `opens()`
        _hooked = True
    counts: Counter[str] = Counter()
    _opened = counts
    try:
        yield counts
    finally:
        _opened = None


COUNTING_POLICY = """
CALLS = []

class Counting:
    def validate_and_mutate(self, request):
        CALLS.append(request.operation)
        return request
"""


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Iterator[Fleet]:
    clear_clients()
    yield make_fleet(SPEC)
    clear_clients()


@pytest.fixture
def counting(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[str]]:
    """The fleet's kubeconfig, a config naming a policy that records each call; its calls."""
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    monkeypatch.setenv("SKYMAGIC_USER", "tester")
    pkg = tmp_path / "policies"
    pkg.mkdir()
    (pkg / "countpolicy.py").write_text(COUNTING_POLICY)
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("countpolicy", None)
    write_sky_config(
        isolated_env,
        "admin_policy: countpolicy.Counting\n"
        "kubernetes:\n  allowed_contexts: [team-alpha, team-beta]\n",
    )

    def calls() -> list[str]:
        module = sys.modules.get("countpolicy")
        return list(getattr(module, "CALLS", []))

    return calls


def fast() -> Settings:
    return Settings(client=ClientSettings(request_timeout=3.0, retries=0))


def launch(name: str, infra: str | None = None, **kw: Any) -> LaunchResult | Plan:
    task = parse_task("sleep 1", name=name, gpus="H100:1", cpus="1", memory="1", infra=infra)
    return launch_task(task, fast(), LaunchControls(**kw))


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (lambda: check(fast()), "check"),
        (lambda: show_gpus(fast()), "gpus"),
        (lambda: launch("plan", dry_run=True), "launch"),
        (lambda: launch("plan", "k8s/team-beta", dry_run=True), "launch"),
        (lambda: launch("run", detach=True), "launch"),
        (lambda: launch("pinned", "k8s/team-beta", detach=True), "launch"),
    ],
    ids=[
        "check",
        "show_gpus",
        "launch-dry-run",
        "launch-pinned-dry-run",
        "launch",
        "launch-pinned",
    ],
)
def test_one_operation_runs_the_policy_once_and_reads_the_kubeconfig_once(
    counting: Callable[[], list[str]],
    fleet: Fleet,
    operation: Callable[[], Any],
    expected: str,
) -> None:
    with opens() as opened:
        result = operation()
    assert counting() == [expected]
    assert opened[fleet.kubeconfig] == 1
    if isinstance(result, LaunchResult):
        assert result.status == "Running"
        assert result.context == ("team-beta" if "pinned" in result.name else "team-alpha")
    if isinstance(result, Plan):
        assert result.chosen == ("team-beta" if len(result.rows) == 1 else "team-alpha")


def test_down_of_an_unknown_name_resolves_once(
    counting: Callable[[], list[str]], fleet: Fleet
) -> None:
    with opens() as opened, pytest.raises(ConfigError, match="no skymagic launch named 'nope'"):
        down(["nope"], fast())
    assert counting() == ["down"]
    assert opened[fleet.kubeconfig] == 1


def split(kubeconfig: str, dest: Path) -> dict[str, str]:
    """One kubeconfig text per context, as a cluster-credentials service hands them out."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    out = {}
    for ctx in doc["contexts"]:
        cluster = next(c for c in doc["clusters"] if c["name"] == ctx["context"]["cluster"])
        user = next(u for u in doc["users"] if u["name"] == ctx["context"]["user"])
        single = {"clusters": [cluster], "users": [user], "contexts": [ctx]}
        out[ctx["name"]] = yaml.safe_dump(single)
    return out


@pytest.fixture
def dynamic(
    fleet: Fleet, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The shipped dynamic-contexts policy: team-beta from its source, team-alpha the user's."""
    files = split(fleet.kubeconfig, tmp_path)
    user_kc = isolated_env / ".kube" / "config"
    user_kc.parent.mkdir(parents=True)
    user_kc.write_text(files["team-alpha"])
    monkeypatch.setenv("KUBECONFIG", str(user_kc))
    source = tmp_path / "source"
    source.mkdir()
    (source / "team-beta.yaml").write_text(files["team-beta"])
    managed = tmp_path / "managed" / "kubeconfig"
    write_sky_config(
        isolated_env,
        textwrap.dedent(
            f"""\
            admin_policy: skymagic.policy.DynamicKubernetesContextsUpdatePolicy
            dynamic_kubernetes_contexts:
              source: {{directory: {source}}}
              kubeconfig: {managed}
              keep_user_contexts: true
            kubernetes:
              allowed_contexts: [team-alpha]
            """
        ),
    )
    return {"files": files, "source": source, "user_kc": user_kc, "managed": managed}


def test_the_users_kubeconfig_is_read_once_beside_the_policys(dynamic: dict[str, Any]) -> None:
    with opens() as opened:
        report = check(fast())
    assert [c.context for c in report.contexts] == ["team-beta", "team-alpha"]
    assert all(c.enabled for c in report.contexts)
    assert opened[str(dynamic["user_kc"])] == 1


def test_a_dashboard_refresh_leaves_an_unchanged_merged_kubeconfig_alone(
    dynamic: dict[str, Any],
) -> None:
    managed: Path = dynamic["managed"]
    with skymagic.dashboard(fast(), auto_refresh=False, watch=False) as dash:
        before = managed.stat()
        dash.refresh()
        dash.refresh()
        assert dash.last_error is None and dash.refresh_count == 3
        after = managed.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        # A changed source does change it, at the next refresh.
        (dynamic["source"] / "team-alpha.yaml").write_text(dynamic["files"]["team-alpha"])
        dash.refresh()
    assert managed.stat().st_ino != before.st_ino
    contexts = yaml.safe_load(managed.read_text())["contexts"]
    assert [c["name"] for c in contexts] == ["team-alpha", "team-beta"]
