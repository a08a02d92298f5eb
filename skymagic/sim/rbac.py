"""Per-user authorization for a simulated cluster, with the real API server's 403 wording.

Why this shape: the fleet spec needs a compact way to say "alice may only list nodes and do
anything with pods in team-a" so that skymagic's forbidden handling (the other contexts'
results still shown, this one reported as kind=forbidden) is tested against the same answers
and messages a real RBAC-enabled cluster gives. Rules follow RBAC PolicyRule matching: exact
or "*" verbs/groups/resources, "pods" does not cover "pods/log" (use "pods/log", "pods/*" or
"*"), and a namespace list acts like a RoleBinding: it only grants namespaced requests inside
those namespaces, so listing pods across all namespaces (or any cluster-scoped resource) needs
namespaces "*".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISCOVERY_PATHS",
    "MASTERS_GROUP",
    "Attributes",
    "Authorizer",
    "Rule",
    "forbidden_message",
]

MASTERS_GROUP = "system:masters"

# What the system:discovery / system:public-info-viewer cluster roles grant every user, so a
# restricted user's kubectl can still discover resources before it is told 403.
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi")

_RULE_KEYS = {
    "verbs": "verbs",
    "resources": "resources",
    "namespaces": "namespaces",
    "apiGroups": "api_groups",
    "api_groups": "api_groups",
}


@dataclass(frozen=True)
class Rule:
    """One grant; every field matches exactly or by "*"."""

    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...] = ("*",)
    api_groups: tuple[str, ...] = ("*",)

    def matches(
        self, verb: str, resource: str, subresource: str, namespace: str | None, api_group: str
    ) -> bool:
        """Whether this rule grants the request (resource and subresource already split)."""
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and api_group not in self.api_groups:
            return False
        if "*" not in self.namespaces and (not namespace or namespace not in self.namespaces):
            return False
        if "*" in self.resources:
            return True
        if subresource:
            full = f"{resource}/{subresource}"
            return (
                full in self.resources
                or f"{resource}/*" in self.resources
                or f"*/{subresource}" in self.resources
            )
        return resource in self.resources


def _split(resource: str, subresource: str) -> tuple[str, str]:
    if not subresource and "/" in resource:
        resource, _, subresource = resource.partition("/")
    return resource, subresource


@dataclass(frozen=True)
class Attributes:
    """What a resource request asks to do (the API server's authorizer.Attributes)."""

    verb: str
    resource: str
    namespace: str | None = None  # None: cluster-wide
    api_group: str = ""  # "": the core group
    subresource: str = ""
    name: str = ""


def forbidden_message(user: str, attrs: Attributes) -> str:
    """The Status message a real API server sends with a 403 (apiserver forbidden.go).

    `<group-resource> ["name"] is forbidden: User "u" cannot VERB resource "r[/sub]" in API
    group "g" (in the namespace "ns" | at the cluster scope)`; the group-resource is
    "pods" for the core group and "deployments.apps" otherwise.
    """
    resource, subresource = _split(attrs.resource, attrs.subresource)
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    group = attrs.api_group
    why = f'User "{user}" cannot {attrs.verb} resource "{full}" in API group "{group}" {scope}'
    gr = f"{resource}.{group}" if group else resource
    if attrs.name:
        return f'{gr} "{attrs.name}" is forbidden: {why}'
    return f"{gr} is forbidden: {why}"


class Authorizer:
    """Decides requests for one cluster from per-user rules."""

    def __init__(
        self, users: Mapping[str, Sequence[Rule]] | None, default_admin: bool = True
    ) -> None:
        """`users` absent from the mapping get full access iff `default_admin`.

        Full access by default because most simulated clusters model a user's own admin
        kubeconfig; the spec lists only the users meant to be restricted.
        """
        self._users: dict[str, tuple[Rule, ...]] = {
            u: tuple(rules) for u, rules in (users or {}).items()
        }
        self.default_admin = default_admin

    def __repr__(self) -> str:
        return f"Authorizer(users={sorted(self._users)}, default_admin={self.default_admin})"

    @classmethod
    def from_spec(cls, spec: list[dict[str, Any]] | None) -> Authorizer:
        """Parse the fleet spec's `rbac:` list; ValueError naming the bad field."""
        users: dict[str, list[Rule]] = {}
        if spec is None:
            return cls(None)
        if not isinstance(spec, list):
            raise ValueError("rbac: must be a list of {user, rules} entries")
        for i, entry in enumerate(spec):
            where = f"rbac[{i}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: must be a mapping with 'user' and 'rules'")
            unknown = set(entry) - {"user", "rules"}
            if unknown:
                raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown field")
            user = entry.get("user")
            if not isinstance(user, str) or not user:
                raise ValueError(f"{where}.user: must be a non-empty string")
            rules = entry.get("rules", [])
            if not isinstance(rules, list):
                raise ValueError(f"{where}.rules: must be a list")
            parsed = users.setdefault(user, [])
            for j, raw in enumerate(rules):
                parsed.append(_parse_rule(raw, f"{where}.rules[{j}]"))
        return cls(users)

    def _full_access(self, user: str, groups: Sequence[str]) -> bool:
        return MASTERS_GROUP in groups or (self.default_admin and user not in self._users)

    def allowed(
        self,
        user: str,
        groups: Sequence[str],
        verb: str,
        resource: str,
        namespace: str | None,
        api_group: str = "",
        subresource: str = "",
    ) -> bool:
        """Whether `user` may `verb` `resource[/subresource]` (namespace None: cluster-wide)."""
        if self._full_access(user, groups):
            return True
        resource, subresource = _split(resource, subresource)
        ns = namespace or None
        return any(
            r.matches(verb, resource, subresource, ns, api_group) for r in self._users.get(user, ())
        )

    def allowed_path(self, user: str, groups: Sequence[str], verb: str, path: str) -> bool:
        """Non-resource requests (SSAR nonResourceAttributes, /version, ...).

        Everyone may GET the discovery paths (as system:discovery grants); anything else only
        users with full access.
        """
        if self._full_access(user, groups):
            return True
        if verb != "get":
            return False
        return any(path == p or path.startswith(p + "/") for p in DISCOVERY_PATHS)


def _str_tuple(value: Any, where: str, *, allow_empty_items: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and (v or allow_empty_items) for v in value)
    ):
        raise ValueError(f"{where}: must be a non-empty list of strings")
    return tuple(value)


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping with verbs and resources")
    for key in raw:
        if key not in _RULE_KEYS:
            raise ValueError(f"{where}.{key}: unknown field")
    for key in ("verbs", "resources"):
        if key not in raw:
            raise ValueError(f"{where}.{key}: required")
    kwargs: dict[str, tuple[str, ...]] = {}
    for key, attr in _RULE_KEYS.items():
        if key in raw:
            # apiGroups may hold "" (the core group), as in real RBAC rules.
            kwargs[attr] = _str_tuple(
                raw[key], f"{where}.{key}", allow_empty_items=attr == "api_groups"
            )
    return Rule(**kwargs)
