"""Create (or bring up to date) everything a stage needs: database, tables, MySQL users with
their connection caps, the log queue and its dead-letter queue. Safe to run again.

    python -m tools.bootstrap --stage local

MySQL is reached as an administrator: the local MariaDB's root over its socket, or the server
named by MYSQL_ADMIN_HOST / MYSQL_ADMIN_PORT / MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD.
"""

import argparse
import os
import sys
from typing import Any

import pymysql

from chalicelib.config import Settings
from chalicelib.db import create_schema
from chalicelib.queue import QueueUrls, ensure_queues
from tools.stage import aws_client, stage_settings


def admin_connection(settings: Settings, database: str | None = None) -> pymysql.connections.Connection:
    """An administrator's connection for the stage's server."""
    if "MYSQL_ADMIN_HOST" in os.environ:
        return pymysql.connect(
            host=os.environ["MYSQL_ADMIN_HOST"],
            port=int(os.environ.get("MYSQL_ADMIN_PORT", settings.mysql.port)),
            user=os.environ.get("MYSQL_ADMIN_USER", "admin"),
            password=os.environ.get("MYSQL_ADMIN_PASSWORD", ""),
            database=database,
            autocommit=True,
            ssl={} if settings.mysql.tls else None,
            ssl_disabled=not settings.mysql.tls,
        )
    from tools.devstack import admin_connect

    return admin_connect(database)


def sqs_client(settings: Settings) -> Any:
    """An SQS client for the stage."""
    return aws_client("sqs", settings)


def bootstrap_mysql(settings: Settings) -> None:
    """Database, tables, and the API and writer users with MAX_USER_CONNECTIONS R and W."""
    db = settings.mysql.database
    with admin_connection(settings) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        conn.select_db(db)
        create_schema(conn)
        users = [
            (settings.mysql.api_user, settings.mysql.api_password, settings.api_read_slots),
            (settings.mysql.writer_user, settings.mysql.writer_password, settings.consumer_max_concurrency),
        ]
        for user, password, cap in users:
            cur.execute(
                f"CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s WITH MAX_USER_CONNECTIONS {int(cap)}",
                (user, password),
            )
            cur.execute(f"ALTER USER %s@'%%' IDENTIFIED BY %s WITH MAX_USER_CONNECTIONS {int(cap)}", (user, password))
        api, writer = settings.mysql.api_user, settings.mysql.writer_user
        cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.items TO %s@'%%'", (api,))
        cur.execute(f"GRANT SELECT ON `{db}`.logs TO %s@'%%'", (api,))
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON `{db}`.logs TO %s@'%%'", (writer,))
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON `{db}`.log_rejects TO %s@'%%'", (writer,))


def bootstrap_queues(settings: Settings) -> QueueUrls:
    """The log queue with its redrive policy to the DLQ."""
    return ensure_queues(
        sqs_client(settings),
        settings.log_queue_name,
        settings.log_dlq_name,
        settings.queue_visibility_timeout_s,
        settings.queue_max_receive_count,
    )


def bootstrap(stage: str) -> QueueUrls:
    settings = stage_settings(stage)
    bootstrap_mysql(settings)
    return bootstrap_queues(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    urls = bootstrap(args.stage)
    print(f"bootstrap ({args.stage}): schema and users ready; queue {urls.queue_url}, dead letters {urls.dlq_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
