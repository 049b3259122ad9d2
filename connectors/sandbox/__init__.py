"""The sandbox kit: local WSGI emulators of each vendor's API, seeded from one deterministic firm.

`SandboxApp` (fault injection, call stats, /_sandbox/ controls), `Firm` (the shared data) and
`serve_in_thread` (a real loopback server for tests). Run all six with `python -m connectors.sandbox`.
"""

from connectors.sandbox.app import (
    CallStats,
    FaultInjector,
    SandboxApp,
    deliver_webhook,
    is_loopback_url,
    json_response,
    webhook_urls_control,
)
from connectors.sandbox.firm import Firm
from connectors.sandbox.server import RunningSandbox, serve_in_thread

__all__ = [
    "CallStats",
    "FaultInjector",
    "Firm",
    "RunningSandbox",
    "SandboxApp",
    "deliver_webhook",
    "is_loopback_url",
    "json_response",
    "serve_in_thread",
    "webhook_urls_control",
]
