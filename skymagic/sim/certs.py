"""The simulated fleet's PKI: one CA per fleet, a server certificate, client certificates.

Why it looks like this: kubectl (Go's crypto/tls) and the Python client (OpenSSL through
urllib3) must verify the simulated API servers exactly like real ones, so the certificates
follow what kubeadm issues: a self-signed CA with basic constraints and keyCertSign, a server
certificate whose identity is in subjectAltName only (Go ignores the CN since 1.15), and
client certificates whose subject carries the Kubernetes user (CN) and groups (one O each).
Subject/authority key identifiers are present because OpenSSL 3's X509_STRICT mode (on by
default in Python >= 3.13's default contexts) rejects chains without them. EC P-256 keys
keep fleet start-up in milliseconds; RSA-2048 generation would cost ~50 ms per key.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FleetCA", "identity_from_peercert"]

_CA_VALIDITY = _dt.timedelta(days=365)
_LEAF_VALIDITY = _dt.timedelta(days=365)
# Certificates start a little in the past so a client whose clock lags does not see them as
# "not yet valid" (kubeadm does the same with its 5-minute backdate).
_BACKDATE = _dt.timedelta(minutes=5)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: read by Go's tls.X509KeyPair, OpenSSL and the Python client's temp-file loader.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


# Key usages no simulated certificate has (x509.KeyUsage wants every flag spelled out).
_UNUSED_KEY_USAGES = dict.fromkeys(
    (
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "encipher_only",
        "decipher_only",
    ),
    False,
)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    validity: _dt.timedelta,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """What the CA and every leaf share: names, key, serial, validity from a little in the
    past, basic constraints, key usage (digital signature for all; certificate and CRL
    signing for the CA only) and the subject key identifier."""
    now = _now()
    usage = x509.KeyUsage(
        digital_signature=True, key_cert_sign=ca, crl_sign=ca, **_UNUSED_KEY_USAGES
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


@dataclass
class FleetCA:
    """A fleet's certificate authority; every server and client certificate chains to it."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @classmethod
    def create(cls, common_name: str = "skymagic-sim-ca") -> FleetCA:
        """A fresh self-signed CA, valid for one year."""
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            _builder(name, name, key, _CA_VALIDITY, ca=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def _issue(
        self,
        subject: x509.Name,
        eku: x509.ObjectIdentifier,
        sans: Sequence[x509.GeneralName] = (),
    ) -> tuple[bytes, bytes]:
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        ca_key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError("FleetCA key must be an EC private key")
        key = _new_key()
        builder = (
            _builder(subject, ca_cert.subject, key, _LEAF_VALIDITY, ca=False)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def issue_server_cert(self) -> tuple[bytes, bytes]:
        """(cert_pem, key_pem) for an API server on 127.0.0.1 / ::1 / localhost."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
        ]
        return self._issue(subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def issue_client_cert(self, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """(cert_pem, key_pem) authenticating as `user` in `groups` (CN=user, O=group each)."""
        if not user:
            raise ValueError("client certificate user must not be empty")
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(x509.Name(attrs), ExtendedKeyUsageOID.CLIENT_AUTH)


def identity_from_peercert(
    peercert: Mapping[str, Any] | None,
) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) from `ssl.SSLSocket.getpeercert()`, or None without a verified cert.

    getpeercert() returns None when the client sent no certificate and {} when it was not
    validated, so both mean "not authenticated by certificate" (the server then tries the
    bearer token). The subject is a tuple of RDNs, each a tuple of (name, value) pairs;
    Kubernetes takes the user from commonName and a group from every organizationName.
    """
    if not peercert:
        return None
    user = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for attr in rdn:
            if len(attr) != 2:
                continue
            name, value = attr
            if name == "commonName" and not user:
                user = str(value)
            elif name == "organizationName":
                groups.append(str(value))
    if not user:
        return None
    return user, tuple(groups)
