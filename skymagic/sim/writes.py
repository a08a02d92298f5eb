"""Create, update, patch and delete: the API server's defaulting and validation on the way in.

Pods go through the cluster (`create_pod` defaults and schedules, `delete_pod` terminates
gracefully); other kinds are stored as sent, with the defaults a real server adds (a Secret's
`stringData` folded into `data`, a Service's clusterIP and port defaults).
"""

from __future__ import annotations

import base64
import random
import string
from typing import TYPE_CHECKING, Any

import msgspec

from skymagic.sim.http import Request, Response, json_response
from skymagic.sim.objects import set_node_unschedulable
from skymagic.sim.status import HTTPStatus, json_body, not_found
from skymagic.sim.store import KINDS, Entry

if TYPE_CHECKING:
    from skymagic.sim.cluster import SimCluster

__all__ = ["create", "delete", "delete_object", "update"]


def create(cluster: SimCluster, req: Request, resource: str, namespace: str | None) -> Response:
    """POST to a collection (`dryRun` validates and answers without storing)."""
    obj = json_body(req)
    kind = KINDS[resource].kind
    if obj.get("kind") not in (None, kind):
        raise HTTPStatus(
            400, "BadRequest", f"the body kind {obj.get('kind')!r} does not match {kind}"
        )
    meta = obj.setdefault("metadata", {})
    if namespace is not None:
        if meta.get("namespace") not in (None, "", namespace):
            raise HTTPStatus(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        meta["namespace"] = namespace
        if cluster.store.get("namespaces", None, namespace) is None:
            raise not_found("namespaces", namespace)
    if not meta.get("name"):
        if meta.get("generateName"):
            meta["name"] = meta["generateName"] + _suffix()
        else:
            raise HTTPStatus(
                422,
                "Invalid",
                f'{kind} "" is invalid: metadata.name: Required value: name or generateName '
                "is required",
                {"kind": resource},
            )
    name = meta["name"]
    if cluster.store.get(resource, namespace, name) is not None:
        raise HTTPStatus(
            409,
            "AlreadyExists",
            f'{resource} "{name}" already exists',
            {"name": name, "kind": resource},
        )
    dry_run = "dryRun" in req.query
    if resource == "pods":
        _validate_pod(obj)
        if dry_run:
            return json_response(201, obj)
        created = cluster.create_pod(obj)
        return json_response(201, created)
    if dry_run:
        return json_response(201, obj)
    if resource == "namespaces":
        cluster.ensure_namespace(name)
        entry = cluster.store.get("namespaces", None, name)
        assert entry is not None
        return Response(201, entry.raw)
    if resource == "secrets":
        obj.setdefault("type", "Opaque")
        for k, v in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()
    if resource == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault(
            "clusterIP", f"10.96.{cluster.rng.randint(1, 250)}.{cluster.rng.randint(1, 250)}"
        )
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    entry = cluster.store.put(resource, obj)
    return Response(201, entry.raw)


def update(
    cluster: SimCluster,
    req: Request,
    entry: Entry,
    resource: str,
    namespace: str | None,
    name: str,
) -> Response:
    """PUT (a whole object, refused when its resourceVersion is stale) or a merge PATCH."""
    if req.method == "PUT":
        new = json_body(req)
        new.setdefault("metadata", {})
        new["metadata"]["name"] = name
        if namespace:
            new["metadata"]["namespace"] = namespace
        old_rv = new["metadata"].get("resourceVersion")
        if old_rv and old_rv != entry.obj["metadata"]["resourceVersion"]:
            raise HTTPStatus(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        new["metadata"]["uid"] = entry.obj["metadata"]["uid"]
        new["metadata"]["creationTimestamp"] = entry.obj["metadata"]["creationTimestamp"]
        merged = new
    else:
        patch = json_body(req)
        ctype = req.headers.get("content-type", "")
        if "json-patch" in ctype:
            raise HTTPStatus(
                415,
                "UnsupportedMediaType",
                "json-patch is not supported by the simulator; use a merge patch",
            )
        merged = _merge_patch(msgspec.json.decode(entry.raw), patch)
    if resource == "nodes":
        set_node_unschedulable(merged, bool(merged.get("spec", {}).get("unschedulable")))
    new_entry = cluster.store.put(resource, merged)
    if resource == "pods":
        cluster.wake_scheduler()
    return Response(200, new_entry.raw)


def delete(
    cluster: SimCluster, req: Request, resource: str, namespace: str | None, name: str
) -> Response:
    """DELETE one object; `gracePeriodSeconds` from the query or the DeleteOptions body."""
    grace = None
    body = json_body(req, optional=True)
    if "gracePeriodSeconds" in req.query:
        grace = float(req.query["gracePeriodSeconds"])
    elif body.get("gracePeriodSeconds") is not None:
        grace = float(body["gracePeriodSeconds"])
    return json_response(200, delete_object(cluster, resource, namespace, name, grace))


def delete_object(
    cluster: SimCluster, resource: str, namespace: str | None, name: str, grace: float | None
) -> dict[str, Any]:
    """Delete (a pod: terminate gracefully); 404 when there is no such object."""
    if resource == "pods":
        obj = cluster.delete_pod(namespace or "default", name, grace)
    else:
        entry = cluster.store.delete(resource, namespace, name)
        obj = entry.obj if entry else None
    if obj is None:
        raise not_found(resource, name)
    return obj


def _suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


def _validate_pod(pod: dict[str, Any]) -> None:
    name = pod["metadata"]["name"]
    spec = pod.get("spec")
    problems = []
    if not isinstance(spec, dict):
        problems.append("spec: Required value")
    else:
        containers = spec.get("containers")
        if not containers:
            problems.append("spec.containers: Required value")
        else:
            for i, c in enumerate(containers):
                if not c.get("name"):
                    problems.append(f"spec.containers[{i}].name: Required value")
                if not c.get("image"):
                    problems.append(f"spec.containers[{i}].image: Required value")
        rp = spec.get("restartPolicy")
        if rp not in (None, "Always", "OnFailure", "Never"):
            problems.append(
                f'spec.restartPolicy: Unsupported value: "{rp}": supported values: '
                '"Always", "OnFailure", "Never"'
            )
    if problems:
        raise HTTPStatus(
            422,
            "Invalid",
            f'Pod "{name}" is invalid: ' + ", ".join(problems),
            {"name": name, "kind": "Pod"},
        )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches of simple fields behave the same)."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge_patch(target.get(k), v)
    return target
