"""Which nodes a launch's pod could land on: its nodeSelector and required node affinity.

The plan (plan.py) and the what-would-fit advice (fit.py) count a node only when the pod the
launch will create could be bound there. The pod's own spec is the rule: its constraints are
read from the manifest podspec.py builds for the task (the spot labels of `use_spot`, the GPU
label terms, a `config.kubernetes.pod_config` nodeSelector or affinity merged in), never
restated here, and matched against each node's labels as kube-scheduler's NodeAffinity filter
does. So a spot task never counts a context whose only free H100s are on on-demand nodes: the
pod would stay Pending there until the provision timeout.

A node record without labels (an inventory that did not read them) is not filtered: unknown
is not "no". Taints are matched by the same rule, from the same spec: the pod's tolerations
(the GPU taints for a GPU pod, plus any a pod_config adds) against each node's NoSchedule and
NoExecute taints, as kube-scheduler's TaintToleration filter does (taints.py); `untolerated`
names the taint that keeps the pod off a node, for the plan's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from skymagic.launches.podspec import pod_manifest
from skymagic.launches.taints import Taint, parse_taints, untolerated
from skymagic.launches.task import Task

__all__ = ["NodeRule", "node_labels", "node_rule"]

_LABELS_CACHE: dict[str, dict[str, str]] = {}
_LABELS_CACHE_MAX = 20_000


def node_labels(text: Any) -> dict[str, str] | None:
    """A node record's `labels` text (gpus/counting.labels_text) as a mapping; None: unknown."""
    if not isinstance(text, str):
        return None
    labels = _LABELS_CACHE.get(text)
    if labels is None:
        labels = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
        if len(_LABELS_CACHE) >= _LABELS_CACHE_MAX:
            _LABELS_CACHE.clear()
        _LABELS_CACHE[text] = labels
    return labels


def _expression(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
    values = [str(v) for v in expr.get("values") or []]
    have = labels.get(key)
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(values) == 1:
        try:
            a, b = int(have), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _term(labels: Mapping[str, str], name: str, term: Mapping[str, Any]) -> bool:
    """A node selector term: its expressions ANDed; an empty term matches no node."""
    exprs = list(term.get("matchExpressions") or [])
    fields = list(term.get("matchFields") or [])
    if not exprs and not fields:
        return False
    if not all(_expression(labels, e) for e in exprs):
        return False
    # matchFields supports metadata.name only (as the API server validates it).
    return all(_expression({"metadata.name": name}, f) for f in fields)


def _admits(spec: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    terms = _terms(spec)
    if not terms:
        return True
    return any(_term(labels, name, t) for t in terms)


@dataclass(frozen=True)
class NodeRule:
    """The task's pod's node constraints, and what the nodes it may take are called.

    `kind` is "spot node", "on-demand node" or "node"; `match` names the pod_config fields
    that narrow it further ("nodeSelector", "affinity"), for a plan's reason.
    """

    spec: Mapping[str, Any]
    kind: str
    match: str
    constrained: bool
    # The label keys the constraints read (and whether a term matches the node's name): a
    # node's verdict depends on these values only, so it is decided once per distinct
    # combination (a node pool's nodes share it) and looked up for the rest.
    keys: tuple[str, ...] = ()
    by_name: bool = False
    _seen: dict[tuple[str | None, ...], bool] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The pod's tolerations; a node's verdict depends on its taints text only (cached by it).
    tolerations: tuple[Mapping[str, Any], ...] = ()
    _taints_seen: dict[str, Taint | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def what(self) -> str:
        """One such node, for a reason: "spot node", "node matching the pod's nodeSelector"."""
        return self.kind + (f" matching the pod's {self.match}" if self.match else "")

    @property
    def other(self) -> str:
        """The nodes it may not take, as an adjective: "on-demand" for a spot pod."""
        if self.match:
            return "other"
        return {"spot node": "on-demand", "on-demand node": "spot"}.get(self.kind, "other")

    @property
    def whats(self) -> str:
        """The plural of `what`."""
        return self.kind + "s" + (f" matching the pod's {self.match}" if self.match else "")

    def admits(self, rec: Mapping[str, Any]) -> bool:
        """Whether the pod could be bound to this inventory record's node (labels unknown: yes)."""
        if not self.constrained:
            return True
        labels = node_labels(rec.get("labels"))
        if labels is None:
            return True
        name = str(rec.get("node", ""))
        key = tuple(labels.get(k) for k in self.keys) + ((name,) if self.by_name else ())
        verdict = self._seen.get(key)
        if verdict is None:
            verdict = _admits(self.spec, labels, name)
            if len(self._seen) >= _LABELS_CACHE_MAX:
                self._seen.clear()
            self._seen[key] = verdict
        return verdict

    def untolerated(self, rec: Mapping[str, Any]) -> Taint | None:
        """The node's first NoSchedule/NoExecute taint the pod does not tolerate (None: none)."""
        text = rec.get("taints")
        if not isinstance(text, str) or not text:
            return None
        if text in self._taints_seen:
            return self._taints_seen[text]
        verdict = untolerated(self.tolerations, parse_taints(text))
        if len(self._taints_seen) >= _LABELS_CACHE_MAX:
            self._taints_seen.clear()
        self._taints_seen[text] = verdict
        return verdict

    def only(self, recs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [r for r in recs if self.admits(r)]


_RULES: dict[tuple[Any, ...], NodeRule] = {}


def node_rule(task: Task) -> NodeRule:
    """The rule for `task`'s pod, from the very manifest a launch would create for it."""
    # The GPU count never changes the placement, only whether there is a GPU and which.
    key = (task.gpu if task.gpu_count else None, task.use_spot, repr(task.pod_config))
    rule = _RULES.get(key)
    if rule is None:
        rule = _build(task)
        if len(_RULES) > 256:
            _RULES.clear()
        _RULES[key] = rule
    return rule


def _build(task: Task) -> NodeRule:
    # Only the placement fields matter; a plain pod of the task keeps the build cheap and
    # free of the task's files, envs and secrets.
    bare = replace(task, envs={}, secrets={}, run=None, setup=None)
    spec = pod_manifest(
        bare,
        context="",
        namespace="default",
        attempt="",
        gpu_resource=None,
        nodes=[],
        service_account=None,
        kubeconfig_secret_name=None,
    )["spec"]
    placement = {k: spec[k] for k in ("nodeSelector", "affinity") if spec.get(k)}
    kind = {None: "node", True: "spot node", False: "on-demand node"}[task.use_spot]
    keys = set(map(str, (placement.get("nodeSelector") or {})))
    by_name = False
    for term in _terms(placement):
        keys.update(str(e.get("key", "")) for e in term.get("matchExpressions") or [])
        by_name = by_name or bool(term.get("matchFields"))
    tolerations = tuple(t for t in spec.get("tolerations") or [] if isinstance(t, Mapping))
    return NodeRule(
        placement,
        kind,
        _custom(task.pod_config),
        bool(placement),
        tuple(sorted(keys)),
        by_name,
        tolerations=tolerations,
    )


def _terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The required node affinity's terms (ORed), [] when there is none."""
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return list(required.get("nodeSelectorTerms") or [])


def _custom(pod_config: Mapping[str, Any]) -> str:
    """Which of a pod_config's placement fields the user set ("" when none)."""
    spec = pod_config.get("spec") if isinstance(pod_config, Mapping) else None
    if not isinstance(spec, Mapping):
        return ""
    names = [k for k in ("nodeSelector", "affinity") if spec.get(k)]
    return "/".join(names)
