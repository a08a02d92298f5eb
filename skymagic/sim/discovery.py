"""What the API server says about itself: /version, health checks, and API discovery
(/api, /apis, /api/v1, authorization.k8s.io), the paths kubectl reads before any request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skymagic.sim import streams
from skymagic.sim.http import Response, json_response
from skymagic.sim.store import KINDS

__all__ = ["AUTHZ_GROUP_PATH", "discovery", "version"]

AUTHZ_GROUP_PATH = ["apis", "authorization.k8s.io", "v1"]

_AUTHZ_GROUP = {
    "name": "authorization.k8s.io",
    "versions": [{"groupVersion": "authorization.k8s.io/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "authorization.k8s.io/v1", "version": "v1"},
}

_AUTHZ_RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "authorization.k8s.io/v1",
    "resources": [
        {
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": False,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        },
    ],
}


def discovery(path: str, version_text: str, port: Callable[[], int]) -> Response | None:
    """The answer for a health, version or discovery `path`; None for any other path."""
    if path in ("/healthz", "/livez", "/readyz"):
        return Response(200, b"ok", "text/plain; charset=utf-8")
    if path == "/version":
        return json_response(200, version(version_text))
    if path == "/api":
        return json_response(
            200,
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port()}"}
                ],
            },
        )
    if path == "/apis":
        return json_response(
            200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_AUTHZ_GROUP]}
        )
    if path == "/api/v1":
        return json_response(200, _core_resources())
    if path == "/apis/authorization.k8s.io":
        return json_response(200, {"kind": "APIGroup", "apiVersion": "v1", **_AUTHZ_GROUP})
    if path == "/apis/authorization.k8s.io/v1":
        return json_response(200, _AUTHZ_RESOURCES)
    return None


def version(text: str) -> dict[str, str]:
    """/version for a cluster of Kubernetes version `text` (e.g. "v1.32.1")."""
    v = text.lstrip("v").split(".")
    return {
        "major": v[0],
        "minor": v[1] if len(v) > 1 else "0",
        "gitVersion": text,
        "gitCommit": "skymagic-sim",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _core_resources() -> dict[str, Any]:
    resources = []
    for r, info in KINDS.items():
        resources.append(
            {
                "name": r,
                "singularName": info.kind.lower(),
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": [*info.verbs, "deletecollection"],
                **({"shortNames": list(info.short_names)} if info.short_names else {}),
            }
        )
    resources += [
        {
            "name": "pods/log",
            "singularName": "",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["get"],
        },
        {
            "name": "pods/status",
            "singularName": "",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["get", "patch", "update"],
        },
        *streams.DISCOVERY,
        {
            "name": "nodes/status",
            "singularName": "",
            "namespaced": False,
            "kind": "Node",
            "verbs": ["get", "patch", "update"],
        },
    ]
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}
