"""The "Considered resources" plan: which allowed contexts can run a task now, in order.

SkyPilot's optimizer drops contexts whose labels show no such GPU or too few per node, but
never looks at FREE GPUs, so a full context costs a pod creation plus provision_timeout before
failover (SkyPilot issue #7115). The plan here reads the live inventory first: a context is
skipped, with its reason, when it is unreachable, has no such GPU, has too few per node, or has
none free now, so failover normally creates no pod in a full context at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skymagic.gpus.accelerators import GPU_TAINT_KEYS, gpu_names_match
from skymagic.launches.fit import (
    Fit,
    advice_text,
    context_advice,
    healthy,
    num_text,
    number,
    requested,
    what_fits,
)
from skymagic.launches.nodematch import node_rule
from skymagic.launches.planview import plan_html
from skymagic.launches.taints import Taint, taint_text
from skymagic.launches.task import Task

if TYPE_CHECKING:
    import pandas as pd

    from skymagic.gpus.inventory import Inventory

__all__ = ["Candidate", "Plan", "PlanRow", "make_plan"]

PLAN_COLUMNS = [
    "INFRA",
    "INSTANCE",
    "vCPUs",
    "Mem(GB)",
    "GPUS",
    "COST ($)",
    "CHOSEN",
    "FREE",
    "REASON",
    "WOULD_FIT",
]


@dataclass
class Candidate:
    """A context that can take the task now, with what the pod must request there."""

    context: str
    resource: str | None  # the GPU resource to request (nvidia.com/gpu, google.com/tpu, ...)
    nodes: list[str]  # nodes that fit now (best first)
    free: int
    task: Task | None = None  # the task as launched for this candidate (its Choice applied)


@dataclass
class PlanRow:
    context: str
    fits: bool
    free: int | None
    reason: str = ""
    chosen: bool = False
    task: Task | None = None  # the candidate this row weighs (None: the plan's task)
    would_fit: str = ""  # a skipped context: what it could take now instead (fit.py)


@dataclass
class Plan:
    task: Task
    rows: list[PlanRow]
    candidates: list[Candidate] = field(default_factory=list)
    # Allowed contexts the kubeconfig lacks, skipped entries: shown under the table, so a
    # plan never looks complete when a context was left out.
    warnings: list[str] = field(default_factory=list)
    # What would fit now, across the contexts that could be tried (fit.py): the advice shown
    # when nothing fits.
    fits: list[Fit] = field(default_factory=list)

    @property
    def chosen(self) -> str | None:
        return self.candidates[0].context if self.candidates else None

    def reasons(self) -> list[tuple[str, str]]:
        return [(r.context, r.reason) for r in self.rows if not r.fits]

    def advice(self) -> str:
        """When nothing fits: one line saying what would fit now, and where ("" otherwise)."""
        if self.candidates:
            return ""
        return advice_text(self.task, self.fits)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        frame: pd.DataFrame = pd.DataFrame(self._table(), columns=PLAN_COLUMNS)
        return frame

    @property
    def chosen_task(self) -> Task | None:
        """The task as the CHOSEN row would launch it (its candidate applied)."""
        return (self.candidates[0].task or self.task) if self.candidates else None

    def title(self) -> str:
        t = self.task
        n = t.num_nodes
        text = f"Considered resources ({n} node{'s' if n != 1 else ''}"
        if len(t.all_choices()) > 1:
            rule = (
                "ordered: each candidate in your order across the contexts before the next"
                if t.order == "ordered"
                else "any_of: the first candidate that fits, context by context"
            )
            text += f"; {len(t.all_choices())} candidates, {rule}"
        return text + "):"

    def _table(self) -> list[list[Any]]:
        out = []
        for r in self.rows:
            t = r.task or self.task
            gpus = f"{t.gpu}:{t.gpu_count}" if t.gpu_count else "-"
            if t.use_spot:
                gpus += " (spot)"
            out.append(
                [
                    f"Kubernetes ({r.context})",
                    t.instance(),
                    num_text(t.cpu_request),
                    num_text(t.memory_request_gb),
                    gpus,
                    "0.00",
                    "✔" if r.chosen else "",
                    "-" if r.free is None else str(r.free),
                    r.reason,
                    r.would_fit,
                ]
            )
        return out

    def __str__(self) -> str:
        rows = [PLAN_COLUMNS, *self._table()]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(PLAN_COLUMNS))]
        lines = [self.title()]
        for row in rows:
            lines.append(
                "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        lines.extend(f"Note: {n}" for n in self.task.notes)
        if self.advice():
            lines.append(self.advice())
        lines.extend(f"Warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        # Six columns that fit a notebook cell; the other four under the table (planview.py).
        return plan_html(
            self.title(),
            PLAN_COLUMNS,
            self._table(),
            [r.chosen for r in self.rows],
            notes=self.task.notes,
            advice=self.advice(),
            warnings=self.warnings,
        )


def make_plan(
    task: Task, contexts: list[str], inventory: Inventory, excluded: dict[str, str] | None = None
) -> Plan:
    """Decide, per allowed context in failover order, whether the task fits now and why not.

    The inventory's warnings (allowed contexts missing from the kubeconfig...) carry over.
    """
    excluded = excluded or {}
    errors: dict[str, dict[str, Any]] = {}
    for raw in inventory.errors.to_dict("records"):
        rec = {str(k): v for k, v in raw.items()}
        errors.setdefault(str(rec["context"]), rec)
    nodes_by_ctx: dict[str, list[dict[str, Any]]] = {}
    for raw in inventory.nodes.to_dict("records"):
        rec = {str(k): v for k, v in raw.items()}
        nodes_by_ctx.setdefault(str(rec["context"]), []).append(rec)
    rows: list[PlanRow] = []
    candidates: list[Candidate] = []
    choices = task.all_choices()
    several = len(choices) > 1
    if task.order == "ordered":
        pairs = [(ch, ctx) for ch in choices for ctx in contexts]
    else:
        pairs = [(ch, ctx) for ctx in contexts for ch in choices]
    for choice, ctx in pairs:
        if choice.context and choice.context != ctx:
            continue
        t = task.with_choice(choice) if task.choices else task
        if ctx in excluded:
            rows.append(PlanRow(ctx, False, None, f"excluded by policy: {excluded[ctx]}", task=t))
            continue
        nodes = nodes_by_ctx.get(ctx, [])
        err = errors.get(ctx)
        if err is not None and not nodes:
            rows.append(PlanRow(ctx, False, None, f"{err['kind']}: {err['message']}", task=t))
            continue
        free_unknown = err is not None and err.get("kind") == "forbidden"
        row, cand = _fit(t, ctx, nodes, free_unknown)
        row.task = t
        if t.use_spot and row.fits:
            row.reason = (row.reason + "; " if row.reason else "") + "spot nodes only"
        if not row.fits and nodes:
            own = requested(t)
            row.would_fit = ", ".join(
                f"{f.request()} ({f.where[0][1]} node{'s' if f.where[0][1] != 1 else ''})"
                for f in context_advice(t, nodes)
                if f.request() != own
            )
        rows.append(row)
        if cand is not None:
            cand.task = t
            candidates.append(cand)
    if candidates:
        first = candidates[0]
        for r in rows:
            if r.context == first.context and (not several or r.task is first.task):
                r.chosen = True
                break
    triable = [c for c in contexts if c not in excluded]
    return Plan(
        task,
        rows,
        candidates,
        warnings=list(getattr(inventory, "warnings", [])),
        fits=what_fits(task, triable, nodes_by_ctx),
    )


def _fit(
    task: Task, ctx: str, nodes: list[dict[str, Any]], free_unknown: bool
) -> tuple[PlanRow, Candidate | None]:
    cpu, mem = task.cpu_request, task.memory_request_gb
    # Only nodes the pod could be bound to count: its spot or on-demand labels, its
    # pod_config nodeSelector/affinity, its tolerations against the node's taints
    # (nodematch.py, read off the pod spec itself).
    rule = node_rule(task)
    what = rule.what
    if task.gpu_count:
        assert task.gpu is not None
        with_gpu = [n for n in nodes if n.get("gpu") and gpu_names_match(task.gpu, str(n["gpu"]))]
        if not with_gpu:
            have = sorted({str(n["gpu"]) for n in nodes if n.get("gpu")})
            detail = f" (has {', '.join(have)})" if have else " (no GPU nodes)"
            return PlanRow(ctx, False, None, f"no such GPU: {task.gpu}{detail}"), None
        matching = rule.only(with_gpu)
        if not matching:
            # "no such GPU" first: like a missing GPU, it does not change by waiting.
            return PlanRow(
                ctx,
                False,
                None,
                f"no such GPU on {rule.whats}: {task.gpu} only on {len(with_gpu)} "
                f"{rule.other} node{'s' if len(with_gpu) != 1 else ''}",
            ), None
        most = max(int(number(n.get("gpu_total")) or 0) for n in matching)
        if most < task.gpu_count:
            return PlanRow(
                ctx, False, 0, f"not enough per node: at most {most} {task.gpu} per {what}"
            ), None
        if free_unknown:
            names = [str(n["node"]) for n in matching if healthy(n)]
            cand = Candidate(ctx, str(matching[0]["resource"]), names, -1)
            return PlanRow(ctx, True, None, "free GPUs unknown (may not list pods); trying"), cand
        fitting = []
        best_free = 0
        kept_off: dict[Taint, int] = {}  # taint -> nodes it keeps off with the GPUs free
        for n in matching:
            free = int(number(n.get("gpu_free")) or 0) if healthy(n) else 0
            taint = rule.untolerated(n)
            if taint is not None:
                if free >= task.gpu_count:
                    kept_off[taint] = kept_off.get(taint, 0) + 1
                free = 0
            best_free = max(best_free, free)
            cpu_free = number(n.get("cpu_free"))
            mem_free = number(n.get("memory_gb_free"))
            if (
                free >= task.gpu_count
                and (cpu_free is None or cpu_free >= cpu)
                and (mem_free is None or mem_free >= mem)
            ):
                fitting.append((free, n))
        if fitting and len(fitting) < task.num_nodes:
            # A gang is all or nothing in one context: N nodes must each have room now.
            return PlanRow(
                ctx,
                False,
                max(f for f, _ in fitting),
                f"not enough nodes free now: {len(fitting)} of {task.num_nodes} {rule.whats} have "
                f"{task.gpu_count} {task.gpu} free",
            ), None
        if not fitting:
            why = (
                f"none free now: best node has {best_free} {task.gpu} free, needs {task.gpu_count}"
            )
            if rule.constrained and what != "node":
                why = (
                    f"none free now: no {what} with {task.gpu_count} free {task.gpu} "
                    f"(best {what} has {best_free})"
                )
            if best_free >= task.gpu_count:
                why = (
                    f"none free now: no {what} with {task.gpu_count} {task.gpu} also has "
                    f"{num_text(cpu)} vCPU and {num_text(mem)} GB free"
                )
            return PlanRow(ctx, False, best_free, why + _taint_note(kept_off)), None
        fitting.sort(key=lambda fn: -fn[0])
        resource = str(fitting[0][1]["resource"])
        cand = Candidate(ctx, resource, [str(n["node"]) for _, n in fitting], fitting[0][0])
        return PlanRow(ctx, True, fitting[0][0]), cand
    # CPU-only: healthy nodes whose taints the pod tolerates (not the GPU taints, unless a
    # pod_config adds them), with room.
    seen: set[str] = set()
    fitting_cpu = []
    cpu_kept_off: dict[Taint, int] = {}
    for n in nodes:
        name = str(n["node"])
        if name in seen:
            continue
        seen.add(name)
        if not healthy(n) or not rule.admits(n):
            continue
        cpu_free = number(n.get("cpu_free"))
        mem_free = number(n.get("memory_gb_free"))
        if (cpu_free is None or cpu_free >= cpu) and (mem_free is None or mem_free >= mem):
            taint = rule.untolerated(n)
            if taint is not None:
                cpu_kept_off[taint] = cpu_kept_off.get(taint, 0) + 1
                continue
            fitting_cpu.append((cpu_free or 0.0, name))
    if fitting_cpu and len(fitting_cpu) < task.num_nodes:
        return PlanRow(
            ctx,
            False,
            None,
            f"not enough nodes free now: {len(fitting_cpu)} of {task.num_nodes} "
            f"{rule.whats} whose taints the pod tolerates have {num_text(cpu)} vCPU and "
            f"{num_text(mem)} GB free" + _taint_note(cpu_kept_off),
        ), None
    if not fitting_cpu:
        return PlanRow(
            ctx,
            False,
            None,
            f"none free now: no {what} whose taints the pod tolerates has {num_text(cpu)} vCPU and "
            f"{num_text(mem)} GB free" + _taint_note(cpu_kept_off),
        ), None
    fitting_cpu.sort(key=lambda fn: -fn[0])
    return PlanRow(ctx, True, None), Candidate(ctx, None, [n for _, n in fitting_cpu], 0)


def _taint_note(kept_off: dict[Taint, int]) -> str:
    """ "; 1 node with room has taint dedicated=ml:NoSchedule the pod does not tolerate (...)"."""
    if not kept_off:
        return ""
    n = sum(kept_off.values())
    shown = ", ".join(taint_text(t) for t in kept_off)
    word = "taint" if len(kept_off) == 1 else "taints"
    text = (
        f"; {n} node{'s' if n != 1 else ''} with room {'has' if n == 1 else 'have'} {word} "
        f"{shown} the pod does not tolerate"
    )
    # A GPU taint keeps a CPU-only pod off on purpose (GPU nodes are for GPU pods): no hint.
    if any(t[0] not in GPU_TAINT_KEYS for t in kept_off):
        text += " (tolerate it in config.kubernetes.pod_config spec.tolerations)"
    return text
