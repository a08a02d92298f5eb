"""Whether a pod's tolerations let it onto a node with given taints: kube-scheduler's rule.

The plan (plan.py) and the what-would-fit advice (fit.py) count a node only when the pod the
launch creates could be bound there; a NoSchedule or NoExecute taint the pod does not tolerate
keeps it off (kube-scheduler's TaintToleration filter), a PreferNoSchedule taint never does.
The tolerations are the pod's own (podspec.py: the GPU taints for a GPU pod, plus any a user
adds through `config.kubernetes.pod_config`), so a user whose GPU pool is tainted
`dedicated=ml:NoSchedule` and who tolerates it has that pool counted, and one who does not is
told which taint keeps the pod off. Pure: the inventory's taints text in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Taint", "parse_taints", "taint_text", "tolerates", "untolerated"]

Taint = tuple[str, str, str]  # (key, value, effect), as gpus/counting.py keeps them

_BLOCKING = ("NoSchedule", "NoExecute")
_CACHE: dict[str, tuple[Taint, ...]] = {}
_CACHE_MAX = 20_000


def parse_taints(text: Any) -> tuple[Taint, ...]:
    """A node record's `taints` text ("k=v:Effect, k:Effect", gpus/counting.py) as taints."""
    if not isinstance(text, str) or not text:
        return ()
    out = _CACHE.get(text)
    if out is None:
        parsed: list[Taint] = []
        for part in text.split(", "):
            head, _, effect = part.rpartition(":")
            key, _, value = head.partition("=")
            parsed.append((key, value, effect))
        out = tuple(parsed)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[text] = out
    return out


def taint_text(taint: Taint) -> str:
    """A taint as kubectl writes it: key=value:Effect (key:Effect without a value)."""
    key, value, effect = taint
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """k8s.io/api/core/v1 Toleration.ToleratesTaint.

    An empty effect matches every effect; an empty key matches every key (the API server
    allows it with Exists only, which so tolerates every taint); the operator is Equal when
    empty; Equal needs the same value, Exists ignores the value; another operator matches none.
    """
    key, value, effect = taint
    want_effect = str(toleration.get("effect") or "")
    if want_effect and want_effect != effect:
        return False
    want_key = str(toleration.get("key") or "")
    if want_key and want_key != key:
        return False
    operator = str(toleration.get("operator") or "Equal")
    if operator == "Exists":
        return True
    if operator == "Equal":
        return str(toleration.get("value") or "") == value
    return False


def untolerated(tolerations: Sequence[Mapping[str, Any]], taints: Sequence[Taint]) -> Taint | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates (None: the pod may land).

    As kube-scheduler's TaintToleration filter: PreferNoSchedule taints are skipped.
    """
    for taint in taints:
        if taint[2] not in _BLOCKING:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None
