"""Idempotency on the log id across partitions: each id is claimed in `log_ids` by the
transaction that stores its entry, with the entry's source. An id belongs to the source that
claimed it first: the same source's entry again is a duplicate (a retry, a redelivery) and is
dropped; another source's entry with that id is set aside with its reason, never dropped in
silence (a writer who learnt another tenant's id cannot make that tenant's entry vanish).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pymysql.cursors
from pymysql.connections import Connection

CLAIM_CHUNK = 1000  # ids per statement


@dataclass(frozen=True)
class Claim:
    """The ids this transaction claimed (new to `log_ids`), under its claim number; and the ids
    another source's entry claimed first, with that source."""

    number: int
    fresh: frozenset[str]
    owners: dict[str, str | None]  # an id claimed before -> the source that has it (None: before migration 0005)


def claim_ids(conn: Connection, sources: Mapping[str, str]) -> Claim:
    """Claim ids (canonical UUID strings, each with its entry's source) for this transaction: the
    fresh ones are to be stored; of the others, `owners` says which source has them."""
    number = secrets.randbits(63) + 1  # never 0, the number of ids from before the migration
    fresh: set[str] = set()
    owners: dict[str, str | None] = {}
    ordered = sorted(sources)
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        for start in range(0, len(ordered), CLAIM_CHUNK):
            chunk = ordered[start : start + CLAIM_CHUNK]
            values = ",".join(f"({conn.escape(i)},{number},UTC_DATE(),{conn.escape(sources[i])})" for i in chunk)
            added = cur.execute(
                f"INSERT INTO log_ids (id, claim, seen_on, source) VALUES {values} ON DUPLICATE KEY UPDATE id = id"
            )
            if added == len(chunk):  # every id was new (a duplicate counts 0): all ours
                fresh.update(chunk)
                continue
            marks = ",".join(["%s"] * len(chunk))
            # A locking read sees what other writers committed since this transaction's first read
            # (a plain one would read that snapshot, and miss a claim made meanwhile); the rows are
            # already locked by the INSERT above, so it waits for nothing more.
            cur.execute(f"SELECT id, claim, source FROM log_ids WHERE id IN ({marks}) LOCK IN SHARE MODE", chunk)
            for log_id, claim, source in cur.fetchall():
                if int(claim) == number:
                    fresh.add(str(log_id))
                else:
                    owners[str(log_id)] = None if source is None else str(source)
    return Claim(number, frozenset(fresh), owners)


def release_ids(conn: Connection, claim: Claim, ids: Sequence[str]) -> None:
    """Give back ids this transaction claimed but did not store (rows set aside or failed), so a
    later delivery or a replay can store them."""
    mine = sorted(set(ids) & claim.fresh)
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        for start in range(0, len(mine), CLAIM_CHUNK):
            chunk = mine[start : start + CLAIM_CHUNK]
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(f"DELETE FROM log_ids WHERE claim = %s AND id IN ({marks})", (claim.number, *chunk))
