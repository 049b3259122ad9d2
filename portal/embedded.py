"""Embedded defaults: a private PostgreSQL from the pgserver wheel when DATABASE_URL is unset.

The server's data lives under data/pg in the project, so the demo data survives between runs. `dev.py run`
stops the server when it stops (the last process holding it does, so a `manage.py shell` opened beside it keeps
it up); anything else that starts it on demand leaves it running for the next.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR", PROJECT_DIR / "data"))
EMBEDDED_DATABASE = "sysgenpro"


def embedded_postgres_url(*, stop_at_exit: bool = False) -> str:
    """Start (or reuse) the project's private PostgreSQL and return a URL to its database. With `stop_at_exit`
    the server stops when this process exits, unless another process still holds it."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    pgdata = DATA_DIR / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")  # noqa: S608 - a constant
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return server.get_uri(EMBEDDED_DATABASE)


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or embedded_postgres_url()
