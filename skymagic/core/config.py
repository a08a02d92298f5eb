"""``~/.sky/config.yaml``: the SkyPilot settings skymagic honours, and allowed contexts.

Why SkyPilot's file: users who already run SkyPilot keep one source of truth for which
contexts to use and in which failover order. We read only the keys we act on
(``kubernetes.allowed_contexts``, ``kubernetes.remote_identity``,
``kubernetes.provision_timeout``, ``admin_policy``) and ignore the rest, but a key we read
that has the wrong type is an error naming the file, the key and the fix -- a silently
ignored ``allowed_contexts`` would launch on the wrong cluster.

The path is read at call time (``SKYPILOT_CONFIG``), and nothing is cached: an admin policy
may rewrite the file between calls (SkyPilot re-reads it per request too).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from skymagic.core.kubeconfig import Kubeconfig
from skymagic.errors import ConfigError

__all__ = [
    "DEFAULT_PROVISION_TIMEOUT",
    "DEFAULT_REMOTE_IDENTITY",
    "AllowedContexts",
    "SkyConfig",
    "config_path",
    "config_from_dict",
    "load_config",
    "resolve_allowed_contexts",
]

DEFAULT_REMOTE_IDENTITY = "SERVICE_ACCOUNT"
DEFAULT_PROVISION_TIMEOUT = 10.0

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class SkyConfig:
    """The settings skymagic takes from SkyPilot's config file (defaults when absent)."""

    path: str | None = None
    allowed_contexts: tuple[str, ...] | Literal["all"] | None = None
    remote_identity: str | dict[str, str] = DEFAULT_REMOTE_IDENTITY
    provision_timeout: float = DEFAULT_PROVISION_TIMEOUT
    admin_policy: str | None = None
    namespace: str | None = None  # kubernetes.namespace: overrides the contexts' namespaces
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def remote_identity_for(self, context: str) -> str:
        """The identity pods in ``context`` run as.

        A per-context mapping is matched exactly first, then as shell-style patterns in file
        order (SkyPilot's list form is ordered), with ``*`` as the catch-all.
        """
        ri = self.remote_identity
        if isinstance(ri, str):
            return ri
        if context in ri:
            return ri[context]
        for pattern, identity in ri.items():
            if pattern != "*" and fnmatch.fnmatchcase(context, pattern):
                return identity
        return ri.get("*", DEFAULT_REMOTE_IDENTITY)


def config_path(environ: Mapping[str, str] | None = None) -> str:
    """``SKYPILOT_CONFIG`` read now, else ``~/.sky/config.yaml``."""
    env = os.environ if environ is None else environ
    explicit = env.get("SKYPILOT_CONFIG", "").strip()
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".sky", "config.yaml")


def _err(path: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {key} {problem}; {fix}")


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)[:60]


def load_config(path: str | None = None) -> SkyConfig:
    """Read the config file; a missing file gives the defaults.

    Raises ConfigError naming the file and the key (e.g. ``kubernetes.allowed_contexts must
    be a list of context names or 'all', got 3``) and how to fix it.
    """
    path = config_path() if path is None else os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        return SkyConfig(path=None)
    try:
        with open(path, "rb") as fh:
            doc = yaml.load(fh.read(), Loader=_Loader)  # a SafeLoader
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}; fix the file") from None
    if doc is None:
        return SkyConfig(path=path)
    return config_from_dict(doc, path)


def config_from_dict(doc: object, path: str) -> SkyConfig:
    """Validate a parsed config document (a file's, or one an admin policy mutated)."""
    if not isinstance(doc, dict):
        raise _err(
            path,
            "(top level)",
            f"must be a mapping, got {_describe(doc)}",
            "write keys such as `kubernetes:` at the top",
        )
    k8s = doc.get("kubernetes")
    if k8s is None:
        k8s = {}
    if not isinstance(k8s, dict):
        raise _err(
            path,
            "kubernetes",
            f"must be a mapping, got {_describe(k8s)}",
            "indent allowed_contexts etc. under `kubernetes:`",
        )
    return SkyConfig(
        path=path,
        allowed_contexts=_allowed(path, k8s.get("allowed_contexts")),
        remote_identity=_remote_identity(path, k8s.get("remote_identity")),
        provision_timeout=_timeout(path, k8s.get("provision_timeout")),
        admin_policy=_admin_policy(path, doc.get("admin_policy")),
        namespace=_namespace(path, k8s.get("namespace")),
        raw=doc,
    )


