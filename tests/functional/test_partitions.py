"""The partitioned logs table against the real MariaDB: the migration on a table that holds rows,
maintenance with the maintainer's account, retention by dropped days, and an id stored once
whatever partition its entries fall in."""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql
import pytest

import app as sluice_app
from chalicelib import wiring
from chalicelib.consumer.insert import insert_log_rows
from chalicelib.database.partitions import (
    BEFORE,
    FUTURE,
    day_name,
    maintain,
    read_partitions,
    utc_today,
)
from chalicelib.database.schema import load_migrations, migrate
from chalicelib.logs.model import LogRecord
from chalicelib.mysql.connector import MySQLConnector
from tests.functional.conftest import SETTINGS, scratch_database
from tests.support.waiting import wait_for
from tools.devstack.local_schedule import run_once, scheduled_handlers

SCRATCH = "sluice_partitions_scratch"


def record(ts: datetime, log_id: uuid.UUID | None = None, source: str = "web") -> LogRecord:
    return LogRecord.model_validate(
        {
            "id": str(log_id or uuid.uuid4()),
            "level": "info",
            "source": source,
            "message": f"at {ts.isoformat()}",
            "timestamp": ts,
            "attributes": {},
            "received_at": ts,
            "key_id": "key_0123456789abcdef",
        }
    )


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def connect(role: str) -> pymysql.connections.Connection:
    """The stage's `mysql_writer` or `mysql_maintainer` account, as the functions connect."""
    return MySQLConnector(SETTINGS.mysql, wiring.get_secrets().source(role)).connect()


def store(conn: pymysql.connections.Connection, *records: LogRecord) -> int:
    outcome = insert_log_rows(conn, records, 500, 1 << 20)
    conn.commit()
    return outcome.inserted


def logs_count(admin_db, where: str = "1") -> int:
    with admin_db.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM logs WHERE {where}")
        return int(cur.fetchone()[0])


@pytest.fixture
def today() -> date:
    """The UTC date when the test starts (not when the tests were collected)."""
    return utc_today()


@pytest.fixture
def scratch() -> Iterator[pymysql.connections.Connection]:
    """Root in an empty scratch database, dropped afterwards."""
    with scratch_database(SCRATCH) as conn:
        conn.autocommit(False)
        yield conn


def run(conn: pymysql.connections.Connection, today: date) -> dict[str, Any]:
    return maintain(conn, today, retention_days=30, ahead_days=7, id_window_days=15, lock_wait_s=10).to_dict()


def test_the_migration_keeps_every_row_of_an_existing_table_and_remembers_their_ids(scratch, today):
    # GIVEN a logs table from before partitioning, holding rows of several days
    migrations = load_migrations()
    migrate(scratch, [m for m in migrations if m.version < 3])
    rows = [record(at(today - timedelta(days)), source=f"s{days}") for days in (40, 10, 0)]
    with scratch.cursor() as cur:
        for r in rows:
            cur.execute(
                "INSERT INTO logs (id, level, source, message, ts, attributes, received_at, stored_at)"
                " VALUES (%s, 'info', %s, 'm', %s, '{}', %s, UTC_TIMESTAMP(6))",
                (str(r.id), r.source, r.timestamp.replace(tzinfo=None), r.received_at.replace(tzinfo=None)),
            )
    scratch.commit()
    # WHEN the partitioning migration runs
    migrate(scratch, migrations)
    # THEN every row is there, in the one catch-all partition, and every id is remembered
    assert [p.name for p in read_partitions(scratch)] == [FUTURE]
    with scratch.cursor() as cur:
        cur.execute("SELECT id FROM logs")
        assert {row[0] for row in cur.fetchall()} == {str(r.id) for r in rows}
        cur.execute("SELECT id FROM log_ids")
        assert {row[0] for row in cur.fetchall()} == {str(r.id) for r in rows}
    # AND the first maintenance run splits them off without losing any: older days in p_before
    result = run(scratch, today)
    assert result["created"][0] == day_name(today) and result["dropped"] == []
    with scratch.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM logs PARTITION ({BEFORE})")
        assert cur.fetchone()[0] == 2
        cur.execute(f"SELECT COUNT(*) FROM logs PARTITION ({day_name(today)})")
        assert cur.fetchone()[0] == 1


