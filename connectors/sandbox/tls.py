"""A demo certificate authority for sandboxes that speak TLS and require a client certificate (mutual TLS).

`DemoPKI("adp")` builds, in code, a CA, a server certificate for 127.0.0.1 / localhost and one client certificate,
all signed by that CA. The keys are derived from the name, so every process (the sandbox runner, the demo seeding,
a test) builds the same CA and trusts the same client: nothing is written to disk or shared between processes.
They are demo keys, public by construction: never trust this CA outside a sandbox.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from datetime import UTC, datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.http import load_cert_chain_pem

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2044, 1, 1, tzinfo=UTC)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _derived_key(label: str) -> ec.EllipticCurvePrivateKey:
    digest = int.from_bytes(hashlib.sha256(f"sysgenpro-sandbox-pki:{label}".encode()).digest(), "big")
    return ec.derive_private_key(digest % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial:{label}".encode()).digest()[:16], "big") >> 1


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class DemoPKI:
    """A CA, a loopback server certificate and a client certificate for one sandbox, named `name`."""

    def __init__(self, name: str, *, organization: str = "SysGenPro Connect sandbox"):
        self.name = name
        self.organization = organization
        self._ca_key = _derived_key(f"{name}:ca")
        self.ca_subject = _name(f"{name} sandbox demo CA", organization)

    # -- the CA --------------------------------------------------------------------------------------------------

    @cached_property
    def ca_certificate(self) -> x509.Certificate:
        builder = (
            self._builder(self.ca_subject, self._ca_key.public_key(), f"{self.name}:ca")
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        return builder.sign(self._ca_key, hashes.SHA256())

    @property
    def ca_pem(self) -> str:
        return _pem(self.ca_certificate)

    # -- leaves --------------------------------------------------------------------------------------------------

    @cached_property
    def _server(self) -> tuple[str, str]:
        key = _derived_key(f"{self.name}:server")
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        names.append(x509.IPAddress(ipaddress.ip_address("::1")))
        certificate = (
            self._builder(_name("localhost", self.organization), key.public_key(), f"{self.name}:server")
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        return _pem(certificate), _key_pem(key)

    def trusting_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA (and presents nothing): for a sandbox's control calls."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def client_certificate(self, common_name: str) -> tuple[str, str]:
        """(certificate PEM, private key PEM) of a client the sandbox trusts, e.g. "HaldenRoweMutualSSL"."""
        key = _derived_key(f"{self.name}:client:{common_name}")
        certificate = (
            self._builder(_name(common_name, self.organization), key.public_key(), f"{self.name}:client:{common_name}")
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        return _pem(certificate), _key_pem(key)

    def server_context(self, *, require_client_certificate: bool = True) -> ssl.SSLContext:
        """The server side: presents the loopback certificate and verifies client certificates against this CA.

        With `require_client_certificate=False` a client may come without one (the app then answers the vendor's
        HTTP refusal, as ADP's gateway does) but a certificate it presents must still be this CA's. TLS 1.2 only:
        under 1.3 a refused client certificate reaches the client after its handshake, as a bare EOF that says
        nothing, where 1.2 names the reason (unknown ca, bad certificate).
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=self.ca_pem)
        certificate_pem, key_pem = self._server
        load_cert_chain_pem(context, certificate_pem, key_pem)
        return context

    def _builder(self, subject: x509.Name, public_key, label: str) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_subject)
            .public_key(public_key)
            .serial_number(_serial(label))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
        )
