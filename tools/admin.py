"""The one administrator's MySQL connection of the tools and tests, and server variables set for a while."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from chalicelib.config import Settings
from chalicelib.tls import verified_context


def admin_connection(database: str | None = None, settings: Settings | None = None) -> pymysql.connections.Connection:
    """An administrator's connection, in `database` if given: root on the local MariaDB over its socket;
    for a stage (`settings`), the server named by MYSQL_ADMIN_HOST (MYSQL_ADMIN_PORT, MYSQL_ADMIN_USER,
    MYSQL_ADMIN_PASSWORD) when that is set, with the stage's port and TLS."""
    if settings is not None and "MYSQL_ADMIN_HOST" in os.environ:
        return pymysql.connect(
            host=os.environ["MYSQL_ADMIN_HOST"],
            port=int(os.environ.get("MYSQL_ADMIN_PORT", settings.mysql.port)),
            user=os.environ.get("MYSQL_ADMIN_USER", "admin"),
            password=os.environ.get("MYSQL_ADMIN_PASSWORD", ""),
            database=database,
            autocommit=True,
            ssl=verified_context(settings.mysql.ca_bundle or "", "MYSQL_CA_BUNDLE") if settings.mysql.tls else None,
            ssl_disabled=not settings.mysql.tls,
        )
    from tools.devstack.services import MARIADB_SOCKET  # not above: services.py imports this module

    return pymysql.connect(
        unix_socket=str(MARIADB_SOCKET), user="root", password="", database=database, autocommit=True
    )


@contextmanager
def global_variables(conn: Any, values: dict[str, int]) -> Iterator[dict[str, int]]:
    """SET GLOBAL each variable, in order, while the block runs (yielding their old values); then put
    them back in the reverse order, however the block ends (a limit may not pass its maximum on the way)."""
    before: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            for name, value in values.items():
                cur.execute(f"SELECT @@GLOBAL.{name}")
                before[name] = int(cur.fetchone()[0])
                cur.execute(f"SET GLOBAL {name} = {int(value)}")
        yield before
    finally:
        with conn.cursor() as cur:
            for name, value in reversed(before.items()):
                cur.execute(f"SET GLOBAL {name} = {value}")
