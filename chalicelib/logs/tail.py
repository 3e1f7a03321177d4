"""GET /logs/tail: what was stored after what the caller last saw, in the order it was stored.

Entries arrive late and out of order, so a tail by `timestamp` would skip an entry stored after
the page that should have shown it. This one follows the writer's commits instead
(chalicelib/consumer/commit_order.py): a position is (commit number, id), and a commit number is
visible only once every smaller one is, so asking "after this position" never misses an entry.

A page reads at most TAIL_MAX_COMMITS commits past its position; its cursor moves past what it
read even when the filters matched nothing there, so a rare filter is followed in small steps.
"""

from dataclasses import dataclass
from typing import Any

from chalicelib.logs.store import LOG_COLUMNS, LogFilter, filter_conditions, log_from_row
from chalicelib.mysql.connector import Database, all_rows, one_row

IDS_PER_READ = 500  # the ids looked up in `logs` at a time (each id is a lookup in every partition)
AFTER_EVERY_ID = "~"  # sorts after every id (UUIDs are hex and dashes): "past the whole commit"


@dataclass(frozen=True)
class Position:
    """Just after the entry `log_id` of commit `seq` (AFTER_EVERY_ID: after the whole commit)."""

    seq: int
    log_id: str


class TailStore:
    """Reads entries in the order of storage; each call takes one connection within a read slot."""

    def __init__(self, db: Database, max_commits: int) -> None:
        self._db = db
        self._max_commits = max_commits

    def after(self, position: Position | None, wanted: LogFilter) -> tuple[list[dict[str, Any]], Position]:
        """Up to `wanted.limit` entries stored after `position`, oldest first, and the position
        to ask from next. Without a position: the latest entries among the last commits."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(seq), 0) AS head FROM log_commits")
            row = one_row(cur)
            head = int(row["head"]) if row else 0
            if position is None:
                return self._latest(cur, head, wanted), Position(head, AFTER_EVERY_ID)
            upto = min(head, position.seq + self._max_commits)
            page = _first_matching(
                cur,
                "WHERE (c.seq > %s OR (c.seq = %s AND i.id > %s)) AND c.seq <= %s ORDER BY c.seq, i.id",
                (position.seq, position.seq, position.log_id, upto),
                wanted,
            )
        if len(page) == wanted.limit:  # there may be more: continue right after the last one shown
            return [entry for _, _, entry in page], Position(page[-1][0], page[-1][1])
        return [entry for _, _, entry in page], Position(upto, AFTER_EVERY_ID) if upto > position.seq else position

    def _latest(self, cur: Any, head: int, wanted: LogFilter) -> list[dict[str, Any]]:
        """The last `wanted.limit` entries of the last TAIL_MAX_COMMITS commits, oldest first."""
        newest = _first_matching(
            cur, "WHERE c.seq > %s ORDER BY c.seq DESC, i.id DESC", (head - self._max_commits,), wanted
        )
        return [entry for _, _, entry in reversed(newest)]


def _first_matching(
    cur: Any, where_order: str, args: tuple[Any, ...], wanted: LogFilter
) -> list[tuple[int, str, dict[str, Any]]]:
    """The first `wanted.limit` entries matching the filters, in the commit order `where_order` gives."""
    cur.execute(f"SELECT c.seq, i.id FROM log_commits c JOIN log_ids i ON i.claim = c.claim {where_order}", args)
    order = [(int(r["seq"]), str(r["id"])) for r in all_rows(cur)]
    found: list[tuple[int, str, dict[str, Any]]] = []
    for start in range(0, len(order), IDS_PER_READ):
        found += _matching(cur, order[start : start + IDS_PER_READ], wanted)
        if len(found) >= wanted.limit:
            break
    return found[: wanted.limit]


def _matching(cur: Any, order: list[tuple[int, str]], wanted: LogFilter) -> list[tuple[int, str, dict[str, Any]]]:
    """The entries of `order` that match the filters, in that order."""
    if not order:
        return []
    where, args = filter_conditions(wanted)
    marks = ",".join(["%s"] * len(order))
    where.append(f"id IN ({marks})")
    cur.execute(f"SELECT {LOG_COLUMNS} FROM logs WHERE {' AND '.join(where)}", [*args, *(i for _, i in order)])
    rows = {str(r["id"]): log_from_row(r) for r in all_rows(cur)}
    return [(seq, log_id, rows[log_id]) for seq, log_id in order if log_id in rows]
