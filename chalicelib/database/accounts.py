"""The MySQL accounts the functions use: exactly the privileges each one's queries need, and its
share of the connection budget as MAX_USER_CONNECTIONS, which MySQL enforces itself (error 1226).

Run as an administrator after the migrations. Each run makes the grants exactly these (it
revokes first), so a privilege dropped here is dropped from the server at the next deploy.
"""

from dataclasses import dataclass

import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.secrets import Credentials

# (privileges, table).
API_GRANTS = (
    ("SELECT, INSERT, UPDATE, DELETE", "items"),  # GET/PUT/DELETE /items (the upsert reads `version`)
    ("SELECT", "logs"),  # GET /logs, GET /logs/{id}
    ("SELECT, INSERT, UPDATE", "api_keys"),  # look keys up; POST /keys; revoke, last used
    ("SELECT", "log_counts"),  # GET /logs/stats
    ("SELECT", "log_counts_hourly"),
    ("SELECT", "log_level_counts"),
    ("SELECT", "log_level_counts_hourly"),
    ("SELECT", "log_commits"),  # GET /logs/tail: the order of storage
    ("SELECT", "log_ids"),  # ... and each entry's transaction
)
WRITER_GRANTS = (
    # INSERT ... ON DUPLICATE KEY UPDATE is the writer's only statement. It needs SELECT and UPDATE
    # besides INSERT (MariaDB asks for UPDATE on every inserted column and SELECT on the columns
    # the UPDATE clause reads); table-wide, so the grants hold on MariaDB and MySQL 8 alike.
    ("SELECT, INSERT, UPDATE", "logs"),
    ("SELECT, INSERT, UPDATE", "log_rejects"),
    ("SELECT, INSERT, UPDATE, DELETE", "log_ids"),  # claim ids; give back those not stored
    ("SELECT, INSERT, UPDATE", "log_counts"),  # add what it stored, per minute and per hour
    ("SELECT, INSERT, UPDATE", "log_counts_hourly"),
    ("SELECT, INSERT, UPDATE", "log_level_counts"),
    ("SELECT, INSERT, UPDATE", "log_level_counts_hourly"),
    ("SELECT, UPDATE", "log_commit_sequence"),  # take the next commit number
    ("SELECT, INSERT", "log_commits"),
)
MAINTAINER_GRANTS = (
    # Partition maintenance (chalicelib/database/partitions.py): REORGANIZE PARTITION is an ALTER TABLE,
    # which needs ALTER, CREATE and INSERT; DROP PARTITION needs DROP besides.
    ("SELECT, INSERT, CREATE, DROP, ALTER", "logs"),  # in the order SHOW GRANTS lists them
    ("SELECT, DELETE", "log_ids"),  # forget ids older than LOG_ID_WINDOW_DAYS
    ("SELECT, DELETE", "log_counts"),  # a dropped day's counts go with it
    ("SELECT, DELETE", "log_counts_hourly"),
    ("SELECT, DELETE", "log_level_counts"),
    ("SELECT, DELETE", "log_level_counts_hourly"),
    ("SELECT, DELETE", "log_commits"),  # forgotten with the ids
)
MAINTAINER_CONNECTIONS = 1  # one run at a time; taken from the administrators' reserve


@dataclass(frozen=True)
class DatabaseUser:
    credentials: Credentials
    max_connections: int  # MAX_USER_CONNECTIONS: R for the API, W for the writer
    grants: tuple[tuple[str, str], ...]


def ensure_user(conn: Connection, database: str, user: DatabaseUser, require_tls: bool) -> None:
    """Create or update the account (`user`@'%'): password, TLS requirement, connection cap, grants."""
    name, password = user.credentials.username, user.credentials.password
    tls = "REQUIRE SSL" if require_tls else "REQUIRE NONE"
    cap = int(user.max_connections)
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        account = f"%s@'%%' IDENTIFIED BY %s {tls} WITH MAX_USER_CONNECTIONS {cap}"
        cur.execute(f"CREATE USER IF NOT EXISTS {account}", (name, password))
        cur.execute(f"ALTER USER {account}", (name, password))
        cur.execute("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s@'%%'", (name,))
        for privileges, table in user.grants:
            cur.execute(f"GRANT {privileges} ON `{database}`.`{table}` TO %s@'%%'", (name,))
    conn.commit()
