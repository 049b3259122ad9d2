"""The governed REST API under /api/v1/ on each partner's host: keys, scopes, throttling, audit."""
