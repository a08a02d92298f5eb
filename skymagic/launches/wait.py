"""Waiting for capacity (`--retry-until-up`): watch the allowed contexts, launch once one fits.

SkyPilot's retry_until_up re-runs its whole provisioning loop, paying a pod creation and a
provision timeout per full cluster each round (issue #7115). Here nothing is created while
nothing fits: an `InventoryWatcher` lists every allowed context once, then follows node and
pod watches, and the plan is re-made from its live snapshot on every change. The moment a
context can take the task (in failover order), the waiter hands back that plan and the launch
goes on as usual; a launch that then loses a race comes back here.

While waiting, the observer's progress line says what is missing and the best there is now:
`waiting for H100:8 (x2 nodes): best now my-h100-cluster 6/8 free on h100-node-3`. Ctrl-C
cancels (nothing was created, so nothing is left); `timeout_minutes` bounds the wait.

Contexts whose rows say the task can never fit there (no such GPU, too few per node, excluded
by policy) are not worth waiting for: when every context is such, the launch fails at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from skymagic.core.targets import Settings, Targets
from skymagic.errors import ConfigError, LaunchError, ProvisionFailedError
from skymagic.launches.plan import Plan, make_plan
from skymagic.launches.task import Task

if TYPE_CHECKING:
    from skymagic.gpus.inventory import Inventory
    from skymagic.gpus.watcher import InventoryWatcher

__all__ = [
    "CapacityWaiter",
    "best_now",
    "can_ever_fit",
    "clock",
    "may_fit_later",
    "retry_from_config",
    "waiting_line",
    "wanted",
]

# Reasons after which waiting cannot help: the context will not have such a node by itself.
NEVER = ("no such GPU", "not enough per node", "excluded by policy")
TICK_S = 1.0  # the live line's refresh when nothing changes (its clock moves on)


class _Observer(Protocol):
    def on_progress(self, context: str, phase: str, elapsed: float) -> None: ...
    def on_message(self, text: str) -> None: ...


def retry_from_config(raw: Mapping[str, Any], path: str | None) -> bool:
    """`retry_until_up: true` in the config (top level, or under `kubernetes:`); default off."""
    k8s = raw.get("kubernetes")
    value = raw.get("retry_until_up")
    if value is None and isinstance(k8s, Mapping):
        value = k8s.get("retry_until_up")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(
            f"{path or 'the config'}: retry_until_up must be true or false, got {value!r}; "
            "write e.g. `retry_until_up: true`"
        )
    return value


def can_ever_fit(plan: Plan) -> bool:
    """Whether some row's reason may change by itself (GPUs freed, a context back up)."""
    return may_fit_later(row.reason for row in plan.rows)


def may_fit_later(reasons: Iterable[str]) -> bool:
    """`can_ever_fit` from the reasons alone (a ProvisionFailedError's `failures`): some
    context failed for a reason that may change by itself (busy, unreachable, a lost race)."""
    return any(not reason.startswith(NEVER) for reason in reasons)


def _count(x: Any) -> int:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return 0
    return 0 if math.isnan(f) else int(f)


def best_now(task: Task, inventory: Inventory, contexts: list[str]) -> tuple[str, str]:
    """(context, text) of the best single node for the task now, e.g. 'ctx 6/8 free on n3'."""
    from skymagic.gpus.accelerators import gpu_names_match
    from skymagic.launches.fit import healthy
    from skymagic.launches.nodematch import node_rule

    # Only nodes the pod could be bound to (spot, nodeSelector, tolerations): the plan's rule.
    rule = node_rule(task)
    best: tuple[float, str, str] = (-1.0, "", "")
    for raw in inventory.nodes.to_dict("records"):
        rec = {str(k): v for k, v in raw.items()}
        ctx = str(rec.get("context"))
        if ctx not in contexts or not healthy(rec):
            continue
        if not rule.admits(rec) or rule.untolerated(rec) is not None:
            continue
        node = str(rec.get("node"))
        if task.gpu_count:
            if not rec.get("gpu") or not gpu_names_match(task.gpu or "", str(rec["gpu"])):
                continue
            free, total = _count(rec.get("gpu_free")), _count(rec.get("gpu_total"))
            text = f"{ctx} {free}/{total} free on {node}"
            score = float(free)
        else:
            cpu = float(rec.get("cpu_free") or 0.0)
            mem = float(rec.get("memory_gb_free") or 0.0)
            if math.isnan(cpu) or math.isnan(mem):
                continue
            text = f"{ctx} {cpu:g} vCPU and {mem:.0f} GB free on {node}"
            score = cpu
        if score > best[0]:
            best = (score, ctx, text)
    return best[1], best[2] or "nothing reachable"


