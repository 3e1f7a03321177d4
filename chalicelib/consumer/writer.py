"""The consumer's work: store an SQS batch of log messages in MySQL, on one connection, in one transaction."""

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic
import pymysql

from chalicelib.consumer.commit_order import take_commit_number
from chalicelib.consumer.counts import add_counts
from chalicelib.consumer.insert import InsertOutcome, insert_log_rows, max_statement_bytes
from chalicelib.consumer.rejects import RejectedEntry, insert_rejects
from chalicelib.logs.model import LogRecord
from chalicelib.logs.packing import unpack_message
from chalicelib.mysql.connector import MySQLConnector, connect_within
from chalicelib.mysql.errors import mysql_error

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    """What one batch did: rows new to MySQL, entries already stored, entries set aside, and the
    messages that could not be stored now (to go back to SQS alone)."""

    stored: int
    duplicates: int
    rejected: int
    failed_messages: tuple[str, ...] = ()
    insert_ms: float = 0.0  # the transaction, from connect to commit
    lag_ms: float | None = None  # at commit, since the batch's oldest entry was received (when it stored any)

    def to_dict(self) -> dict[str, int]:
        return {"stored": self.stored, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(frozen=True)
class _Decoded:
    records: list[LogRecord]
    origin: dict[tuple[str, str], tuple[str, int]]  # (log id, source) -> (message id, entry index) where it first came
    carriers: dict[tuple[str, str], set[str]]  # (log id, source) -> every message id that carries it
    rejects: list[RejectedEntry]


def decode_batch(messages: Sequence[Mapping[str, Any]], *, keys_required: bool = True) -> _Decoded:
    """Validate every entry of every SQS record; what fails is set aside, never raised. Where keys
    are required, an entry must name the key that wrote it (a forged message names none)."""
    records: list[LogRecord] = []
    origin: dict[tuple[str, str], tuple[str, int]] = {}
    carriers: dict[tuple[str, str], set[str]] = {}
    rejects: list[RejectedEntry] = []
    for message in messages:
        message_id = str(message.get("messageId", ""))
        body = str(message.get("body", ""))
        try:
            entries = unpack_message(body)
        except ValueError as exc:
            rejects.append(RejectedEntry(message_id, -1, None, str(exc), body))
            continue
        except Exception as exc:  # one message's surprise must not fail the others
            logger.exception("could not decode message %s", message_id)
            rejects.append(
                RejectedEntry(message_id, -1, None, f"could not decode the message ({type(exc).__name__})", body)
            )
            continue
        for index, entry in enumerate(entries):
            try:
                record = LogRecord.model_validate(entry)
            except pydantic.ValidationError as exc:
                reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
                log_id = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else None
                rejects.append(RejectedEntry(message_id, index, log_id, f"invalid entry: {reason}", json.dumps(entry)))
                continue
            if record.key_id is None and keys_required:
                reason = "no key id: not queued by this API (which names the key of every entry it queues)"
                rejects.append(RejectedEntry(message_id, index, str(record.id), reason, json.dumps(entry)))
                continue
            records.append(record)
            origin.setdefault((str(record.id), record.source), (message_id, index))
            carriers.setdefault((str(record.id), record.source), set()).add(message_id)
    return _Decoded(records, origin, carriers, rejects)


class LogWriter:
    """Writes batches with the writer's MySQL user; one connection per invocation, closed after.

    Keeping no connection between invocations is what makes the writer's budget hard: an idle
    or frozen Lambda environment holds nothing, so at most W connections exist at once.
    """

    def __init__(
        self, connector: MySQLConnector, chunk_rows: int, connect_wait_s: float, *, keys_required: bool = True
    ) -> None:
        self._connector = connector
        self._chunk_rows = chunk_rows
        self._connect_wait_s = connect_wait_s
        self._keys_required = keys_required

    @property
    def connector(self) -> MySQLConnector:
        """What opens the writer's connections."""
        return self._connector

    def write(self, messages: Sequence[Mapping[str, Any]]) -> WriteResult:
        """Store every valid entry and set aside the rest, in one transaction.

        Raises DependencyUnavailableError when MySQL cannot do it now (nothing is then stored), and
        other SluiceErrors for what a retry cannot fix. A row MySQL fails on for another reason
        fails its message alone (`failed_messages`); the rest of the batch is stored.
        """
        decoded = decode_batch(messages, keys_required=self._keys_required)
        rejects = list(decoded.rejects)
        inserted = 0
        failed: list[tuple[LogRecord, str]] = []
        started = time.monotonic()
        lag_ms: float | None = None
        if decoded.records or rejects:
            conn = connect_within(self._connector.connect, time.monotonic() + self._connect_wait_s)
            try:
                outcome = insert_log_rows(conn, decoded.records, self._chunk_rows, max_statement_bytes(conn))
                inserted, failed = outcome.inserted, outcome.failed
                for record, reason in outcome.rejected:
                    message_id, index = decoded.origin[(str(record.id), record.source)]
                    rejects.append(
                        RejectedEntry(message_id, index, str(record.id), reason, json.dumps(record.to_message()))
                    )
                insert_rejects(conn, rejects)
                record_stored(conn, outcome)
                conn.commit()
                if outcome.inserted:
                    lag_ms = _lag_ms(decoded.records)
            except pymysql.err.MySQLError as exc:
                _rollback_quietly(conn)
                raise mysql_error(exc) from exc
            except BaseException:
                _rollback_quietly(conn)
                raise
            finally:
                conn.close()
        for reject in rejects:
            logger.warning(
                "log entry set aside",
                extra={"message_id": reject.message_id, "entry_index": reject.entry_index, "reason": reject.reason},
            )
        failed_messages = sorted({m for record, _ in failed for m in decoded.carriers[(str(record.id), record.source)]})
        for record, reason in failed:
            logger.error(
                "log entry not stored; its message goes back to SQS", extra={"log_id": str(record.id), "reason": reason}
            )
        refused_count = len(rejects) - len(decoded.rejects)
        duplicates = len(decoded.records) - refused_count - len(failed) - inserted
        insert_ms = (time.monotonic() - started) * 1000
        return WriteResult(inserted, duplicates, len(rejects), tuple(failed_messages), insert_ms, lag_ms)


def record_stored(conn: Any, outcome: InsertOutcome) -> None:
    """Count what the transaction stored and take its place in the commit order: just before COMMIT."""
    add_counts(conn, outcome.stored)
    if outcome.stored:
        take_commit_number(conn, outcome.claim)  # the last statement: its lock orders the commits


def _lag_ms(records: Sequence[LogRecord]) -> float:
    """Now minus when the batch's oldest entry was received."""
    oldest = min(r.received_at for r in records)
    return (datetime.now(UTC) - oldest).total_seconds() * 1000


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may already be gone; the transaction dies with it
        logger.debug("rollback failed", exc_info=True)
