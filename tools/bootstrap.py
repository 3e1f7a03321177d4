"""Create (or bring up to date) everything a local stage needs: database, schema (the same
migrations the deployed `migrate` function runs), MySQL users with their grants and connection
caps, the log queue and its dead-letter queue. Safe to run again.

    python -m tools.bootstrap --stage local

MySQL is reached as an administrator: the local MariaDB's root over its socket, or the server
named by MYSQL_ADMIN_HOST / MYSQL_ADMIN_PORT / MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD.
A packaged stage (prod, stack) is not bootstrapped from here: its stack makes its queues and
secrets, and its migrate function runs the migrations (`make migrate`).
"""

import argparse
import os
import sys
from typing import Any

import pymysql

from chalicelib.config import Settings
from chalicelib.database.provision import ProvisionResult, provision
from chalicelib.keys.model import SCOPES, ApiKey, token_hash
from chalicelib.keys.store import insert_key
from chalicelib.secrets import SecretStore
from chalicelib.tls import verified_context
from chalicelib.validation import utc_now
from tools.ops.queues import QueueUrls, ensure_queues
from tools.stage import aws_client, is_packaged, stage_environment, stage_settings


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
            ssl=verified_context(settings.mysql.ca_bundle or "", "MYSQL_CA_BUNDLE") if settings.mysql.tls else None,
            ssl_disabled=not settings.mysql.tls,
        )
    from tools.devstack import admin_connect

    return admin_connect(database)


def sqs_client(settings: Settings) -> Any:
    """An SQS client for the stage."""
    return aws_client("sqs", settings)


def bootstrap_mysql(settings: Settings, dev_key: str | None = None) -> ProvisionResult:
    """Database, migrations, and the API and writer users with MAX_USER_CONNECTIONS R and W; and
    the stage's development key, when it has one (DEV_API_KEY)."""
    secrets = SecretStore(settings.secrets, lambda: aws_client("secretsmanager", settings))
    with admin_connection(settings) as conn:
        result = provision(
            conn,
            settings,
            secrets.credentials("mysql_api"),
            secrets.credentials("mysql_writer"),
            secrets.credentials("mysql_maintainer"),
        )
        if dev_key:
            insert_key(conn, development_key(dev_key, settings), if_new=True)
        return result


def development_key(token: str, settings: Settings) -> ApiKey:
    """The local stage's development key: every scope and source, the default limits."""
    return ApiKey(
        id="key_" + token_hash(token)[:16],
        name="development (make up)",
        scopes=list(SCOPES),
        sources=["*"],
        rate_per_s=settings.key_default_rate_per_s,
        burst=settings.key_default_burst,
        created_at=utc_now(),
        token_hash=token_hash(token),
    )


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
    """Bootstrap a local stage; return its queues' URLs."""
    if is_packaged(stage):
        raise SystemExit(f"stage {stage} is a packaged stack: its stack makes its queues, `make migrate` its schema")
    settings = stage_settings(stage)
    bootstrap_mysql(settings, stage_environment(stage).get("DEV_API_KEY"))
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
