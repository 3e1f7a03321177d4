"""The MySQL connection budget, and the AWS rules the queue settings must keep.

  W (consumer maximum concurrency, one connection per invocation)
+ R (API read slots, one connection each)
+ reserve (administrators, migrations, monitoring)
< max_connections of the server
"""

from dataclasses import dataclass

from chalicelib.database.custom_resource import ANSWER_MARGIN_S
from chalicelib.mysql.dialect import lock_wait_seconds

MIN_MAXIMUM_CONCURRENCY = 2  # AWS: ScalingConfig.MaximumConcurrency is 2..1000
MAX_MAXIMUM_CONCURRENCY = 1000
MAX_BATCH_SIZE = 10_000  # standard queues
MAX_BATCHING_WINDOW_S = 300
VISIBILITY_TIMEOUT_FACTOR = 6  # AWS: queue visibility timeout at least 6x the function timeout
MAX_VISIBILITY_TIMEOUT_S = 43_200  # AWS: 12 hours
MAINTENANCE_PERIOD_S = 3600  # the partition maintenance schedule (app.py)
MAX_THROTTLE_RATE = 10_000  # AWS: an account's API Gateway requests per second in a Region (default quota)
MAX_THROTTLE_BURST = 5_000  # AWS: and its burst
BATCH_MAX_ENTRIES = 500  # entries one POST /logs/batch may carry (chalicelib/logs/model.py)
READ_TIMEOUT_MARGIN_S = 5  # the maintainer's client waits this much longer than the server's limit


@dataclass(frozen=True)
class BudgetInputs:
    max_connections: int | None  # None: the server is not known yet (packaging); the fit is not checked
    writer_concurrency: int  # W
    read_slots: int  # R
    admin_reserve: int
    batch_size: int
    batching_window_s: int
    visibility_timeout_s: int
    consumer_timeout_s: int
    consumer_reserved_concurrency: int | None
    api_timeout_s: int
    api_reserved_concurrency: int | None
    api_throttle_rate: int
    api_throttle_burst: int
    slot_lease_s: int
    mysql_read_timeout_s: float
    mysql_statement_timeout_s: float
    consumer_retry_max_ms: int
    redelivery_delay_base_s: int
    redelivery_delay_max_s: int
    maintenance_timeout_s: int
    partition_statement_timeout_s: int
    migrate_timeout_s: int
    mysql_admin_read_timeout_s: float
    partition_lock_wait_s: int
    retention_days: int
    partitions_ahead_days: int
    timestamp_max_age_s: int
    timestamp_max_ahead_s: int

    @property
    def total(self) -> int:
        return self.writer_concurrency + self.read_slots + self.admin_reserve


