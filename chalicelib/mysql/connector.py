"""MySQL (MariaDB): connections for one account, and the API's connections within its budget.

Error numbers and what they mean live in chalicelib/mysql/errors.py; the queries live with their
concept (items/store.py, logs/store.py, keys/store.py, consumer/insert.py).
"""

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, cast

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.config import MySQLSettings
from chalicelib.errors import BudgetExhaustedError, ConfigError
from chalicelib.mysql.dialect import TimeCaps, server_of, session_caps
from chalicelib.mysql.errors import CONNECTION_LIMIT_ERRNOS, ER_ACCESS_DENIED, mysql_error
from chalicelib.redis.slots import SlotPool
from chalicelib.secrets import Credentials, CredentialSource
from chalicelib.tls import verified_context

logger = logging.getLogger(__name__)


class MySQLConnector:
    """Opens connections for one MySQL user.

    With TLS the server is verified against MYSQL_CA_BUNDLE, host name included; the context is
    built once and reused. A refused password makes it read the credentials again, once (a
    rotated secret). `use_database=False` connects without selecting the stage's database (the
    migration creates it).

    Every statement is held to the settings' read_timeout_s by the client (PyMySQL's read and
    write timeouts; MYSQL_READ_TIMEOUT_S unless the caller replaced it). With `statement_timeout_s`
    the server stops a statement sooner (MariaDB: any; MySQL: a SELECT), and with `lock_wait_s` (by
    default `statement_timeout_s`) a statement's wait for a row or table lock ends sooner (both
    servers): chalicelib/mysql/dialect.py.
    """

    def __init__(
        self,
        settings: MySQLSettings,
        credentials: CredentialSource,
        *,
        use_database: bool = True,
        statement_timeout_s: float | None = None,
        lock_wait_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        lock_wait_s = lock_wait_s if lock_wait_s is not None else statement_timeout_s
        self._caps = TimeCaps(statement_timeout_s, lock_wait_s) if lock_wait_s is not None else None
        self._caps_sql: str | None = None  # learnt from the first connection's server
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
        if self._caps_sql:
            session += f", {self._caps_sql}"
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
        if self._caps and not self._caps_sql:
            self._caps_sql = session_caps(server_of(conn), self._caps)
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION {self._caps_sql}")
        return conn


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

    @property
    def slots(self) -> SlotPool | None:
        """The read slots this database's connections are held within (None: no budget)."""
        return self._slots

    @property
    def connector(self) -> MySQLConnector:
        """What opens this database's connections."""
        return self._connector


def one_row(cur: Any) -> dict[str, Any] | None:
    """The cursor's next row as a dict, or None."""
    return cast(dict[str, Any] | None, cur.fetchone())


def all_rows(cur: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as dicts."""
    return cast(list[dict[str, Any]], cur.fetchall())
