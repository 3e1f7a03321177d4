"""Looking at MySQL from outside the code under test: a server-wide setting changed for one test
and always put back, the connections an account holds (the server's process list), and the
statements an account's connections sent (recorded on the client, so no other client counts)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pytest

from tools.admin import global_variables


@contextmanager
def global_variable(conn: Any, name: str, value: int) -> Iterator[int]:
    """SET GLOBAL `name` = `value` for the block; its old value is put back however the block ends."""
    with global_variables(conn, {name: value}) as before:
        yield before[name]


def connections_of(conn: Any, user: str) -> int:
    """How many connections the server holds for `user` now (information_schema.PROCESSLIST)."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
        return int(cur.fetchone()[0])


class PeakConnections:
    """Samples the server's process list for one account in a thread, from start() to stop(),
    and keeps the most connections it saw at once."""

    def __init__(self, conn: Any, user: str) -> None:
        self.peak = 0
        self.samples = 0
        self._conn = conn
        self._user = user
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, connections_of(self._conn, self._user))
            self.samples += 1

    def __enter__(self) -> "PeakConnections":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Statements:
    """The statements the connections of one MySQL account send while installed (monkeypatch):
    each pymysql connection of that user records its queries; every other connection is left alone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, user: str) -> None:
        self.sent: list[str] = []
        real_query = pymysql.connections.Connection.query
        recorded = self.sent
        names = {user, user.encode()}  # pymysql keeps the name as bytes once it has logged in

        def query(conn: pymysql.connections.Connection, sql: Any, unbuffered: bool = False) -> int:
            if conn.user in names:
                recorded.append(sql.decode(errors="replace") if isinstance(sql, bytes) else str(sql))
            return int(real_query(conn, sql, unbuffered))

        monkeypatch.setattr(pymysql.connections.Connection, "query", query)

    def selects(self) -> list[str]:
        """The SELECT statements among them."""
        return [s for s in self.sent if s.lstrip().upper().startswith("SELECT")]
