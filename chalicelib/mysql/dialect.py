"""What sluice says differently to MariaDB and to MySQL 8: a session's time caps, and how an
upsert names the row it inserts.

The server is told apart by the version it gives at the handshake, which every connection has
without a round trip: `10.11.6-MariaDB-0+deb12u1` (or `5.5.5-10.11.6-MariaDB...`), `8.0.36`.

Time caps, per session:
- MariaDB: `max_statement_time` stops any statement (reads, writes, DDL) after the cap.
- MySQL 8: `max_execution_time` stops only a read-only SELECT. A write or DDL statement is held
  instead by `innodb_lock_wait_timeout` (a wait for a row lock) and `lock_wait_timeout` (a wait for
  a table's metadata lock), and by the client's read timeout, after which the connection is
  dropped (the server may finish the statement, then rolls back the transaction).
Both servers get the two lock waits, in whole seconds.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

ROW_ALIAS_SINCE = (8, 0, 19)  # MySQL: INSERT ... VALUES (...) AS new; VALUES(col) is deprecated from 8.0.20
ROW_ALIAS = "new"
_MARIADB_PREFIX = "5.5.5-"  # MariaDB 10 announces itself as 5.5.5-<its version> to old clients
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Server:
    """A MySQL server's flavour and version."""

    mariadb: bool
    version: tuple[int, int, int]  # (0, 0, 0) when the server's text had none

    @property
    def row_alias(self) -> bool:
        """Whether an INSERT may name its row (`VALUES (...) AS new`): MySQL from 8.0.19, never MariaDB."""
        return not self.mariadb and self.version >= ROW_ALIAS_SINCE


@dataclass(frozen=True)
class TimeCaps:
    """How long the server lets one statement of a session run, and wait for a lock."""

    statement_s: float | None  # any statement on MariaDB, a SELECT on MySQL; None: no server cap
    lock_wait_s: float  # a wait for a row lock or a table's metadata lock; whole seconds, at least 1


@cache
def server_from_version(text: str) -> Server:
    """The server a version text names."""
    mariadb = "mariadb" in text.lower()
    if mariadb and text.startswith(_MARIADB_PREFIX):
        text = text[len(_MARIADB_PREFIX) :]
    found = _VERSION.match(text)
    version = (int(found[1]), int(found[2]), int(found[3])) if found else (0, 0, 0)
    return Server(mariadb, version)


def server_of(conn: Any) -> Server:
    """The server behind a PyMySQL connection, from its handshake."""
    return server_from_version(str(conn.get_server_info()))


def lock_wait_seconds(seconds: float) -> int:
    """A lock wait of `seconds` as the server takes it: whole seconds, rounded down, at least 1."""
    return max(1, math.floor(seconds))


def session_caps(server: Server, caps: TimeCaps) -> str:
    """The assignments of a SET SESSION that hold a session's statements to `caps` on `server`."""
    lock_s = lock_wait_seconds(caps.lock_wait_s)
    parts = [f"innodb_lock_wait_timeout = {lock_s}", f"lock_wait_timeout = {lock_s}"]
    if caps.statement_s:
        if server.mariadb:
            parts.append(f"max_statement_time = {caps.statement_s:g}")  # seconds, every statement
        else:
            parts.append(f"max_execution_time = {max(1, round(caps.statement_s * 1000))}")  # ms, SELECTs
    return ", ".join(parts)


def on_duplicate_key_update(server: Server, take_new: Sequence[str], also: Sequence[str] = ()) -> str:
    """What follows an INSERT's VALUES (...) so that a row whose key exists updates it instead.

    Each column of `take_new` takes the inserted row's value; each assignment of `also` is
    written as it is (its columns are the existing row's, as in `version = version + 1`). MySQL
    from 8.0.19 names the inserted row with an alias; MariaDB, which has none, with VALUES(col).
    """
    alias = f" AS {ROW_ALIAS}" if server.row_alias else ""
    new = [f"{column} = {inserted_value(server, column)}" for column in take_new]
    return f"{alias} ON DUPLICATE KEY UPDATE {', '.join([*new, *also])}"


def inserted_value(server: Server, column: str) -> str:
    """The inserted row's value of `column` in an ON DUPLICATE KEY UPDATE clause (for `also`)."""
    return f"{ROW_ALIAS}.{column}" if server.row_alias else f"VALUES({column})"
