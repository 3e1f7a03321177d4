"""Check a stage's MySQL connection budget and queue settings against the server and AWS's rules.

    python -m tools.ops.budget --stage local [--max-connections N]

Reads max_connections from the stage's server and everything else from .chalice/config.json.
A packaged stage's server is known only at deploy time: give MYSQL_ADMIN_HOST (and the other
MYSQL_ADMIN_* variables) or --max-connections to check the fit, otherwise only the rules are
checked here and the migration checks the fit against the server at every deploy.
Exits 1, saying why, when the budget does not fit or a setting breaks AWS's rules.
"""

import argparse
import os
import sys

from chalicelib.config import Settings
from chalicelib.database.budget import BudgetInputs, budget_lines, budget_problems
from tools.admin import admin_connection
from tools.stage import (
    API_FUNCTION,
    CONSUMER_FUNCTION,
    MAINTENANCE_FUNCTION,
    function_settings,
    is_packaged,
    stage_settings,
)


def server_max_connections(settings: Settings) -> int:
    with admin_connection(settings=settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def budget_inputs(stage: str, max_connections: int | None) -> BudgetInputs:
    settings = stage_settings(stage)
    consumer = function_settings(stage, CONSUMER_FUNCTION)
    api = function_settings(stage, API_FUNCTION)
    return BudgetInputs(
        max_connections=max_connections,
        writer_concurrency=settings.consumer_max_concurrency,
        read_slots=settings.api_read_slots,
        admin_reserve=settings.admin_reserve_connections,
        batch_size=settings.consumer_batch_size,
        batching_window_s=settings.consumer_batch_window_s,
        visibility_timeout_s=settings.queue_visibility_timeout_s,
        consumer_timeout_s=consumer.timeout_s,
        consumer_reserved_concurrency=consumer.reserved_concurrency,
        api_timeout_s=api.timeout_s,
        api_reserved_concurrency=api.reserved_concurrency,
        api_throttle_rate=settings.api_throttle_rate_per_s,
        api_throttle_burst=settings.api_throttle_burst,
        slot_lease_s=settings.slot_lease_s,
        mysql_read_timeout_s=settings.mysql.read_timeout_s,
        mysql_statement_timeout_s=settings.mysql.statement_timeout_s,
        consumer_retry_max_ms=settings.consumer_retry_max_ms,
        redelivery_delay_base_s=settings.redelivery_delay_base_s,
        redelivery_delay_max_s=settings.redelivery_delay_max_s,
        maintenance_timeout_s=function_settings(stage, MAINTENANCE_FUNCTION).timeout_s,
        partition_statement_timeout_s=settings.partition_statement_timeout_s,
        migrate_timeout_s=function_settings(stage, "migrate").timeout_s,
        mysql_admin_read_timeout_s=settings.mysql.admin_read_timeout_s,
        partition_lock_wait_s=settings.partition_lock_wait_s,
        retention_days=settings.log_retention_days,
        partitions_ahead_days=settings.log_partitions_ahead_days,
        timestamp_max_age_s=settings.log_timestamp_max_age_s,
        timestamp_max_ahead_s=settings.log_timestamp_max_ahead_s,
    )


def server_known(stage: str) -> bool:
    """Whether this machine can ask the stage's server: a local stage's, or one MYSQL_ADMIN_HOST names."""
    return not is_packaged(stage) or "MYSQL_ADMIN_HOST" in os.environ


def check(stage: str, max_connections: int | None = None) -> tuple[BudgetInputs, list[str]]:
    """The stage's budget and its problems; max_connections is read from the server unless given
    (and left unchecked for a packaged stage whose server this machine does not know)."""
    if max_connections is None and server_known(stage):
        max_connections = server_max_connections(stage_settings(stage))
    inputs = budget_inputs(stage, max_connections)
    return inputs, budget_problems(inputs)


def server_named(stage: str) -> str:
    """Which server the check measured, in words."""
    if "MYSQL_ADMIN_HOST" in os.environ:
        settings = stage_settings(stage)
        port = os.environ.get("MYSQL_ADMIN_PORT", str(settings.mysql.port))
        return f"the server MYSQL_ADMIN_HOST names ({os.environ['MYSQL_ADMIN_HOST']}:{port})"
    if server_known(stage):
        return "this machine's MariaDB (make up's, port 3307, data in .data/mariadb)"
    return "no server: a packaged stage's is known at deploy time"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--max-connections", type=int, help="use this instead of asking the server")
    args = parser.parse_args(argv)
    inputs, problems = check(args.stage, args.max_connections)
    print(f"stage {args.stage}, checked against {server_named(args.stage)}:")
    print("\n".join(budget_lines(inputs)))
    if problems:
        print(f"budget check FAILED for stage {args.stage}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"budget check ok for stage {args.stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