def test_retention_drops_whole_days_and_keeps_the_rest_and_rows_beyond_the_last_day(scratch, today):
    # GIVEN a partitioned table first maintained 45 days ago, with rows from 40 days ago to 20 days ahead
    migrate(scratch, load_migrations())
    run(scratch, today - timedelta(45))
    offsets = {-40: 2, -31: 1, -30: 1, -29: 1, 0: 3, 3: 1, 20: 1}
    with scratch.cursor() as cur:
        for offset, n in offsets.items():
            for _ in range(n):
                ts = at(today + timedelta(offset)).replace(tzinfo=None)
                cur.execute(
                    "INSERT INTO logs (id, level, source, message, ts, attributes, received_at, stored_at)"
                    " VALUES (UUID(), 'info', 'web', 'm', %s, '{}', %s, UTC_TIMESTAMP(6))",
                    (ts, ts),
                )
    scratch.commit()
    # WHEN maintenance runs today
    result = run(scratch, today)
    # THEN the days that ended 30 days ago or earlier are dropped, with their rows, and nothing else
    assert day_name(today - timedelta(31)) in result["dropped"]
    assert day_name(today - timedelta(30)) not in result["dropped"]
    with scratch.cursor() as cur:
        cur.execute("SELECT DATEDIFF(ts, %s), COUNT(*) FROM logs GROUP BY 1", (today,))
        remaining = {int(d): int(n) for d, n in cur.fetchall()}
    assert remaining == {-30: 1, -29: 1, 0: 3, 3: 1, 20: 1}
    # AND the days ahead exist; the row 20 days ahead waits in p_future until its day is made
    names = [p.name for p in read_partitions(scratch)]
    assert names[-2:] == [day_name(today + timedelta(7)), FUTURE]
    # AND a second run the same day changes nothing
    assert run(scratch, today) == {"created": [], "dropped": [], "ids_forgotten": 0}


def test_ids_are_forgotten_after_their_window_only(scratch, today):
    migrate(scratch, load_migrations())
    with scratch.cursor() as cur:
        for days_ago in (16, 15, 14, 0):
            cur.execute(
                "INSERT INTO log_ids (id, claim, seen_on) VALUES (UUID(), 1, %s)", (today - timedelta(days_ago),)
            )
    scratch.commit()
    result = run(scratch, today)
    assert result["ids_forgotten"] == 1
    with scratch.cursor() as cur:
        cur.execute("SELECT DATEDIFF(%s, seen_on) FROM log_ids ORDER BY 1", (today,))
        assert [int(row[0]) for row in cur.fetchall()] == [0, 14, 15]


def test_the_maintainer_account_can_maintain_the_stages_table(admin_db):
    # GIVEN the test stage's table, and the scheduled function's maintainer as the app builds it (its
    # own account, its own statement limits)
    maintainer = wiring.get_maintainer()
    # WHEN it runs (the clock may pass UTC midnight meanwhile: the day it started or ended on counts)
    started_on = datetime.now(UTC).date()
    maintainer.run()
    ended_on = datetime.now(UTC).date()
    # THEN that day and the days ahead exist, and the account needed nothing more
    names = [p.name for p in read_partitions(admin_db)]
    ahead = timedelta(SETTINGS.log_partitions_ahead_days)
    assert any(day_name(day) in names and day_name(day + ahead) in names for day in {started_on, ended_on}), names


def test_an_id_retried_with_another_timestamp_is_stored_once(admin_db, today):
    # GIVEN an entry stored, and the same id again with a timestamp in another day's partition
    log_id = uuid.uuid4()
    writer = connect("mysql_writer")
    try:
        assert store(writer, record(at(today), log_id)) == 1
        # WHEN it is written again (a client's retry without a timestamp gets a new one)
        assert store(writer, record(at(today - timedelta(2)), log_id)) == 0
    finally:
        writer.close()
    # THEN it is stored once, as first written
    assert logs_count(admin_db, f"id = '{log_id}'") == 1
    assert logs_count(admin_db, f"id = '{log_id}' AND DATE(ts) = '{today}'") == 1


@pytest.mark.parametrize("first_ends_with", ["commit", "rollback"])
def test_two_writers_with_one_id_store_it_once(admin_db, first_ends_with, today):
    # GIVEN a writer that has claimed an id and inserted its row, not yet committed
    log_id = uuid.uuid4()
    first, second = connect("mysql_writer"), connect("mysql_writer")
    try:
        assert insert_log_rows(first, [record(at(today), log_id)], 500, 1 << 20).inserted == 1
        # WHEN a second writer stores the same id under another timestamp
        inserted: list[int] = []
        failed: list[BaseException] = []

        def second_writer() -> None:
            try:
                inserted.append(store(second, record(at(today, 13), log_id)))
            except BaseException as exc:  # shown by the assertion below, not lost in the thread
                failed.append(exc)

        other = threading.Thread(target=second_writer)
        other.start()
        # THEN it waits for the first writer's claim
        wait_for(lambda: failed or _claiming(admin_db, log_id), timeout_s=10, interval_s=0.05)
        assert not failed, failed
        # AND once the first one ends, exactly one of them has stored it
        getattr(first, first_ends_with)()
        other.join(timeout=30)
    finally:
        first.close()
        second.close()
    assert inserted == [0 if first_ends_with == "commit" else 1]
    assert logs_count(admin_db, f"id = '{log_id}'") == 1


