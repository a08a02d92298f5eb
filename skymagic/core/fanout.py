"""Run one operation on every target context at once, with partial results.

One broken context never breaks the others: each gets a `ContextResult` with either a value or
an error, and the whole fan-out returns within a wall-time budget, not the sum of the contexts'
timeouts. One thread per context: a fleet of forty contexts must not queue behind a pool cap.
Contexts that are not targets are never contacted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from skymagic.core.client import ContextClient, client_for
from skymagic.core.failures import error_kind
from skymagic.core.targets import Settings, Targets
from skymagic.errors import RequestTimeoutError, SkymagicError

__all__ = ["ContextResult", "fan_out"]

T = TypeVar("T")


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

    Exec credential plugins get the network part of the budget (a few request timeouts, even
    when `budget_s` adds time for decoding), minus a small margin so a hung plugin is
    reported as such before the fan-out gives up on its context: the plugin is killed then,
    and no thread of the operation outlives it waiting on one.
    """
    names = list(contexts if contexts is not None else targets.contexts)
    results: dict[str, ContextResult[T]] = {n: ContextResult(n) for n in names}
    if not names:
        return []
    client_settings = settings.client
    network_budget = client_settings.request_timeout * 3 + 1.0
    budget = budget_s if budget_s is not None else network_budget
    credential_budget = min(budget, network_budget)
    credential_deadline = time.monotonic() + credential_budget - min(0.5, credential_budget / 10)
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
            with client.credentials.budget(credential_deadline):
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

    for n in names:
        threading.Thread(target=run, args=(n,), name=f"skymagic-ctx-{n}", daemon=True).start()
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
