"""The SQL sluice renders for MariaDB and for MySQL 8: session time caps and the upsert's new row."""

from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pymysql
import pytest

from chalicelib.config import MySQLSettings
from chalicelib.consumer.rejects import RejectedEntry, insert_rejects
from chalicelib.database.budget import budget_problems
from chalicelib.items.store import ItemStore
from chalicelib.mysql.connector import MySQLConnector
from chalicelib.mysql.dialect import Server, TimeCaps, on_duplicate_key_update, server_from_version, session_caps
from chalicelib.secrets import Credentials
from tests.unit.test_budget import FITS

MARIADB = "10.11.6-MariaDB-0+deb12u1"
NOW = datetime(2026, 12, 5, tzinfo=UTC)
MYSQL = "8.0.36"
SETTINGS = MySQLSettings(
    host="db",
    port=3306,
    database="sluice_unit",
    tls=False,
    ca_bundle=None,
    connect_timeout_s=2,
    read_timeout_s=20,
    admin_read_timeout_s=90,
    statement_timeout_s=5,
)


class FakeConnection:
    """Records the statements run on it; speaks as the server whose version it was given."""

    def __init__(self, version: str, log: list[str]) -> None:
        self.version = version
        self.log = log
        self.rowcount = 1

    def get_server_info(self) -> str:
        return self.version

    @contextmanager
    def cursor(self, *_: Any) -> Any:
        yield self

    def execute(self, sql: str, args: Any = None) -> int:
        self.log.append(sql)
        return 1

    def executemany(self, sql: str, rows: Any) -> int:
        self.log.append(sql)
        return len(rows)

    def fetchone(self) -> dict[str, Any]:
        return {"id": "lamp", "name": "Lamp", "description": "", "attributes": "{}", "version": 1, "updated_at": NOW}

    def commit(self) -> None:
        pass


class FakeDatabase:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn

    @contextmanager
    def connection(self) -> Any:
        yield self.conn


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("10.11.6-MariaDB-0+deb12u1", Server(mariadb=True, version=(10, 11, 6))),
        ("5.5.5-10.6.19-MariaDB-log", Server(mariadb=True, version=(10, 6, 19))),
        ("11.4.2-MariaDB", Server(mariadb=True, version=(11, 4, 2))),
        ("8.0.36", Server(mariadb=False, version=(8, 0, 36))),
        ("8.4.3-log", Server(mariadb=False, version=(8, 4, 3))),
        ("unknown", Server(mariadb=False, version=(0, 0, 0))),
    ],
)
def test_the_server_is_read_from_its_version_text(version: str, expected: Server) -> None:
    """GIVEN the version text a server gives at the handshake WHEN it is read THEN its flavour and version."""
    assert server_from_version(version) == expected


@pytest.mark.parametrize(
    ("version", "alias"),
    [
        ("8.0.18", False),
        ("8.0.19", True),
        ("8.4.3", True),
        ("9.1.0", True),
        (MARIADB, False),
        ("11.8.1-MariaDB", False),
    ],
)
def test_only_mysql_from_8_0_19_takes_a_row_alias(version: str, alias: bool) -> None:
    """GIVEN a server WHEN asked for the row alias THEN only MySQL 8.0.19 and later has it (MariaDB never)."""
    assert server_from_version(version).row_alias is alias


def test_mariadb_caps_every_statement_and_both_lock_waits() -> None:
    """GIVEN MariaDB WHEN a 5 s cap is rendered THEN max_statement_time (seconds) and both lock waits."""
    assert session_caps(server_from_version(MARIADB), TimeCaps(5, 5)) == (
        "innodb_lock_wait_timeout = 5, lock_wait_timeout = 5, max_statement_time = 5"
    )


def test_mysql_caps_selects_in_milliseconds_and_writes_by_their_lock_waits() -> None:
    """GIVEN MySQL 8 WHEN a 1.5 s cap is rendered THEN max_execution_time in ms and lock waits in whole seconds."""
    assert session_caps(server_from_version(MYSQL), TimeCaps(1.5, 1.5)) == (
        "innodb_lock_wait_timeout = 1, lock_wait_timeout = 1, max_execution_time = 1500"
    )


@pytest.mark.parametrize("version", [MARIADB, MYSQL])
def test_without_a_statement_cap_only_the_lock_waits_are_set(version: str) -> None:
    """GIVEN a session with no statement cap (the writer's) WHEN rendered THEN only the lock waits, at least 1 s."""
    assert session_caps(server_from_version(version), TimeCaps(None, 0.5)) == (
        "innodb_lock_wait_timeout = 1, lock_wait_timeout = 1"
    )


def test_the_upsert_names_the_new_row_with_an_alias_on_mysql_8() -> None:
    """GIVEN MySQL 8.0.36 WHEN an upsert is rendered THEN `AS new` and new.col, never the deprecated VALUES()."""
    rendered = on_duplicate_key_update(
        server_from_version(MYSQL), ("name", "updated_at"), also=("version = version + 1",)
    )
    assert (
        rendered
        == " AS new ON DUPLICATE KEY UPDATE name = new.name, updated_at = new.updated_at, version = version + 1"
    )


