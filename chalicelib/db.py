"""MySQL (MariaDB): connections within the budget, and every query the API and the consumer run."""

import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.config import MySQLSettings
from chalicelib.errors import (
    BudgetExhaustedError,
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    QueryTimeoutError,
    SluiceError,
)
from chalicelib.logids import claim_ids, release_ids
from chalicelib.models import LogRecord, format_rfc3339
from chalicelib.secrets import Credentials, CredentialSource
from chalicelib.slots import SlotPool
from chalicelib.tls import verified_context

logger = logging.getLogger(__name__)

ER_ACCESS_DENIED = 1045  # wrong user name or password
ER_CON_COUNT_ERROR = 1040  # Too many connections (the server's max_connections)
ER_TOO_MANY_USER_CONNECTIONS = 1203  # the server-wide max_user_connections
ER_USER_LIMIT_REACHED = 1226  # the user's own MAX_USER_CONNECTIONS (set by the bootstrap)
CONNECTION_LIMIT_ERRNOS = frozenset({ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS, ER_USER_LIMIT_REACHED})
# Errors that mean "this row cannot be stored", not "try again later". A batch that hits one
# is split to find the row; anything else fails the invocation so SQS redelivers.
ROW_REJECTED_ERRNOS = frozenset(
    {
        1048,  # column cannot be null
        1264,  # out of range value
        1265,  # data truncated
        1292,  # incorrect datetime (or other) value
        1366,  # incorrect string value
        1367,  # illegal value
        1406,  # data too long
        1644,  # a trigger's SIGNAL
        1690,  # value out of range
        3140,  # invalid JSON text (MySQL)
        3819,  # check constraint violated (MySQL)
        4025,  # CONSTRAINT failed (MariaDB)
    }
)

_ITEM_COLUMNS = "id, name, description, attributes, version, updated_at"
_LOG_COLUMNS = "id, level, source, message, ts, attributes, received_at, stored_at"
_LOG_INSERT_PREFIX = "INSERT INTO logs (id, level, source, message, ts, attributes, received_at, stored_at) VALUES "
# A duplicate id (a redelivered message, a client's retry) changes nothing. Unlike INSERT IGNORE,
# this still raises every other error, so a row MySQL rejects is found, not silently mangled.
_LOG_INSERT_SUFFIX = " ON DUPLICATE KEY UPDATE id = id"


class MySQLConnector:
    """Opens connections for one MySQL user.

    With TLS the server is verified against MYSQL_CA_BUNDLE, host name included; the context is
    built once and reused. A refused password makes it read the credentials again, once (a
    rotated secret). `use_database=False` connects without selecting the stage's database (the
    migration creates it).
    """

    def __init__(
        self,
        settings: MySQLSettings,
        credentials: CredentialSource,
        *,
        use_database: bool = True,
        statement_timeout_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._statement_timeout_s = statement_timeout_s
        self._timeout_variable: str | None = None  # learnt from the first connection's server
        self._database = settings.database if use_database else None
        self._ssl_context = verified_context(settings.ca_bundle or "", "MYSQL_CA_BUNDLE") if settings.tls else None

    @property
    def user(self) -> str:
        return self._credentials.get().username

    def connect(self) -> Connection:
        """A new connection in strict SQL mode and UTC. Raises pymysql errors."""
        try:
            return self._connect(self._credentials.get())
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] != ER_ACCESS_DENIED:
                raise
            logger.warning("MySQL refused the credentials of %s; reading them again", self.user)
            return self._connect(self._credentials.refresh())

    def _connect(self, credentials: Credentials) -> Connection:
        tls: dict[str, Any] = {"ssl": self._ssl_context} if self._ssl_context else {"ssl_disabled": True}
        session = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'"
        if self._timeout_variable:
            session += f", {self._timeout_variable}"
        conn: Connection = pymysql.connect(
            host=self._settings.host,
            port=self._settings.port,
            user=credentials.username,
            password=credentials.password,
            database=self._database,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=self._settings.connect_timeout_s,
            read_timeout=self._settings.read_timeout_s,
            write_timeout=self._settings.read_timeout_s,
            cursorclass=pymysql.cursors.DictCursor,
            init_command=session,
            **tls,
        )
        if self._statement_timeout_s and not self._timeout_variable:
            self._timeout_variable = _statement_timeout(conn, self._statement_timeout_s)
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION {self._timeout_variable}")
        return conn


def _statement_timeout(conn: Any, seconds: float) -> str:
    """The session setting that makes this server stop a statement after `seconds`."""
    if "mariadb" in str(conn.get_server_info()).lower():
        return f"max_statement_time = {seconds:g}"  # every statement, in seconds
    return f"max_execution_time = {int(seconds * 1000)}"  # MySQL: SELECTs, in milliseconds


