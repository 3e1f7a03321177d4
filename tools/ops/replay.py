"""Set-aside entries back into the pipeline once their cause is fixed (`make replay-rejects`).

`log_rejects` keeps each refused entry's body: one entry (entry_index 0 and up) or a whole message
that could not be read (-1). A replay sends every row not replayed yet back to the log queue (an
entry as the API would queue it, a whole message as it came), then marks it `replayed_at`, so
the next run skips it. An entry this code's model still refuses is not sent: it is counted, with
its reason, and stays for a later replay. Sent, then marked: a run cut short between the two
sends those rows again next time, and the consumer stores each id once (chalicelib/consumer/logids.py).
What MySQL refuses again is set aside again, as a new row.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic
import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.logs.model import LogRecord
from chalicelib.logs.queue import LogQueue

CHUNK_ROWS = 500  # rows sent, then marked, at a time


@dataclass
class ReplayReport:
    dry_run: bool
    candidates: int = 0  # rows not replayed yet (within the filter)
    sent: int = 0  # rows sent back to the queue (dry run: that would be)
    still_invalid: int = 0  # entries this code's model still refuses: not sent
    reasons: dict[str, int] = field(default_factory=dict)  # why, for those

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def count_invalid(self, reason: str) -> None:
        self.still_invalid += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True)
class _Row:
    message_id: str
    entry_index: int
    body: str


NO_KEY = "names no key (replay it with --key-id KEY_ID, the key that wrote it, if you know it)"


class RejectReplay:
    """Replays `log_rejects` rows with an administrator's connection, through the stage's LogQueue.

    An entry that names no key (queued by a version before entries named their key, or put on the
    queue past the API) is sent only with `key_id`: the operator's word for the key that wrote it.
    """

    def __init__(self, conn: Connection, queue: LogQueue, key_id: str | None = None) -> None:
        self._conn = conn
        self._queue = queue
        self._key_id = key_id

    def run(self, *, dry_run: bool, since: datetime | None = None, limit: int | None = None) -> ReplayReport:
        """Send back the rows not replayed yet (rejected at or after `since`; at most `limit`)."""
        report = ReplayReport(dry_run)
        after: tuple[str, int] | None = None
        while limit is None or report.candidates < limit:
            rows = self._next(after, since, CHUNK_ROWS if limit is None else min(CHUNK_ROWS, limit - report.candidates))
            if not rows:
                break
            after = (rows[-1].message_id, rows[-1].entry_index)
            report.candidates += len(rows)
            records: list[LogRecord] = []
            bodies: list[str] = []
            sendable: list[_Row] = []
            for row in rows:
                if row.entry_index < 0:
                    bodies.append(row.body)
                    sendable.append(row)
                    continue
                try:
                    record = LogRecord.model_validate(self._attributed(json.loads(row.body)))
                except (ValueError, pydantic.ValidationError) as exc:
                    report.count_invalid(_reason(exc))
                    continue
                if record.key_id is None:
                    report.count_invalid(NO_KEY)
                    continue
                records.append(record)
                sendable.append(row)
            report.sent += len(sendable)
            if dry_run or not sendable:
                continue
            if records:
                self._queue.send(records)
            if bodies:
                self._queue.send_bodies(bodies)
            self._mark(sendable)
        return report

    def _attributed(self, entry: Any) -> Any:
        """The entry, naming the operator's key if it names none and one was given."""
        if self._key_id and isinstance(entry, dict) and entry.get("key_id") is None:
            return {**entry, "key_id": self._key_id}
        return entry

    def _next(self, after: tuple[str, int] | None, since: datetime | None, count: int) -> list[_Row]:
        where: list[str] = ["replayed_at IS NULL"]
        args: list[Any] = []
        if since is not None:
            where.append("rejected_at >= %s")
            args.append(since)
        if after is not None:
            where.append("(message_id, entry_index) > (%s, %s)")
            args.extend(after)
        with self._conn.cursor(pymysql.cursors.Cursor) as cur:
            cur.execute(
                f"SELECT message_id, entry_index, body FROM log_rejects WHERE {' AND '.join(where)}"
                " ORDER BY message_id, entry_index LIMIT %s",
                (*args, count),
            )
            return [_Row(str(m), int(i), str(b)) for m, i, b in cur.fetchall()]

    def _mark(self, rows: list[_Row]) -> None:
        with self._conn.cursor(pymysql.cursors.Cursor) as cur:
            cur.executemany(
                "UPDATE log_rejects SET replayed_at = UTC_TIMESTAMP(6) WHERE message_id = %s AND entry_index = %s",
                [(r.message_id, r.entry_index) for r in rows],
            )
        self._conn.commit()


def _reason(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
    return f"not JSON: {exc}"
