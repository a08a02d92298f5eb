"""The allowed contexts, in failover order, and a parallel fan-out with partial results.

Every operation (check, gpus, launch, status) starts here: read the kubeconfig and the config
NOW (a notebook user may have changed `%env KUBECONFIG` or the config file since the last
cell; an admin policy may change the allowed contexts between cells), narrow to `--infra`,
then run the operation on each context in its own thread. One broken context never breaks the
others: each gets a `ContextResult` with either a value or an error, and the whole fan-out
returns within the request timeout budget, not the sum of the contexts' timeouts. Contexts
that are not allowed are never contacted.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from skymagic._exceptions import ConfigError, PolicyError, RequestTimeoutError, SkymagicError
from skymagic.api import ClientSettings, ContextClient, error_kind
from skymagic.config import (
    AllowedContexts,
    SkyConfig,
    config_from_dict,
    load_config,
    resolve_allowed_contexts,
)
from skymagic.kubeconfig import Kubeconfig, ResolvedContext, kubeconfig_paths, load_kubeconfig

if TYPE_CHECKING:
    from skymagic.policy import PolicyOutcome

__all__ = [
    "ContextResult",
    "Settings",
    "Targets",
    "clear_clients",
    "client_for",
    "fan_out",
    "parse_infra",
    "resolve_targets",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What a caller may override per session (magics' %config) or per call (flags)."""

    client: ClientSettings = field(default_factory=ClientSettings)
    kubeconfig: tuple[str, ...] | None = None  # None: $KUBECONFIG / ~/.kube/config, read now
    config_file: str | None = None  # None: $SKYPILOT_CONFIG / ~/.sky/config.yaml, read now
    allowed_contexts: tuple[str, ...] | Literal["all"] | None = None  # overrides the file

    def with_timeout(self, seconds: float | None) -> Settings:
        if seconds is None:
            return self
        return replace(self, client=replace(self.client, request_timeout=seconds))


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


@dataclass
class ContextResult(Generic[T]):
    """One context's outcome in a fan-out: a value, or an error (never both)."""

    context: str
    value: T | None = None
    error: SkymagicError | None = None
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_kind(self) -> str | None:
        return None if self.error is None else error_kind(self.error)


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

    Nothing here is cached: a notebook user may change `%env KUBECONFIG` or the config between
    cells, and an admin policy may allow different clusters from one cell to the next.
    """
    paths = list(settings.kubeconfig) if settings.kubeconfig else kubeconfig_paths()
    cfg = load_config(settings.config_file)
    policy: PolicyOutcome | None = None
    excluded: dict[str, str] = {}
    if cfg.admin_policy:
        from skymagic.launch.task import current_user
        from skymagic.policy import apply_policy

        user_cfg, user_paths = cfg, paths

        policy = apply_policy(
            cfg.admin_policy,
            operation=operation,
            task=task,
            config=cfg.raw,
            user=current_user(),
            kubeconfig_paths=paths,
            config_file=cfg.path,
        )
        cfg = config_from_dict(policy.config, cfg.path or "admin policy")
        paths = policy.kubeconfig_paths or paths
        task = policy.task
    kc = load_kubeconfig(paths)
    allowed = resolve_allowed_contexts(cfg, kc, settings.allowed_contexts)
    if policy is not None:
        before = resolve_allowed_contexts(
            user_cfg, load_kubeconfig(user_paths), settings.allowed_contexts
        )
        excluded = {
            c: f"removed by admin policy {policy.name}"
            for c in before.names
            if c not in allowed.names
        }
    pinned = parse_infra(infra)
    if pinned is None:
        return Targets(
            kc, cfg, allowed, tuple(allowed.names), policy=policy, task=task, excluded=excluded
        )
    if pinned not in allowed.names:
        if pinned in excluded:
            raise PolicyError(f"context '{pinned}' is not available: {excluded[pinned]}")
        if pinned in kc.contexts:
            raise ConfigError(
                f"context '{pinned}' is in the kubeconfig but not allowed; add it to "
                f"kubernetes.allowed_contexts in {cfg.path or '~/.sky/config.yaml'} "
                f"(allowed now: {', '.join(allowed.names) or 'none'})"
            )
        raise ConfigError(
            f"context '{pinned}' is not in the kubeconfig ({', '.join(kc.files) or 'no file'}); "
            f"allowed contexts: {', '.join(allowed.names) or 'none'}"
        )
    return Targets(
        kc, cfg, allowed, (pinned,), pinned=pinned, policy=policy, task=task, excluded=excluded
    )


_clients: dict[tuple[str, str], ContextClient] = {}
_clients_lock = threading.Lock()


def client_for(resolved: ResolvedContext, settings: ClientSettings) -> ContextClient:
    """One cached client per (resolved context, settings): keep-alive connections across cells.

    The key includes the resolved entry, so an edited kubeconfig gets a fresh client.
    """
    fingerprint = hashlib.sha256(pickle.dumps((resolved, settings))).hexdigest()
    key = (resolved.name, fingerprint)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = ContextClient(resolved, settings)
            _clients[key] = client
        return client


def clear_clients() -> None:
    """Close and forget every cached client (tests, benchmarks, or after a fleet restarts)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def fan_out(
    targets: Targets,
    operation: Callable[[ContextClient], T],
    settings: Settings,
    *,
    contexts: Sequence[str] | None = None,
    budget_s: float | None = None,
) -> list[ContextResult[T]]:
    """Run `operation` on every target context in parallel; results in target order.

    A context whose kubeconfig entry cannot be used fails alone (kind `config` or `exec`).
    The call returns after at most `budget_s` (default: a few request timeouts), marking
    contexts still running as `timeout`; their threads end on their own read timeouts.
    """
    names = list(contexts if contexts is not None else targets.contexts)
    results: dict[str, ContextResult[T]] = {n: ContextResult(n) for n in names}
    if not names:
        return []
    client_settings = settings.client
    budget = budget_s if budget_s is not None else client_settings.request_timeout * 3 + 1.0
    done = threading.Event()
    remaining = [len(names)]
    finished: set[str] = set()
    lock = threading.Lock()

    def run(name: str) -> None:
        start = time.monotonic()
        res = results[name]
        try:
            resolved = targets.kubeconfig.resolve(name)
            client = client_for(resolved, client_settings)
            res.value = operation(client)
        except SkymagicError as exc:
            res.error = exc
        except Exception as exc:  # a bug in an operation must not sink the other contexts
            res.error = SkymagicError(f"internal error: {type(exc).__name__}: {exc}", context=name)
        finally:
            res.latency_ms = (time.monotonic() - start) * 1000
            with lock:
                finished.add(name)
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

    pool = ThreadPoolExecutor(max_workers=min(32, len(names)), thread_name_prefix="skymagic-ctx")
    for n in names:
        pool.submit(run, n)
    pool.shutdown(wait=False)
    started = time.monotonic()
    done.wait(budget)
    out = []
    with lock:
        late = [n for n in names if n not in finished]
    for n in names:
        res = results[n]
        if n in late:
            snapshot: ContextResult[T] = ContextResult(
                n,
                error=RequestTimeoutError(
                    f"no answer within {budget:g} s (the whole operation's time budget)",
                    context=n,
                ),
                latency_ms=(time.monotonic() - started) * 1000,
            )
            out.append(snapshot)
        else:
            out.append(res)
    return out