def connect_within(connect: Callable[[], Connection], deadline: float) -> Connection:
    """Connect, retrying while the server or the user is at its connection limit, until `deadline`.

    Closed connections linger briefly in the server's count, so a limit hit is often gone a
    few milliseconds later. Raises BudgetExhaustedError at the deadline, ConfigError when the
    server's certificate does not verify against MYSQL_CA_BUNDLE (retrying cannot help), and
    what mysql_error() makes of the rest: DatabaseUnavailableError when MySQL cannot be reached,
    DatabaseError when it refuses the account (a wrong password, a locked account).
    """
    delay = 0.005
    while True:
        try:
            return connect()
        except pymysql.err.OperationalError as exc:
            errno = exc.args[0] if exc.args else None
            if isinstance(getattr(exc, "original_exception", None), ssl.SSLCertVerificationError):
                logger.error("MySQL's certificate did not verify: %s", exc)
                raise ConfigError(
                    "MySQL's TLS certificate does not verify against MYSQL_CA_BUNDLE (or does not name MYSQL_HOST)"
                ) from exc
            if errno not in CONNECTION_LIMIT_ERRNOS:
                raise mysql_error(exc) from exc
            if time.monotonic() >= deadline:
                raise BudgetExhaustedError("MySQL's connection limit is reached; try again shortly") from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# Errors that mean "MySQL could not serve this now": a retry may work (503).
UNAVAILABLE_ERRNOS = frozenset(
    {
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection killed
        2002,  # cannot connect (socket)
        2003,  # cannot connect
        2006,  # server has gone away
        2013,  # lost connection during query
    }
)
STATEMENT_TIMEOUT_ERRNOS = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time
ER_NET_PACKET_TOO_LARGE = 1153  # a statement above max_allowed_packet (the server then drops the connection)
_PACKET_MARGIN_BYTES = 1024
# The widths of log_rejects' columns (migrations/0001_initial.sql); a MEDIUMTEXT holds 16 MiB of bytes.
_REJECT_MESSAGE_ID_CHARS = 128
_REJECT_REASON_CHARS = 2000
_REJECT_BODY_CHARS = (16 * 1024 * 1024 - 1) // 4


def is_transient(exc: pymysql.err.MySQLError) -> bool:
    """Whether MySQL could not do it now, and the same work may succeed later: it cannot be reached,
    it went away, it is at its connection limit, or it gave up on a lock, a deadlock or a timeout."""
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return (
        isinstance(exc, pymysql.err.InterfaceError)
        or errno in UNAVAILABLE_ERRNOS
        or errno in CONNECTION_LIMIT_ERRNOS
        or errno in STATEMENT_TIMEOUT_ERRNOS
    )


def mysql_error(exc: pymysql.err.MySQLError) -> SluiceError:
    """A MySQL failure during a statement, by error number: a timeout or an outage (503), or a
    refusal a retry cannot fix, such as a missing privilege or table (500). No driver text goes
    to the client: the request's log has it."""
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if errno in STATEMENT_TIMEOUT_ERRNOS:
        return QueryTimeoutError("the query took longer than MYSQL_STATEMENT_TIMEOUT_S; try a narrower one")
    if is_transient(exc):
        return DatabaseUnavailableError("MySQL is unavailable")
    return DatabaseError(f"MySQL refused the statement (error {errno})")


