"""Label and field selectors: API-server semantics, errors, and list-speed matching."""

from __future__ import annotations

import time

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


def test_fast_on_100k_pods() -> None:
    phases = ["Running", "Pending", "Succeeded", "Failed"]
    pods = [
        {
            "metadata": {"name": f"p{i}", "namespace": "default"},
            "spec": {"nodeName": f"n{i % 50}"},
            "status": {"phase": phases[i % 4]},
        }
        for i in range(100_000)
    ]
    sel = parse_field_selector("status.phase!=Succeeded,status.phase!=Failed", "Pod")
    lsel = parse_label_selector("")
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        kept = [p for p in pods if sel.matches(p)]
        best = min(best, time.perf_counter() - t0)
    assert len(kept) == 50_000
    assert best < 0.1, f"{best * 1000:.1f} ms"
    t0 = time.perf_counter()
    assert sum(1 for p in pods if lsel.matches(p["metadata"].get("labels"))) == 100_000
    assert time.perf_counter() - t0 < 0.1
