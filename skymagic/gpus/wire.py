"""Nodes and pods as the inventory reads them off the wire: typed structs of the needed fields.

Why: a pod is ~2.5 KB of JSON (managedFields, env, volumes, probes, status conditions, ...)
and the inventory reads about ten fields of it. Decoding a list page into dicts builds every
field as Python objects and then throws them away; msgspec decodes straight into these
structs and skips everything else inside its C parser: ~9x faster than `orjson.loads` on the
same pages, with a fraction of the memory (bench/json_libs.py, ARCHITECTURE.md).

Typed decoding is also the input check. A body that is not what the API promises (a truncated
page, a field of the wrong type, a string longer than any name or label the API server
accepts) fails with `msgspec.DecodeError` naming the JSON path; the list readers turn it into
a `MalformedResponseError` for that context and list (`malformed`), never a crash.

Container resources stay undecoded (`msgspec.Raw`, a slice of the page): thousands of pods
share the same few `resources` texts, so the counting decodes and parses each distinct text
once (`skymagic.gpus.counting`) and a pod costs a byte-string lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

__all__ = [
    "JOB_ATTEMPT_LABEL",
    "JOB_ID_LABEL",
    "MAX_TEXT",
    "Container",
    "JobLabels",
    "Node",
    "NodeMeta",
    "ObjectMeta",
    "Pod",
    "PodSpec",
    "PodUsage",
    "PodUsageMeta",
    "Resources",
    "WireError",
    "decode_node",
    "decode_node_list",
    "decode_pod",
    "decode_pod_list",
    "decode_pod_usage_list",
    "decode_resources",
    "to_node",
    "to_pod",
    "to_pod_spec",
]

MAX_TEXT = 1024
"""The longest name, label, taint or quantity text accepted: the API server's own limits are
253 (names) and 317 (label keys); anything longer is a malformed answer, not data."""

WireError = msgspec.DecodeError
"""What a malformed body raises (`msgspec.ValidationError` for a wrong type is a subclass)."""

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Quantity = Text | float  # "500m", "16Gi"; a bare JSON number is read as the quantity it spells

_NULL = msgspec.Raw(b"null")


class Resources(msgspec.Struct, gc=False):
    """A container's `resources` (decoded only once per distinct text)."""

    requests: dict[Text, Quantity] | None = None
    limits: dict[Text, Quantity] | None = None


class Container(msgspec.Struct, gc=False):
    """An app or init container: its resources (undecoded) and restartPolicy (sidecars)."""

    resources: msgspec.Raw = _NULL
    restartPolicy: Text | None = None


class PodSpec(msgspec.Struct, gc=False):
    nodeName: Text | None = None
    containers: list[Container] | None = None
    initContainers: list[Container] | None = None
    overhead: dict[Text, Quantity] | None = None


class PodStatus(msgspec.Struct, gc=False):
    phase: Text | None = None


# A managed job's pods carry its id and attempt: named here, where the pod decoder reads them,
# and used by jobs/model.py when it labels a job's pods (the inventory never imports jobs/).
JOB_ID_LABEL = "skymagic.dev/job-id"
JOB_ATTEMPT_LABEL = "skymagic.dev/job-attempt"


class JobLabels(msgspec.Struct, gc=False):
    """The two labels of a pod that say which managed job it runs; every other label is
    skipped inside the parser (no dict of a pod's labels is built)."""

    job: Text | None = msgspec.field(default=None, name=JOB_ID_LABEL)
    attempt: Text | None = msgspec.field(default=None, name=JOB_ATTEMPT_LABEL)


class PodUsageMeta(msgspec.Struct, gc=False):
    """What the counting reads of a pod's metadata: the managed job it runs, if any (the
    dashboard marks the nodes holding one)."""

    labels: JobLabels | None = None


class ObjectMeta(PodUsageMeta, gc=False):
    """A pod's identity (the live inventory keys pods on it) and its job labels."""

    name: Text = ""
    namespace: Text = ""
    uid: Text = ""


