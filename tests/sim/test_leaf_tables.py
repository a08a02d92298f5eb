"""Server-side Tables: columns and cells like the real API server's printers."""

from __future__ import annotations

import calendar
import time

import pytest

from skymagic.sim.tables import human_duration, table_version, to_table, wants_table

NOW = calendar.timegm(time.strptime("2026-11-28T05:00:00", "%Y-%m-%dT%H:%M:%S"))
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - ago))


def test_wants_table() -> None:
    assert wants_table(KUBECTL_ACCEPT) and table_version(KUBECTL_ACCEPT) == "v1"
    assert table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert not wants_table("application/json, */*")
    assert not wants_table(None) and not wants_table("")
    assert not wants_table("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")


@pytest.mark.parametrize(
    "secs, text",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (4 * 3600 + 120, "4h2m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(secs: float, text: str) -> None:
    assert human_duration(secs) == text


def _pod(name: str, phase: str, statuses: list[dict], **extra: object) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": "u-" + name,
            "resourceVersion": "7",
            "creationTimestamp": ts(182),
            "labels": {"app": "x"},
        },
        "spec": {
            "nodeName": "gpu-node-0",
            "containers": [{"name": c["name"], "image": "busybox"} for c in statuses],
        },
        "status": {
            "phase": phase,
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "10.1.0.5"}],
            "conditions": [{"type": "Ready", "status": "True" if phase == "Running" else "False"}],
            "containerStatuses": statuses,
        },
    }
    pod.update(extra)  # type: ignore[arg-type]
    return pod


RUNNING = {
    "name": "main",
    "ready": True,
    "restartCount": 0,
    "state": {"running": {"startedAt": ts(100)}},
}


def test_pod_table() -> None:
    crashed = dict(
        RUNNING, restartCount=3, lastState={"terminated": {"exitCode": 1, "finishedAt": ts(300)}}
    )
    pods = [
        _pod("run", "Running", [RUNNING]),
        _pod(
            "creating",
            "Pending",
            [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
            ],
        ),
        _pod(
            "done",
            "Succeeded",
            [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        ),
        _pod(
            "err",
            "Failed",
            [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 2, "reason": "Error"}},
                }
            ],
        ),
        _pod("pending", "Pending", []),
        _pod("restarted", "Running", [crashed]),
    ]
    pods[4]["spec"].pop("nodeName")
    pods[4]["status"] = {"phase": "Pending"}
    term = _pod("bye", "Running", [RUNNING])
    term["metadata"]["deletionTimestamp"] = ts(1)
    pods.append(term)
    t = to_table("Pod", pods, list_meta={"resourceVersion": "42"}, now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert t["columnDefinitions"][0]["format"] == "name"
    cells = [r["cells"] for r in t["rows"]]
    assert cells[0] == [
        "run",
        "1/1",
        "Running",
        "0",
        "3m2s",
        "10.1.0.5",
        "gpu-node-0",
        "<none>",
        "<none>",
    ]
    assert cells[1][1:3] == ["0/1", "ContainerCreating"]
    assert cells[2][2] == "Completed" and cells[3][2] == "Error"
    assert cells[4] == [
        "pending",
        "0/0",
        "Pending",
        "0",
        "3m2s",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]
    assert cells[5][3] == "3 (5m ago)"
    assert cells[6][2] == "Terminating"
    assert t["rows"][2]["conditions"][0]["reason"] == "Succeeded"
    assert "conditions" not in t["rows"][0]
    obj = t["rows"][0]["object"]
    assert obj == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pods[0]["metadata"],
    }
    full = to_table("Pod", pods[:1], list_meta={}, now=NOW, include_object="Object")
    assert full["rows"][0]["object"] is pods[0]
    assert (
        to_table("Pod", pods[:1], list_meta={}, now=NOW, include_object="None")["rows"][0]["object"]
        is None
    )


def test_init_container_status() -> None:
    pod = _pod(
        "init",
        "Pending",
        [
            {
                "name": "main",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
    )
    pod["spec"]["initContainers"] = [{"name": "setup"}]
    pod["status"]["initContainerStatuses"] = [
        {"name": "setup", "ready": False, "restartCount": 0, "state": {"running": {}}}
    ]
    assert to_table("Pod", [pod], list_meta={}, now=NOW)["rows"][0]["cells"][2] == "Init:0/1"


def _node(name: str, ready: str = "True", **spec: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": ts(4 * 3600),
            "labels": {
                "kubernetes.io/hostname": name,
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/worker": "true",
            },
        },
        "spec": dict(spec),
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready},
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.7"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.31.2",
                "osImage": "Ubuntu 22.04.4 LTS",
                "kernelVersion": "5.15.0",
                "containerRuntimeVersion": "containerd://1.7.13",
            },
        },
    }


def test_node_table() -> None:
    nodes = [_node("a"), _node("b", "False"), _node("c", unschedulable=True), _node("d", "Unknown")]
    nodes[3]["metadata"]["labels"] = {}
    nodes[3]["status"]["conditions"] = []
    t = to_table("Node", nodes, list_meta={"resourceVersion": "1"}, now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]
    cells = [r["cells"] for r in t["rows"]]
    assert cells[0] == [
        "a",
        "Ready",
        "control-plane,worker",
        "4h",
        "v1.31.2",
        "10.0.0.7",
        "<none>",
        "Ubuntu 22.04.4 LTS",
        "5.15.0",
        "containerd://1.7.13",
    ]
    assert cells[1][1] == "NotReady" and cells[2][1] == "Ready,SchedulingDisabled"
    assert cells[3][1:3] == ["Unknown", "<none>"]


def test_event_namespace_service_default() -> None:
    ev = {
        "metadata": {"name": "p.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/p to n1 ",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": ts(30),
        "lastTimestamp": ts(5),
        "count": 2,
    }
    t = to_table("Event", [ev], list_meta={}, now=NOW)
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    assert t["rows"][0]["cells"] == [
        "5s",
        "Normal",
        "Scheduled",
        "pod/p",
        "",
        "default-scheduler",
        "Successfully assigned default/p to n1",
        "30s",
        2,
        "p.1",
    ]
    ns = {
        "metadata": {"name": "team-a", "creationTimestamp": ts(3 * 86400)},
        "status": {"phase": "Active"},
    }
    assert to_table("Namespace", [ns], list_meta={}, now=NOW)["rows"][0]["cells"] == [
        "team-a",
        "Active",
        "3d",
    ]
    svc = {
        "metadata": {"name": "kubernetes", "creationTimestamp": ts(60)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.1",
            "clusterIPs": ["10.96.0.1"],
            "ports": [{"port": 443, "protocol": "TCP"}],
        },
    }
    assert to_table("Service", [svc], list_meta={}, now=NOW)["rows"][0]["cells"] == [
        "kubernetes",
        "ClusterIP",
        "10.96.0.1",
        "<none>",
        "443/TCP",
        "60s",
        "<none>",
    ]
    cm = {"metadata": {"name": "x", "creationTimestamp": ts(10)}}
    t = to_table("Widget", [cm], list_meta={}, now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Created At"]
    assert t["columnDefinitions"][1]["type"] == "date"
    assert t["rows"][0]["cells"] == ["x", ts(10)]
