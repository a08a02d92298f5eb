"""Just enough Kubernetes protobuf to read the SelfSubjectAccessReview kubectl sends.

Why: kubectl 1.32's `auth can-i` POSTs its SelfSubjectAccessReview only as protobuf
(`Content-Type: application/vnd.kubernetes.protobuf`, seen with a capturing server) and accepts
a JSON answer, so the simulated API server must read this one
message and nothing else; a dependency on `protobuf` plus generated Kubernetes stubs would be
far heavier than this ~100-line wire-format reader.

Layout (checked against bodies captured from the real kubectl, kept in tests/sim/data):
``b"k8s\\x00"`` then a runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3
contentEncoding, 4 contentType}; raw is the SelfSubjectAccessReview {1 metadata, 2 spec, 3
status}; spec {1 resourceAttributes {1 namespace, 2 verb, 3 group, 4 version, 5 resource,
6 subresource, 7 name, 8 fieldSelector, 9 labelSelector}, 2 nonResourceAttributes {1 path,
2 verb}}. Unknown fields of every wire type are skipped, so newer clients still decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["MAGIC", "decode_ssar", "encode_ssar_for_test", "iter_fields"]

MAGIC = b"k8s\x00"

_RESOURCE_FIELDS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
_NONRESOURCE_FIELDS = {1: "path", 2: "verb"}
_MAX_DEPTH = 32


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def _skip_group(buf: bytes, pos: int, field: int, depth: int) -> int:
    if depth > _MAX_DEPTH:
        raise ValueError("groups nested too deeply")
    while True:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 4:
            if num != field:
                raise ValueError("mismatched end-group tag")
            return pos
        _, pos = _value(buf, pos, num, wire, depth + 1)


def _value(buf: bytes, pos: int, num: int, wire: int, depth: int = 0) -> tuple[int | bytes, int]:
    if wire == 0:
        return _varint(buf, pos)
    if wire == 1:
        end = pos + 8
    elif wire == 5:
        end = pos + 4
    elif wire == 2:
        length, pos = _varint(buf, pos)
        end = pos + length
    elif wire == 3:
        return b"", _skip_group(buf, pos, num, depth)
    else:
        raise ValueError(f"invalid wire type {wire}")
    if end > len(buf):
        raise ValueError("truncated field")
    return buf[pos:end], end


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; bytes for length-delimited fields.

    Fixed-width fields come back as their raw bytes and groups as b"" (skipped).
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wire == 4:
            raise ValueError("unexpected end-group tag")
        value, pos = _value(buf, pos, num, wire)
        yield num, wire, value


def _strings(buf: bytes, names: Mapping[int, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for num, wire, value in iter_fields(buf):
        if num in names and wire == 2 and isinstance(value, bytes):
            text = value.decode("utf-8")
            if text:
                out[names[num]] = text
    return out


def _message(buf: bytes, want: int) -> bytes | None:
    found: bytes | None = None
    for num, wire, value in iter_fields(buf):
        if num == want and wire == 2 and isinstance(value, bytes):
            # Repeated occurrences of an embedded message merge; last-wins is enough here.
            found = value
    return found


def decode_ssar(body: bytes) -> dict[str, Any]:
    """The JSON form of a SelfSubjectAccessReview request body (protobuf, or JSON as well).

    Only the non-empty attributes are returned, like the JSON kubectl would have sent
    (every ResourceAttributes field is omitempty). ValueError on anything malformed.
    """
    if body[:1] == b"{":
        return _decode_json(body)
    if not body.startswith(MAGIC):
        raise ValueError("body is not a Kubernetes protobuf envelope (missing k8s\\x00 magic)")
    try:
        unknown = body[len(MAGIC) :]
        type_meta = _strings(_message(unknown, 1) or b"", {1: "apiVersion", 2: "kind"})
        raw = _message(unknown, 2)
        if type_meta.get("kind") != "SelfSubjectAccessReview":
            raise ValueError(f"protobuf body holds a {type_meta.get('kind') or 'nameless'} object")
        if raw is None:
            raise ValueError("protobuf envelope has no object")
        spec_buf = _message(raw, 2) or b""
        spec: dict[str, Any] = {}
        ra = _message(spec_buf, 1)
        nra = _message(spec_buf, 2)
        if ra is not None:
            spec["resourceAttributes"] = _strings(ra, _RESOURCE_FIELDS)
        if nra is not None:
            spec["nonResourceAttributes"] = _strings(nra, _NONRESOURCE_FIELDS)
    except UnicodeDecodeError:
        raise ValueError("protobuf string is not UTF-8")
    if not spec:
        raise ValueError("SelfSubjectAccessReview spec has no resource or non-resource attributes")
    return {
        "apiVersion": type_meta.get("apiVersion", "authorization.k8s.io/v1"),
        "kind": "SelfSubjectAccessReview",
        "spec": spec,
    }


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except ValueError as e:
        raise ValueError(f"body is not valid JSON: {e}")
    if not isinstance(obj, dict) or obj.get("kind") != "SelfSubjectAccessReview":
        raise ValueError("JSON body is not a SelfSubjectAccessReview")
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not (
        isinstance(spec.get("resourceAttributes"), dict)
        or isinstance(spec.get("nonResourceAttributes"), dict)
    ):
        raise ValueError("SelfSubjectAccessReview spec has no resource or non-resource attributes")
    out: dict[str, Any] = {}
    for key in ("resourceAttributes", "nonResourceAttributes"):
        if isinstance(spec.get(key), dict):
            out[key] = {k: v for k, v in spec[key].items() if isinstance(v, str) and v}
    return {
        "apiVersion": obj.get("apiVersion", "authorization.k8s.io/v1"),
        "kind": "SelfSubjectAccessReview",
        "spec": out,
    }


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def _vi(num: int, value: int) -> bytes:
    return _enc_varint(num << 3) + _enc_varint(value)


def _str_fields(attrs: Mapping[str, str], names: Mapping[int, str]) -> bytes:
    return b"".join(_ld(num, attrs.get(name, "").encode()) for num, name in names.items())


def encode_ssar_for_test(spec: Mapping[str, Any]) -> bytes:
    """A protobuf body laid out byte for byte like kubectl 1.32's (the inverse of decode_ssar).

    `spec` is {"resourceAttributes": {...}} and/or {"nonResourceAttributes": {...}}.
    Go's generated marshalers write every non-pointer field, empty or not, which is why the
    empty metadata, status and string fields appear.
    """
    metadata = b"".join(_ld(n, b"") for n in range(1, 7)) + _vi(7, 0) + _ld(8, b"")
    spec_buf = b""
    if "resourceAttributes" in spec:
        spec_buf += _ld(1, _str_fields(spec["resourceAttributes"], _RESOURCE_FIELDS))
    if "nonResourceAttributes" in spec:
        spec_buf += _ld(2, _str_fields(spec["nonResourceAttributes"], _NONRESOURCE_FIELDS))
    status = _vi(1, 0) + _ld(2, b"") + _ld(3, b"") + _vi(4, 0)
    raw = _ld(1, metadata) + _ld(2, spec_buf) + _ld(3, status)
    type_meta = _ld(1, b"authorization.k8s.io/v1") + _ld(2, b"SelfSubjectAccessReview")
    return MAGIC + _ld(1, type_meta) + _ld(2, raw) + _ld(3, b"") + _ld(4, b"")
