"""Label and field selectors: API-server semantics and errors (speed: bench/sim_selectors.py)."""

from __future__ import annotations

import pytest

from skymagic.sim.selectors import SelectorError, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "gpu": "a100", "n": "5"}


@pytest.mark.parametrize(
    "sel, expected",
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app=db", False),
        ("missing!=x", True),
        ("missing=x", False),
        ("missing", False),
        ("!missing", True),
        ("app", True),
        ("!app", False),
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db, cache)", True),
        ("missing notin (a)", True),
        ("missing in (a)", False),
        ("app=web,tier=front", True),
        ("app=web, tier=back", False),
        ("app in (web),gpu notin (h100),!spot", True),
        ("n>4", True),
        ("n<4", False),
        ("missing>1", False),
        ("app=", False),
        ("missing=", False),
        ("example.com/role", False),
        ("app in (web,)", True),
    ],
)
def test_label_matching(sel: str, expected: bool) -> None:
    s = parse_label_selector(sel)
    assert s.matches(LABELS) is expected
    assert s.empty is (sel == "")


def test_label_none_labels() -> None:
    assert parse_label_selector("a!=b").matches(None)
    assert not parse_label_selector("a").matches(None)


@pytest.mark.parametrize(
    "bad",
    [
        "app in web",
        "app in (web",
        "=web",
        "app=web=x",
        "a b",
        "app in ()",
        "-bad=x",
        "app=-x",
        "n>x",
        "!",
        "app,",
        "a//b=c",
    ],
)
def test_label_errors(bad: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_label_selector(bad)
    assert str(e.value).startswith("unable to parse requirement")
    assert isinstance(e.value, ValueError)


POD = {
    "metadata": {"name": "p1", "namespace": "default"},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Running", "podIP": "10.0.0.1"},
}


@pytest.mark.parametrize(
    "sel, expected",
    [
        ("", True),
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name!=p1", False),
        ("spec.nodeName=n1,status.phase=Running", True),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("spec.nodeName=", False),
        ("status.nominatedNodeName=", True),
        ("spec.schedulerName!=", False),
        ("metadata.namespace=default", True),
        ("status.podIP=10.0.0.1", True),
    ],
)
def test_pod_fields(sel: str, expected: bool) -> None:
    assert parse_field_selector(sel, "Pod").matches(POD) is expected


def test_other_kinds_and_escapes() -> None:
    node = {"metadata": {"name": "n"}, "spec": {}}
    assert parse_field_selector("spec.unschedulable=false", "Node").matches(node)
    assert parse_field_selector("spec.unschedulable=true", "Node").matches(
        {"spec": {"unschedulable": True}}
    )
    ev = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p1"},
        "reason": "Scheduled",
        "source": {"component": "default-scheduler"},
        "type": "Normal",
    }
    s = parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.name=p1,source=default-scheduler,type=Normal",
        "Event",
    )
    assert s.matches(ev)
    assert parse_field_selector(r"metadata.name=a\,b", "ConfigMap").matches(
        {"metadata": {"name": "a,b"}}
    )
    assert parse_field_selector(r"metadata.name=a\=b", "ConfigMap").exact_name() == "a=b"


def test_field_errors_and_exact_name() -> None:
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.foo$"):
        parse_field_selector("spec.foo=x", "Pod")
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.nodeName"):
        parse_field_selector("spec.nodeName=x", "Node")
    with pytest.raises(SelectorError):
        parse_field_selector("status.phase", "Pod")
    assert parse_field_selector("metadata.name=x,status.phase=Running", "Pod").exact_name() == "x"
    assert parse_field_selector("metadata.name!=x", "Pod").exact_name() is None
    assert parse_field_selector("", "Pod").empty


def test_non_terminal_selector_and_empty_label_selector_over_a_pod_list() -> None:
    """What a list with skymagic's pod selector keeps (its speed: bench/sim_selectors.py)."""
    phases = ["Running", "Pending", "Succeeded", "Failed"]
    pods = [
        {
            "metadata": {
                "name": f"p{i}",
                "namespace": "default",
                **({"labels": {}} if i % 3 else {}),
            },
            "spec": {"nodeName": f"n{i % 50}"},
            "status": {"phase": phases[i % 4]},
        }
        for i in range(4000)
    ]
    sel = parse_field_selector("status.phase!=Succeeded,status.phase!=Failed", "Pod")
    kept = [p for p in pods if sel.matches(p)]
    assert len(kept) == 2000
    assert {p["status"]["phase"] for p in kept} == {"Running", "Pending"}
    lsel = parse_label_selector("")
    assert all(lsel.matches(p["metadata"].get("labels")) for p in pods)  # None and {} alike
