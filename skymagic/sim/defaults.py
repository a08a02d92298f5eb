"""What the API server fills in on a new pod before storing it (its defaulting and admission):
restart and DNS policy, service account, the not-ready/unreachable tolerations, container
pull policy and requests from limits, the QoS class.
"""

from __future__ import annotations

import uuid
from typing import Any

from skymagic.sim.store import now_rfc3339

__all__ = ["default_pod"]


def default_pod(pod: dict[str, Any], toleration_s: int) -> None:
    """Default a validated pod in place, as a new Pending pod with a uid and creation time.

    `toleration_s` is the tolerationSeconds of the NoExecute not-ready/unreachable tolerations
    the DefaultTolerationSeconds admission plugin adds (300 s on a real cluster).
    """
    meta = pod["metadata"]
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("securityContext", {})
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": toleration_s,
                }
            )
    for c in spec["containers"] + spec.get("initContainers", []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault(
            "imagePullPolicy",
            "Always" if c.get("image", "").endswith(":latest") else "IfNotPresent",
        )
        c.setdefault("resources", {})
        res = c["resources"]
        if res.get("limits") and not res.get("requests"):
            res["requests"] = dict(res["limits"])
        elif res.get("limits"):
            for k, v in res["limits"].items():
                res["requests"].setdefault(k, v)
    pod["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
    meta.setdefault("uid", str(uuid.uuid4()))
    meta["creationTimestamp"] = now_rfc3339()
    meta.pop("resourceVersion", None)


def _qos(spec: dict[str, Any]) -> str:
    reqs = [c.get("resources", {}) for c in spec["containers"]]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        r.get("limits", {}).get(k) is not None
        and r.get("requests", {}).get(k) == r.get("limits", {}).get(k)
        for r in reqs
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"
