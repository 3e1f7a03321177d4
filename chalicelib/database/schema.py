"""Versioned schema migrations: numbered SQL files, run forward only, recorded in the database.

`chalicelib/database/migrations/NNNN_name.sql` are numbered from 0001 without gaps. Statements in a file
end with a `;` at the end of a line; lines starting with `--` are comments. Every statement must
be safe to run twice: MySQL commits each DDL statement on its own, so a run cut short part-way
through a file repeats the statements that already ran when it is run again. Where MySQL 8 has
no `IF NOT EXISTS` (an index, say), a statement can be guarded: a comment line
`-- unless: SELECT ...` just before it skips it when that query finds a row.

The `schema_migrations` table records each version that ran, with the checksum of its file. A
file changed after it ran stops the run: add a new migration instead. A database ahead of the
code (a deploy rolled back after its migration ran) is left as it is: migrations only add, so
the older code runs on the newer schema. A named lock keeps two runs (two deploys) apart.
A migration file never changes once it ran anywhere (its checksum is recorded): its header comments
may name modules by the paths they had then.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_WAIT_S = 60  # how long a run waits for another one to finish
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_GUARD = "-- unless:"

_CREATE_HISTORY = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INT UNSIGNED NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    checksum CHAR(64) CHARACTER SET ascii NOT NULL,
    applied_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements, without comment lines."""
        return [statement for _, statement in self.guarded_statements()]

    def guarded_statements(self) -> list[tuple[str | None, str]]:
        """(guard query or None, statement) for each statement of the file."""
        result: list[tuple[str | None, str]] = []
        for chunk in _STATEMENT_END.split(self.sql):
            guard, lines = None, []
            for line in chunk.splitlines():
                stripped = line.strip()
                if stripped.startswith(_GUARD):
                    guard = stripped[len(_GUARD) :].strip()
                elif not stripped.startswith("--"):
                    lines.append(line)
            statement = "\n".join(lines).strip()
            if statement:
                result.append((guard, statement))
        return result


@dataclass(frozen=True)
class MigrationResult:
    version_before: int
    version_after: int
    applied: list[int]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file, in order; MigrationError if a name or the numbering is wrong."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise MigrationError(f"migrations must be numbered 1..{len(migrations)} without gaps, found {versions}")
    return migrations


def latest_version(migrations: list[Migration]) -> int:
    return migrations[-1].version if migrations else 0


def migrate(conn: Connection, migrations: list[Migration]) -> MigrationResult:
    """Run the migrations the database has not run yet, in order, on the connection's database."""
    lock = f"sluice-migrations:{database_name(conn)}"
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (lock, LOCK_WAIT_S))
        row = cur.fetchone()
        if row is None or row[0] != 1:
            raise MigrationError(f"another migration run held the lock for {LOCK_WAIT_S}s; try again when it ends")
        try:
            cur.execute(_CREATE_HISTORY)
            cur.execute("SELECT version, checksum FROM schema_migrations")
            ran = {int(row[0]): str(row[1]) for row in cur.fetchall()}
            _check_history(ran, migrations)
            before = max(ran, default=0)
            applied = []
            for migration in migrations:
                if migration.version in ran:
                    continue
                run_statements(cur, migration)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                    " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))",
                    (migration.version, migration.name, migration.checksum),
                )
                conn.commit()
                applied.append(migration.version)
            return MigrationResult(before, max([before, *applied]), applied)
        finally:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))


def run_statements(cur: Any, migration: Migration) -> None:
    """Execute a migration's statements, skipping each whose guard query finds a row."""
    for guard, statement in migration.guarded_statements():
        if guard is not None:
            cur.execute(guard)
            if cur.fetchone() is not None:
                continue
        cur.execute(statement)


def database_name(conn: Connection) -> str:
    """The connection's current database."""
    name = conn.db
    return name.decode() if isinstance(name, bytes) else str(name)


def _check_history(ran: dict[int, str], migrations: list[Migration]) -> None:
    for migration in migrations:
        if migration.version in ran and ran[migration.version] != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} changed after it ran;"
                " migrations are forward only: put the change in a new migration"
            )
