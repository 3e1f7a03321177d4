"""The api_keys table: every query on keys, through the API's budgeted connections."""

import json
from datetime import UTC, datetime
from typing import Any, cast

from pymysql.connections import Connection

from chalicelib.keys.model import ApiKey
from chalicelib.mysql.connector import Database

_COLUMNS = "id, token_hash, name, scopes, sources, rate_per_s, burst, created_at, last_used_at, revoked_at"


class KeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, key: ApiKey) -> None:
        """Store a new key (its token's hash only)."""
        with self._db.connection() as conn:
            insert_key(conn, key)

    def by_hash(self, token_hash: str) -> ApiKey | None:
        """The key whose token has this hash, revoked or not; None if there is none."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE token_hash = %s", (token_hash,))
            row = cast(dict[str, Any] | None, cur.fetchone())
        return _key(row) if row else None

    def by_id(self, key_id: str) -> ApiKey | None:
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
            row = cast(dict[str, Any] | None, cur.fetchone())
        return _key(row) if row else None

    def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC, id")
            rows = cast(list[dict[str, Any]], cur.fetchall())
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey | None:
        """Mark the key revoked (once; a second call changes nothing); None if there is no such key."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = UTC_TIMESTAMP(6) WHERE id = %s AND revoked_at IS NULL", (key_id,)
            )
            conn.commit()
        return self.by_id(key_id)

    def touch(self, key_id: str) -> None:
        """Record that the key was used now."""
        with self._db.connection() as conn, conn.cursor() as cur:
            cur.execute("UPDATE api_keys SET last_used_at = UTC_TIMESTAMP(6) WHERE id = %s", (key_id,))
            conn.commit()


def insert_key(conn: Connection, key: ApiKey, *, if_new: bool = False) -> None:
    """Store a key on a connection; `if_new` leaves a key with the same token as it is."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT {'IGNORE ' if if_new else ''}INTO api_keys ({_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL)",
            (
                key.id,
                key.token_hash,
                key.name,
                ",".join(key.scopes),
                json.dumps(key.sources),
                key.rate_per_s,
                key.burst,
                key.created_at.replace(tzinfo=None),
            ),
        )
    conn.commit()


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        token_hash=row["token_hash"],
        name=row["name"],
        scopes=[s for s in str(row["scopes"]).split(",") if s],
        sources=list(json.loads(row["sources"])),
        rate_per_s=int(row["rate_per_s"]),
        burst=int(row["burst"]),
        created_at=_utc(row["created_at"]),
        last_used_at=_utc(row["last_used_at"]) if row["last_used_at"] else None,
        revoked_at=_utc(row["revoked_at"]) if row["revoked_at"] else None,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)
