"""Create (or bring up to date) everything a local stage needs: database, schema (the same
migrations the deployed `migrate` function runs), MySQL users with their grants and connection
caps, the log queue and its dead-letter queue. Safe to run again.

    python -m tools.devstack.bootstrap --stage local

MySQL is reached as an administrator: the local MariaDB's root over its socket, or the server
named by MYSQL_ADMIN_HOST / MYSQL_ADMIN_PORT / MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD.
A packaged stage (prod, stack) is not bootstrapped from here: its stack makes its queues and
secrets, and its migrate function runs the migrations (`make migrate`).
"""

import argparse
import sys

from chalicelib.config import Settings
from chalicelib.database.provision import ProvisionResult, provision
from chalicelib.keys.model import SCOPES, ApiKey, token_hash
from chalicelib.keys.store import insert_key
from chalicelib.secrets import SecretStore
from chalicelib.validation import utc_now
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.ops.queues import QueueUrls, ensure_queues
from tools.stage import is_packaged, stage_environment, stage_settings


def bootstrap_mysql(settings: Settings, dev_key: str | None = None) -> ProvisionResult:
    """Database, migrations, and the API and writer users with MAX_USER_CONNECTIONS R and W; and
    the stage's development key, when it has one (DEV_API_KEY)."""
    secrets = SecretStore(settings.secrets, lambda: aws_client("secretsmanager", settings))
    with admin_connection(settings=settings) as conn:
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
        aws_client("sqs", settings),
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
