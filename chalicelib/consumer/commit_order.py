"""The order in which the writer's transactions commit (GET /logs/tail reads it).

A transaction that stored rows takes the next number of `log_commit_sequence` as its last
statement before COMMIT, and records it with its claim (log_ids.claim) in `log_commits`. The
UPDATE locks the sequence's one row until the commit, so the next transaction gets its number only
after this one committed: numbers become visible in order, and a reader that has seen number n has
seen every transaction before it. What it costs: the writers' commits take turns (W at most).
"""

import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.errors import MigrationError


def take_commit_number(conn: Connection, claim: int) -> int:
    """Record this transaction's place in the commit order; call it last before COMMIT."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        if cur.execute("UPDATE log_commit_sequence SET seq = LAST_INSERT_ID(seq + 1) WHERE id = 1") != 1:
            raise MigrationError("log_commit_sequence has lost its row: run the migrations (migration 0006 makes it)")
        cur.execute(
            "INSERT INTO log_commits (seq, claim, committed_on) VALUES (LAST_INSERT_ID(), %s, UTC_DATE())", (claim,)
        )
        cur.execute("SELECT LAST_INSERT_ID()")
        row = cur.fetchone()
    return int(row[0]) if row else 0
