"""Embedded defaults: a private PostgreSQL from the pgserver wheel when DATABASE_URL is unset.

The server lives under data/pg in the project, starts on demand and keeps running between
runs (cleanup_mode=None), so the second start is instant and the demo data survives.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR", PROJECT_DIR / "data"))
EMBEDDED_DATABASE = "sysgenpro"


def embedded_postgres_url() -> str:
    """Start (or reuse) the project's private PostgreSQL and return a URL to its database."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    pgdata = DATA_DIR / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")  # noqa: S608 - a constant
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return server.get_uri(EMBEDDED_DATABASE)


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or embedded_postgres_url()