class Database:
    """The API's access to MySQL: a budget slot and a fresh connection per unit of work.

    No connection outlives the work that needed it, so an idle API instance holds none.
    """

    def __init__(self, connector: MySQLConnector, slots: SlotPool | None, slot_wait_ms: int) -> None:
        self._connector = connector
        self._slots = slots
        self._slot_wait_s = slot_wait_ms / 1000

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection held within a read slot; MySQL failures become DatabaseUnavailableError."""
        deadline = time.monotonic() + self._slot_wait_s
        with self._slots.hold(deadline) if self._slots else nullcontext():
            conn = connect_within(self._connector.connect, deadline)
            try:
                yield conn
            except pymysql.err.MySQLError as exc:
                raise mysql_error(exc) from exc
            finally:
                conn.close()

    def ping(self) -> None:
        """Run SELECT 1."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        """One item as the API shows it, or None."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s", (item_id,))
            row = _one(cur)
        return _item_from_row(row) if row else None

    def list_items(self, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Items ordered by id after `after`; and whether more follow."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE id > %s ORDER BY id LIMIT %s",
                (after or "", limit + 1),
            )
            rows = _all(cur)
        return [_item_from_row(r) for r in rows[:limit]], len(rows) > limit

    def put_item(
        self, item_id: str, name: str, description: str, attributes: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace an item, bumping its version; return it and whether it was created."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO items (id, name, description, attributes, version, updated_at)"
                " VALUES (%s, %s, %s, %s, 1, UTC_TIMESTAMP(6))"
                " ON DUPLICATE KEY UPDATE name = VALUES(name), description = VALUES(description),"
                " attributes = VALUES(attributes), version = version + 1, updated_at = VALUES(updated_at)",
                (item_id, name, description, json.dumps(attributes, separators=(",", ":"))),
            )
            created = cur.rowcount == 1  # MySQL reports 1 for an insert, 2 for an update
            cur.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s", (item_id,))
            row = _one(cur)
            conn.commit()
        assert row is not None
        return _item_from_row(row), created

    def delete_item(self, item_id: str) -> bool:
        """Delete an item; False if there was none."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM items WHERE id = %s", (item_id,))
            conn.commit()
            return cur.rowcount == 1

    def get_log(self, log_id: str) -> dict[str, Any] | None:
        """One stored log entry, or None."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_LOG_COLUMNS} FROM logs WHERE id = %s", (log_id,))
            row = _one(cur)
        return _log_from_row(row) if row else None

    def query_logs(
        self,
        *,
        source: str | None,
        level: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, str] | None,
        limit: int,
        sources: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Log entries newest first (by timestamp, then id), before the keyset position `before`;
        `sources` (a key's patterns: names, prefixes ending in *) limits them to those sources."""
        sql, args = logs_query(
            source=source, level=level, since=since, until=until, before=before, limit=limit, sources=sources
        )
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = _all(cur)
        return [_log_from_row(r) for r in rows[:limit]], len(rows) > limit


def logs_query(
    *,
    source: str | None,
    level: str | None,
    since: datetime | None,
    until: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
    sources: list[str] | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT of GET /logs and its arguments (one more row than `limit`, to tell if there are more)."""
    where: list[str] = []
    args: list[Any] = []
    if source is not None:
        where.append("source = %s")
        args.append(source)
    if sources is not None and "*" not in sources:
        exact = [p for p in sources if not p.endswith("*")]
        prefixes = [p[:-1] for p in sources if p.endswith("*")]
        alternatives = ["source IN (" + ", ".join(["%s"] * len(exact)) + ")"] if exact else []
        alternatives += ["source LIKE %s"] * len(prefixes)
        where.append("(" + " OR ".join(alternatives) + ")")
        args.extend(exact)
        args.extend(_like_prefix(p) for p in prefixes)
    if level is not None:
        where.append("level = %s")
        args.append(level)
    if since is not None:
        where.append("ts >= %s")
        args.append(since)
    if until is not None:
        where.append("ts < %s")
        args.append(until)
    if before is not None:
        where.append("(ts < %s OR (ts = %s AND id < %s))")
        args.extend([before[0], before[0], before[1]])
    sql = f"SELECT {_LOG_COLUMNS} FROM logs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC LIMIT %s"
    args.append(limit + 1)
    return sql, args


@dataclass(frozen=True)
class RejectedEntry:
    """A message or entry set aside instead of stored, with why."""

    message_id: str
    entry_index: int  # -1 for the whole message
    log_id: str | None
    reason: str
    body: str


@dataclass
class InsertOutcome:
    """What inserting a batch's rows did: rows new to MySQL, rows MySQL rejected (with why, to set
    aside), and rows it failed on for another reason (their messages go back to SQS alone)."""

    inserted: int
    rejected: list[tuple[LogRecord, str]]
    failed: list[tuple[LogRecord, str]]


def insert_log_rows(
    conn: Connection, records: Sequence[LogRecord], chunk_rows: int, max_statement_bytes: int
) -> InsertOutcome:
    """Insert records as multi-row statements of up to `chunk_rows` rows and `max_statement_bytes`.

    Only the records whose ids this transaction claims (chalicelib/logids.py) are inserted: an id
    stored before, or twice in the batch, is a duplicate (the first occurrence wins); the ids of
    rows not stored are given back. A statement that fails for one row's sake is split in halves
    until the bad rows are alone; InnoDB rolls back only the failed statement, so the transaction
    stays usable. A row-level
    error (ROW_REJECTED_ERRNOS) rejects the row; another error that is not an outage fails the row
    alone. An outage, a deadlock or a timeout (is_transient) propagates: the caller rolls back
    and tries the whole batch again.
    """
    first: dict[str, LogRecord] = {}
    for record in records:
        first.setdefault(str(record.id), record)
    claim = claim_ids(conn, list(first))
    escape = conn.escape
    rows = [(r, _row_values(escape, r)) for log_id, r in first.items() if log_id in claim.fresh]
    outcome = InsertOutcome(0, [], [])
    limit = max_statement_bytes - len(_LOG_INSERT_PREFIX) - len(_LOG_INSERT_SUFFIX)
    chunk: list[tuple[LogRecord, str]] = []
    size = 0
    for record, values in rows:
        row_bytes = len(values.encode()) + 1
        if row_bytes > limit:
            outcome.rejected.append((record, "the row is larger than MySQL's max_allowed_packet"))
            continue
        if chunk and (len(chunk) == chunk_rows or size + row_bytes > limit):
            _insert_splitting(conn, chunk, outcome)
            chunk, size = [], 0
        chunk.append((record, values))
        size += row_bytes
    if chunk:
        _insert_splitting(conn, chunk, outcome)
    not_stored = [str(r.id) for r, _ in outcome.rejected + outcome.failed]
    if not_stored:
        release_ids(conn, claim, not_stored)
    return outcome


def _insert_splitting(conn: Connection, rows: Sequence[tuple[LogRecord, str]], outcome: InsertOutcome) -> None:
    try:
        with conn.cursor() as cur:
            inserted = cur.execute(_LOG_INSERT_PREFIX + ",".join(v for _, v in rows) + _LOG_INSERT_SUFFIX)
        outcome.inserted += inserted
        return
    except pymysql.err.MySQLError as exc:
        if is_transient(exc):
            raise
        if len(rows) == 1:
            errno = exc.args[0] if exc.args else None
            detail = exc.args[1] if len(exc.args) > 1 else str(exc)
            if errno in ROW_REJECTED_ERRNOS:
                outcome.rejected.append((rows[0][0], f"MySQL rejected the row: ({errno}) {detail}"))
            else:
                outcome.failed.append((rows[0][0], f"MySQL failed on the row: ({errno}) {detail}"))
            return
    middle = len(rows) // 2
    _insert_splitting(conn, rows[:middle], outcome)
    _insert_splitting(conn, rows[middle:], outcome)


def _row_values(escape: Callable[[Any], str], r: LogRecord) -> str:
    # The VALUES tuple is built here rather than by PyMySQL's generic per-argument escaping, which
    # on this path cost about as much as the server's insert. conn.escape quotes a string and
    # honours the session's NO_BACKSLASH_ESCAPES; ids are UUIDs, levels an enum, times formatted.
    return (
        f"('{r.id}','{r.level}',{escape(r.source)},{escape(r.message)},{_datetime_literal(r.timestamp)},"
        f"{escape(json.dumps(r.attributes, separators=(',', ':'), ensure_ascii=False))},"
        f"{_datetime_literal(r.received_at)},UTC_TIMESTAMP(6))"
    )


def max_statement_bytes(conn: Connection) -> int:
    """The largest statement this server takes: its max_allowed_packet, less room for the protocol."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:  # a tuple, whatever the connection's cursor class
        cur.execute("SELECT @@max_allowed_packet")
        row = cur.fetchone()
    assert row is not None
    return int(row[0]) - _PACKET_MARGIN_BYTES


def _datetime_literal(value: datetime) -> str:
    """A DATETIME(6) literal of an aware (UTC) or naive UTC datetime."""
    return "'" + value.replace(tzinfo=None).isoformat(" ", "microseconds") + "'"


def insert_rejects(conn: Connection, rejects: Sequence[RejectedEntry]) -> None:
    """Record set-aside messages and entries; a redelivery records each once.

    Every value is made to fit its column first: a reject is the place of last resort for what
    did not fit elsewhere, so it must never fail on the same data.
    """
    if not rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
            " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"
            " ON DUPLICATE KEY UPDATE reason = VALUES(reason)",
            [_fitting_reject(r) for r in rejects],
        )


def _fitting_reject(r: RejectedEntry) -> tuple[str, int, str | None, str, str]:
    message_id = r.message_id.encode("ascii", "replace").decode()[:_REJECT_MESSAGE_ID_CHARS]
    log_id = r.log_id if r.log_id and len(r.log_id) == 36 and r.log_id.isascii() else None
    entry_index = max(-1, min(r.entry_index, 2**31 - 1))
    return message_id, entry_index, log_id, r.reason[:_REJECT_REASON_CHARS], r.body[:_REJECT_BODY_CHARS]


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix` (whose _ and % are literal)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _one(cur: Any) -> dict[str, Any] | None:
    return cast(dict[str, Any] | None, cur.fetchone())


def _all(cur: Any) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], cur.fetchall())


def _item_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "attributes": json.loads(row["attributes"]),
        "version": int(row["version"]),
        "updated_at": format_rfc3339(row["updated_at"]),
    }


def _log_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "level": row["level"],
        "source": row["source"],
        "message": row["message"],
        "timestamp": format_rfc3339(row["ts"]),
        "attributes": json.loads(row["attributes"]),
        "received_at": format_rfc3339(row["received_at"]),
        "stored_at": format_rfc3339(row["stored_at"]),
    }