def _namespace(path: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _err(
            path,
            "kubernetes.namespace",
            f"must be a namespace name, got {_describe(value)}",
            "write e.g. `namespace: team-a`",
        )
    return value


def _allowed(path: str, value: object) -> tuple[str, ...] | Literal["all"] | None:
    key = "kubernetes.allowed_contexts"
    if value is None:
        return None
    if value == "all":
        return "all"
    if isinstance(value, str):
        raise _err(
            path,
            key,
            f"must be a list of context names or 'all', got {value!r}",
            f"write `allowed_contexts: [{value}]` for a single context",
        )
    if not isinstance(value, list):
        raise _err(
            path,
            key,
            f"must be a list of context names or 'all', got {_describe(value)}",
            "write `allowed_contexts: [ctx-a, ctx-b]` (failover order) or `all`",
        )
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise _err(
                path,
                f"{key}[{i}]",
                f"must be a context name, got {_describe(item)}",
                "quote names that YAML reads as numbers or booleans",
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def _remote_identity(path: str, value: object) -> str | dict[str, str]:
    key = "kubernetes.remote_identity"
    if value is None:
        return DEFAULT_REMOTE_IDENTITY
    if isinstance(value, str) and value:
        return value
    fix = (
        "use SERVICE_ACCOUNT, LOCAL_CREDENTIALS, NO_UPLOAD, a service-account name, or a "
        "per-context list like `- my-ctx: my-sa`"
    )
    pairs: list[tuple[object, object]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict) or len(item) != 1:
                raise _err(
                    path, f"{key}[{i}]", f"must be a single-key mapping, got {_describe(item)}", fix
                )
            pairs.extend(item.items())
    else:
        raise _err(
            path, key, f"must be a string or a per-context mapping, got {_describe(value)}", fix
        )
    out: dict[str, str] = {}
    for ctx, identity in pairs:
        if not isinstance(ctx, str) or not isinstance(identity, str) or not identity:
            raise _err(
                path,
                f"{key}.{ctx}",
                f"must map a context name to an identity, got {_describe(identity)}",
                fix,
            )
        out.setdefault(ctx, identity)
    return out


def _timeout(path: str, value: object) -> float:
    key = "kubernetes.provision_timeout"
    if value is None:
        return DEFAULT_PROVISION_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _err(
            path,
            key,
            f"must be a positive number of seconds, got {_describe(value)}",
            f"e.g. `provision_timeout: {int(DEFAULT_PROVISION_TIMEOUT)}`",
        )
    return float(value)


def _admin_policy(path: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "." not in value.strip(". "):
        raise _err(
            path,
            "admin_policy",
            f"must be 'package.module.ClassName', got {_describe(value)}",
            "name the policy class by its import path",
        )
    return value.strip()


@dataclass(frozen=True)
class AllowedContexts:
    """The contexts to use, in failover order, and why these.

    ``missing`` lists requested names the kubeconfig does not define (reported, not fatal);
    ``reason`` says why ``names`` is empty, when it is.
    """

    names: tuple[str, ...]
    missing: tuple[str, ...]
    source: str  # "config" | "all" | "current-context" | "override"
    reason: str = ""


def resolve_allowed_contexts(
    cfg: SkyConfig,
    kc: Kubeconfig,
    override: Sequence[str] | Literal["all"] | None = None,
) -> AllowedContexts:
    """Which contexts to use, in order: override > config file > current-context."""
    if override is not None:
        wanted: tuple[str, ...] | Literal["all"] = (
            "all" if override == "all" else tuple(dict.fromkeys(override))
        )
        source = "override"
    elif cfg.allowed_contexts is not None:
        wanted = cfg.allowed_contexts
        source = "all" if wanted == "all" else "config"
    else:
        cur = kc.current_context
        if not cur:
            files = ", ".join(kc.files) or "no kubeconfig file found"
            return AllowedContexts(
                (),
                (),
                "current-context",
                reason=(
                    f"no kubernetes.allowed_contexts in {cfg.path or config_path()} and no "
                    f"current-context in the kubeconfig ({files}); set one with `kubectl config "
                    "use-context NAME` or list contexts under kubernetes.allowed_contexts"
                ),
            )
        if cur not in kc.contexts:
            return AllowedContexts(
                (),
                (cur,),
                "current-context",
                reason=(
                    f"current-context '{cur}' (from {kc.current_context_file}) is not defined in "
                    "any kubeconfig file"
                ),
            )
        return AllowedContexts((cur,), (), "current-context")
    if wanted == "all":
        names = tuple(kc.contexts)
        reason = "" if names else "the kubeconfig defines no contexts"
        return AllowedContexts(names, (), source, reason=reason)
    present = tuple(n for n in wanted if n in kc.contexts)
    missing = tuple(n for n in wanted if n not in kc.contexts)
    reason = ""
    if not present:
        reason = (
            "none of the allowed contexts is defined in the kubeconfig"
            if missing
            else "the allowed context list is empty"
        )
    return AllowedContexts(present, missing, source, reason=reason)
