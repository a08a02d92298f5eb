"""config.py: ~/.sky/config.yaml keys, SKYPILOT_CONFIG at call time, allowed contexts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.config import (
    AllowedContexts,
    SkyConfig,
    config_path,
    load_config,
    resolve_allowed_contexts,
)
from skymagic.core.kubeconfig import Kubeconfig, load_kubeconfig
from skymagic.errors import ConfigError


def write_cfg(tmp_path: Path, doc: Any, name: str = "config.yaml") -> str:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(p)


def kubeconfig(tmp_path: Path, names: list[str], current: str = "") -> Kubeconfig:
    doc = {
        "current-context": current,
        "clusters": [{"name": "cl", "cluster": {"server": "https://k"}}],
        "contexts": [{"name": n, "context": {"cluster": "cl"}} for n in names],
    }
    p = tmp_path / "kubeconfig"
    p.write_text(yaml.safe_dump(doc))
    return load_kubeconfig([str(p)])


# --------------------------------------------------------------------------- loading


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(str(tmp_path / "absent.yaml"))
    assert cfg == SkyConfig(path=None)
    assert cfg.allowed_contexts is None
    assert cfg.remote_identity == "SERVICE_ACCOUNT"
    assert cfg.provision_timeout == 10.0
    assert cfg.admin_policy is None


def test_empty_file(tmp_path: Path) -> None:
    p = write_cfg(tmp_path, "")
    cfg = load_config(p)
    assert cfg.path == p and cfg.allowed_contexts is None


def test_full_file(tmp_path: Path) -> None:
    p = write_cfg(
        tmp_path,
        {
            "kubernetes": {
                "allowed_contexts": ["b", "a/x:y", "b"],
                "remote_identity": "my-sa",
                "provision_timeout": 30,
                "other_key": 1,
            },
            "admin_policy": "mypkg.policy.DynamicContexts",
            "aws": {"ignored": True},
        },
    )
    cfg = load_config(p)
    assert cfg.allowed_contexts == ("b", "a/x:y")  # order kept, duplicates dropped
    assert cfg.remote_identity == "my-sa" and cfg.remote_identity_for("any") == "my-sa"
    assert cfg.provision_timeout == 30.0
    assert cfg.admin_policy == "mypkg.policy.DynamicContexts"
    assert cfg.raw["aws"] == {"ignored": True}
    assert "ignored" not in repr(cfg)


def test_all(tmp_path: Path) -> None:
    cfg = load_config(write_cfg(tmp_path, "kubernetes:\n  allowed_contexts: all\n"))
    assert cfg.allowed_contexts == "all"


def test_skypilot_config_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = write_cfg(tmp_path, {"kubernetes": {"allowed_contexts": ["one"]}}, "one.yaml")
    two = write_cfg(tmp_path, {"kubernetes": {"allowed_contexts": ["two"]}}, "two.yaml")
    monkeypatch.setenv("SKYPILOT_CONFIG", one)
    assert config_path() == one
    assert load_config().allowed_contexts == ("one",)
    monkeypatch.setenv("SKYPILOT_CONFIG", two)
    assert load_config().allowed_contexts == ("two",)
    monkeypatch.delenv("SKYPILOT_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path() == str(tmp_path / "home" / ".sky" / "config.yaml")
    assert load_config().path is None


def test_config_path_from_mapping(tmp_path: Path) -> None:
    assert config_path({"HOME": "/h"}) == "/h/.sky/config.yaml"
    assert config_path({"SKYPILOT_CONFIG": str(tmp_path / "c.yaml")}) == str(tmp_path / "c.yaml")


MALFORMED = {
    "allowed-int": (
        "kubernetes:\n  allowed_contexts: 3\n",
        "kubernetes.allowed_contexts must be a list of context names or 'all', got 3",
    ),
    "allowed-single-string": (
        "kubernetes:\n  allowed_contexts: my-ctx\n",
        "allowed_contexts: [my-ctx]",
    ),
    "allowed-mapping": ("kubernetes:\n  allowed_contexts: {a: 1}\n", "got a mapping"),
    "allowed-item": (
        "kubernetes:\n  allowed_contexts: [a, 12]\n",
        "kubernetes.allowed_contexts[1]",
    ),
    "kubernetes-not-mapping": ("kubernetes: [a]\n", "kubernetes must be a mapping"),
    "top-level": ("- a\n", "(top level) must be a mapping"),
    "timeout-string": ("kubernetes:\n  provision_timeout: soon\n", "kubernetes.provision_timeout"),
    "timeout-negative": ("kubernetes:\n  provision_timeout: -1\n", "positive number"),
    "timeout-bool": ("kubernetes:\n  provision_timeout: true\n", "kubernetes.provision_timeout"),
    "identity-int": ("kubernetes:\n  remote_identity: 5\n", "kubernetes.remote_identity"),
    "identity-list-item": (
        "kubernetes:\n  remote_identity:\n  - {a: x, b: y}\n",
        "kubernetes.remote_identity[0] must be a single-key mapping",
    ),
    "identity-value": (
        "kubernetes:\n  remote_identity:\n    ctx: 3\n",
        "kubernetes.remote_identity.ctx",
    ),
    "admin-policy": ("admin_policy: 42\n", "admin_policy must be 'package.module.ClassName'"),
    "yaml-syntax": ("kubernetes:\n  allowed_contexts: [a\n", "not valid YAML at line"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_keys(case: str, tmp_path: Path) -> None:
    text, fragment = MALFORMED[case]
    p = write_cfg(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert p in msg and fragment in msg and "\n" not in msg


# --------------------------------------------------------------------------- remote identity


def test_remote_identity_skypilot_list_format(tmp_path: Path) -> None:
    text = """
