"""The base every vendor sandbox builds on: a werkzeug WSGI app with fault injection, call stats and controls.

A vendor sandbox subclasses SandboxApp, lists its routes, keeps its own mutable state and decides how its
vendor says "rate limited" or "server error". The kit adds, for every vendor, the control endpoints:

    GET  /_sandbox/faults    the active faults          POST /_sandbox/faults  replace them (POST {} clears)
    GET  /_sandbox/stats     calls by path and status   DELETE /_sandbox/stats clear the counters only
    POST /_sandbox/reset     seeded state back, faults and stats cleared
    POST /_sandbox/seed      grow volumes, e.g. {"time_entries": 100000}

A sandbox whose vendor speaks TLS only (ADP's mutual TLS) returns a server context from `ssl_context()`; its
controls are then reached through `control_session()`, which presents what that context requires.

Fault keys: rate_limit {"calls": 5, "window": 1.0, "retry_after": 1}, error_rate (0..1), error_every (every Nth
call answers 5xx), slow_ms, timeout (seconds to sleep, longer than the client's read timeout), timeout_every
(only every Nth call sleeps), malformed_rate (0..1) and malformed_every (every Nth record of a page).
"""

from __future__ import annotations

import json
import logging
import math
import random
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.firm import Firm

logger = logging.getLogger("connectors.sandbox")

FAULT_KEYS = frozenset(
    {
        "rate_limit",
        "error_rate",
        "error_every",
        "slow_ms",
        "timeout",
        "timeout_every",
        "malformed_rate",
        "malformed_every",
    }
)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response; compact because a page of 200 time entries is served many times in a benchmark."""
    body = json.dumps(data, separators=(",", ":"), default=str)
    return Response(body, status=status, headers=headers, content_type="application/json")


@dataclass(frozen=True)
class CallVerdict:
    """What the fault injector decided for one vendor call."""

    delay: float = 0.0
    retry_after: float | None = None  # set: answer "rate limited" the vendor's way
    fail: bool = False  # answer a 5xx the vendor's way


class FaultInjector:
    """Holds the active faults and decides, call by call, which one applies. Thread-safe."""

    def __init__(self, seed: int = 7):
        self._lock = threading.Lock()
        self._seed = seed
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.faults: dict[str, Any] = {}
            self._rng = random.Random(self._seed)
            self._calls = 0
            self._accepted: deque[float] = deque()

    def set(self, faults: dict[str, Any]) -> None:
        unknown = set(faults) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
        limit = faults.get("rate_limit")
        if limit is not None and (not isinstance(limit, dict) or int(limit.get("calls", 0)) < 1):
            raise ValueError('rate_limit must look like {"calls": 5, "window": 1.0, "retry_after": 1}')
        self.clear()
        with self._lock:
            self.faults = dict(faults)

    @property
    def window(self) -> float:
        limit = self.faults.get("rate_limit") or {}
        return float(limit.get("window", 1.0))

    def on_call(self, now: float) -> CallVerdict:
        with self._lock:
            faults = self.faults
            if not faults:
                return CallVerdict()
            self._calls += 1
            delay = float(faults.get("slow_ms", 0)) / 1000.0
            timeout_every = int(faults.get("timeout_every") or 1)
            if faults.get("timeout") and self._calls % timeout_every == 0:
                delay += float(faults["timeout"])
            limit = faults.get("rate_limit")
            if limit:
                window = float(limit.get("window", 1.0))
                while self._accepted and self._accepted[0] <= now - window:
                    self._accepted.popleft()
                if len(self._accepted) >= int(limit["calls"]):
                    # Without a configured Retry-After, say when the oldest accepted call leaves the window.
                    retry_after = limit.get("retry_after")
                    if retry_after is None:
                        retry_after = max(1, math.ceil(self._accepted[0] + window - now))
                    return CallVerdict(delay=delay, retry_after=float(retry_after))
                self._accepted.append(now)
            every = int(faults.get("error_every") or 0)
            fail = bool(every and self._calls % every == 0)
            rate = float(faults.get("error_rate") or 0)
            if rate and self._rng.random() < rate:
                fail = True
            return CallVerdict(delay=delay, fail=fail)

    def malformed_positions(self, page_length: int) -> set[int]:
        """0-based positions in a page of `page_length` records that the vendor should serve malformed."""
        with self._lock:
            every = int(self.faults.get("malformed_every") or 0)
            rate = float(self.faults.get("malformed_rate") or 0)
            positions = {i for i in range(page_length) if every and (i + 1) % every == 0}
            if rate:
                positions |= {i for i in range(page_length) if self._rng.random() < rate}
            return positions


class CallStats:
    """Counts the vendor calls a sandbox received: by path and status, 429s, and the busiest window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.calls = 0
            self.by_path: dict[str, Counter] = {}
            self.rate_limited = 0
            self.errors_injected = 0
            self.malformed_sent = 0
            self.max_calls_in_window = 0
            self._window = 1.0
            self._recent: deque[float] = deque()

    def arrival(self, now: float, window: float) -> None:
        with self._lock:
            self.calls += 1
            if window != self._window:
                self._window, self._recent = window, deque()
            self._recent.append(now)
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            self.max_calls_in_window = max(self.max_calls_in_window, len(self._recent))

    def answered(self, path: str, status: int) -> None:
        with self._lock:
            self.by_path.setdefault(path, Counter())[str(status)] += 1

    def add(self, *, rate_limited: int = 0, errors_injected: int = 0, malformed_sent: int = 0) -> None:
        with self._lock:
            self.rate_limited += rate_limited
            self.errors_injected += errors_injected
            self.malformed_sent += malformed_sent

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "by_path": {path: dict(statuses) for path, statuses in self.by_path.items()},
                "rate_limited": self.rate_limited,
                "errors_injected": self.errors_injected,
                "malformed_sent": self.malformed_sent,
                "max_calls_in_window": self.max_calls_in_window,
                "window": self._window,
            }


