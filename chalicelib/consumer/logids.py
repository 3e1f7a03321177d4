"""Idempotency on the log id across partitions: each id is claimed in `log_ids` by the
transaction that stores its entry.

The logs table is partitioned by day of `ts`, so its primary key is (id, ts) and cannot keep one
id from being stored twice under two timestamps (a client's retry without a timestamp gets a new
one). `log_ids` can: its key is the id alone. A writer claims a batch's ids with one
INSERT ... ON DUPLICATE KEY UPDATE that marks the rows it adds with a random claim number; the
ids that then carry its number are the ones it stores (when the statement added a row for every
id, as it does unless a delivery repeats, they all are, and nothing is read back). A second writer claiming the same id
waits on the first one's row lock: it finds the id taken once the first commits, or takes it if
the first rolled back. Ids are claimed in sorted order, so two claims cannot deadlock each other.
An id is remembered for LOG_ID_WINDOW_DAYS (chalicelib/database/partitions.py forgets older ones).
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pymysql.cursors
from pymysql.connections import Connection

CLAIM_CHUNK = 1000  # ids per statement


@dataclass(frozen=True)
class Claim:
    """The ids this transaction claimed (new to `log_ids`), under its claim number."""

    number: int
    fresh: frozenset[str]


def claim_ids(conn: Connection, ids: Sequence[str]) -> Claim:
    """Claim `ids` (canonical UUID strings) for this transaction; the fresh ones are to be stored."""
    number = secrets.randbits(63) + 1  # never 0, the number of ids from before the migration
    fresh: set[str] = set()
    ordered = sorted(set(ids))
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        for start in range(0, len(ordered), CLAIM_CHUNK):
            chunk = ordered[start : start + CLAIM_CHUNK]
            values = ",".join(f"({conn.escape(i)},{number},UTC_DATE())" for i in chunk)
            added = cur.execute(
                f"INSERT INTO log_ids (id, claim, seen_on) VALUES {values} ON DUPLICATE KEY UPDATE id = id"
            )
            if added == len(chunk):  # every id was new (a duplicate counts 0): all ours
                fresh.update(chunk)
                continue
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(f"SELECT id FROM log_ids WHERE claim = %s AND id IN ({marks})", (number, *chunk))
            fresh.update(str(row[0]) for row in cur.fetchall())
    return Claim(number, frozenset(fresh))


def release_ids(conn: Connection, claim: Claim, ids: Sequence[str]) -> None:
    """Give back ids this transaction claimed but did not store (rows set aside or failed), so a
    later delivery or a replay can store them."""
    mine = sorted(set(ids) & claim.fresh)
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        for start in range(0, len(mine), CLAIM_CHUNK):
            chunk = mine[start : start + CLAIM_CHUNK]
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(f"DELETE FROM log_ids WHERE claim = %s AND id IN ({marks})", (claim.number, *chunk))
