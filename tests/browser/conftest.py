"""Browser journeys: Playwright drives Debian's Chromium against the product's real web server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tenants.demo import DEMO_PASSWORD
from tests.browser.audit import Audit
from tests.support import ROOT, web_server
from tests.tenants.test_partner_domains import LoopbackDns

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "screenshots"
# Playwright's sync API keeps an event loop on this thread; the ORM calls tests make between
# browser steps are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}: CI must install it (apt-get install chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield AuditedBrowser(browser)
        browser.close()


class AuditedBrowser:
    """The browser as tests see it: every context it opens is audited for the test that opens it."""

    audit: Audit | None = None

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        if AuditedBrowser.audit is not None:
            AuditedBrowser.audit.watch(context)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def accessibility_audit(request):
    """This test's audit (see audit.py); the test fails when its pages broke WCAG 2.1 AA or the CSP."""
    audit = Audit()
    AuditedBrowser.audit = audit
    request.node.stash[AUDIT] = audit
    yield audit
    AuditedBrowser.audit = None


AUDIT = pytest.StashKey[Audit]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # the journey passed; now what its pages were found to break
    audit = item.stash.get(AUDIT, None)
    if audit is not None:
        audit.finish()
        if audit.findings or audit.csp:
            pytest.fail("pages broke WCAG 2.1 AA or the CSP:\n" + audit.report(), pytrace=False)
    return result


@pytest.fixture(scope="session")
def web(world, tmp_path_factory):
    """The product's gunicorn on a free port, on this session's test database."""
    with web_server(tmp_path_factory.mktemp("web") / "web.log") as port:
        yield f"{port}"


@pytest.fixture
def page(chromium, accessibility_audit):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx then copies (a CSP violation).
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def loaded_width(image) -> int:
    """An image's natural width once the browser has loaded it (0 while it is still arriving)."""
    image.evaluate(
        "img => img.complete && img.naturalWidth ? 0 : new Promise(done => {"
        " img.addEventListener('load', done, {once: true}); img.addEventListener('error', done, {once: true}); })"
    )
    return image.evaluate("img => img.naturalWidth")


def sign_in(page, base: str, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in on the login page at `base` (the demo password unless told) and wait for where it lands."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


@pytest.fixture(scope="module")
def dns():
    """A loopback DNS server for the module's journeys (domain verification asks it)."""
    server = LoopbackDns()
    yield server
    server.close()


@contextmanager
def sso_web_server(log_path: Path, idp, dns) -> Iterator[str]:
    """The portal's web server for single sign-on journeys; it reads the identity provider's metadata through the
    connectors' HTTP policy (so loopback `idp.host` is allow-listed) and verifies domains against `dns`."""
    from django.conf import settings

    allowed = ",".join([*settings.CONNECTOR_ALLOWED_HOSTS, idp.host])
    with web_server(log_path, CONNECTOR_ALLOWED_HOSTS=allowed, DOMAIN_VERIFY_NAMESERVERS=dns.address) as port:
        yield f"{port}"
