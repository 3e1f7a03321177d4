"""What a MySQL (MariaDB) error number means: an outage or a limit (try again), a statement that ran
too long, a row the table cannot take, or a refusal a retry cannot fix."""

import pymysql

from chalicelib.errors import DatabaseError, DatabaseUnavailableError, QueryTimeoutError, SluiceError

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
DEADLOCK = 1213  # MySQL rolled this transaction back to break a deadlock: run it again
# Errors that mean "MySQL could not serve this now": a retry may work (503).
UNAVAILABLE_ERRNOS = frozenset(
    {
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        DEADLOCK,
        1927,  # connection killed
        2002,  # cannot connect (socket)
        2003,  # cannot connect
        2006,  # server has gone away
        2013,  # lost connection during query
    }
)
STATEMENT_TIMEOUT_ERRNOS = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time


def error_number(exc: pymysql.err.MySQLError) -> int | None:
    """The error's number, or None when the driver gave none."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def is_transient(exc: pymysql.err.MySQLError) -> bool:
    """Whether MySQL could not do it now, and the same work may succeed later: it cannot be reached,
    it went away, it is at its connection limit, or it gave up on a lock, a deadlock or a timeout."""
    errno = error_number(exc)
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
    errno = error_number(exc)
    if errno in STATEMENT_TIMEOUT_ERRNOS:
        return QueryTimeoutError("the query took longer than MYSQL_STATEMENT_TIMEOUT_S; try a narrower one")
    if is_transient(exc):
        return DatabaseUnavailableError("MySQL is unavailable")
    return DatabaseError(f"MySQL refused the statement (error {errno})")