class NodeMeta(msgspec.Struct, gc=False):
    """A node's name and labels (the labels say which GPU it has)."""

    name: Text = ""
    labels: dict[Text, Text] | None = None


class PodUsage(msgspec.Struct, gc=False):
    """What the counting reads of a pod: where it runs, what it requests, whether it ended,
    and which managed job it runs.

    The one-shot inventory decodes its pod pages into these: of the metadata only the two job
    labels, so no name, namespace and uid strings per pod to build and free (~15% of the
    decode on 25,000 pods).
    """

    spec: PodSpec | None = None
    status: PodStatus | None = None
    metadata: PodUsageMeta | None = None


class Pod(PodUsage, gc=False):
    """A pod with its identity, which the live inventory keys its pods on."""

    metadata: ObjectMeta | None = None


class Taint(msgspec.Struct, gc=False):
    key: Text = ""
    value: Text | None = None
    effect: Text = ""


class NodeSpec(msgspec.Struct, gc=False):
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class Condition(msgspec.Struct, gc=False):
    type: Text = ""
    status: Text = ""


class NodeStatus(msgspec.Struct, gc=False):
    allocatable: dict[Text, Quantity] | None = None
    conditions: list[Condition] | None = None


class Node(msgspec.Struct, gc=False):
    metadata: NodeMeta | None = None
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class _PodList(msgspec.Struct, gc=False):
    items: list[Pod] | None = None


class _PodUsageList(msgspec.Struct, gc=False):
    items: list[PodUsage] | None = None


class _NodeList(msgspec.Struct, gc=False):
    items: list[Node] | None = None


_POD_LIST = msgspec.json.Decoder(_PodList)
_POD_USAGE_LIST = msgspec.json.Decoder(_PodUsageList)
_NODE_LIST = msgspec.json.Decoder(_NodeList)
_POD = msgspec.json.Decoder(Pod)
_NODE = msgspec.json.Decoder(Node)
_RESOURCES = msgspec.json.Decoder(Resources)
_ENCODER = msgspec.json.Encoder()


def decode_pod_list(body: bytes | memoryview) -> list[Pod]:
    """The items of a PodList page (raises WireError when the page is malformed)."""
    return _POD_LIST.decode(body).items or []


def decode_pod_usage_list(body: bytes | memoryview) -> list[PodUsage]:
    """The items of a PodList page, without their metadata (the one-shot tally)."""
    return _POD_USAGE_LIST.decode(body).items or []


def decode_node_list(body: bytes | memoryview) -> list[Node]:
    """The items of a NodeList page (raises WireError when the page is malformed)."""
    return _NODE_LIST.decode(body).items or []


def decode_pod(raw: bytes | memoryview) -> Pod:
    """One pod (a watch event's object)."""
    return _POD.decode(raw)


def decode_node(raw: bytes | memoryview) -> Node:
    """One node (a watch event's object)."""
    return _NODE.decode(raw)


def decode_resources(raw: bytes | memoryview) -> Resources:
    """A container's resources; `null` or absent gives empty resources."""
    return _RESOURCES.decode(raw) if raw else Resources()


S = TypeVar("S", bound=msgspec.Struct)


def _from_mapping(obj: Mapping[str, Any] | S, kind: type[S]) -> S:
    # Encoding back to JSON is the one way msgspec fills a Raw field from Python objects; this
    # path serves small callers (a dashboard's pods of one node, tests), never a big list.
    if isinstance(obj, kind):
        return obj
    decoded: S = msgspec.json.decode(_ENCODER.encode(obj), type=kind)
    return decoded


def to_pod(obj: Mapping[str, Any] | Pod) -> Pod:
    """A pod from a decoded dict (or a Pod, unchanged): the counting's one input type."""
    return _from_mapping(obj, Pod)


def to_pod_spec(obj: Mapping[str, Any] | PodSpec) -> PodSpec:
    """A pod spec from a dict (or a PodSpec, unchanged)."""
    return _from_mapping(obj, PodSpec)


def to_node(obj: Mapping[str, Any] | Node) -> Node:
    """A node from a decoded dict (or a Node, unchanged)."""
    return _from_mapping(obj, Node)
