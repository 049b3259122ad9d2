"""SAML 2.0 for single sign-on: reading an identity provider's metadata into what the portal trusts (its entity
ID, sign-on URL and signing certificate), the portal's own key pair for each IdP, and the settings allauth's SAML
provider (python3-saml) runs with. Whom a SAML IdP may sign in is decided by tenants.sso_services, as for OIDC."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from connectors.http import HttpPolicy, VendorSession

MAX_METADATA_BYTES = 512 * 1024
# NameID formats that carry an email address, so the NameID can stand in for a missing email attribute.
EMAIL_NAMEID_FORMATS = frozenset(
    {
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    }
)


class SamlMetadataError(ValueError):
    """The IdP's metadata cannot be used; the message says why in an administrator's words."""


@dataclass(frozen=True)
class SamlIdp:
    entity_id: str
    sso_url: str
    x509cert: str  # base64 DER body, one line, as python3-saml keeps it


def certificate_body(text: str) -> str:
    """A certificate as pasted (PEM, or a bare base64 body, wrapped or not) as one base64 line, once it is
    known to be a real X.509 certificate."""
    body = "".join(
        line.strip() for line in (text or "").strip().splitlines() if line.strip() and not line.startswith("-----")
    )
    body = "".join(body.split())
    if not body:
        raise SamlMetadataError("Paste the identity provider's signing certificate.")
    try:
        x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
    except ValueError:
        raise SamlMetadataError(
            "That is not an X.509 certificate: paste the PEM text, from -----BEGIN CERTIFICATE----- to the end."
        ) from None
    return body


def certificate_summary(body: str) -> str:
    """Who the certificate names and until when, for the configuration page."""
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(body))
    except ValueError:
        return ""
    return f"{cert.subject.rfc4514_string()}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"


def metadata_read(xml: bytes | str) -> SamlIdp:
    """What an IdP's metadata document says the portal should trust, or SamlMetadataError saying what is missing."""
    if isinstance(xml, str):
        xml = xml.encode()
    if len(xml) > MAX_METADATA_BYTES:
        raise SamlMetadataError("That file is too large for SAML metadata (over 512 KB).")
    try:
        # Refuses DTDs and entities (python3-saml's own parser settings), so no XML bombs or external reads.
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml)
    except etree.XMLSyntaxError as error:
        raise SamlMetadataError(f"This is not well-formed XML ({error.msg}).") from None
    except Exception as error:  # noqa: BLE001 - python3-saml raises plain Exceptions for DTDs and such
        raise SamlMetadataError(f"This XML cannot be read as SAML metadata ({error}).") from None
    idp = parsed.get("idp")
    if not idp or not idp.get("entityId"):
        raise SamlMetadataError(
            "This metadata describes no identity provider (no EntityDescriptor with an IDPSSODescriptor)."
        )
    if not (idp.get("singleSignOnService") or {}).get("url"):
        raise SamlMetadataError(
            "This metadata has no single sign-on endpoint the portal can use "
            "(a SingleSignOnService with the HTTP-Redirect binding)."
        )
    cert = idp.get("x509cert") or ((idp.get("x509certMulti") or {}).get("signing") or [None])[0]
    if not cert:
        raise SamlMetadataError(
            "This metadata has no signing certificate (a KeyDescriptor for signing with an X509Certificate): "
            "the portal only accepts signed assertions."
        )
    return SamlIdp(
        entity_id=idp["entityId"], sso_url=idp["singleSignOnService"]["url"], x509cert=certificate_body(cert)
    )


def metadata_fetch(url: str) -> SamlIdp:
    """Read the IdP's metadata from its URL, through the connectors' HTTP policy (no private or loopback
    addresses unless allow-listed), once, when the administrator saves: sign-in never waits on it."""
    policy = HttpPolicy(
        allowed_hosts=frozenset(settings.CONNECTOR_ALLOWED_HOSTS), max_retries=1, connect_timeout=5, read_timeout=10
    )
    session = VendorSession(policy=policy, vendor="sso")
    try:
        response = session.get(url)
    except Exception as error:  # noqa: BLE001 - refused address, timeout, DNS: all say the same to the admin
        raise SamlMetadataError(f"The metadata URL could not be read: {error}") from None
    if response.status_code != 200:
        raise SamlMetadataError(f"The metadata URL answered HTTP {response.status_code}, not the metadata.")
    return metadata_read(response.content[: MAX_METADATA_BYTES + 1])


def sp_key_pair(common_name: str) -> tuple[str, str]:
    """A fresh RSA key and a ten-year self-signed certificate for the portal's side of one IdP: it signs the
    portal's sign-in requests and lets an IdP encrypt assertions to it. (private PEM, certificate body)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def provider_settings(*, connection, sp_private_key: str) -> dict:
    """allauth's SAML app settings for a connection: the IdP as saved (never fetched at sign-in), strict
    validation (signature, issuer, audience, destination, time), and unsolicited responses refused."""
    mapping = {}
    if connection.saml_email_attribute:
        mapping["email"] = [connection.saml_email_attribute]
    else:
        mapping["email"] = [
            "urn:oid:0.9.2342.19200300.100.1.3",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "email",
            "mail",
        ]
    return {
        "attribute_mapping": mapping,
        "idp": {
            "entity_id": connection.saml_entity_id,
            "sso_url": connection.saml_sso_url,
            "x509cert": connection.saml_x509cert,
        },
        "advanced": {
            "strict": True,
            "x509cert": connection.saml_sp_x509cert,
            "private_key": sp_private_key,
            "authn_request_signed": bool(sp_private_key),
            # python3-saml refuses a response in which neither the response nor its assertion is signed by the
            # IdP's certificate; IdPs differ in which of the two they sign, so either is accepted.
            "want_assertion_signed": False,
            "want_message_signed": False,
            "reject_deprecated_algorithm": True,
            "reject_idp_initiated_sso": True,
            "allow_single_label_domains": True,  # partners' hosts such as basalt.localhost in development
            "digest_algorithm": OneLogin_Saml2_Constants.SHA256,
            "signature_algorithm": OneLogin_Saml2_Constants.RSA_SHA256,
        },
    }


def attribute_values(attributes: dict, name: str) -> list[str]:
    """All values of one attribute the IdP sent (groups are many), by name or friendly name."""
    if not name:
        return []
    values = attributes.get(name)
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [str(value) for value in values if value not in (None, "")]
