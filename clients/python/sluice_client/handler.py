"""A logging handler that ships records to sluice and never blocks the thread that logs.

`emit` only takes what the record says now (its message formatted, the exception's text, its
`extra` values, read later as the standard library's QueueHandler keeps them) and puts it on a
bounded queue in memory: when the queue is full the oldest is
dropped (and counted), never the caller made to wait. A background thread makes the entries and
sends batches to POST /logs/batch, gzip-compressed, when one is full (count or bytes) or its oldest
record is old enough; between entries it lets the logging threads run (the GIL), so a send costs
them little. Each entry carries an id made before its first send, so a batch sent
again after a timeout or a 503 is stored once. 429 and 503 are retried after their Retry-After,
other failures to reach sluice after an exponential backoff with jitter; a batch sluice refuses
for its content (a 4xx other than 429) is not sent again: the entries it names are dropped with a
warning, and the rest are sent. `flush(timeout)` and `close()` drain the queue; an `atexit` hook
flushes; after `fork()` the child starts with an empty queue and a thread of its own.
"""

import atexit
import json
import logging
import math
import os
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sluice_client.client import Client, SluiceError, new_id

MESSAGE_MAX_CHARS = 8192  # sluice refuses a longer message
ATTRIBUTES_MAX_BYTES = 8 * 1024  # and larger attributes (as JSON)
BATCH_MAX_ENTRIES = 500  # and a larger batch
_BATCH_WRAPPER_BYTES = len('{"logs":[]}')  # a batch's JSON besides its entries (and a comma each)
_YIELD_EVERY = 2  # entries the sender makes between two chances it gives the logging threads
_ENTRY_OVERHEAD_BYTES = (
    200  # an entry's JSON beyond its message and extra values, as a queued record's size is estimated
)
# The attributes of every LogRecord: what is left in a record's __dict__ came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class BatchSender(Protocol):
    """What the handler sends with: a `Client`, or anything that sends a batch the same way."""

    def send_batch(self, entries: Sequence[Mapping[str, Any]]) -> list[str]: ...