def wanted(task: Task) -> str:
    """What the task waits for, as the live line says it: 'H100:8 (x2 nodes)', '2 vCPU'."""
    what = f"{task.gpu}:{task.gpu_count}" if task.gpu_count else f"{task.cpu_request:g} vCPU"
    if task.num_nodes > 1:
        what += f" (x{task.num_nodes} nodes)"
    return what


def clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m} m {s} s" if m else f"{s} s"


def waiting_line(task: Task, inventory: Inventory, contexts: list[str]) -> str:
    """'waiting for H100:8: best now my-h100 6/8 free on n3' (the caller adds the clock)."""
    _ctx, best = best_now(task, inventory, contexts)
    return f"waiting for {wanted(task)}: best now {best}"


class CapacityWaiter:
    """Follows the allowed contexts until the task fits somewhere; `close()` stops it."""

    def __init__(
        self,
        task: Task,
        targets: Targets,
        settings: Settings,
        contexts: list[str],
        *,
        timeout_minutes: float | None = None,
    ) -> None:
        self.task = task
        self.targets = targets
        self.settings = settings
        self.contexts = contexts
        self.started = time.monotonic()
        self.deadline = (
            None if timeout_minutes is None else self.started + max(0.0, timeout_minutes) * 60.0
        )
        self.timeout_minutes = timeout_minutes
        self._watcher: InventoryWatcher | None = None

    def _watch(self) -> InventoryWatcher:
        if self._watcher is None:
            from skymagic.gpus.watcher import InventoryWatcher

            self._watcher = InventoryWatcher(self.settings, targets=self.targets, wait=0)
        return self._watcher

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def next_plan(self, last: Plan, obs: _Observer) -> Plan:
        """Block until a plan has candidates; raise on timeout or Ctrl-C (nothing was made)."""
        if not can_ever_fit(last):
            lines = "; ".join(f"{ctx}: {why}" for ctx, why in last.reasons())
            raise ProvisionFailedError(
                f"'{self.task.name}' can never fit in the allowed contexts, so waiting would "
                f"not end ({lines})",
                failures=last.reasons(),
            )
        excluded = self.targets.excluded
        found: list[Plan] = []

        def fits(inv: Inventory) -> bool:
            plan = make_plan(self.task, self.contexts, inv, excluded=excluded)
            found[:] = [plan]
            return bool(plan.candidates)

        try:
            watcher = self._watch()
            while True:
                now = time.monotonic()
                if self.deadline is not None and now >= self.deadline:
                    plan = found[0] if found else last
                    raise ProvisionFailedError(
                        f"no allowed context could take '{self.task.name}' within "
                        f"{self.timeout_minutes:g} min of waiting. {plan.advice()}".rstrip(),
                        failures=plan.reasons(),
                    )
                slice_s = TICK_S if self.deadline is None else min(TICK_S, self.deadline - now)
                snap = watcher.wait_for(fits, timeout=max(slice_s, 0.0))
                if found and found[0].candidates:
                    return found[0]
                waited = time.monotonic() - self.started
                obs.on_progress(
                    "",  # the line names the contexts itself
                    f"{waiting_line(self.task, snap, self.contexts)}; {clock(waited)}",
                    waited,
                )
        except KeyboardInterrupt:
            self.close()
            error = LaunchError(
                f"launch '{self.task.name}' cancelled while waiting for capacity "
                f"({clock(time.monotonic() - self.started)}); nothing was created"
            )
            error.interrupted = True  # the CLI exits 130, as after any Ctrl-C
            raise error from None
