"""A SAML 2.0 identity provider for the tests: pysaml2's IdP (saml2.server.Server, signing with Debian's xmlsec1)
behind a login page, in a separate process. It publishes its metadata, reads service providers' metadata from
their metadata URLs as an IdP administrator registers them, takes HTTP-Redirect AuthnRequests, and answers with a
signed Response (signed assertion) by HTTP-POST carrying mail, displayName and groups attributes.

    python -m tests.idp.saml_provider serve --data DIR --port PORT
    python -m tests.idp.saml_provider person --data DIR --email E --password P --name N --groups A,B
    python -m tests.idp.saml_provider sp --data DIR --metadata-url URL
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import html
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC1 = "/usr/bin/xmlsec1"


def key_pair(data: Path) -> tuple[Path, Path]:
    """The IdP's signing key and self-signed certificate, made once per data folder."""
    key_file, cert_file = data / "idp-key.pem", data / "idp-cert.pem"
    if not key_file.exists():
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test SAML IdP")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def config(data: Path, port: int) -> IdPConfig:
    key_file, cert_file = key_pair(data)
    base = f"http://127.0.0.1:{port}"
    conf = IdPConfig()
    conf.load(
        {
            "entityid": f"{base}/metadata",
            "service": {
                "idp": {
                    "name": "Test SAML IdP",
                    "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
                    "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "sign_response": True,
                    "sign_assertion": True,
                },
            },
            "key_file": str(key_file),
            "cert_file": str(cert_file),
            "metadata": {"local": sorted(str(path) for path in data.glob("sp-*.xml"))},
            "xmlsec_binary": XMLSEC1,
            "delete_tmpfiles": True,
        }
    )
    return conf


def server(data: Path, port: int) -> Server:
    # Built per request, so service providers registered while it runs are known at once.
    return Server(config=config(data, port))


def metadata(data: Path, port: int) -> str:
    return create_metadata_string(None, config=config(data, port), valid=24 * 7).decode()


def _people(data: Path) -> dict:
    path = data / "people.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()


def add_person(data: Path, email: str, password: str, name: str, groups: list[str]) -> None:
    people = _people(data)
    people[email] = {"hash": _hash(password, email), "name": name, "groups": [group for group in groups if group]}
    (data / "people.json").write_text(json.dumps(people))


def add_sp(data: Path, metadata_url: str) -> None:
    """Register a service provider from its metadata URL. Names under .localhost are reached on loopback (as
    browsers do), with the name in the Host header: the portal routes partners by host."""
    parts = urllib.parse.urlsplit(metadata_url)
    address = parts._replace(netloc=f"127.0.0.1:{parts.port}") if parts.hostname.endswith(".localhost") else parts
    request = urllib.request.Request(urllib.parse.urlunsplit(address), headers={"Host": parts.netloc})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback, from the test
        xml = answer.read()
    digest = hashlib.sha256(metadata_url.encode()).hexdigest()[:16]
    (data / f"sp-{digest}.xml").write_bytes(xml)


def identity(person: dict, email: str) -> dict:
    return {"mail": [email], "displayName": [person["name"]], "groups": person["groups"]}


def authn_response(idp: Server, request, email: str, person: dict, *, sign: bool = True) -> tuple[str, str]:
    """(the ACS URL, the Response XML) answering a parsed AuthnRequest for a person."""
    args = idp.response_args(request.message, [BINDING_HTTP_POST])
    response = idp.create_authn_response(
        identity(person, email),
        in_response_to=args["in_response_to"],
        destination=args["destination"],
        sp_entity_id=args["sp_entity_id"],
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
        sign_response=sign,
        sign_assertion=sign,
        # pysaml2 still signs with SHA-1 unless told; the portal refuses deprecated algorithms.
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return args["destination"], str(response)


LOGIN_PAGE = """<!doctype html><html lang="en"><head><title>Test SAML IdP</title></head><body><main>
<h1>Test SAML identity provider</h1><p>{error}</p>
<form method="post" action="/login">
<input type="hidden" name="SAMLRequest" value="{request}"><input type="hidden" name="RelayState" value="{relay}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in to the SAML identity provider</button>
</form></main></body></html>"""


def application(data: Path, port: int):
    from werkzeug.wrappers import Request, Response

    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/metadata":
            return Response(metadata(data, port), content_type="application/samlmetadata+xml")
        if request.path == "/sso/redirect":
            saml_request = request.args.get("SAMLRequest", "")
            server(data, port).parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)  # refuses an unknown SP
            page = LOGIN_PAGE.format(
                error="",
                request=html.escape(saml_request),
                relay=html.escape(request.args.get("RelayState", "")),
            )
            return Response(page, content_type="text/html")
        if request.path == "/login" and request.method == "POST":
            email = request.form.get("username", "").strip()
            person = _people(data).get(email)
            if person is None or person["hash"] != _hash(request.form.get("password", ""), email):
                page = LOGIN_PAGE.format(
                    error="Wrong username or password.",
                    request=html.escape(request.form.get("SAMLRequest", "")),
                    relay=html.escape(request.form.get("RelayState", "")),
                )
                return Response(page, status=401, content_type="text/html")
            idp = server(data, port)
            parsed = idp.parse_authn_request(request.form["SAMLRequest"], BINDING_HTTP_REDIRECT)
            destination, xml = authn_response(idp, parsed, email, person)
            http = idp.apply_binding(
                BINDING_HTTP_POST, xml, destination, request.form.get("RelayState", ""), response=True
            )
            # pysaml2's self-posting form, with the language and title every page here must have.
            form = http["data"].replace("<html>", '<html lang="en">', 1)
            form = form.replace("<head>", "<head><title>Signing you in</title>", 1)
            return Response(form, content_type="text/html")
        return Response("Not found", status=404)

    return app


def serve(data: Path, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, application(data, port), threaded=True, use_reloader=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve", "person", "sp"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--email", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--name", default="")
    parser.add_argument("--groups", default="")
    parser.add_argument("--metadata-url", default="")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    if args.command == "person":
        add_person(args.data, args.email, args.password, args.name, args.groups.split(","))
    elif args.command == "sp":
        add_sp(args.data, args.metadata_url)
    else:
        key_pair(args.data)
        print(json.dumps({"port": args.port}), flush=True)
        serve(args.data, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
