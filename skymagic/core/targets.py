"""The allowed contexts of one operation, in failover order, and everything that decided them.

Every operation (check, gpus, launch, status) starts here: read the kubeconfig and the config
NOW (a notebook user may have changed `%env KUBECONFIG` or the config file since the last
cell; an admin policy may change the allowed contexts between cells), narrow to `--infra`,
then run the operation on each context in its own thread. One broken context never breaks the
others: each gets a `ContextResult` with either a value or an error, and the whole fan-out
returns within the request timeout budget, not the sum of the contexts' timeouts. Contexts
that are not allowed are never contacted.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from skymagic.core.client import ClientSettings
from skymagic.core.config import (
    AllowedContexts,
    SkyConfig,
    config_from_dict,
    load_config,
    resolve_allowed_contexts,
)
from skymagic.core.kubeconfig import Kubeconfig, kubeconfig_paths, load_kubeconfig
from skymagic.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    from skymagic.core.policy import PolicyOutcome

__all__ = [
    "Settings",
    "Targets",
    "current_user",
    "missing_context_warning",
    "parse_infra",
    "pin_targets",
    "resolve_targets",
]


@dataclass(frozen=True)
class Settings:
    """What a caller may override per session (magics' %config) or per call (flags)."""

    client: ClientSettings = field(default_factory=ClientSettings)
    kubeconfig: tuple[str, ...] | None = None  # None: $KUBECONFIG / ~/.kube/config, read now
    config_file: str | None = None  # None: $SKYPILOT_CONFIG / ~/.sky/config.yaml, read now
    allowed_contexts: tuple[str, ...] | Literal["all"] | None = None  # overrides the file


@dataclass(frozen=True)
class Targets:
    """Which contexts an operation runs on, and everything that decided it."""

    kubeconfig: Kubeconfig
    config: SkyConfig
    allowed: AllowedContexts
    contexts: tuple[str, ...]  # in failover order
    pinned: str | None = None  # set by --infra k8s/CTX
    policy: PolicyOutcome | None = None  # what an admin policy changed, if one is configured
    task: Any = None  # the launch task, as the admin policy left it
    # Contexts the user's own settings allow but the admin policy removed, in the user's
    # order, with why: a launch plan shows them as "excluded by policy" instead of hiding them.
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str | None:
        """A namespace forced by the config or an admin policy (else each context's own)."""
        return self.config.namespace

    @property
    def warnings(self) -> list[str]:
        """What every operation shows beside its result: allowed contexts the kubeconfig
        lacks (a typo in allowed_contexts, or a file missing from KUBECONFIG) and
        kubeconfig entries that were skipped. `check` showed these first; an inventory, a
        launch plan or a status that silently leaves a context out would look complete."""
        out = [missing_context_warning(name) for name in self.allowed.missing]
        out.extend(self.kubeconfig.warnings)
        return out


def missing_context_warning(name: str) -> str:
    """The one wording for an allowed context that no kubeconfig file defines."""
    return f"allowed context '{name}' is not in the kubeconfig."


def parse_infra(infra: str | None) -> str | None:
    """`k8s` / `kubernetes` -> None (all allowed); `k8s/CTX` -> CTX (CTX may contain '/')."""
    if infra is None or infra.strip() == "":
        return None
    text = infra.strip()
    head, sep, rest = text.partition("/")
    if head.lower() not in ("k8s", "kubernetes"):
        raise ConfigError(
            f"--infra {text!r}: skymagic manages Kubernetes only; use 'k8s' for every allowed "
            "context or 'k8s/CONTEXT' for one"
        )
    if not sep:
        return None
    if not rest:
        raise ConfigError(f"--infra {text!r} names no context; use 'k8s/CONTEXT'")
    return rest


def resolve_targets(
    settings: Settings,
    infra: str | None = None,
    *,
    operation: str = "check",
    task: Any = None,
) -> Targets:
    """Read kubeconfig and config now, run the admin policy, decide the contexts in order.

    Nothing here is cached across calls: a notebook user may change `%env KUBECONFIG` or the
    config between cells, and an admin policy may allow different clusters from one cell to
    the next. Within one call each kubeconfig file is read once and the policy runs once; an
    operation resolves once and hands the Targets down (see `pin_targets`).
    """
    return pin_targets(_resolve_all(settings, operation, task), infra)


def _resolve_all(settings: Settings, operation: str, task: Any) -> Targets:
    paths = list(settings.kubeconfig) if settings.kubeconfig else kubeconfig_paths()
    cfg = load_config(settings.config_file)
    read: dict[str, dict[str, Any]] = {}  # each kubeconfig file parsed once per call
    if not cfg.admin_policy:
        kc = load_kubeconfig(paths, read=read)
        allowed = resolve_allowed_contexts(cfg, kc, settings.allowed_contexts)
        return Targets(kc, cfg, allowed, tuple(allowed.names), task=task)
    from skymagic.core.policy import apply_policy

    policy = apply_policy(
        cfg.admin_policy,
        operation=operation,
        task=task,
        config=cfg.raw,
        user=current_user(),
        kubeconfig_paths=paths,
        config_file=cfg.path,
    )
    policy_cfg = config_from_dict(policy.config, cfg.path or "admin policy")
    policy_paths = policy.kubeconfig_paths or paths
    kc = load_kubeconfig(policy_paths, read=read)
    allowed = resolve_allowed_contexts(policy_cfg, kc, settings.allowed_contexts)
    user_kc = kc if policy_paths == paths else load_kubeconfig(paths, read=read)
    before = resolve_allowed_contexts(cfg, user_kc, settings.allowed_contexts)
    excluded = {
        c: f"removed by admin policy {policy.name}" for c in before.names if c not in allowed.names
    }
    return Targets(
        kc,
        policy_cfg,
        allowed,
        tuple(allowed.names),
        policy=policy,
        task=policy.task,
        excluded=excluded,
    )


def pin_targets(targets: Targets, infra: str | None) -> Targets:
    """`targets` narrowed to the one context `infra` names (`k8s/CTX`); unchanged for `k8s`.

    Separate from resolving so an operation that needs both views (a launch looks for an
    existing launch in every allowed context, then runs in the pinned one) resolves once.
    """
    pinned = parse_infra(infra)
    if pinned is None:
        return targets
    allowed, kc, excluded = targets.allowed, targets.kubeconfig, targets.excluded
    if pinned not in allowed.names:
        if pinned in excluded:
            raise PolicyError(f"not available: {excluded[pinned]}", context=pinned)
        if pinned in kc.contexts:
            raise ConfigError(
                "is in the kubeconfig but not allowed; add it to kubernetes.allowed_contexts in "
                f"{targets.config.path or '~/.sky/config.yaml'} "
                f"(allowed now: {', '.join(allowed.names) or 'none'})",
                context=pinned,
            )
        raise ConfigError(
            f"not in the kubeconfig ({', '.join(kc.files) or 'no file'}); "
            f"allowed contexts: {', '.join(allowed.names) or 'none'}",
            context=pinned,
        )
    return replace(targets, contexts=(pinned,), pinned=pinned)


def current_user() -> str:
    """The user name put on launched pods and handed to admin policies (DNS-label safe)."""
    try:
        raw = os.environ.get("SKYMAGIC_USER") or getpass.getuser()
    except Exception:
        raw = "user"
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return cleaned[:30] or "user"
