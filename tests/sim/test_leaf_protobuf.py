"""The SelfSubjectAccessReview protobuf reader, proven on bodies captured from real kubectl."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from skymagic.sim.protobuf import MAGIC, decode_ssar, encode_ssar_for_test, iter_fields

DATA = Path(__file__).parent / "data"

EXPECTED = {
    "ssar_list_pods_all_namespaces.bin": {
        "resourceAttributes": {"verb": "list", "resource": "pods"}
    },
    "ssar_get_pods_log_team_a.bin": {
        "resourceAttributes": {
            "namespace": "team-a",
            "verb": "get",
            "resource": "pods",
            "subresource": "log",
        }
    },
    "ssar_delete_pod_named.bin": {
        "resourceAttributes": {
            "namespace": "default",
            "verb": "delete",
            "resource": "pods",
            "name": "web-1",
        }
    },
    "ssar_nonresource_healthz.bin": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_captured_kubectl_bodies(name: str) -> None:
    body = (DATA / name).read_bytes()
    doc = decode_ssar(body)
    assert doc == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": EXPECTED[name],
    }
    # our encoder lays bodies out byte for byte like kubectl 1.32
    assert encode_ssar_for_test(doc["spec"]) == body


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    body = encode_ssar_for_test({"resourceAttributes": {"verb": "get", "resource": "nodes"}})
    # append to the envelope: varint(f9), fixed64(f10), fixed32(f11), group(f12){varint f1}, ld(f13)
    extra = bytes([9 << 3 | 0, 0x96, 0x01]) + bytes([10 << 3 | 1]) + b"\x00" * 8
    extra += bytes([11 << 3 | 5]) + b"\x01\x02\x03\x04"
    extra += bytes([12 << 3 | 3, 1 << 3 | 0, 5, 12 << 3 | 4])
    extra += bytes([13 << 3 | 2, 3]) + b"abc"
    doc = decode_ssar(body + extra)
    assert doc["spec"] == {"resourceAttributes": {"verb": "get", "resource": "nodes"}}
    assert [f for f, _, _ in iter_fields(extra)] == [9, 10, 11, 12, 13]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"k8s",
        b"nope" + b"\x00" * 10,
        MAGIC + b"\x0a\x05ab",  # truncated
        MAGIC + b"\x0a\x00",
        MAGIC + b"\x0f\x00",  # no object / wire type 7
        MAGIC + b"\x0a\x06\x12\x04Node\x12\x00",  # wrong kind
        MAGIC + b"\x0a\x80",  # truncated varint
        MAGIC + bytes([12 << 3 | 3, 1 << 3 | 0, 5]),  # unterminated group
    ],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_ssar(body)


def test_json_body_also_accepted() -> None:
    doc = decode_ssar(
        b'{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1",'
        b'"spec":{"resourceAttributes":{"verb":"list","resource":"pods","namespace":""}}}'
    )
    assert doc["spec"] == {"resourceAttributes": {"verb": "list", "resource": "pods"}}


@pytest.mark.skipif(
    not (shutil.which("kubectl") or os.path.exists("/usr/bin/kubectl")), reason="no kubectl"
)
def test_live_kubectl_body_decodes() -> None:
    from capture_kubectl import Capture

    with Capture() as cap:
        res = cap.kubectl("auth", "can-i", "watch", "nodes", "--subresource=status")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "yes"
        (body,) = cap.ssar_bodies()
    # kubectl fills in the context's namespace even for cluster-scoped nodes: the server has to
    # drop it for cluster-scoped kinds before authorizing.
    assert decode_ssar(body)["spec"] == {
        "resourceAttributes": {
            "namespace": "default",
            "verb": "watch",
            "resource": "nodes",
            "subresource": "status",
        }
    }
