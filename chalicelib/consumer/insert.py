"""The consumer's insert: log rows as multi-row statements within max_allowed_packet, each id
claimed once (consumer/logids.py), a failing statement split until its bad rows stand alone."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.consumer.logids import claim_ids, release_ids
from chalicelib.logs.model import LogRecord
from chalicelib.mysql.errors import ROW_REJECTED_ERRNOS, is_transient

_LOG_INSERT_PREFIX = (
    "INSERT INTO logs (id, level, source, message, ts, attributes, received_at, stored_at, key_id) VALUES "
)
# A duplicate id (a redelivered message, a client's retry) changes nothing. Unlike INSERT IGNORE,
# this still raises every other error, so a row MySQL rejects is found, not silently mangled.
_LOG_INSERT_SUFFIX = " ON DUPLICATE KEY UPDATE id = id"
_PACKET_MARGIN_BYTES = 1024


@dataclass
class InsertOutcome:
    """What inserting a batch's rows did: rows new to MySQL, rows MySQL rejected (with why, to set
    aside), and rows it failed on for another reason (their messages go back to SQS alone); the
    records stored, and the transaction's claim number (log_ids.claim)."""

    inserted: int
    rejected: list[tuple[LogRecord, str]]
    failed: list[tuple[LogRecord, str]]
    stored: list[LogRecord] = field(default_factory=list)
    claim: int = 0


def insert_log_rows(
    conn: Connection, records: Sequence[LogRecord], chunk_rows: int, max_statement_bytes: int
) -> InsertOutcome:
    """Insert records as multi-row statements of up to `chunk_rows` rows and `max_statement_bytes`.

    Only the records whose ids this transaction claims (consumer/logids.py) are inserted: an id
    stored before, or twice in the batch, by the same source is a duplicate (the first occurrence
    wins); by another source, the entry is rejected with why. The ids of rows not stored are given
    back. A statement that fails for one row's sake is split in halves until the bad rows are alone;
    InnoDB rolls back only the failed statement, so the transaction stays usable. A row-level
    error (ROW_REJECTED_ERRNOS) rejects the row; another error that is not an outage fails the row
    alone. An outage, a deadlock or a timeout (is_transient) propagates: the caller rolls back
    and tries the whole batch again.
    """
    firsts: dict[tuple[str, str], LogRecord] = {}  # (id, source) -> its first record in the batch
    candidate: dict[str, str] = {}  # id -> the source of its first record: the one that claims it
    for record in records:
        firsts.setdefault((str(record.id), record.source), record)
        candidate.setdefault(str(record.id), record.source)
    claim = claim_ids(conn, candidate)
    to_store: list[LogRecord] = []
    clashes: list[tuple[LogRecord, str]] = []  # another source has the id: set aside, its claim not ours
    for (log_id, source), record in firsts.items():
        owner = candidate[log_id] if log_id in claim.fresh else claim.owners.get(log_id)
        if owner is not None and owner != source:
            clashes.append((record, _elsewhere(owner)))
        elif log_id in claim.fresh:
            to_store.append(record)
    outcome = InsertOutcome(0, [], [], claim=claim.number)
    escape = conn.escape
    rows = [(r, _row_values(escape, r)) for r in to_store]
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
    unstored = set(not_stored)
    outcome.stored = [r for r in to_store if str(r.id) not in unstored]
    outcome.rejected += clashes
    return outcome


def _elsewhere(source: str) -> str:
    """Why an entry is set aside when its id is another source's."""
    return f"the id is already another source's ({source!r}): ids are unique within a source; send it with a new id"


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
        f"{_datetime_literal(r.received_at)},UTC_TIMESTAMP(6),{escape(r.key_id)})"
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
