"""The live inventory's state: per-context nodes and pod bindings, changed only by events.

Pure (no threads, no network): `LiveState.apply` folds list and watch events into per-context
state and `LiveState.view` says what a context looks like now, so the rules (a re-list
replaces, a watch event patches, an error shows until the next successful list) are unit-tested
on plain values. The watcher (`skymagic.gpus.watcher`) produces the events on its threads and
applies them under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from skymagic.errors import RequestTimeoutError, SkymagicError
from skymagic.gpus.counting import Binding, ContextData, JobPod, NodeInfo, Usage

__all__ = [
    "ContextState",
    "ListFailed",
    "LiveEvent",
    "LiveState",
    "NodeDeleted",
    "NodeSet",
    "NodesListed",
    "PodSet",
    "PodsListed",
]


class NodesListed(NamedTuple):
    """A (re-)list of the context's nodes: replaces every node; clears a nodes error."""

    context: str
    nodes: dict[str, NodeInfo]
    took_s: float = 0.0


class NodeSet(NamedTuple):
    """A node was added or changed."""

    context: str
    node: NodeInfo


class NodeDeleted(NamedTuple):
    context: str
    name: str


_NO_JOBS: Mapping[str, str] = {}


class PodsListed(NamedTuple):
    """A (re-)list of the context's resource-holding pods (by pod key): replaces them all.
    `jobs`: the managed job (`counting.job_of`) of those that run one, by pod key."""

    context: str
    pods: dict[str, Binding]
    jobs: Mapping[str, str] = _NO_JOBS


class PodSet(NamedTuple):
    """A pod changed: its binding now, or None once it holds nothing (deleted, finished);
    `job`: the managed job it runs ('' for other pods)."""

    context: str
    key: str
    binding: Binding | None
    job: str = ""


class ListFailed(NamedTuple):
    """Listing or watching `what` failed; shown until the next successful list of it."""

    context: str
    what: Literal["nodes", "pods"]
    error: SkymagicError


LiveEvent = NodesListed | NodeSet | NodeDeleted | PodsListed | PodSet | ListFailed


@dataclass
class ContextState:
    """One context's live view: nodes by name, resource-holding pods by key, their sums, and
    the managed jobs' pods among them (their jobs by pod key)."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, Binding] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    nodes_synced: bool = False
    pods_synced: bool = False
    nodes_error: SkymagicError | None = None
    pods_error: SkymagicError | None = None
    latency_ms: float = 0.0

    @property
    def settled(self) -> bool:
        """Both lists have answered once, either way."""
        nodes_done = self.nodes_synced or self.nodes_error is not None
        pods_done = self.pods_synced or self.pods_error is not None
        return nodes_done and pods_done

    def set_pod(self, key: str, binding: Binding | None, job: str = "") -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            self.usage.add(old[0], old[1], -1.0)
        self.jobs.pop(key, None)
        if binding is not None:
            self.pods[key] = binding
            self.usage.add(binding[0], binding[1])
            if job:
                self.jobs[key] = job

    def reset_pods(self, pods: dict[str, Binding], jobs: Mapping[str, str] = _NO_JOBS) -> None:
        self.pods = dict(pods)
        self.jobs = {k: j for k, j in jobs.items() if j and k in self.pods}
        self.usage = Usage()
        self.usage.add_bindings(self.pods.values())

    def job_pods(self) -> list[JobPod]:
        """(node, job, requests) of each managed job's resource-holding pod."""
        return [(self.pods[k][0], job, self.pods[k][1]) for k, job in self.jobs.items()]


class LiveState:
    """Every context's `ContextState`; `apply` is the reducer."""

    def __init__(self, contexts: Iterable[str]) -> None:
        self.contexts: dict[str, ContextState] = {c: ContextState() for c in contexts}

    def apply(self, event: LiveEvent) -> None:
        st = self.contexts[event.context]
        if isinstance(event, NodesListed):
            st.nodes = dict(event.nodes)
            st.nodes_synced = True
            st.nodes_error = None
            st.latency_ms = event.took_s * 1000
        elif isinstance(event, NodeSet):
            st.nodes[event.node.name] = event.node
        elif isinstance(event, NodeDeleted):
            st.nodes.pop(event.name, None)
        elif isinstance(event, PodsListed):
            st.reset_pods(event.pods, event.jobs)
            st.pods_synced = True
            st.pods_error = None
        elif isinstance(event, PodSet):
            st.set_pod(event.key, event.binding, event.job)
        elif event.what == "nodes":
            st.nodes_error = event.error
        else:
            st.pods_error = event.error

    def view(self, context: str) -> ContextData | SkymagicError:
        """The context as the inventory shows it now: its data, or why there is none.

        Until the nodes are listed the context is an error row (the last failure, or "still
        listing"); until the pods are listed, nodes show with free unknown.
        """
        st = self.contexts[context]
        if not st.nodes_synced:
            return st.nodes_error or RequestTimeoutError(
                "no node list yet (still listing)", context=context
            )
        usage: Usage | None = None
        if st.pods_synced and st.pods_error is None:
            usage = Usage()
            usage.by_node = {n: dict(v) for n, v in st.usage.by_node.items()}
            usage.job_pods = st.job_pods()
        pods_error = st.pods_error
        if pods_error is None and not st.pods_synced:
            pods_error = RequestTimeoutError("no pod list yet (still listing)", context=context)
        return ContextData(nodes=list(st.nodes.values()), usage=usage, pods_error=pods_error)
