"""How one connection may talk to its vendor: timeouts, retries, the rate budget it draws on and where its
requests are counted."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from connectors.http.guard import host_port, port_of


class RateBudget(Protocol):
    """Shared pacing for one connection. The Django side may plug in a Redis-backed implementation."""

    def reserve(self, key: str, *, rate_per_second: float | None, burst: int) -> float:
        """Take one request slot for `key` and return how many seconds the caller must wait before sending."""

    def hold(self, key: str, seconds: float) -> None:
        """The vendor said "slow down": make every caller of `key` wait at least `seconds` from now."""


class InMemoryTokenBucket:
    """A token bucket per key, in this process. Burst `burst`, refilled at `rate_per_second`.

    A reservation may take the bucket into debt; the caller then waits until its token would have been
    refilled. That keeps concurrent callers in order without a busy loop and means the number of calls in any
    window of W seconds never exceeds burst + rate * W.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float, float, int]] = {}  # key -> (tokens, at, rate, burst)
        self._held_until: dict[str, float] = {}

    def reserve(self, key: str, *, rate_per_second: float | None, burst: int) -> float:
        with self._lock:
            now = self._clock()
            held = max(0.0, self._held_until.get(key, 0.0) - now)
            if not rate_per_second:
                return held
            burst = max(1, burst)
            tokens, at, rate, old_burst = self._buckets.get(key, (float(burst), now, rate_per_second, burst))
            if (rate, old_burst) != (rate_per_second, burst):
                # The policy changed (a plan upgrade, a test): start a fresh bucket rather than mix two rates.
                tokens, at = float(burst), now
            tokens = min(float(burst), tokens + (now - at) * rate_per_second) - 1.0
            self._buckets[key] = (tokens, now, rate_per_second, burst)
            wait = -tokens / rate_per_second if tokens < 0 else 0.0
            return max(wait, held)

    def hold(self, key: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._held_until[key] = max(self._held_until.get(key, 0.0), until)


# One bucket per process by default, so two connector instances for the same connection share their budget.
DEFAULT_BUDGET = InMemoryTokenBucket()


class RequestMetrics(Protocol):
    """Where each HTTP attempt is reported. The Django side may forward to Prometheus."""

    def record(
        self,
        *,
        vendor: str,
        connection_key: str,
        method: str,
        status: int | None,
        latency: float,
        retry: bool,
        rate_limited: bool,
    ) -> None: ...


@dataclass
class ConnectionStats:
    count: int = 0
    errors: int = 0  # attempts that got no HTTP answer (connection error, timeout)
    retries: int = 0
    rate_limited: int = 0
    latency_total: float = 0.0
    latency_max: float = 0.0
    statuses: Counter = field(default_factory=Counter)


class InMemoryMetrics:
    """Counts per (vendor, connection_key), kept in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], ConnectionStats] = defaultdict(ConnectionStats)

    def record(
        self,
        *,
        vendor: str,
        connection_key: str,
        method: str,
        status: int | None,
        latency: float,
        retry: bool,
        rate_limited: bool,
    ) -> None:
        with self._lock:
            stats = self._stats[(vendor, connection_key)]
            stats.count += 1
            stats.latency_total += latency
            stats.latency_max = max(stats.latency_max, latency)
            stats.retries += int(retry)
            stats.rate_limited += int(rate_limited)
            if status is None:
                stats.errors += 1
            else:
                stats.statuses[status] += 1

    def stats(self, vendor: str, connection_key: str = "default") -> ConnectionStats:
        with self._lock:
            return self._stats[(vendor, connection_key)]

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()


DEFAULT_METRICS = InMemoryMetrics()


@dataclass
class HttpPolicy:
    """How one connection may talk to its vendor. Every field has a production-safe default."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 4  # retries after the first attempt
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0  # a longer Retry-After raises RateLimited at once so the engine reschedules
    rate_per_second: float | None = None
    burst: int = 10
    allowed_hosts: frozenset[str] = frozenset()  # "host" or "host:port" that may be private/loopback
    budget: RateBudget = field(default_factory=lambda: DEFAULT_BUDGET)
    metrics: RequestMetrics = field(default_factory=lambda: DEFAULT_METRICS)

    def __post_init__(self) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in self.allowed_hosts if h.strip())

    @classmethod
    def for_sandbox(cls, *urls: str, **overrides: Any) -> HttpPolicy:
        """A policy that allows the given sandbox URLs' host:port (the sandboxes live on loopback)."""
        hosts = set(overrides.pop("allowed_hosts", ()))
        for url in urls:
            parts = urlsplit(url)
            hosts.add(host_port(parts.hostname or "", port_of(parts)))
        return cls(allowed_hosts=frozenset(hosts), **overrides)