class SluiceHandler(logging.Handler):
    """Ship log records to sluice as entries of `source`, in batches, from a background thread.

    Defaults: a queue of 10,000 entries; a batch leaves at 500 entries, 512 KiB of JSON, or when
    its oldest entry is 1 s old; requests time out after 5 s; backoff from 0.5 s to 30 s.
    """

    def __init__(
        self,
        url: str,
        token: str,
        source: str,
        *,
        level: int = logging.NOTSET,
        queue_size: int = 10_000,
        batch_entries: int = BATCH_MAX_ENTRIES,
        batch_bytes: int = 512 * 1024,
        max_age_s: float = 1.0,
        timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        client: BatchSender | None = None,
    ) -> None:
        super().__init__(level)
        self.source = source
        self._client: BatchSender = client or Client(url, token, timeout_s)
        self._queue_size = queue_size
        self._batch_entries = min(batch_entries, BATCH_MAX_ENTRIES)
        self._batch_bytes = batch_bytes
        self._max_age_s = max_age_s
        self._backoff_s = backoff_s
        self.dropped = 0  # entries dropped: the queue full, or refused by sluice for their content
        self._start()
        handler = weakref.ref(self)
        atexit.register(_flush_at_exit, handler)
        os.register_at_fork(after_in_child=lambda: _start_in_child(handler))

    def _start(self) -> None:
        """A new queue and no thread yet (also in a forked child: the parent's thread is not there)."""
        self._queue: deque[_Taken] = deque()
        self._queued_bytes = 0  # as estimated when queued (the sender measures the entries it makes)
        self._changed = threading.Condition()
        self._sending = 0  # entries taken from the queue and not yet stored or dropped
        self._flushers = 0  # callers waiting in flush(): send what is queued, however young
        self._stopping = False
        self._thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Queue what the record says; no I/O, no encoding, and never a wait for sluice."""
        try:
            taken = _Taken.of(record, self.formatter)
        except Exception:
            self.handleError(record)
            return
        with self._changed:
            if self._stopping:
                return
            if len(self._queue) >= self._queue_size:
                self._queued_bytes -= self._queue.popleft().size
                self.dropped += 1
            self._queue.append(taken)
            self._queued_bytes += taken.size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sluice-handler", daemon=True)
                self._thread.start()
            # Wake the sender only when it has something new to do: time the first record, or send a full batch.
            full = len(self._queue) >= self._batch_entries or self._queued_bytes >= self._batch_bytes
            if full or len(self._queue) == 1:
                self._changed.notify_all()

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """The sluice entry of a log record: level, the handler's source, message, time, and as
        attributes the logger's name, the exception's text and every `extra` field."""
        return self._entry(_Taken.of(record, self.formatter))

    def _entry(self, taken: "_Taken") -> dict[str, Any]:
        attributes: dict[str, Any] = {"logger": taken.logger, **taken.extra}
        if taken.exception:
            attributes["exception"] = taken.exception
        return {
            "id": new_id(int(taken.created * 1000)),
            "level": _level(taken.levelno),
            "source": self.source,
            "message": (taken.message or "(empty)")[:MESSAGE_MAX_CHARS],
            "timestamp": datetime.fromtimestamp(taken.created, UTC).isoformat(),
            "attributes": _fitting(attributes),
        }

    def flush(self, timeout: float | None = 10.0) -> None:
        """Send what is queued now, however young, and wait until it is stored or dropped (at most
        `timeout` s; `pending` then says what is left)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._flushers += 1
            self._changed.notify_all()
            try:
                while self.pending:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self._changed.wait(left)
            finally:
                self._flushers -= 1

    @property
    def pending(self) -> int:
        """Entries queued or being sent, not yet stored or dropped."""
        return len(self._queue) + self._sending

    def close(self) -> None:
        """Flush (10 s at most), then stop the thread."""
        self.flush(10.0)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        super().close()

    def _run(self) -> None:
        while True:
            taken = self._next_batch()
            if taken is None:
                return
            try:
                for part in self._parts(self._entries(taken)):
                    self._deliver(part)
            except Exception as error:  # a defect here must not stop the thread: the rest still goes out
                self._drop_count(len(taken), f"could not send them: {error!r}")
            finally:
                with self._changed:
                    self._sending -= len(taken)
                    self._changed.notify_all()

    def _entries(self, taken: list["_Taken"]) -> list[dict[str, Any]]:
        """The records' entries; a record whose `extra` values cannot be read is dropped (and counted)."""
        entries = []
        for n, item in enumerate(taken):
            try:
                entries.append(self._entry(item))
            except Exception as error:  # a value whose str() raises, a list holding itself, ...
                self._drop_count(1, f"could not make an entry of a record: {error!r}")
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                time.sleep(0)  # let a logging thread take the GIL now, not after the switch interval
        return entries

    def _parts(self, entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The entries in batches of at most `batch_bytes` of JSON each (a queued record's size was an estimate)."""
        parts: list[list[dict[str, Any]]] = [[]]
        size = _BATCH_WRAPPER_BYTES
        for n, entry in enumerate(entries):
            entry_size = len(json.dumps(entry, separators=(",", ":"), default=str)) + 1
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                time.sleep(0)
            if parts[-1] and size + entry_size > self._batch_bytes:
                parts.append([])
                size = _BATCH_WRAPPER_BYTES
            parts[-1].append(entry)
            size += entry_size
        return [part for part in parts if part]

    def _next_batch(self) -> list["_Taken"] | None:
        """Wait until a batch is due and take it off the queue (None once stopping with nothing left)."""
        with self._changed:
            while True:
                if self._queue:
                    due_at = self._queue[0].queued_at + self._max_age_s
                    full = len(self._queue) >= self._batch_entries or self._queued_bytes >= self._batch_bytes
                    if full or self._flushers or self._stopping or time.monotonic() >= due_at:
                        break
                    self._changed.wait(max(0.0, due_at - time.monotonic()))
                elif self._stopping:
                    return None
                else:
                    self._changed.wait()
            taken: list[_Taken] = []
            size = 0
            while self._queue and len(taken) < self._batch_entries:
                if taken and size + self._queue[0].size > self._batch_bytes:
                    break
                item = self._queue.popleft()
                self._queued_bytes -= item.size
                taken.append(item)
                size += item.size
            self._sending += len(taken)
        return taken

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Send the batch until sluice stores it or refuses it for its content."""
        failures = 0
        pending = [batch]
        while pending:
            part = pending.pop()
            try:
                self._client.send_batch(part)
                failures = 0
            except SluiceError as error:
                if error.retryable:
                    if self._stopping and failures >= 3:
                        self._drop(part, f"sluice still failing while closing: {error}")
                        continue
                    failures += 1
                    pending.append(part)  # the same entries, with the same ids
                    self._wait(error.retry_after_s or self._backoff(failures))
                elif error.status == 413 and len(part) > 1:  # larger than the key's burst, or the body cap
                    middle = len(part) // 2
                    pending += [part[middle:], part[:middle]]
                else:
                    refused = {d["index"] for d in error.details if isinstance(d.get("index"), int)}
                    if refused and len(refused) < len(part):
                        self._drop([e for i, e in enumerate(part) if i in refused], str(error))
                        pending.append([e for i, e in enumerate(part) if i not in refused])
                    else:
                        self._drop(part, str(error))

    def _backoff(self, failures: int) -> float:
        """Exponential, with full jitter, within the handler's bounds."""
        first, most = self._backoff_s
        return random.uniform(first, min(most, first * 2 ** (failures - 1)))

    def _wait(self, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._stopping, timeout=seconds)

    def _drop(self, entries: list[dict[str, Any]], why: str) -> None:
        self._drop_count(len(entries), why)

    def _drop_count(self, count: int, why: str) -> None:
        with self._changed:
            self.dropped += count
        # Not through logging: this handler may be the one that would receive it.
        print(f"sluice_client: dropped {count} log entries: {why}", file=sys.stderr)


class _Taken:
    """What a record said when it was logged: its formatted message, its exception as text, and its
    `extra` values, which are read when the batch is made (as the standard library's QueueHandler
    keeps them): a value the app changes after the call may be sent as changed."""

    __slots__ = ("created", "exception", "extra", "levelno", "logger", "message", "queued_at", "size")

    def __init__(
        self, created: float, levelno: int, logger: str, message: str, extra: dict[str, Any], exception: str
    ) -> None:
        self.created = created
        self.levelno = levelno
        self.logger = logger
        self.message = message
        self.extra = extra
        self.exception = exception
        self.queued_at = time.monotonic()
        self.size = _ENTRY_OVERHEAD_BYTES + len(message) + len(exception) + 16 * len(extra)

    @classmethod
    def of(cls, record: logging.LogRecord, formatter: logging.Formatter | None) -> "_Taken":
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        exception = (formatter or logging.Formatter()).formatException(record.exc_info) if record.exc_info else ""
        return cls(record.created, record.levelno, record.name, record.getMessage(), extra, exception)


def _level(levelno: int) -> str:
    for threshold, name in ((logging.CRITICAL, "critical"), (logging.ERROR, "error"), (logging.WARNING, "warning")):
        if levelno >= threshold:
            return name
    return "info" if levelno >= logging.INFO else "debug"


def _fitting(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as JSON within sluice's limit: values that are not JSON become text, and the
    longest ones are cut until the whole fits."""
    fitted: dict[str, Any] = _jsonable(attributes)
    while len(json.dumps(fitted, separators=(",", ":"), ensure_ascii=False).encode()) > ATTRIBUTES_MAX_BYTES:
        longest = max(fitted, key=lambda k: len(json.dumps(fitted[k], ensure_ascii=False)))
        text = json.dumps(fitted[longest], ensure_ascii=False)
        fitted[longest] = text[: len(text) // 2] + "...(cut)"
    return fitted


def _jsonable(value: Any) -> Any:
    """`value` as strict JSON can carry it: text for what JSON has no type for (NaN and infinities too)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)


def _start_in_child(handler: "weakref.ref[SluiceHandler]") -> None:
    alive = handler()
    if alive is not None:
        alive._start()


def _flush_at_exit(handler: "weakref.ref[SluiceHandler]") -> None:
    alive = handler()
    if alive is not None:
        alive.flush(5.0)
