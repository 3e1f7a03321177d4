"""Migrations, accounts and the provision step against the real MariaDB, in a scratch database."""

import dataclasses
import threading
from collections.abc import Iterator

import pymysql
import pytest

from chalicelib.database.accounts import API_GRANTS, MAINTAINER_CONNECTIONS, MAINTAINER_GRANTS, WRITER_GRANTS
from chalicelib.database.provision import provision
from chalicelib.database.schema import Migration, latest_version, load_migrations, migrate, run_statements
from chalicelib.errors import ConfigError, MigrationError
from chalicelib.secrets import Credentials
from tests.functional.conftest import SETTINGS, scratch_database
from tests.support.waiting import wait_for
from tools.admin import admin_connection

DATABASE = "sluice_migration_test"
API = Credentials("sluice_mt_api", "mt-api-password")
WRITER = Credentials("sluice_mt_writer", "mt-writer-password")
MAINTAINER = Credentials("sluice_mt_maintainer", "mt-maintainer-password")


def tables(conn: pymysql.connections.Connection) -> dict[str, str]:
    """Each table's CREATE statement."""
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        names = [row[0] for row in cur.fetchall()]
        result = {}
        for name in names:
            cur.execute(f"SHOW CREATE TABLE `{name}`")
            row = cur.fetchone()
            assert row is not None
            result[name] = row[1]
    return result


@pytest.fixture
def scratch() -> Iterator[pymysql.connections.Connection]:
    """A root connection in an empty scratch database, dropped (with the test's accounts) afterwards."""
    with scratch_database(DATABASE) as conn:
        yield conn
    with admin_connection() as conn, conn.cursor() as cur:
        for account in (API, WRITER, MAINTAINER):
            cur.execute("DROP USER IF EXISTS %s@'%%'", (account.username,))


def test_a_new_database_gets_every_migration_once_and_a_second_run_changes_nothing(scratch):
    migrations = load_migrations()
    first = migrate(scratch, migrations)
    assert (first.version_before, first.version_after) == (0, latest_version(migrations))
    assert first.applied == [m.version for m in migrations]
    schema = tables(scratch)
    assert {"items", "logs", "log_ids", "log_rejects", "schema_migrations"} <= set(schema)
    second = migrate(scratch, migrations)
    assert (second.applied, second.version_after) == ([], latest_version(migrations))
    assert tables(scratch) == schema


def test_every_migration_is_safe_to_run_twice(scratch):
    # GIVEN each migration's statements run once, as a run cut short and repeated would
    for migration in load_migrations():
        with scratch.cursor() as cur:
            run_statements(cur, migration)
        once = tables(scratch)
        # WHEN they run again THEN nothing fails and nothing changes
        with scratch.cursor() as cur:
            run_statements(cur, migration)
        assert tables(scratch) == once, migration.name


def test_a_migration_changed_after_it_ran_stops_the_run(scratch):
    migrations = load_migrations()
    migrate(scratch, migrations)
    edited = [dataclasses.replace(migrations[0], sql=migrations[0].sql + "\n-- edited\n"), *migrations[1:]]
    with pytest.raises(MigrationError, match="changed after it ran; migrations are forward only"):
        migrate(scratch, edited)


def test_a_database_ahead_of_the_code_is_left_as_it_is(scratch):
    # GIVEN a database that ran a migration newer than this code (a deploy rolled back after it)
    migrations = load_migrations()
    later = Migration(latest_version(migrations) + 1, "later", "CREATE TABLE IF NOT EXISTS later (id INT PRIMARY KEY);")
    migrate(scratch, [*migrations, later])
    # WHEN the older code migrates THEN it changes nothing and reports where the database is
    result = migrate(scratch, migrations)
    assert (result.applied, result.version_before) == ([], later.version)
    assert "later" in tables(scratch)


def test_a_second_run_waits_for_the_first(scratch):
    # GIVEN another run holds the migration lock
    holder = admin_connection(DATABASE)
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (f"sluice-migrations:{DATABASE}",))
    done: list[object] = []
    runner = threading.Thread(target=lambda: done.append(migrate(admin_connection(DATABASE), load_migrations())))
    runner.start()
    try:
        # WHEN a run starts THEN it waits on the lock and changes nothing meanwhile
        wait_for(lambda: _waiting_on_a_lock(), timeout_s=10, interval_s=0.05)
        assert "schema_migrations" not in tables(scratch)
    finally:
        holder.close()  # releases the lock
    runner.join(timeout=30)
    assert done and done[0].applied == [m.version for m in load_migrations()]  # type: ignore[attr-defined]


def _waiting_on_a_lock() -> bool:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'User lock' AND INFO LIKE %s",
            (f"%sluice-migrations:{DATABASE}%",),
        )
        row = cur.fetchone()
        return bool(row and row[0])


def grants(user: str) -> set[str]:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS FOR %s@'%%'", (user,))
        return {row[0].split(" TO ")[0] for row in cur.fetchall() if "USAGE" not in row[0]}


def test_provision_makes_the_accounts_with_exactly_their_grants_and_caps(scratch):
    settings = dataclasses.replace(SETTINGS, mysql=dataclasses.replace(SETTINGS.mysql, database=DATABASE))
    provision(scratch, settings, API, WRITER, MAINTAINER)
    expected = {
        API.username: {f"GRANT {p} ON `{DATABASE}`.`{t}`" for p, t in API_GRANTS},
        WRITER.username: {f"GRANT {p} ON `{DATABASE}`.`{t}`" for p, t in WRITER_GRANTS},
        MAINTAINER.username: {f"GRANT {p} ON `{DATABASE}`.`{t}`" for p, t in MAINTAINER_GRANTS},
    }
    assert {user: grants(user) for user in expected} == expected
    # AND a privilege granted by hand is gone after the next run
    with scratch.cursor() as cur:
        cur.execute(f"GRANT DELETE ON `{DATABASE}`.`logs` TO %s@'%%'", (API.username,))
    provision(scratch, settings, API, WRITER, MAINTAINER)
    assert grants(API.username) == expected[API.username]
    with scratch.cursor() as cur:
        cur.execute(
            "SELECT user, max_user_connections FROM mysql.user WHERE user IN (%s, %s, %s)",
            (API.username, WRITER.username, MAINTAINER.username),
        )
        caps = dict(cur.fetchall())
    assert caps == {
        API.username: settings.api_read_slots,
        WRITER.username: settings.consumer_max_concurrency,
        MAINTAINER.username: MAINTAINER_CONNECTIONS,
    }


def test_provision_refuses_a_budget_that_does_not_fit_before_changing_anything(scratch, server_max_connections):
    settings = dataclasses.replace(SETTINGS, mysql=dataclasses.replace(SETTINGS.mysql, database=DATABASE))
    budget = settings.consumer_max_concurrency + settings.api_read_slots + settings.admin_reserve_connections
    server_max_connections(budget)
    with pytest.raises(ConfigError, match=f"= {budget}, which must stay below the server's max_connections {budget}"):
        provision(scratch, settings, API, WRITER, MAINTAINER)
    assert tables(scratch) == {}