def budget_problems(b: BudgetInputs) -> list[str]:
    """Every reason the settings are unsafe; empty when the budget fits and AWS's rules hold."""
    problems: list[str] = []
    if b.max_connections is not None:
        fit = fit_problem(b.writer_concurrency, b.read_slots, b.admin_reserve, b.max_connections)
        if fit:
            problems.append(fit)
    if not MIN_MAXIMUM_CONCURRENCY <= b.writer_concurrency <= MAX_MAXIMUM_CONCURRENCY:
        problems.append(
            f"CONSUMER_MAX_CONCURRENCY (W) is {b.writer_concurrency}; the SQS event source's maximum concurrency"
            f" must be {MIN_MAXIMUM_CONCURRENCY}..{MAX_MAXIMUM_CONCURRENCY}"
        )
    if b.visibility_timeout_s < VISIBILITY_TIMEOUT_FACTOR * b.consumer_timeout_s:
        problems.append(
            f"QUEUE_VISIBILITY_TIMEOUT_S is {b.visibility_timeout_s}s; AWS wants at least"
            f" {VISIBILITY_TIMEOUT_FACTOR} x the consumer's timeout {b.consumer_timeout_s}s"
            f" = {VISIBILITY_TIMEOUT_FACTOR * b.consumer_timeout_s}s"
        )
    if b.consumer_reserved_concurrency is not None and b.consumer_reserved_concurrency < b.writer_concurrency:
        problems.append(
            f"the consumer's reserved_concurrency {b.consumer_reserved_concurrency} is below W {b.writer_concurrency}:"
            " Lambda would throttle the event source and messages could reach the DLQ"
        )
    problems += api_problems(b)
    if not 1 <= b.batch_size <= MAX_BATCH_SIZE:
        problems.append(f"CONSUMER_BATCH_SIZE is {b.batch_size}; it must be 1..{MAX_BATCH_SIZE}")
    if not 0 <= b.batching_window_s <= MAX_BATCHING_WINDOW_S:
        problems.append(f"CONSUMER_BATCH_WINDOW_S is {b.batching_window_s}; it must be 0..{MAX_BATCHING_WINDOW_S}")
    if b.batch_size > 10 and b.batching_window_s < 1:
        problems.append(
            f"CONSUMER_BATCH_SIZE {b.batch_size} is over 10, which AWS allows only with"
            " CONSUMER_BATCH_WINDOW_S of at least 1"
        )
    if b.slot_lease_s < b.api_timeout_s:
        problems.append(
            f"SLOT_LEASE_S {b.slot_lease_s}s is shorter than the API function's timeout {b.api_timeout_s}s:"
            " a slow request's slot could lapse while it still holds its connection"
        )
    shortest = min(b.api_timeout_s, b.consumer_timeout_s)
    if b.mysql_read_timeout_s >= shortest:
        problems.append(
            f"MYSQL_READ_TIMEOUT_S {b.mysql_read_timeout_s:g}s is not shorter than the shortest function timeout"
            f" {shortest}s: a stuck query would outlive the invocation that waits for it"
        )
    if b.mysql_statement_timeout_s >= b.mysql_read_timeout_s:
        problems.append(
            f"MYSQL_STATEMENT_TIMEOUT_S {b.mysql_statement_timeout_s:g}s is not shorter than MYSQL_READ_TIMEOUT_S"
            f" {b.mysql_read_timeout_s:g}s: the server must stop a slow statement before the client gives up on it"
        )
    elif lock_wait_seconds(b.mysql_statement_timeout_s) >= b.mysql_read_timeout_s:
        problems.append(
            f"MYSQL_STATEMENT_TIMEOUT_S {b.mysql_statement_timeout_s:g}s makes lock waits of"
            f" {lock_wait_seconds(b.mysql_statement_timeout_s)}s (whole seconds, at least 1), not shorter than"
            f" MYSQL_READ_TIMEOUT_S {b.mysql_read_timeout_s:g}s: a write waiting for a lock would outlive the client"
        )
    if b.consumer_retry_max_ms >= b.consumer_timeout_s * 1000:
        problems.append(
            f"CONSUMER_RETRY_MAX_MS {b.consumer_retry_max_ms} is not shorter than the consumer's timeout"
            f" {b.consumer_timeout_s}s: one wait would outlast the invocation"
        )
    if (
        not b.redelivery_delay_base_s
        <= b.redelivery_delay_max_s
        <= min(b.visibility_timeout_s, MAX_VISIBILITY_TIMEOUT_S)
    ):
        problems.append(
            f"REDELIVERY_DELAY_BASE_S {b.redelivery_delay_base_s} <= REDELIVERY_DELAY_MAX_S {b.redelivery_delay_max_s}"
            f" <= QUEUE_VISIBILITY_TIMEOUT_S {b.visibility_timeout_s} must hold: the delay of a batch given back"
            " shortens the visibility timeout, never lengthens it"
        )
    problems += retention_problems(b)
    return problems


def api_problems(b: BudgetInputs) -> list[str]:
    """The API's stage throttling and reserved concurrency against AWS's quotas and the read slots."""
    problems: list[str] = []
    if not 1 <= b.api_throttle_rate <= MAX_THROTTLE_RATE:
        problems.append(
            f"API_THROTTLE_RATE_PER_S is {b.api_throttle_rate}; a stage's throttling is 1..{MAX_THROTTLE_RATE}"
            " requests/s (the account's own limit in a Region)"
        )
    if not 1 <= b.api_throttle_burst <= MAX_THROTTLE_BURST:
        problems.append(f"API_THROTTLE_BURST is {b.api_throttle_burst}; it must be 1..{MAX_THROTTLE_BURST}")
    if b.api_reserved_concurrency is not None and b.api_reserved_concurrency < b.read_slots:
        problems.append(
            f"the API's reserved_concurrency {b.api_reserved_concurrency} is below R {b.read_slots}: each instance"
            " holds at most one read slot, so the slots above it could never be used; lower API_READ_SLOTS"
        )
    return problems


