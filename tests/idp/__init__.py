"""Identity providers that run on loopback for the single sign-on tests: real servers from well-kept
packages, in their own processes, started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import ROOT, free_port, port_wait


class OidcIdp:
    """django-oauth-toolkit's OpenID Connect provider (tests/idp/oidc_provider.py) in its own process.

    People and registered clients are added through the provider's own models, by a command run against
    its database, as an administrator would in an IdP's console."""

    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/o"
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tests.idp.oidc_provider", *args, "--data", str(self.data)]

    def _run(self, *args: str) -> None:
        subprocess.run(self._command(*args), cwd=ROOT, check=True, capture_output=True, env=_clean_env())

    def start(self) -> OidcIdp:
        self._run("person", "--email", "nobody@idp.test", "--password", "unused-password")  # creates the database
        log = open(self.data / "idp.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            self._command("serve", "--port", str(self.port)),
            cwd=ROOT,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    log_text = (self.data / "idp.log").read_text()[-2000:]
                    raise RuntimeError(f"identity provider exited: {log_text}") from None
                time.sleep(0.2)
        raise RuntimeError("identity provider did not start")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)

    def add_person(self, email: str, password: str, name: str, groups: tuple[str, ...] = ()) -> None:
        self._run("person", "--email", email, "--password", password, "--name", name, "--groups", ",".join(groups))

    def register_client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self._run("client", "--client-id", client_id, "--secret", secret, "--redirect-uri", redirect_uri)


def _clean_env() -> dict:
    # The IdP is its own Django project: it must not read the portal's settings module.
    return {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}


def require_xmlsec1() -> None:
    """pysaml2 signs with Debian's xmlsec1: CI installs it; a developer without it skips the SAML tests."""
    import pytest

    from tests.idp.saml_provider import XMLSEC1

    if not Path(XMLSEC1).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"xmlsec1 not found at {XMLSEC1}: CI must install it (apt-get install xmlsec1)")
        pytest.skip(f"xmlsec1 not found at {XMLSEC1} (apt-get install xmlsec1)")


class SamlIdp:
    """pysaml2's SAML 2.0 identity provider (tests/idp/saml_provider.py) in its own process. People and service
    providers live in files of its data folder, written here as an IdP administrator would add them."""

    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.metadata_url = f"{self.base}/metadata"
        self.entity_id = self.metadata_url
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> SamlIdp:
        from tests.idp import saml_provider

        saml_provider.key_pair(self.data)
        log = open(self.data / "idp.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.idp.saml_provider",
                "serve",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        port_wait(self.process, self.port, self.data / "idp.log", what="identity provider", pause=0.2)
        return self

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)

    def add_person(self, email: str, password: str, name: str, groups: tuple[str, ...] = ()) -> None:
        from tests.idp import saml_provider

        saml_provider.add_person(self.data, email, password, name, list(groups))

    def register_sp(self, metadata_url: str) -> None:
        """Read a service provider's metadata from its URL, as an IdP's console does when given it."""
        from tests.idp import saml_provider

        saml_provider.add_sp(self.data, metadata_url)

    def metadata(self) -> str:
        from tests.idp import saml_provider

        return saml_provider.metadata(self.data, self.port)
