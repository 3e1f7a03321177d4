"""Every account's MySQL session is held to its time caps: read back from the sessions themselves
on the real MariaDB (chalicelib/mysql/dialect.py renders them; tests/unit/test_dialect.py has MySQL 8's)."""

from typing import Any

import pymysql
import pymysql.cursors

from chalicelib import wiring
from chalicelib.database.provision import admin_connector
from chalicelib.mysql.connector import MySQLConnector
from chalicelib.mysql.dialect import lock_wait_seconds
from tests.functional.conftest import SETTINGS

CAPS = ("max_statement_time", "innodb_lock_wait_timeout", "lock_wait_timeout")


def caps_of(conn: pymysql.connections.Connection, scope: str = "SESSION") -> tuple[float, int, int]:
    """A connection's statement cap and lock waits, in `scope` (SESSION or GLOBAL)."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT " + ", ".join(f"@@{scope}.{name}" for name in CAPS))
        row = cur.fetchone()
    assert row is not None
    return float(row[0]), int(row[1]), int(row[2])


def sessions_of(connector: MySQLConnector) -> list[tuple[float, int, int]]:
    """The caps of two sessions opened one after the other: the first learns the server, the second is
    set as it connects."""
    caps = []
    for _ in range(2):
        conn = connector.connect()
        try:
            caps.append(caps_of(conn))
        finally:
            conn.close()
    return caps


class AdminAsApi:
    """The stage's secrets, with the API's account standing in for the administrator's (the local root has no
    password over TCP)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def source(self, name: str) -> Any:
        self.asked.append(name)
        return wiring.get_secrets().source("mysql_api")


def test_the_server_default_is_not_what_the_sessions_are_given(admin_db) -> None:
    """GIVEN the local MariaDB WHEN its global caps are read THEN none equals a session's below, so each
    test here shows what the app set, not what the server had."""
    statement_s = SETTINGS.mysql.statement_timeout_s
    unset, row_wait, table_wait = caps_of(admin_db, "GLOBAL")
    assert unset == 0
    assert lock_wait_seconds(statement_s) not in (row_wait, table_wait)
    assert SETTINGS.partition_lock_wait_s not in (row_wait, table_wait)


def test_every_api_session_stops_any_statement_and_its_lock_waits_at_the_statement_cap() -> None:
    """GIVEN the API's connector WHEN it opens two sessions THEN each has max_statement_time at
    MYSQL_STATEMENT_TIMEOUT_S and both lock waits at it, in whole seconds."""
    statement_s = SETTINGS.mysql.statement_timeout_s
    lock_s = lock_wait_seconds(statement_s)
    assert sessions_of(wiring.get_api_connector()) == [(statement_s, lock_s, lock_s)] * 2


def test_every_writer_session_waits_for_a_lock_no_longer_than_the_statement_cap() -> None:
    """GIVEN the consumer's connector WHEN it opens two sessions THEN each has both lock waits at
    MYSQL_STATEMENT_TIMEOUT_S and no server statement cap (a batch's INSERT is held by the client's deadline)."""
    lock_s = lock_wait_seconds(SETTINGS.mysql.statement_timeout_s)
    assert sessions_of(wiring.get_writer().connector) == [(0, lock_s, lock_s)] * 2


def test_every_maintenance_session_stops_a_statement_at_the_partition_cap() -> None:
    """GIVEN the partition maintainer's connector WHEN it opens two sessions THEN each has max_statement_time
    at PARTITION_STATEMENT_TIMEOUT_S and both lock waits at PARTITION_LOCK_WAIT_S."""
    lock_s = SETTINGS.partition_lock_wait_s
    expected = (SETTINGS.partition_statement_timeout_s, lock_s, lock_s)
    assert sessions_of(wiring.get_maintainer().connector) == [expected] * 2


def test_every_migration_session_waits_for_a_lock_no_longer_than_the_statement_cap() -> None:
    """GIVEN the migration's administrator connector WHEN it opens two sessions THEN each has both lock
    waits at MYSQL_STATEMENT_TIMEOUT_S (DDL queued on a table would hold up every writer behind it)."""
    secrets = AdminAsApi()
    connector = admin_connector(SETTINGS, secrets)  # type: ignore[arg-type]
    lock_s = lock_wait_seconds(SETTINGS.mysql.statement_timeout_s)
    assert secrets.asked == ["mysql_admin"]
    assert sessions_of(connector) == [(0, lock_s, lock_s)] * 2
