"""Helpers shared by the tests: the session's world, host-aware test clients, process launchers, vendor sandboxes."""

from __future__ import annotations

import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.test import Client as HttpClient

ROOT = Path(__file__).resolve().parent.parent
NORTHWIND = "northwind.localhost"
SUMMIT = "summit.localhost"
PLATFORM = "localhost"


@dataclass
class World:
    partners: dict
    clients: dict
    users: dict  # by email

    def user(self, email):
        return self.users[email]


def build_world() -> World:
    from tenants import services
    from tenants.demo import demo_seed
    from tenants.demo_accounts import demo_accounts_prepare
    from tenants.models import Client, User
    from tenants.provisioning import template_schema_migrate

    template_schema_migrate()
    seeded = demo_seed()
    demo_accounts_prepare()
    northwind = seeded["partners"]["northwind"]
    clients = dict(seeded["clients"])
    wingtip = Client.objects.filter(partner=northwind, slug="wingtip").first()
    clients["wingtip"] = wingtip or services.client_create(
        partner=northwind, name="Wingtip Partners", slug="wingtip", plan=northwind.plans.first()
    )
    connection.set_schema_to_public()
    return World(partners=seeded["partners"], clients=clients, users={u.email: u for u in User.objects.all()})


def browser_for(user=None, host: str = NORTHWIND) -> HttpClient:
    """A Django test client speaking to `host`, logged in as `user` when given."""
    client = HttpClient(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


def switcher_entries(html: str) -> list[str]:
    """The workspaces a page's switcher lists, by name."""
    block = re.search(r'data-testid="switcher".*?</details>', html, re.S)
    return re.findall(r'class="switcher-item"[^>]*>([^<]+)</a>', block.group(0)) if block else []


def database_url_for_children() -> str:
    """The URL of the database this test session uses, for worker and web processes it starts."""
    config = settings.DATABASES["default"]
    user = quote(config.get("USER") or "")
    password = quote(config.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or ""
    port = config.get("PORT") or ""
    if host.startswith("/"):
        return f"postgresql://{credentials}/{config['NAME']}?host={quote(host)}" + (f"&port={port}" if port else "")
    return f"postgresql://{credentials}{host}{':' + str(port) if port else ''}/{config['NAME']}"


def child_env(**extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_children(),
        "PORTAL_ENV": "test",
        "PYTHONUNBUFFERED": "1",
        # the worker must read the queue this process writes (settings name it by database)
        "CELERY_FS_BROKER_DIR": str(settings.BROKER_DIR),
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_worker(log_path: Path, *, name: str = "test", purge: bool = True, **env) -> subprocess.Popen:
    """A real Celery worker process on the configured broker, against the test database.

    The queue is emptied first: messages left by earlier tests' web servers or workers would
    otherwise be taken before this test's own. `name` tells workers of one pool apart.
    """
    from portal.celery import app

    if purge:
        app.control.purge()
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=child_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_web(port: int, log_path: Path, **env) -> subprocess.Popen:
    """The product's real web server (gunicorn) against the test database; `env` adds settings."""
    log = open(log_path, "wb")  # noqa: SIM115
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
        cwd=ROOT,
        env=child_env(PUBLIC_PORT=str(port), **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    port_wait(process, port, log_path, what="web server")
    return process


def port_wait(process: subprocess.Popen, port: int, log_path: Path, *, what: str, pause: float = 0.3) -> None:
    """Wait (30 s at most) until `process` takes connections on loopback `port`; if it exits first, fail with the
    tail of its log."""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited: {log_path.read_text()[-2000:]}") from None
            time.sleep(pause)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def web_server(log_path: Path, **env) -> Iterator[int]:
    """start_web on a free port for as long as the block runs; yields the port and stops the server after."""
    port = free_port()
    process = start_web(port, log_path, **env)
    try:
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def production_env(**extra: str) -> dict:
    """The environment of a production process: PORTAL_ENV=production with its required secrets, on
    this session's database (so no embedded server starts), and nothing dev or test would add."""
    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "PORTAL_ENV",
            "DJANGO_DEBUG",
            "BEHIND_TLS_PROXY",
            "SECURE_COOKIES",
            "TRUSTED_PROXY_COUNT",
            "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests' conftest for this process only
        }
    }
    env.update(
        PORTAL_ENV="production",
        SECRET_KEY="production-like-" + "k" * 50,
        CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=database_url_for_children(),
        **extra,
    )
    return env


def production_settings(*names: str, **env: str) -> dict:
    """The values of settings `names` as a production process computes them, read in a child process
    (this one runs in test mode)."""
    import json

    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {list(names)!r}}}, default=str))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def user_who_can_sign_in(email: str, password: str, **fields):
    """A user as an accepted invitation leaves them: a password and a verified address (without one,
    allauth asks them to confirm their address before they may sign in)."""
    from tenants.models import User
    from tenants.services import account_email_verify

    user = User.objects.filter(email=email).first() or User.objects.create_user(email, password, **fields)
    user.set_password(password)
    user.save()
    account_email_verify(user=user, email=user.email)
    return user


def vendor_sandbox(vendor: str) -> ModuleType:
    """A vendor's sandbox package: its `create_app` and its `DEMO_CREDENTIALS`."""
    return importlib.import_module(f"connectors.{vendor}.sandbox")


@contextmanager
def vendor_sandboxes(vendors, **firm) -> Iterator[dict[str, Any]]:
    """Each vendor's sandbox, by vendor, seeded from `Firm(**firm)` and served over real HTTP on loopback until the
    block ends."""
    from connectors.sandbox.firm import Firm
    from connectors.sandbox.server import serve_in_thread

    running = {}
    try:
        for vendor in vendors:
            running[vendor] = serve_in_thread(vendor_sandbox(vendor).create_app(Firm(**firm)))
        yield running
    finally:
        for sandbox in running.values():
            sandbox.stop()


def sandbox_env(sandboxes, **extra: str) -> dict[str, str]:
    """Settings for a worker or web server that syncs against `sandboxes` on loopback: their ports allowed, and the
    vendors' pacing out of the way (it has tests of its own); `extra` adds more."""
    return {
        "CONNECTOR_ALLOWED_HOSTS": ",".join(f"127.0.0.1:{s.port}" for s in sandboxes),
        "CONNECTOR_RATE_PER_SECOND": "500",
        **extra,
    }


def journey_partner(*, slug: str, name: str, host: str, brand: dict | None = None):
    """A partner of a test module's own on `host`, so the demo partners stay as seeded: made the first time (its
    brand then set to `brand`), and signing in with a password alone (two-factor sign-in has tests of its own)."""
    from branding.models import Brand
    from tenants import services
    from tenants.models import MfaPolicy, Partner

    partner = Partner.objects.filter(slug=slug).first()
    if partner is None:
        partner = services.partner_create(name=name, slug=slug, domain=host, admin_email=f"admin@{host}")
        if brand:
            Brand.objects.filter(partner=partner).update(**brand)
    Partner.objects.filter(pk=partner.pk).update(mfa_policy=MfaPolicy.OPTIONAL)
    return partner
