"""Entries set aside instead of stored (the log_rejects table), each with why."""

from collections.abc import Sequence
from dataclasses import dataclass

from pymysql.connections import Connection

from chalicelib.mysql.dialect import on_duplicate_key_update, server_of

# The widths of log_rejects' columns (database/migrations/0001_initial.sql); a MEDIUMTEXT holds 16 MiB of bytes.
_REJECT_MESSAGE_ID_CHARS = 128
_REJECT_REASON_CHARS = 2000
_REJECT_BODY_CHARS = (16 * 1024 * 1024 - 1) // 4


@dataclass(frozen=True)
class RejectedEntry:
    """A message or entry set aside instead of stored, with why."""

    message_id: str
    entry_index: int  # -1 for the whole message
    log_id: str | None
    reason: str
    body: str


def insert_rejects(conn: Connection, rejects: Sequence[RejectedEntry]) -> None:
    """Record set-aside messages and entries; a redelivery records each once.

    Every value is made to fit its column first: a reject is the place of last resort for what
    did not fit elsewhere, so it must never fail on the same data.
    """
    if not rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
            " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))" + on_duplicate_key_update(server_of(conn), ("reason",)),
            [_fitting_reject(r) for r in rejects],
        )


def _fitting_reject(r: RejectedEntry) -> tuple[str, int, str | None, str, str]:
    message_id = r.message_id.encode("ascii", "replace").decode()[:_REJECT_MESSAGE_ID_CHARS]
    log_id = r.log_id if r.log_id and len(r.log_id) == 36 and r.log_id.isascii() else None
    entry_index = max(-1, min(r.entry_index, 2**31 - 1))
    return message_id, entry_index, log_id, r.reason[:_REJECT_REASON_CHARS], r.body[:_REJECT_BODY_CHARS]
