"""kube-scheduler's TaintToleration rule, table-driven (cases after k8s.io/api/core/v1
toleration_test.go TestTolerationToleratesTaint and the scheduler plugin's
taint_toleration_test.go TestTaintTolerationFilter), and the plan reading it off the pod spec."""

from __future__ import annotations

from typing import Any

import pytest

from skymagic.launches.nodematch import node_rule
from skymagic.launches.taints import Taint, parse_taints, taint_text, tolerates, untolerated
from skymagic.launches.task import parse_task

FOO = ("foo", "bar", "NoSchedule")

TOLERATES: list[tuple[str, dict[str, Any], Taint, bool]] = [
    ("same key, effect and value, Equal", {"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoSchedule"}, FOO, True),
    ("operator empty means Equal", {"key": "foo", "value": "bar", "effect": "NoSchedule"}, FOO, True),
    ("Equal with a different value", {"key": "foo", "operator": "Equal", "value": "baz", "effect": "NoSchedule"}, FOO, False),
    ("Equal without a value vs a valued taint", {"key": "foo", "operator": "Equal", "effect": "NoSchedule"}, FOO, False),
    ("Equal without a value vs a taint without one", {"key": "foo", "operator": "Equal", "effect": "NoSchedule"}, ("foo", "", "NoSchedule"), True),
    ("Exists ignores the value", {"key": "foo", "operator": "Exists", "effect": "NoSchedule"}, FOO, True),
    ("Exists on another key", {"key": "other", "operator": "Exists", "effect": "NoSchedule"}, FOO, False),
    ("different effect", {"key": "foo", "operator": "Exists", "effect": "NoExecute"}, FOO, False),
    ("PreferNoSchedule toleration vs NoSchedule taint", {"key": "foo", "operator": "Exists", "effect": "PreferNoSchedule"}, FOO, False),
    ("empty effect matches every effect", {"key": "foo", "operator": "Exists"}, ("foo", "bar", "NoExecute"), True),
    ("empty effect, Equal, same value", {"key": "foo", "value": "bar"}, ("foo", "bar", "NoExecute"), True),
    ("empty key with Exists tolerates every taint", {"operator": "Exists"}, ("any/key", "v", "NoExecute"), True),
    ("empty key with Exists and an effect: that effect only", {"operator": "Exists", "effect": "NoSchedule"}, ("k", "", "NoExecute"), False),
    ("unknown operator tolerates nothing", {"key": "foo", "operator": "In", "value": "bar"}, FOO, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"), [c[1:] for c in TOLERATES], ids=[c[0] for c in TOLERATES]
)
def test_tolerates_taint(toleration: dict[str, Any], taint: Taint, expected: bool) -> None:  # fmt: skip
    assert tolerates(toleration, taint) is expected


DEDICATED = ("dedicated", "user1", "NoSchedule")
FILTER: list[tuple[str, list[dict[str, Any]], list[Taint], Taint | None]] = [
    ("no tolerations, a NoSchedule taint", [], [DEDICATED], DEDICATED),
    ("no tolerations, a NoExecute taint", [], [("k", "", "NoExecute")], ("k", "", "NoExecute")),
    ("tolerated", [{"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"}], [DEDICATED], None),
    ("value not tolerated", [{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}], [DEDICATED], DEDICATED),
    ("Exists tolerates the key", [{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}], [FOO], None),
    ("PreferNoSchedule never blocks", [], [("foo", "bar", "PreferNoSchedule")], None),
    ("a PreferNoSchedule toleration does not tolerate NoSchedule", [{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}], [FOO], FOO),
    ("every taint must be tolerated: the first that is not is named", [{"key": "foo", "operator": "Exists"}], [FOO, DEDICATED, ("x", "", "NoExecute")], DEDICATED),
    ("no taints", [], [], None),
    ("empty key with Exists tolerates all", [{"operator": "Exists"}], [FOO, DEDICATED, ("x", "", "NoExecute")], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"), [c[1:] for c in FILTER], ids=[c[0] for c in FILTER]
)
def test_untolerated(tolerations: list[dict[str, Any]], taints: list[Taint], expected: Taint | None) -> None:  # fmt: skip
    assert untolerated(tolerations, taints) == expected


def test_the_inventory_taints_text_round_trips() -> None:
    text = "dedicated=ml:NoSchedule, nvidia.com/gpu:NoExecute, team=a:PreferNoSchedule"
    taints = parse_taints(text)
    assert taints == (
        ("dedicated", "ml", "NoSchedule"),
        ("nvidia.com/gpu", "", "NoExecute"),
        ("team", "a", "PreferNoSchedule"),
    )
    assert ", ".join(taint_text(t) for t in taints) == text
    assert parse_taints("") == () and parse_taints(None) == ()


GPU_TAINTED = {"node": "n", "taints": "nvidia.com/gpu=present:NoSchedule"}
ML_TAINTED = {"node": "n", "taints": "dedicated=ml:NoSchedule"}


def test_the_rule_is_read_off_the_pod_spec() -> None:
    """GPU pods tolerate the GPU taints (podspec.py), CPU pods do not; pod_config adds more."""
    gpu = node_rule(parse_task("resources:\n  accelerators: H100:1\nrun: x\n"))
    cpu = node_rule(parse_task("resources:\n  cpus: 2\nrun: x\n"))
    assert gpu.untolerated(GPU_TAINTED) is None
    assert cpu.untolerated(GPU_TAINTED) == ("nvidia.com/gpu", "present", "NoSchedule")
    assert gpu.untolerated(ML_TAINTED) == ("dedicated", "ml", "NoSchedule")
    ml = node_rule(
        parse_task(
            "resources:\n  accelerators: H100:1\nconfig:\n  kubernetes:\n    pod_config:\n"
            "      spec:\n        tolerations:\n          - {key: dedicated, operator: Exists}\n"
            "run: x\n"
        )
    )
    assert ml.untolerated(ML_TAINTED) is None
    assert ml.untolerated(GPU_TAINTED) is None  # the GPU tolerations are kept alongside
    assert gpu.untolerated({"node": "n", "taints": ""}) is None
