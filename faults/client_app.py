"""An app that logs through sluice's Python client (clients/python: SluiceHandler) while a fault
happens: a thread logs a set number of records, spread evenly over a time, each with a unique
marker as its message, and keeps how long every `emit` took (what the app itself pays)."""

import logging
import threading
import time
import uuid

from sluice_client import SluiceHandler

SOURCE = "client-app"
FLUSH_TIMEOUT_S = 120.0  # the handler's queue sent and answered, after the fault (its retries back off to 30 s)


class LoggingApp:
    """`records` records logged over `duration_s`, from one thread, through one SluiceHandler."""

    def __init__(self, base_url: str, key: str, records: int, duration_s: float) -> None:
        self.handler = SluiceHandler(base_url, key, SOURCE)
        self.log = logging.getLogger(f"faults.client_app.{uuid.uuid4().hex[:8]}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(self.handler)
        self.records = records
        self.duration_s = duration_s
        self.markers: list[str] = []
        self.emit_ns: list[int] = []
        self._run = uuid.uuid4().hex[:8]
        self._thread = threading.Thread(target=self._log_all, name="client-app", daemon=True)

    def start(self) -> "LoggingApp":
        self._thread.start()
        return self

    def logged_so_far(self) -> set[str]:
        """The markers logged until now."""
        return set(self.markers.copy())

    def finish(self) -> None:
        """Wait for the last record, then flush the handler and close it."""
        self._thread.join(self.duration_s + 60)
        self.handler.flush(FLUSH_TIMEOUT_S)
        self.log.removeHandler(self.handler)
        self.handler.close()

    def _log_all(self) -> None:
        started = time.monotonic()
        for i in range(self.records):
            due = started + i * self.duration_s / self.records
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            marker = f"client {self._run} {i}"
            before = time.perf_counter_ns()
            self.log.info(marker, extra={"n": i})
            self.emit_ns.append(time.perf_counter_ns() - before)
            self.markers.append(marker)


def emit_summary(emit_ns: list[int]) -> str:
    """p50, p99 and the slowest `emit`, in microseconds."""
    if not emit_ns:
        return "no records"
    ordered = sorted(emit_ns)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] / 1000

    return f"p50 {at(50):.0f} µs, p99 {at(99):.0f} µs, max {ordered[-1] / 1000:.0f} µs over {len(ordered)} records"
