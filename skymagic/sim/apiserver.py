"""The Kubernetes REST surface of one simulated cluster: routing, and the faults a fleet spec
injects (latency, an error rate, corrupt bodies).

Each request is authenticated and authorized (access.py), then routed to its handler:
discovery (discovery.py), lists and watches (listwatch.py), writes (writes.py), pod logs
(podlogs.py), exec/attach/port-forward (streams.py); errors are Status answers (status.py).
Object behaviour lives in cluster.py and store.py.
Real clients are the judges: kubectl 1.32 and the official Python client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from skymagic.sim import streams, tables, writes
from skymagic.sim.access import authenticate, authorize, impersonate, self_subject_access_review
from skymagic.sim.cluster import SimCluster
from skymagic.sim.discovery import AUTHZ_GROUP_PATH, discovery
from skymagic.sim.http import Request, Response, json_response
from skymagic.sim.listwatch import KIND_BY_RESOURCE, ListWatch, list_body, matcher
from skymagic.sim.podlogs import pod_log
from skymagic.sim.rbac import Attributes
from skymagic.sim.selectors import SelectorError
from skymagic.sim.status import (
    HTTPStatus,
    method_not_allowed,
    no_such_path,
    not_found,
    status_body,
)
from skymagic.sim.store import KINDS
from skymagic.sim.tokens import Identity, TokenMinter

__all__ = ["ApiServer", "corrupt_body"]


class ApiServer:
    """Handle HTTP requests for one SimCluster."""

    def __init__(
        self, cluster: SimCluster, minter: TokenMinter, port_getter: Callable[[], int]
    ) -> None:
        self.cluster = cluster
        self.minter = minter
        self.port_getter = port_getter
        self.lists = ListWatch(cluster.store)

    # -- entry point -----------------------------------------------------------------------
    async def handle(self, req: Request) -> Response:
        faults = self.cluster.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        user = "-"
        impersonator = ""
        groups: list[str] = []
        try:
            if faults.error_rate and self.cluster.rng.random() < faults.error_rate:
                raise HTTPStatus(
                    500, "InternalError", "Internal error occurred: injected fault (error_rate)"
                )
            ident = authenticate(req, self.minter)
            user = ident.user
            acting = impersonate(req, ident, self.cluster.authorizer)
            if acting is not ident:
                impersonator, user, groups = ident.user, acting.user, list(acting.groups)
            resp = await self._route(req, acting)
            if faults.corrupt and req.path == faults.corrupt_path:
                resp = corrupt_body(resp, req, faults.corrupt)
        except HTTPStatus as st:
            resp = json_response(st.code, st.body)
        except SelectorError as exc:
            resp = json_response(400, status_body(400, "BadRequest", str(exc)))
        self.cluster.requests.append(
            {
                "t": time.time(),
                "method": req.method,
                "path": req.path,
                "query": dict(req.query),
                "user": user,
                "code": resp.status,
                "bytes": resp.length,
                "watch": resp.stream is not None,
                # who acted for whom, and the groups it asked for (one Impersonate-Group each)
                **({"impersonator": impersonator, "groups": groups} if impersonator else {}),
                **({"accept_encoding": enc} if (enc := req.headers.get("accept-encoding")) else {}),
            }
        )
        return resp

    def _authorize(self, ident: Identity, attrs: Attributes) -> None:
        authorize(self.cluster.authorizer, ident, attrs)

    # -- routing -----------------------------------------------------------------------------
    async def _route(self, req: Request, ident: Identity) -> Response:
        path = req.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        about = discovery(path, self.cluster.spec.version, self.port_getter)
        if about is not None:
            return about
        if parts[:3] == AUTHZ_GROUP_PATH and len(parts) == 4:
            if parts[3] == "selfsubjectaccessreviews" and req.method == "POST":
                return self_subject_access_review(req, ident, self.cluster.authorizer)
            raise method_not_allowed()
        if parts[:2] != ["api", "v1"]:
            raise no_such_path()
        rest = parts[2:]
        namespace: str | None = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            namespace = rest[1]
            rest = rest[2:]
        if not rest or rest[0] not in KINDS:
            raise no_such_path()
        resource = rest[0]
        info = KINDS[resource]
        if namespace is not None and not info.namespaced:
            raise no_such_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3:
            raise no_such_path()
        if name is None:
            return self._collection(req, ident, resource, namespace)
        if info.namespaced and namespace is None:
            raise no_such_path()
        return self._item(req, ident, resource, namespace, name, sub)

    def _collection(
        self, req: Request, ident: Identity, resource: str, namespace: str | None
    ) -> Response:
        q = req.query
        if req.method == "GET":
            watching = q.get("watch", "").lower() in ("true", "1")
            self._authorize(ident, Attributes("watch" if watching else "list", resource, namespace))
            matches = matcher(resource, q)
            if watching:
                return self.lists.watch(resource, namespace, matches, q)
            return self.lists.list(req, resource, namespace, matches)
        if req.method == "POST":
            self._authorize(ident, Attributes("create", resource, namespace))
            if namespace is None and KINDS[resource].namespaced:
                raise method_not_allowed()
            return writes.create(self.cluster, req, resource, namespace)
        if req.method == "DELETE":
            self._authorize(ident, Attributes("deletecollection", resource, namespace))
            matches = matcher(resource, q)
            entries, rv, _, _ = self.cluster.store.list_objects(resource, namespace, matches)
            raws = [e.raw for e in entries]
            for meta in [e.obj["metadata"] for e in entries]:
                ns, name = meta.get("namespace"), meta["name"]
                writes.delete_object(self.cluster, resource, ns, name, None)
            return list_body(resource, raws, rv, None, None)
        raise method_not_allowed()

    def _item(
        self,
        req: Request,
        ident: Identity,
        resource: str,
        namespace: str | None,
        name: str,
        sub: str,
    ) -> Response:
        if sub == "log" and resource == "pods":
            self._authorize(ident, Attributes("get", resource, namespace, subresource="log"))
            return pod_log(req, self.cluster.store, self.cluster.logs, namespace or "default", name)
        if resource == "pods" and sub in streams.SUBRESOURCES:
            return self._stream(req, ident, namespace or "default", name, sub)
        if sub not in ("", "status"):
            raise no_such_path()
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(req.method)
        if verb is None:
            raise method_not_allowed()
        self._authorize(ident, Attributes(verb, resource, namespace, subresource=sub))
        entry = self.cluster.store.get(resource, namespace, name)
        if entry is None:
            raise not_found(resource, name)
        if req.method == "DELETE":
            return writes.delete(self.cluster, req, resource, namespace, name)
        if req.method != "GET":
            return writes.update(self.cluster, req, entry, resource, namespace, name)
        if tables.wants_table(req.headers.get("accept")):
            table = tables.to_table(
                KIND_BY_RESOURCE[resource],
                [entry.obj],
                list_meta={"resourceVersion": entry.obj["metadata"]["resourceVersion"]},
                now=time.time(),
                include_object=req.query.get("includeObject", "Metadata"),
            )
            return json_response(200, table)
        return Response(200, entry.raw)

    def _stream(
        self, req: Request, ident: Identity, namespace: str, name: str, sub: str
    ) -> Response:
        """exec / attach / portforward. A WebSocket upgrade is a GET, so it needs `get` and also
        `create` on the subresource (as Kubernetes 1.35 checks, closing the hole where `get`
        alone allowed exec); a SPDY upgrade is a POST: `create`."""
        if req.method not in ("GET", "POST"):
            raise method_not_allowed()
        verbs = ("get", "create") if req.method == "GET" else ("create",)
        for verb in verbs:
            self._authorize(ident, Attributes(verb, "pods", namespace, subresource=sub, name=name))
        try:
            return streams.open_stream(self.cluster, req, namespace, name, sub)
        except streams.StreamRefused as exc:
            details = {"name": name, "kind": "pods"} if exc.code == 404 else None
            raise HTTPStatus(exc.code, exc.reason, exc.message, details) from None


_HUGE = 16 << 20


def corrupt_body(resp: Response, req: Request, mode: str) -> Response:
    """The `corrupt` fault: a 200 GET answer whose JSON is not what the API promises.

    "truncate" cuts the body in half (a proxy that gave up, a server that crashed mid-write;
    Content-Length matches, so only the JSON is broken); "wrong-type" turns the first
    `nodeName` (else the first `name`) into a number, keeping the JSON valid; "huge-string"
    makes that field 16 MB long, far past any name the API server accepts. Watches and
    errors pass untouched.
    """
    if req.method != "GET" or resp.status != 200 or resp.stream is not None:
        return resp
    data = resp.body + resp.tail
    if mode == "truncate":
        return Response(resp.status, data[: len(data) // 2], resp.content_type, resp.headers)
    if mode not in ("wrong-type", "huge-string"):
        raise HTTPStatus(500, "InternalError", f"unknown corrupt mode {mode!r} (a sim fault)")
    for key in (b'"nodeName":"', b'"name":"'):
        at = data.find(key)
        if at >= 0:
            end = at + len(key)
            if mode == "wrong-type":
                data = data[:at] + key[:-1] + b'12,"was":"' + data[end:]
            else:
                data = data[:end] + b"x" * _HUGE + data[end:]
            break
    return Response(resp.status, data, resp.content_type, resp.headers)