class SandboxApp:
    """A vendor emulator. Subclasses set `vendor`, implement `routes()` and override the hooks they need.

    Endpoints named in routes are methods of the subclass (or callables) called as endpoint(request, **values)
    and returning a werkzeug Response. `self.lock` guards the sandbox's mutable state.
    """

    vendor: str = "sandbox"

    def __init__(self, firm: Firm | None = None):
        self.firm = firm or Firm()
        self.faults = FaultInjector()
        self.stats = CallStats()
        self.lock = threading.RLock()
        self.url_map = Map(self.routes())
        self.control_map = Map(
            [
                Rule("/_sandbox/faults", endpoint="faults", methods=["GET", "POST"]),
                Rule("/_sandbox/stats", endpoint="stats", methods=["GET", "DELETE"]),
                Rule("/_sandbox/reset", endpoint="reset", methods=["POST"]),
                Rule("/_sandbox/seed", endpoint="seed", methods=["POST"]),
            ]
        )
        self.reset_state()

    # -- hooks for vendors ----------------------------------------------------------------------------------------

    def routes(self) -> list[Rule]:
        return []

    def reset_state(self) -> None:
        """Build (or rebuild) the seeded state from self.firm. Called at start and by /_sandbox/reset."""

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow volumes on demand; return the resulting counts. Vendors override for what they serve."""
        raise ValueError(f"the {self.vendor} sandbox has nothing to seed")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context to serve with (None: plain HTTP, as most sandboxes on loopback)."""
        return None

    def control_session(self) -> requests.Session:
        """A session that can reach this sandbox's /_sandbox/ controls (a TLS sandbox adds its client certificate)."""
        return requests.Session()

    def authenticate(self, request: Request) -> Response | None:
        """Check the vendor's credentials on a vendor call; return the vendor's refusal, or None to go on."""
        return None

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        """The vendor's "too many requests". Default: 429 with Retry-After and a JSON body."""
        return json_response(
            {"error": "rate limit exceeded"}, status=429, headers={"Retry-After": str(math.ceil(retry_after))}
        )

    def server_error_response(self, request: Request) -> Response:
        return json_response({"error": "internal server error (injected by the sandbox)"}, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response({"error": f"{request.path} not found"}, status=404)

    def method_not_allowed_response(self, request: Request) -> Response:
        return json_response({"error": f"{request.method} not allowed on {request.path}"}, status=405)

    # -- helpers for vendors --------------------------------------------------------------------------------------

    def malformed_positions(self, page_length: int) -> set[int]:
        """Positions to corrupt in a page about to be served; counted in the stats."""
        positions = self.faults.malformed_positions(page_length)
        if positions:
            self.stats.add(malformed_sent=len(positions))
        return positions

    # -- WSGI -------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.path.startswith("/_sandbox/"):
            response = self._control(request)
        else:
            response = self._vendor_call(request)
        return response(environ, start_response)

    def _vendor_call(self, request: Request) -> Response:
        now = time.monotonic()
        self.stats.arrival(now, self.faults.window)
        verdict = self.faults.on_call(now)
        if verdict.delay:
            time.sleep(verdict.delay)
        if verdict.retry_after is not None:
            self.stats.add(rate_limited=1)
            response = self.rate_limited_response(request, verdict.retry_after)
        elif verdict.fail:
            self.stats.add(errors_injected=1)
            response = self.server_error_response(request)
        else:
            response = self._dispatch(request)
        self.stats.answered(request.path, response.status_code)
        return response

    def _dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            return self.not_found_response(request)
        except MethodNotAllowed:
            return self.method_not_allowed_response(request)
        except HTTPException as exc:  # e.g. a redirect for a missing trailing slash
            return exc.get_response(request.environ)
        handler = endpoint if callable(endpoint) else getattr(self, endpoint)
        try:
            refusal = self.authenticate(request)
            if refusal is not None:
                return refusal
            return handler(request, **values)
        except Exception:
            logger.exception("%s sandbox failed on %s %s", self.vendor, request.method, request.path)
            return self.server_error_response(request)

    def _control(self, request: Request) -> Response:
        adapter = self.control_map.bind_to_environ(request.environ)
        try:
            endpoint, _values = adapter.match()
        except HTTPException as exc:
            return json_response({"error": exc.description}, status=exc.code or 400)
        try:
            body = request.get_json(force=True, silent=True) if request.method == "POST" else None
            if request.method == "POST" and request.get_data() and not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            body = body or {}
            if endpoint == "faults":
                if request.method == "POST":
                    self.faults.set(body)
                return json_response({"faults": self.faults.faults})
            if endpoint == "stats":
                if request.method == "DELETE":
                    self.stats.clear()
                return json_response(self.stats.as_dict())
            if endpoint == "reset":
                with self.lock:
                    self.faults.clear()
                    self.stats.clear()
                    self.reset_state()
                return json_response({"reset": True})
            with self.lock:
                counts = self.seed({str(k): int(v) for k, v in body.items()})
            return json_response({"seeded": counts})
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)


