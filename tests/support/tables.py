"""A stage's tables as its migrations create them, and emptying them between tests."""

import re
from typing import Any

from chalicelib.database.schema import load_migrations

_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.IGNORECASE)
KEPT = ("api_keys",)  # the bootstrap's key (DEV_API_KEY) lives there; tests make their own beside it


def migration_tables() -> list[str]:
    """Every table the migrations create, in the order they first appear."""
    names: list[str] = []
    for migration in load_migrations():
        for name in _CREATE_TABLE.findall(migration.sql):
            if name not in names:
                names.append(name)
    return names


def data_tables() -> list[str]:
    """The tables a test may fill: every migration's table but the kept ones."""
    return [name for name in migration_tables() if name not in KEPT]


def empty_tables(conn: Any) -> None:
    """Delete every row of the data tables (DELETE, not TRUNCATE: no metadata lock to wait on)."""
    with conn.cursor() as cur:
        for table in data_tables():
            cur.execute(f"DELETE FROM {table}")
    conn.commit()
