"""The items table: every query on items, through the API's budgeted connections."""

import json
from typing import Any

from chalicelib.mysql.connector import Database, all_rows, one_row
from chalicelib.mysql.dialect import Server, on_duplicate_key_update, server_of
from chalicelib.validation import format_rfc3339

_ITEM_COLUMNS = "id, name, description, attributes, version, updated_at"


class ItemStore:
    """Reads and writes items; each call takes one connection within a read slot."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, item_id: str) -> dict[str, Any] | None:
        """One item as the API shows it, or None."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s", (item_id,))
            row = one_row(cur)
        return _item_from_row(row) if row else None

    def list(self, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Items ordered by id after `after`; and whether more follow."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE id > %s ORDER BY id LIMIT %s",
                (after or "", limit + 1),
            )
            rows = all_rows(cur)
        return [_item_from_row(r) for r in rows[:limit]], len(rows) > limit

    def put(self, item_id: str, name: str, description: str, attributes: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace an item, bumping its version; return it and whether it was created."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO items (id, name, description, attributes, version, updated_at)"
                " VALUES (%s, %s, %s, %s, 1, UTC_TIMESTAMP(6))" + _item_upsert(server_of(conn)),
                (item_id, name, description, json.dumps(attributes, separators=(",", ":"))),
            )
            created = cur.rowcount == 1  # MySQL reports 1 for an insert, 2 for an update
            cur.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s", (item_id,))
            row = one_row(cur)
            conn.commit()
        assert row is not None
        return _item_from_row(row), created

    def delete(self, item_id: str) -> bool:
        """Delete an item; False if there was none."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM items WHERE id = %s", (item_id,))
            conn.commit()
            return cur.rowcount == 1


def _item_upsert(server: Server) -> str:
    """An existing item takes the new values and its version goes up by one."""
    return on_duplicate_key_update(
        server, ("name", "description", "attributes", "updated_at"), also=("version = version + 1",)
    )


def _item_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "attributes": json.loads(row["attributes"]),
        "version": int(row["version"]),
        "updated_at": format_rfc3339(row["updated_at"]),
    }