# -- outbound webhooks, shared by the sandboxes that call a subscriber back --------------------------------------


def is_loopback_url(url: str) -> bool:
    """Sandboxes call back only to this machine: a test's receiver or the portal under `dev.py run`."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_urls_control(request: Request, *, lock: Any, urls: list[str], deliveries: list[Any]) -> Response:
    """/_sandbox/webhooks for a sandbox whose subscribers are bare URLs: POST {"url"} adds a loopback one, DELETE
    forgets them and their deliveries, and every method answers with both lists."""
    if request.method == "POST":
        url = (request.get_json(force=True, silent=True) or {}).get("url", "")
        if not is_loopback_url(url):
            return json_response({"error": "webhooks are delivered to loopback URLs only"}, status=400)
        with lock:
            urls.append(url)
    elif request.method == "DELETE":
        with lock:
            urls.clear()
            deliveries.clear()
    with lock:
        return json_response({"subscriptions": list(urls), "deliveries": list(deliveries)})


def deliver_webhook(delivery: dict[str, Any], body: bytes, *, attempts: int = 3, in_thread: bool = True) -> None:
    """POST one webhook as recorded in `delivery` ({url, headers, status}), retrying 5xx and network errors.

    From a thread by default, so the API call that caused it is not held up; `delivery["status"]` tells the
    outcome (the HTTP status, or "error: <kind>").
    """

    from urllib.parse import urlsplit

    # A partner host such as northwind.localhost is loopback, as browsers resolve it; Python's resolver does not,
    # so connect to 127.0.0.1 and name the host in the Host header (a signature covers the URL as subscribed).
    url, headers = delivery["url"], dict(delivery["headers"])
    parts = urlsplit(url)
    if (parts.hostname or "").endswith(".localhost"):
        headers["Host"] = parts.netloc
        url = parts._replace(netloc=f"127.0.0.1{':' + str(parts.port) if parts.port else ''}").geturl()

    def send() -> None:
        import requests

        for attempt in range(attempts):
            try:
                response = requests.post(url, data=body, headers=headers, timeout=5)
                delivery["status"] = response.status_code
                delivery["answer"] = response.text[:500]
                if response.status_code < 500:
                    return
            except requests.RequestException as exc:
                delivery["status"] = f"error: {type(exc).__name__}"
            time.sleep(0.2 * (attempt + 1))

    if in_thread:
        threading.Thread(target=send, daemon=True).start()
    else:
        send()