kubernetes:
  remote_identity:
    - gke_proj_us_gpu: LOCAL_CREDENTIALS
    - "dev-*": dev-sa
    - "*": NO_UPLOAD
"""
    cfg = load_config(write_cfg(tmp_path, text))
    assert cfg.remote_identity == {
        "gke_proj_us_gpu": "LOCAL_CREDENTIALS",
        "dev-*": "dev-sa",
        "*": "NO_UPLOAD",
    }
    assert cfg.remote_identity_for("gke_proj_us_gpu") == "LOCAL_CREDENTIALS"
    assert cfg.remote_identity_for("dev-eu") == "dev-sa"
    assert cfg.remote_identity_for("prod") == "NO_UPLOAD"


def test_remote_identity_mapping_without_default(tmp_path: Path) -> None:
    text = "kubernetes:\n  remote_identity:\n    'arn:aws:eks:r:1:cluster/a': my-sa\n"
    cfg = load_config(write_cfg(tmp_path, text))
    assert cfg.remote_identity_for("arn:aws:eks:r:1:cluster/a") == "my-sa"
    assert cfg.remote_identity_for("other") == "SERVICE_ACCOUNT"


def test_remote_identity_exact_beats_pattern(tmp_path: Path) -> None:
    text = "kubernetes:\n  remote_identity:\n  - 'a*': pat\n  - abc: exact\n"
    cfg = load_config(write_cfg(tmp_path, text))
    assert cfg.remote_identity_for("abc") == "exact"
    assert cfg.remote_identity_for("ab") == "pat"


# --------------------------------------------------------------------------- allowed contexts


def test_allowed_list_in_failover_order_with_missing(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a", "b", "c"], current="a")
    cfg = load_config(write_cfg(tmp_path, {"kubernetes": {"allowed_contexts": ["c", "gone", "a"]}}))
    got = resolve_allowed_contexts(cfg, kc)
    assert got == AllowedContexts(names=("c", "a"), missing=("gone",), source="config")


def test_allowed_all_in_kubeconfig_order(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["z", "team/a:1", "m"], current="m")
    cfg = load_config(write_cfg(tmp_path, "kubernetes:\n  allowed_contexts: all\n"))
    got = resolve_allowed_contexts(cfg, kc)
    assert got.names == ("z", "team/a:1", "m") and got.source == "all" and got.missing == ()


def test_unset_means_current_context(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a", "b"], current="b")
    got = resolve_allowed_contexts(SkyConfig(), kc)
    assert got == AllowedContexts(names=("b",), missing=(), source="current-context")


def test_unset_and_no_current_context(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a", "b"], current="")
    got = resolve_allowed_contexts(SkyConfig(), kc)
    assert got.names == () and got.source == "current-context"
    assert "current-context" in got.reason and "allowed_contexts" in got.reason


def test_unset_and_current_context_undefined(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a"], current="ghost")
    got = resolve_allowed_contexts(SkyConfig(), kc)
    assert got.names == () and got.missing == ("ghost",) and "'ghost'" in got.reason


def test_all_missing_gives_reason(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a"])
    got = resolve_allowed_contexts(SkyConfig(allowed_contexts=("x", "y")), kc)
    assert got.names == () and got.missing == ("x", "y") and got.reason


def test_override_wins(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path, ["a", "b", "c"], current="a")
    cfg = SkyConfig(allowed_contexts=("a",))
    got = resolve_allowed_contexts(cfg, kc, override=["c", "b", "c", "nope"])
    assert got == AllowedContexts(names=("c", "b"), missing=("nope",), source="override")
    got = resolve_allowed_contexts(cfg, kc, override="all")
    assert got.names == ("a", "b", "c") and got.source == "override"


def test_no_caching_between_calls(tmp_path: Path) -> None:
    """An admin policy may rewrite the file between calls: every load reads it again."""
    p = write_cfg(tmp_path, {"kubernetes": {"allowed_contexts": ["a"]}})
    assert load_config(p).allowed_contexts == ("a",)
    write_cfg(tmp_path, {"kubernetes": {"allowed_contexts": ["b"]}})
    assert load_config(p).allowed_contexts == ("b",)
