"""Samples MySQL (Threads_connected, rows inserted, SELECTs) ten times a second, and a queue's depth.

The sampler's own connection is one of the Threads_connected it reports.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tools.admin import admin_connection

# Handler_write counts rows written to tables (MariaDB counts internal temporary tables apart, in
# Handler_tmp_write, and has no Innodb_rows_inserted).
STATUS = ("Threads_connected", "Handler_write", "Com_select")


@dataclass
class Series:
    t: list[float] = field(default_factory=list)  # seconds since start()
    threads_connected: list[int] = field(default_factory=list)
    rows_inserted: list[int] = field(default_factory=list)  # cumulative, from start()
    depth_t: list[float] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)


class Sampler:
    def __init__(self, interval_s: float = 0.1, depth: Callable[[], int] | None = None, depth_interval_s: float = 0.5):
        self.interval_s = interval_s
        self._depth = depth
        self._depth_interval_s = depth_interval_s
        self.series = Series()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = 0.0

    def start(self) -> "Sampler":
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._sample_mysql, daemon=True)]
        if self._depth is not None:
            self._threads.append(threading.Thread(target=self._sample_depth, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Series:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        return self.series

    def now(self) -> float:
        return time.monotonic() - self.started

    def _sample_mysql(self) -> None:
        conn = admin_connection()
        base: int | None = None
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    tick = time.monotonic()
                    names = ",".join(f"'{name}'" for name in STATUS)
                    cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
                    values = {name: int(value) for name, value in cur.fetchall()}
                    base = values["Handler_write"] if base is None else base
                    self.series.t.append(tick - self.started)
                    self.series.threads_connected.append(values["Threads_connected"])
                    self.series.rows_inserted.append(values["Handler_write"] - base)
                    self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - tick)))
        finally:
            conn.close()

    def _sample_depth(self) -> None:
        assert self._depth is not None
        while not self._stop.is_set():
            tick = time.monotonic()
            try:
                depth = self._depth()
            except Exception:  # a sample lost is not worth failing the run
                depth = -1
            if depth >= 0:
                self.series.depth_t.append(tick - self.started)
                self.series.depth.append(depth)
            self._stop.wait(max(0.0, self._depth_interval_s - (time.monotonic() - tick)))


def mysql_status(name: str) -> int:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        row = cur.fetchone()
        return int(row[1]) if row else 0


def flush_status() -> None:
    """Reset Max_used_connections (to the connections open now) and the session counters."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("FLUSH STATUS")


def set_max_connections(value: int) -> int:
    """Set the server's max_connections; return the previous value."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        row = cur.fetchone()
        assert row is not None
        cur.execute(f"SET GLOBAL max_connections = {int(value)}")
        return int(row[0])
