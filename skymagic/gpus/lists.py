"""Reading one context's nodes and pods: the two list requests, decoded a page at a time.

Per context exactly two lists, which the one-shot inventory issues concurrently (every context
at once) and the live inventory issues before each watch:

    GET /api/v1/nodes?resourceVersion=0&limit=N
    GET /api/v1/pods?resourceVersion=0&limit=N
        &fieldSelector=status.phase!=Succeeded,status.phase!=Failed

`resourceVersion=0` lets the API server answer from its watch cache; the field selector keeps
finished pods (often most of a busy cluster's pods) off the wire. Each page is decoded into the
typed structs of `skymagic.gpus.wire` (only the fields the counting reads) and folded at once
into what is kept (NodeInfo, per-node request sums, or per-pod bindings), then dropped. While
a page decodes, the client is already downloading the next one (`ContextClient.list_pages`;
reading TLS releases the GIL, decoding holds it), so per list one page is in flight and one is
being decoded, whatever the cluster size.

A page that does not decode (truncated, a field of the wrong type, an oversized string) is a
`MalformedResponseError` naming the context and the list: for pods the context degrades to
"free unknown" with an error row, for nodes the context is an error row; other contexts are
untouched.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple, TypeVar

from skymagic.core.client import ContextClient
from skymagic.errors import MalformedResponseError, SkymagicError
from skymagic.gpus.counting import (
    Binding,
    ContextData,
    NodeInfo,
    Usage,
    job_of,
    parse_node,
    pod_binding_cached,
    pod_key,
)
from skymagic.gpus.wire import (
    Node,
    Pod,
    PodUsage,
    WireError,
    decode_node_list,
    decode_pod_list,
    decode_pod_usage_list,
)

__all__ = [
    "NODES_PATH",
    "PODS_PATH",
    "POD_FIELD_SELECTOR",
    "PodBindings",
    "cached_fetch",
    "fetch_context",
    "list_nodes",
    "list_pod_bindings",
    "malformed",
    "tally_pods",
]

NODES_PATH = "/api/v1/nodes"
PODS_PATH = "/api/v1/pods"
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"

_NODE_QUERY: Mapping[str, str] = {"resourceVersion": "0"}
_POD_QUERY: Mapping[str, str] = {"resourceVersion": "0", "fieldSelector": POD_FIELD_SELECTOR}
_WHAT = {NODES_PATH: "node", PODS_PATH: "pod"}

T = TypeVar("T", Node, Pod, PodUsage)


_pausers = 0
_resume = False
_pause_lock = threading.Lock()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a page is decoded and folded.

    A page of 2,000 pods allocates ~2,000 container lists (the only container objects of the
    typed structs), freed with the page; counted by the collector, they set off ~130 young and
    about one full collection per 100,000 pods, and a full collection walks every object of
    the process (a notebook's whole heap). Paused per page (a few ms), on any thread: the
    first page in pauses it, the last one out resumes it, unless it was off already.
    """
    global _pausers, _resume
    with _pause_lock:
        if _pausers == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _resume:
                gc.enable()


def malformed(
    client: ContextClient, path: str, exc: Exception, part: str = "list"
) -> SkymagicError:
    """The error for a body from `path` that did not decode: names the list and the place."""
    detail = str(exc)[:200]
    return MalformedResponseError(
        f"the {_WHAT.get(path, path)} list from {client.server} is malformed ({detail}); "
        "the API server, or a proxy in front of it, sent something that is not Kubernetes JSON",
        context=client.name,
    )


def _fold_list(
    client: ContextClient,
    path: str,
    query: Mapping[str, str],
    decode: Callable[[bytes | memoryview], list[T]],
    fold: Callable[[Sequence[T]], None],
    restart: Callable[[], None],
) -> str:
    """Decode each page and hand its items to `fold`, then drop them; the list's RV.

    `restart` forgets what was folded when the list starts over (an expired continue token).
    """
    rv = ""
    for page in client.list_pages(path, query):
        if not page.body:
            restart()
            continue
        try:
            with _collector_paused():
                fold(decode(page.body))
        except WireError as exc:
            raise malformed(client, path, exc) from None
        rv = page.resource_version or rv
        del page  # its memory goes back while the next page downloads
    return rv


def list_nodes(client: ContextClient) -> tuple[list[NodeInfo], str]:
    """Every node of the context as NodeInfo, and the list's resourceVersion."""
    nodes: list[NodeInfo] = []
    rv = _fold_list(
        client,
        NODES_PATH,
        _NODE_QUERY,
        decode_node_list,
        lambda items: nodes.extend(parse_node(item) for item in items),
        nodes.clear,
    )
    return nodes, rv


def tally_pods(client: ContextClient) -> Usage:
    """Requests per node, summed over the pods that hold resources (the one-shot inventory)."""
    usage = Usage()
    _fold_list(client, PODS_PATH, _POD_QUERY, decode_pod_usage_list, usage.add_pods, usage.clear)
    return usage


class PodBindings(NamedTuple):
    """What the live inventory keeps of a pod list: each resource-holding pod's binding by pod
    key, and the managed job (`job_of`) of those that run one."""

    bindings: dict[str, Binding]
    jobs: dict[str, str]


def list_pod_bindings(client: ContextClient) -> tuple[PodBindings, str]:
    """Each resource-holding pod's binding and job by pod key (what a watch then updates);
    the list's resourceVersion."""
    pods: dict[str, Binding] = {}
    jobs: dict[str, str] = {}

    def fold(items: Sequence[Pod]) -> None:
        for item in items:
            binding = pod_binding_cached(item)
            if binding is not None:
                key = pod_key(item)
                pods[key] = binding
                meta = item.metadata
                if meta is not None and meta.labels is not None and meta.labels.job:
                    jobs[key] = job_of(meta)

    def restart() -> None:
        pods.clear()
        jobs.clear()

    rv = _fold_list(client, PODS_PATH, _POD_QUERY, decode_pod_list, fold, restart)
    return PodBindings(pods, jobs), rv


def fetch_context(client: ContextClient) -> ContextData:
    """Both lists of one context, concurrently; a failed pod list degrades, never fails.

    The node list is one page on most clusters (decoded in milliseconds), so a context has its
    first pod page and its node list downloading at once, then one pod page at a time. No
    /version, no access reviews: a 403 on the pod list is an answer too (nodes shown, free
    unknown, a `forbidden` error row), not a reason to fail the context (SkyPilot issue #5146).
    A node-list error fails the whole context.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nodes-{client.name}") as pool:
        nodes_future: Future[tuple[list[NodeInfo], str]] = pool.submit(list_nodes, client)
        usage: Usage | None = None
        pods_error: SkymagicError | None = None
        try:
            usage = tally_pods(client)
        except SkymagicError as exc:
            pods_error = exc
        nodes, _rv = nodes_future.result()
    return ContextData(nodes=nodes, usage=usage, pods_error=pods_error)


_cache: dict[tuple[str, str], ContextData] = {}
_cache_lock = threading.Lock()


def cached_fetch(client: ContextClient, ttl: float | None) -> ContextData:
    """`fetch_context`, reusing a complete answer younger than `ttl` seconds (None: no cache).

    Keyed on the context's name and its resolved kubeconfig entry (`client.fingerprint`), so an
    edited entry is read afresh and a new client for the same entry still hits.
    """
    if not ttl or ttl <= 0:
        return fetch_context(client)
    key = (client.name, client.fingerprint)
    now = time.time()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit.fetched_at <= ttl:
        return hit
    data = fetch_context(client)
    if data.pods_error is None:
        with _cache_lock:
            _cache[key] = data
    return data