@pytest.mark.parametrize("version", [MARIADB, "8.0.18"])
def test_the_upsert_keeps_values_where_there_is_no_row_alias(version: str) -> None:
    """GIVEN MariaDB or MySQL before 8.0.19 WHEN an upsert is rendered THEN VALUES(col), and no alias."""
    rendered = on_duplicate_key_update(server_from_version(version), ("reason",))
    assert rendered == " ON DUPLICATE KEY UPDATE reason = VALUES(reason)"


@pytest.mark.parametrize(
    ("version", "tail"),
    [
        (
            MYSQL,
            " AS new ON DUPLICATE KEY UPDATE name = new.name, description = new.description,"
            " attributes = new.attributes, updated_at = new.updated_at, version = version + 1",
        ),
        (
            MARIADB,
            " ON DUPLICATE KEY UPDATE name = VALUES(name), description = VALUES(description),"
            " attributes = VALUES(attributes), updated_at = VALUES(updated_at), version = version + 1",
        ),
    ],
)
def test_an_item_write_renders_its_upsert_for_the_server_it_reaches(version: str, tail: str) -> None:
    """GIVEN an item store over a server WHEN an item is put THEN its INSERT ends as that server takes it."""
    log: list[str] = []
    ItemStore(FakeDatabase(FakeConnection(version, log))).put("lamp", "Lamp", "", {})  # type: ignore[arg-type]
    assert log[0].endswith("VALUES (%s, %s, %s, %s, 1, UTC_TIMESTAMP(6))" + tail)


@pytest.mark.parametrize(
    ("version", "tail"),
    [
        (MYSQL, " AS new ON DUPLICATE KEY UPDATE reason = new.reason"),
        (MARIADB, " ON DUPLICATE KEY UPDATE reason = VALUES(reason)"),
    ],
)
def test_a_reject_renders_its_upsert_for_the_server_it_reaches(version: str, tail: str) -> None:
    """GIVEN a writer's connection to a server WHEN rejects are recorded THEN their INSERT ends as it takes it."""
    log: list[str] = []
    insert_rejects(FakeConnection(version, log), [RejectedEntry("m-1", 0, None, "bad", "{}")])  # type: ignore[arg-type]
    assert log == [
        "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
        " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))" + tail
    ]


@pytest.mark.parametrize(
    ("version", "caps"),
    [
        (MYSQL, "innodb_lock_wait_timeout = 5, lock_wait_timeout = 5, max_execution_time = 5000"),
        (MARIADB, "innodb_lock_wait_timeout = 5, lock_wait_timeout = 5, max_statement_time = 5"),
    ],
)
def test_the_connector_learns_the_server_once_and_sets_its_caps_on_every_session(
    monkeypatch: pytest.MonkeyPatch, version: str, caps: str
) -> None:
    """GIVEN a connector with a 5 s cap WHEN it connects twice THEN the first session gets the server's SET
    after connecting, and the next one gets it in its init_command, with a 20 s client deadline both times."""
    log: list[str] = []
    connects: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> FakeConnection:
        connects.append(kwargs)
        return FakeConnection(version, log)

    monkeypatch.setattr(pymysql, "connect", connect)
    connector = MySQLConnector(SETTINGS, Credentials("api", "pw"), statement_timeout_s=5)
    connector.connect()
    connector.connect()
    assert log == [f"SET SESSION {caps}"]
    assert not connects[0]["init_command"].endswith(caps)
    assert connects[1]["init_command"].endswith(f", {caps}")
    assert {(c["read_timeout"], c["write_timeout"]) for c in connects} == {(20, 20)}


def test_a_connector_without_caps_sets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a connector given no cap (a test's, a tool's) WHEN it connects THEN nothing but the session's mode."""
    log: list[str] = []
    monkeypatch.setattr(pymysql, "connect", lambda **kwargs: FakeConnection(MYSQL, log))
    MySQLConnector(SETTINGS, Credentials("tool", "pw")).connect()
    assert log == []


def test_lock_waits_rounded_up_to_the_read_timeout_are_a_problem() -> None:
    """GIVEN a statement cap below 1 s and a read timeout of 1 s WHEN the budget is checked THEN the 1 s lock
    waits (the servers take whole seconds) would outlive the client, and it says so."""
    problems = budget_problems(replace(FITS, mysql_statement_timeout_s=0.5, mysql_read_timeout_s=1))
    assert problems == [
        "MYSQL_STATEMENT_TIMEOUT_S 0.5s makes lock waits of 1s (whole seconds, at least 1), not shorter than"
        " MYSQL_READ_TIMEOUT_S 1s: a write waiting for a lock would outlive the client"
    ]
