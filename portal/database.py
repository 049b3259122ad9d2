"""Create the configured database when it does not exist yet (a fresh PostgreSQL server)."""

from __future__ import annotations

import psycopg
from django.conf import settings
from psycopg import sql


def database_ensure() -> None:
    config = settings.DATABASES["default"]
    params = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    try:
        psycopg.connect(**{**params, "dbname": config["NAME"]}).close()
        return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
