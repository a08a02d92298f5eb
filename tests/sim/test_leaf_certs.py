"""FleetCA: real TLS handshakes over loopback, identity from the client certificate."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from skymagic.sim.certs import FleetCA, identity_from_peercert


def _write(d: Path, name: str, data: bytes) -> str:
    p = d / name
    p.write_bytes(data)
    return str(p)


def _handshake(
    ca: FleetCA,
    client_ca: FleetCA | None,
    client: tuple[bytes, bytes] | None,
    server_hostname: str = "localhost",
    server_errors: list[BaseException] | None = None,
) -> tuple[Any, BaseException | None]:
    """Run one TLS handshake; returns (server's getpeercert(), client error or None).

    The server's own error, if any, is appended to `server_errors`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cert, key = ca.issue_server_cert()
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(_write(d, "s.crt", cert), _write(d, "s.key", key))
        sctx.load_verify_locations(cadata=ca.cert_pem.decode())
        sctx.verify_mode = ssl.CERT_OPTIONAL

        cctx = ssl.create_default_context(cadata=(client_ca or ca).cert_pem.decode())
        if client:
            cctx.load_cert_chain(_write(d, "c.crt", client[0]), _write(d, "c.key", client[1]))

        a, b = socket.socketpair()
        result: dict[str, Any] = {}

        def serve() -> None:
            try:
                with sctx.wrap_socket(a, server_side=True) as s:
                    result["peer"] = s.getpeercert()
                    s.sendall(b"ok")
            except (ssl.SSLError, OSError) as e:
                result["server_error"] = e

        t = threading.Thread(target=serve)
        t.start()
        err: BaseException | None = None
        try:
            with cctx.wrap_socket(b, server_hostname=server_hostname) as c:
                assert c.recv(2) == b"ok"
        except (ssl.SSLError, OSError) as e:
            err = e
        t.join(10)
        if server_errors is not None and "server_error" in result:
            server_errors.append(result["server_error"])
        return result.get("peer"), err


def test_ca_shape() -> None:
    ca = FleetCA.create()
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "key_pem" not in repr(ca) and "PRIVATE" not in repr(ca)
    scert = x509.load_pem_x509_certificate(ca.issue_server_cert()[0])
    san = scert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_client_cert_handshake_gives_identity() -> None:
    ca = FleetCA.create()
    peer, err = _handshake(ca, None, ca.issue_client_cert("alice", ["team-a", "system:masters"]))
    assert err is None
    assert identity_from_peercert(peer) == ("alice", ("team-a", "system:masters"))


def test_no_client_cert_is_anonymous_but_tls_works() -> None:
    ca = FleetCA.create()
    peer, err = _handshake(ca, None, None)
    assert err is None
    assert identity_from_peercert(peer) is None


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_server_cert_matches_loopback_names(host: str) -> None:
    ca = FleetCA.create()
    _, err = _handshake(ca, None, None, server_hostname=host)
    assert err is None


def test_client_cert_from_other_ca_rejected() -> None:
    ca, other = FleetCA.create(), FleetCA.create()
    server_errors: list[BaseException] = []
    peer, err = _handshake(
        ca, None, other.issue_client_cert("mallory"), server_errors=server_errors
    )
    assert peer is None  # no identity reached the server
    # the server refused the certificate itself, for its issuer ...
    (refusal,) = server_errors
    assert isinstance(refusal, ssl.SSLCertVerificationError), refusal
    assert "unable to get local issuer certificate" in refusal.verify_message
    # ... and told the client so ("unknown ca" alert), which fails the client's first read
    assert isinstance(err, ssl.SSLError) and "UNKNOWN_CA" in str(err), err


def test_server_of_other_ca_rejected_by_client() -> None:
    ca, other = FleetCA.create(), FleetCA.create()
    _, err = _handshake(ca, other, None)
    assert isinstance(err, ssl.SSLCertVerificationError)


def test_identity_from_peercert_shapes() -> None:
    assert identity_from_peercert(None) is None
    assert identity_from_peercert({}) is None
    peer = {"subject": ((("organizationName", "g1"),), (("commonName", "bob"),))}
    assert identity_from_peercert(peer) == ("bob", ("g1",))
