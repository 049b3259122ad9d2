"""Workspace-wide PostgreSQL advisory locks: a count-then-create that two requests must not both win."""

from __future__ import annotations

from django.db import connection as db


def workspace_lock(name: str) -> None:
    """Hold the lock `name` in the current workspace until the surrounding transaction ends.

    Call it inside transaction.atomic, before the count the create depends on: a second caller
    waits here, then counts what the first one created.
    """
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{db.schema_name}:{name}"])
