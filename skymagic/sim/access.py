"""Who is calling and what they may do: authentication, impersonation, RBAC checks, and the
SelfSubjectAccessReview endpoint that answers "may I?" without doing it.

Bearer tokens (signed by the fleet, tokens.py) and client certificates (signed by the fleet
CA, certs.py) authenticate; the cluster's `Authorizer` (rbac.py) decides; a denial is the real
API server's 403 Status, message and details alike.
"""

from __future__ import annotations

from typing import Any

import msgspec

from skymagic.sim import protobuf
from skymagic.sim.certs import identity_from_peercert
from skymagic.sim.http import Request, Response, json_response
from skymagic.sim.rbac import Attributes, Authorizer, forbidden_message
from skymagic.sim.status import HTTPStatus
from skymagic.sim.store import KINDS
from skymagic.sim.tokens import Identity, TokenError, TokenExpired, TokenMinter

__all__ = ["authenticate", "authorize", "impersonate", "self_subject_access_review"]

_AUTHENTICATED = "system:authenticated"  # every authenticated user's implicit group


def authenticate(req: Request, minter: TokenMinter) -> Identity:
    """The caller, from its bearer token or client certificate; 401 when neither is good."""
    auth = req.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        try:
            return minter.verify(auth[7:].strip())
        except TokenExpired:
            raise HTTPStatus(401, "Unauthorized", "Unauthorized") from None
        except TokenError:
            raise HTTPStatus(401, "Unauthorized", "Unauthorized") from None
    if req.peercert:
        found = identity_from_peercert(req.peercert)
        if found:
            return Identity(user=found[0], groups=tuple(found[1]))
    raise HTTPStatus(401, "Unauthorized", "Unauthorized")


def authorize(authorizer: Authorizer, ident: Identity, attrs: Attributes) -> None:
    """403 unless `ident` may do `attrs` (details: name, group and kind, as the API server's
    forbidden.go gives them, each only when set)."""
    groups = (*ident.groups, _AUTHENTICATED)
    a = attrs
    if authorizer.allowed(
        ident.user, groups, a.verb, a.resource, a.namespace, a.api_group, a.subresource
    ):
        return
    details = {"name": a.name, "group": a.api_group, "kind": a.resource}
    raise HTTPStatus(
        403,
        "Forbidden",
        forbidden_message(ident.user, attrs),
        {k: v for k, v in details.items() if v},
    )


def impersonate(req: Request, ident: Identity, authorizer: Authorizer) -> Identity:
    """Act as the user of the ``Impersonate-*`` headers, if RBAC lets ``ident`` do that.

    As a real API server: the caller needs the ``impersonate`` verb on ``users`` (the
    name), ``groups``, ``uids`` and ``userextras/KEY`` (authentication.k8s.io); the
    impersonated identity has exactly the groups asked for (plus system:authenticated),
    and groups, uid or extras without a user are refused.
    """
    values = req.header_values
    user = req.headers.get("impersonate-user", "")
    groups = values.get("impersonate-group", [])
    uid = req.headers.get("impersonate-uid", "")
    extras = [k[len("impersonate-extra-") :] for k in values if k.startswith("impersonate-extra-")]
    if not user:
        if groups or uid or extras:
            raise HTTPStatus(
                500,
                "InternalError",
                "Internal error occurred: requested groups, uid or user-extra without "
                "impersonating a user",
            )
        return ident
    auth_group = "authentication.k8s.io"
    asks = [Attributes("impersonate", "users", name=user)]
    asks += [Attributes("impersonate", "groups", name=g) for g in groups]
    if uid:
        asks.append(Attributes("impersonate", "uids", api_group=auth_group, name=uid))
    asks += [
        Attributes("impersonate", "userextras", api_group=auth_group, subresource=k) for k in extras
    ]
    for attrs in asks:
        authorize(authorizer, ident, attrs)
    return Identity(user=user, groups=tuple(groups))


def self_subject_access_review(req: Request, ident: Identity, authorizer: Authorizer) -> Response:
    """POST selfsubjectaccessreviews (JSON, or the protobuf kubectl sends): allowed or not."""
    ctype = req.headers.get("content-type", "")
    try:
        review = (
            protobuf.decode_ssar(req.body) if "protobuf" in ctype else msgspec.json.decode(req.body)
        )
    except (ValueError, msgspec.DecodeError) as exc:
        raise HTTPStatus(
            400, "BadRequest", f"cannot decode SelfSubjectAccessReview: {exc}"
        ) from None
    spec = review.get("spec") or {}
    attrs = spec.get("resourceAttributes")
    groups = (*ident.groups, _AUTHENTICATED)
    if attrs:
        info = KINDS.get(attrs.get("resource", ""))
        if info is not None and not info.namespaced:
            attrs = {k: v for k, v in attrs.items() if k != "namespace"}  # kubectl sends one anyway
        allowed = authorizer.allowed(
            ident.user,
            groups,
            attrs.get("verb", ""),
            attrs.get("resource", ""),
            attrs.get("namespace") or None,
            attrs.get("group", ""),
            attrs.get("subresource", ""),
        )
    else:
        allowed = authorizer.allowed(ident.user, groups, "get", "*", None)
    # A denial has no reason: the RBAC authorizer only explains errors, and kubectl prints
    # "no" plus the reason when one is given.
    status: dict[str, Any] = {"allowed": allowed}
    return json_response(
        201,
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
    )