def _claiming(admin_db, log_id: uuid.UUID) -> bool:
    """A statement claiming `log_id` is running: it cannot end while another transaction holds the id.
    (Its lock wait does not always show in INNODB_TRX on MariaDB 10.11; the statement does.)"""
    with admin_db.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
            (f"INSERT INTO log_ids %{log_id}%",),
        )
        return bool(cur.fetchone()[0])


def test_a_row_mysql_rejects_gives_its_id_back(admin_db, today):
    # GIVEN MySQL refusing rows of one source (a data error: the row is set aside, not stored)
    with admin_db.cursor() as cur:
        cur.execute(
            "CREATE TRIGGER test_reject_row BEFORE INSERT ON logs FOR EACH ROW"
            " IF NEW.source = 'reject.me' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; END IF"
        )
    writer = connect("mysql_writer")
    try:
        refused, good = record(at(today), source="reject.me"), record(at(today))
        outcome = insert_log_rows(writer, [refused, good], 500, 1 << 20)
        writer.commit()
    finally:
        writer.close()
        with admin_db.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS test_reject_row")
    # THEN the good one is stored and claimed; the refused one's id is free for a replay
    assert [r.id for r, _ in outcome.rejected] == [refused.id] and outcome.inserted == 1
    with admin_db.cursor() as cur:
        cur.execute("SELECT id FROM log_ids WHERE id IN (%s, %s)", (str(refused.id), str(good.id)))
        assert {row[0] for row in cur.fetchall()} == {str(good.id)}


def test_make_up_runs_the_apps_schedule_as_eventbridge_would():
    # GIVEN the app's scheduled functions as tools/devstack/local_schedule.py finds them
    jobs = scheduled_handlers(sluice_app)
    assert [(job.name, job.period_s) for job in jobs] == [("maintain_partitions", 3600)]
    # WHEN one runs with a scheduled event THEN the handler accepts it and succeeds
    assert run_once(jobs[0])


def test_a_batch_mixing_stored_and_new_ids_stores_only_the_new_ones(admin_db, today):
    # GIVEN one entry stored before
    old = record(at(today))
    writer = connect("mysql_writer")
    try:
        assert store(writer, old) == 1
        # WHEN a batch carries it again among two new ones (and one of those twice)
        fresh = [record(at(today)), record(at(today))]
        inserted = store(writer, old, fresh[0], fresh[1], fresh[1])
    finally:
        writer.close()
    # THEN only the two new ones are stored, once each
    assert inserted == 2
    assert logs_count(admin_db, f"id IN ('{old.id}', '{fresh[0].id}', '{fresh[1].id}')") == 3


def test_a_dropped_days_counts_go_with_it_and_the_commit_order_with_the_ids(scratch, today):
    # GIVEN counts of entries 31 and 30 days ago, and commits of 16 and 14 days ago
    migrate(scratch, load_migrations())
    run(scratch, today - timedelta(45))
    with scratch.cursor() as cur:
        for days in (31, 30):
            bucket = at(today - timedelta(days)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
            for table in ("log_counts", "log_counts_hourly"):
                cur.execute(f"INSERT INTO {table} VALUES ('web', %s, 'info', 1)", (bucket,))
            for table in ("log_level_counts", "log_level_counts_hourly"):
                cur.execute(f"INSERT INTO {table} VALUES (%s, 'info', 1)", (bucket,))
        for seq, days in ((1, 16), (2, 14)):
            cur.execute("INSERT INTO log_commits VALUES (%s, 7, %s)", (seq, today - timedelta(days)))
    scratch.commit()
    # WHEN maintenance drops the day of 31 days ago
    assert day_name(today - timedelta(31)) in run(scratch, today)["dropped"]
    # THEN that day's counts are gone from every count table, the next day's stay (so GET /logs/stats
    # stays exact for what is stored), and the commit order is forgotten with the ids
    with scratch.cursor() as cur:
        for table in ("log_counts", "log_counts_hourly", "log_level_counts", "log_level_counts_hourly"):
            cur.execute(f"SELECT DATEDIFF(%s, bucket) FROM {table}", (today,))
            assert [int(row[0]) for row in cur.fetchall()] == [30], table
        cur.execute("SELECT seq FROM log_commits")
        assert [int(row[0]) for row in cur.fetchall()] == [2]