def retention_problems(b: BudgetInputs) -> list[str]:
    """The partition maintenance's timeouts and days against what they run in and must cover."""
    problems: list[str] = []
    if b.admin_reserve < 1:
        problems.append("ADMIN_RESERVE_CONNECTIONS is 0: the partition maintenance's one connection comes out of it")
    if b.partition_lock_wait_s >= b.partition_statement_timeout_s:
        problems.append(
            f"PARTITION_LOCK_WAIT_S {b.partition_lock_wait_s}s is not shorter than PARTITION_STATEMENT_TIMEOUT_S"
            f" {b.partition_statement_timeout_s}s: the statement would be stopped while it waits for the lock"
        )
    if b.partition_statement_timeout_s + READ_TIMEOUT_MARGIN_S >= b.maintenance_timeout_s:
        problems.append(
            f"PARTITION_STATEMENT_TIMEOUT_S {b.partition_statement_timeout_s}s (+{READ_TIMEOUT_MARGIN_S}s for the"
            f" client) is not shorter than the maintenance function's timeout {b.maintenance_timeout_s}s"
        )
    answer_by = b.migrate_timeout_s - ANSWER_MARGIN_S
    if b.mysql_admin_read_timeout_s >= answer_by:
        problems.append(
            f"MYSQL_ADMIN_READ_TIMEOUT_S {b.mysql_admin_read_timeout_s:g}s is not shorter than the migrate function's"
            f" timeout {b.migrate_timeout_s}s less the {ANSWER_MARGIN_S}s it keeps to answer CloudFormation"
        )
    if b.retention_days * 86400 <= b.timestamp_max_age_s:
        problems.append(
            f"LOG_RETENTION_DAYS {b.retention_days} is not longer than LOG_TIMESTAMP_MAX_AGE_S"
            f" {b.timestamp_max_age_s}s: an entry accepted with an old timestamp would land in a day already dropped"
        )
    if b.partitions_ahead_days * 86400 <= b.timestamp_max_ahead_s + MAINTENANCE_PERIOD_S:
        problems.append(
            f"LOG_PARTITIONS_AHEAD_DAYS {b.partitions_ahead_days} does not cover LOG_TIMESTAMP_MAX_AHEAD_S"
            f" {b.timestamp_max_ahead_s}s plus an hour between maintenance runs"
        )
    return problems


def fit_problem(writers: int, read_slots: int, reserve: int, max_connections: int) -> str | None:
    """Why W + R + reserve does not fit below the server's max_connections, or None."""
    total = writers + read_slots + reserve
    if total < max_connections:
        return None
    return (
        f"connection budget does not fit: W {writers} + R {read_slots} + reserve {reserve}"
        f" = {total}, which must stay below the server's max_connections {max_connections};"
        " lower CONSUMER_MAX_CONCURRENCY or API_READ_SLOTS, or raise max_connections"
    )


def budget_lines(b: BudgetInputs) -> list[str]:
    """What each number of the budget is, one line each, and how it fits the server."""
    lines = [
        f"  W        {b.writer_concurrency:>4}  consumer invocations at once, one connection each"
        " (CONSUMER_MAX_CONCURRENCY)",
        f"  R        {b.read_slots:>4}  API read slots: API instances doing MySQL work at once (API_READ_SLOTS)",
        f"  reserve  {b.admin_reserve:>4}  administrators, migrations, monitoring (ADMIN_RESERVE_CONNECTIONS)",
        f"  total    {b.total:>4}  W + R + reserve (MySQL caps the writer's account at W and the API's at R)",
        f"  the API stage takes {b.api_throttle_rate} requests/s (burst {b.api_throttle_burst}; API_THROTTLE_*): at"
        f" most {b.api_throttle_rate * BATCH_MAX_ENTRIES:,} entries/s reach the queue, which W drains at its own pace",
        "  the API's instances: "
        + (
            f"at most {b.api_reserved_concurrency} (reserved concurrency), each holding at most one of the R slots"
            if b.api_reserved_concurrency is not None
            else "unreserved (the account's concurrency); at most R of them use MySQL at once"
        ),
    ]
    if b.max_connections is None:
        return [
            *lines,
            "  the fit below the server's max_connections is checked against the server at migration, at every"
            " deploy (or here, given MYSQL_ADMIN_HOST=... or --max-connections N)",
        ]
    return [
        *lines,
        f"  the total must stay below max_connections {b.max_connections}: the one connection kept between them"
        " is the hourly partition maintenance's (its account is capped at 1)",
        f"  spare    {b.max_connections - b.total - 1:>4}  connections W, R or reserve could still grow by",
    ]
