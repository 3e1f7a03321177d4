"""Every setting of sluice, declared once: attribute, type, environment variable, default, meaning.

A stage (.chalice/config.json) sets only what has no default here and what it changes. The
loader (loader.py) reads these fields; docs/configuration.md is generated from them
(`python -m tools.ops.configuration`).
"""

from dataclasses import dataclass, field

from chalicelib.config.credentials import SecretSettings
from chalicelib.config.fields import FromSettings, setting

# The names a stage's data lives under follow from the stage's name, unless the stage says otherwise.
STAGE_DATABASE = FromSettings("sluice_{SLUICE_STAGE}", dashes_as_underscores=True)
STAGE_KEY_PREFIX = FromSettings("sluice:{SLUICE_STAGE}:")
STAGE_LOG_QUEUE = FromSettings("sluice-{SLUICE_STAGE}-logs")
STAGE_LOG_DLQ = FromSettings("sluice-{SLUICE_STAGE}-logs-dlq")


@dataclass(frozen=True)
class MySQLSettings:
    host: str = field(
        metadata=setting(
            env="MYSQL_HOST", meaning="the MySQL server (local: 127.0.0.1); a stack gets it from its parameters"
        )
    )
    port: int = field(
        metadata=setting(env="MYSQL_PORT", minimum=1, meaning="its port (local: 3307); a stack's from its parameters")
    )
    database: str = field(
        metadata=setting(env="MYSQL_DATABASE", default=STAGE_DATABASE, meaning="the stage's database")
    )
    tls: bool = field(
        metadata=setting(
            env="MYSQL_TLS",
            meaning=(
                "TLS to MySQL (`false` locally, `true` in a stack), verified against MYSQL_CA_BUNDLE only, host name"
                " included (certs/README.md); TLS without a bundle is refused"
            ),
        )
    )
    ca_bundle: str | None = field(
        metadata=setting(
            env="MYSQL_CA_BUNDLE",
            default=None,
            meaning="with TLS: the CA bundle to verify the server against (prod: certs/rds-global-bundle.pem)",
        )
    )
    connect_timeout_s: float = field(
        metadata=setting(env="MYSQL_CONNECT_TIMEOUT_S", default="2", meaning="MySQL's connect timeout")
    )
    read_timeout_s: float = field(
        metadata=setting(
            env="MYSQL_READ_TIMEOUT_S",
            default="20",
            meaning=(
                "how long the client waits for one statement (read and write), below every function's timeout;"
                " on MySQL 8 the only bound on a write's own running time"
            ),
        )
    )
    admin_read_timeout_s: float = field(
        metadata=setting(
            env="MYSQL_ADMIN_READ_TIMEOUT_S",
            default="90",
            meaning=(
                "how long the migration waits for one statement (DDL on a large table), below the migrate function's"
                " timeout less the time it keeps to answer CloudFormation (120 - 15 s)"
            ),
        )
    )
    statement_timeout_s: float = field(
        metadata=setting(
            env="MYSQL_STATEMENT_TIMEOUT_S",
            default="5",
            meaning=(
                "the server stops an API statement after this (MariaDB `max_statement_time`: any statement; MySQL"
                " `max_execution_time`: a SELECT); every account's wait for a row or table lock"
                " (`innodb_lock_wait_timeout`, `lock_wait_timeout`, whole seconds, at least 1) ends after it too, the"
                " maintainer's excepted; below MYSQL_READ_TIMEOUT_S"
            ),
        )
    )


@dataclass(frozen=True)
class Settings:
    stage: str = field(
        metadata=setting(
            env="SLUICE_STAGE", meaning="the stage's name; the defaults written with `{SLUICE_STAGE}` follow it"
        )
    )
    mysql: MySQLSettings
    secrets: SecretSettings
    redis_url: str = field(
        metadata=setting(
            env="REDIS_URL",
            meaning="Redis (local: `redis://127.0.0.1:6380/0`); a stack: `rediss://` from its parameters",
        )
    )
    redis_ca_bundle: str | None = field(
        metadata=setting(
            env="REDIS_CA_BUNDLE",
            default=None,
            meaning=(
                "a CA bundle for Redis's TLS (the `stack` stage's local CA); unset, `rediss://` is verified against"
                " the runtime's public CAs (ElastiCache's)"
            ),
        )
    )
    redis_key_prefix: str = field(
        metadata=setting(
            env="REDIS_KEY_PREFIX", default=STAGE_KEY_PREFIX, meaning="the prefix of every Redis key of the stage"
        )
    )
    redis_timeout_s: float = field(
        metadata=setting(env="REDIS_TIMEOUT_S", default="1", meaning="Redis's socket timeout")
    )
    redis_max_connections: int = field(
        metadata=setting(
            env="REDIS_MAX_CONNECTIONS",
            default="50",
            minimum=1,
            meaning=(
                "Redis connections one API process keeps at most; a request waits (up to REDIS_TIMEOUT_S) for a free"
                " one. A Lambda environment uses one or two"
            ),
        )
    )
    redis_cooldown_s: float = field(
        metadata=setting(
            env="REDIS_COOLDOWN_S",
            default="5",
            meaning=(
                "how long the circuit breaker skips Redis once it is clearly unavailable (a refused connection,"
                " or 3 failures in a row)"
            ),
        )
    )
    cache_enabled: bool = field(
        metadata=setting(
            env="CACHE_ENABLED",
            default="true",
            meaning="false: every item read goes to MySQL (invalidations still run)",
        )
    )
    sqs_endpoint_url: str | None = field(
        metadata=setting(
            env="SQS_ENDPOINT_URL",
            meaning="LocalStack locally; empty: the SDK's own endpoint (`AWS_ENDPOINT_URL`, which the emulators set)",
        )
    )
    aws_region: str = field(
        metadata=setting(
            env="AWS_REGION",
            fallback="AWS_DEFAULT_REGION",
            default="us-east-1",
            meaning="the AWS region (Lambda sets it); unset or empty, AWS_DEFAULT_REGION's",
        )
    )
    log_queue_name: str = field(
        metadata=setting(
            env="LOG_QUEUE_NAME",
            default=STAGE_LOG_QUEUE,
            meaning="the log queue, made by a local stage's bootstrap or by the stack",
        )
    )
    log_queue_url: str | None = field(
        metadata=setting(
            env="LOG_QUEUE_URL",
            default=None,
            meaning="the queue's URL, set by the stack, so the API needs no `sqs:GetQueueUrl`",
        )
    )
    log_dlq_name: str = field(
        metadata=setting(env="LOG_DLQ_NAME", default=STAGE_LOG_DLQ, meaning="the log queue's dead-letter queue")
    )
    queue_max_receive_count: int = field(
        metadata=setting(
            env="QUEUE_MAX_RECEIVE_COUNT", default="5", minimum=1, meaning="receives before a message goes to the DLQ"
        )
    )
    queue_visibility_timeout_s: int = field(
        metadata=setting(
            env="QUEUE_VISIBILITY_TIMEOUT_S",
            default="360",
            meaning="the log queue's visibility timeout: at least 6 x the consumer's timeout",
        )
    )
    sqs_message_max_bytes: int = field(
        metadata=setting(
            env="SQS_MESSAGE_MAX_BYTES", default="262144", minimum=131072, meaning="packing limit: one SQS message"
        )
    )
    sqs_batch_max_bytes: int = field(
        metadata=setting(
            env="SQS_BATCH_MAX_BYTES", default="1048576", minimum=131072, meaning="packing limit: one SendMessageBatch"
        )
    )
    consumer_batch_size: int = field(
        metadata=setting(
            env="CONSUMER_BATCH_SIZE", default="100", minimum=1, meaning="the event source's batch: messages"
        )
    )
    consumer_batch_window_s: int = field(
        metadata=setting(
            env="CONSUMER_BATCH_WINDOW_S", default="1", meaning="the event source's batch: how long it gathers one"
        )
    )
    consumer_max_concurrency: int = field(
        metadata=setting(
            env="CONSUMER_MAX_CONCURRENCY",
            default="4",
            minimum=1,
            meaning="W: the consumer's concurrent writers, each with one MySQL connection (the connection budget)",
        )
    )
    insert_chunk_rows: int = field(
        metadata=setting(
            env="INSERT_CHUNK_ROWS",
            default="500",
            minimum=1,
            meaning="rows per INSERT statement (fewer when their bytes would exceed the server's `max_allowed_packet`)",
        )
    )
    consumer_retry_first_ms: int = field(
        metadata=setting(
            env="CONSUMER_RETRY_FIRST_MS",
            default="200",
            minimum=1,
            meaning="the consumer's first wait before trying MySQL again inside its invocation",
        )
    )
    consumer_retry_max_ms: int = field(
        metadata=setting(
            env="CONSUMER_RETRY_MAX_MS",
            default="2000",
            minimum=1,
            meaning="that wait doubles up to this (below the consumer's timeout)",
        )
    )
    redelivery_delay_base_s: int = field(
        metadata=setting(
            env="REDELIVERY_DELAY_BASE_S",
            default="5",
            meaning="a message given back returns after base x 2^(receives - 1) s",
        )
    )
    redelivery_delay_max_s: int = field(
        metadata=setting(
            env="REDELIVERY_DELAY_MAX_S",
            default="300",
            meaning="at most this (and at most QUEUE_VISIBILITY_TIMEOUT_S)",
        )
    )
    api_read_slots: int = field(
        metadata=setting(
            env="API_READ_SLOTS",
            default="8",
            minimum=1,
            meaning="R: MySQL reads the API runs at once, across all its instances (the connection budget)",
        )
    )
    api_throttle_rate_per_s: int = field(
        metadata=setting(
            env="API_THROTTLE_RATE_PER_S",
            default="500",
            minimum=1,
            meaning=(
                "a stack's API Gateway stage throttling: requests per second from every caller together (429"
                " past it, before the function runs); the stack's ApiThrottleRate parameter defaults to it"
            ),
        )
    )
    api_throttle_burst: int = field(
        metadata=setting(
            env="API_THROTTLE_BURST",
            default="1000",
            minimum=1,
            meaning="its burst (the stack's ApiThrottleBurst parameter)",
        )
    )
    api_key_read_slots: int = field(
        metadata=setting(
            env="API_KEY_READ_SLOTS",
            default="2",
            minimum=1,
            meaning="of R, the slots only key lookups use: no other read can hold them (below API_READ_SLOTS)",
        )
    )
    api_public_read_slots: int = field(
        metadata=setting(
            env="API_PUBLIC_READ_SLOTS",
            default="3",
            minimum=1,
            meaning=(
                "of R, the slots anonymous reads (`GET /items`) use, and all they may: the rest serve `GET /logs`"
                " and the admin (with API_KEY_READ_SLOTS, below API_READ_SLOTS)"
            ),
        )
    )
    admin_reserve_connections: int = field(
        metadata=setting(
            env="ADMIN_RESERVE_CONNECTIONS",
            default="4",
            meaning="connections kept free for administrators and maintenance (the connection budget's reserve)",
        )
    )
    slot_wait_ms: int = field(
        metadata=setting(env="SLOT_WAIT_MS", default="500", meaning="how long a request waits for a read slot")
    )
    slot_lease_s: int = field(
        metadata=setting(env="SLOT_LEASE_S", default="30", minimum=1, meaning="a read slot's lease")
    )
    retry_after_s: int = field(
        metadata=setting(env="RETRY_AFTER_S", default="1", minimum=1, meaning="the `Retry-After` of every 503")
    )
    item_cache_ttl_s: int = field(
        metadata=setting(env="ITEM_CACHE_TTL_S", default="60", minimum=1, meaning="how long a cached item is fresh")
    )
    item_stale_ttl_s: int = field(
        metadata=setting(
            env="ITEM_STALE_TTL_S", default="600", meaning="then how long it is still served while MySQL is unavailable"
        )
    )
    item_absent_ttl_s: int = field(
        metadata=setting(
            env="ITEM_ABSENT_TTL_S", default="5", minimum=1, meaning="how long an item's absence is cached"
        )
    )
    items_page_cache_ttl_s: int = field(
        metadata=setting(
            env="ITEMS_PAGE_CACHE_TTL_S",
            default="2",
            minimum=1,
            meaning="how long a page of `GET /items` is cached (a write does not drop it: pages lag writes this long)",
        )
    )
    log_cache_ttl_s: int = field(
        metadata=setting(
            env="LOG_CACHE_TTL_S", default="300", minimum=1, meaning="how long a stored log entry is cached"
        )
    )
    single_flight_wait_ms: int = field(
        metadata=setting(
            env="SINGLE_FLIGHT_WAIT_MS", default="1000", meaning="how long concurrent misses wait for the one load"
        )
    )
    max_body_bytes: int = field(
        metadata=setting(env="MAX_BODY_BYTES", default="65536", minimum=1024, meaning="the largest request body (413)")
    )
    max_batch_body_bytes: int = field(
        metadata=setting(
            env="MAX_BATCH_BODY_BYTES", default="5242880", minimum=1024, meaning="the largest batch request body (413)"
        )
    )
    otlp_max_records: int = field(
        metadata=setting(
            env="OTLP_MAX_RECORDS",
            default="2048",
            minimum=1,
            meaning=(
                "the most log records one OTLP export (POST /v1/logs) may carry (413); the OpenTelemetry SDKs"
                " batch 512 by default. Each record costs the key one unit: a key's burst must hold an export"
                " (KEY_DEFAULT_BURST does)"
            ),
        )
    )
    max_error_details: int = field(
        metadata=setting(
            env="MAX_ERROR_DETAILS",
            default="20",
            minimum=1,
            meaning="problems listed in an error's `details` (then one line counting the rest)",
        )
    )
    api_keys_required: bool = field(
        metadata=setting(
            env="API_KEYS_REQUIRED",
            default="true",
            meaning="false lets `/logs` in without a key: the benchmark's baseline only; refused by a deployed stack",
        )
    )
    key_cache_ttl_s: int = field(
        metadata=setting(
            env="KEY_CACHE_TTL_S",
            default="30",
            minimum=1,
            meaning="how long a key's cached copy is used (the bound on a missed revocation)",
        )
    )
    key_stale_ttl_s: int = field(
        metadata=setting(
            env="KEY_STALE_TTL_S",
            default="86400",
            meaning="how long a cached key is still honoured while MySQL is down",
        )
    )
    key_absent_ttl_s: int = field(
        metadata=setting(
            env="KEY_ABSENT_TTL_S", default="10", minimum=1, meaning="how long an unknown token's absence is kept"
        )
    )
    key_default_rate_per_s: int = field(
        metadata=setting(
            env="KEY_DEFAULT_RATE_PER_S",
            default="100",
            minimum=1,
            meaning="a new key's rate limit (entries per second), unless `POST /keys` says otherwise",
        )
    )
    key_default_burst: int = field(
        metadata=setting(
            env="KEY_DEFAULT_BURST",
            default="2048",
            minimum=1,
            meaning=(
                "a new key's burst, unless `POST /keys` says otherwise: the most entries one request may cost"
                " (413 past it); the default holds one OTLP export of OTLP_MAX_RECORDS"
            ),
        )
    )
    key_last_used_interval_s: int = field(
        metadata=setting(
            env="KEY_LAST_USED_INTERVAL_S",
            default="300",
            minimum=1,
            meaning="how often a key's `last_used_at` is written (at most)",
        )
    )
    auth_failure_rate_per_s: int = field(
        metadata=setting(
            env="AUTH_FAILURE_RATE_PER_S",
            default="2",
            minimum=1,
            meaning=(
                "failed attempts (and key lookups in MySQL) per second per client address (an IPv6 address counts"
                " by its /64)"
            ),
        )
    )
    auth_failure_burst: int = field(
        metadata=setting(env="AUTH_FAILURE_BURST", default="20", minimum=1, meaning="their burst per client address")
    )
    public_rate_per_s: int = field(
        metadata=setting(
            env="PUBLIC_RATE_PER_S",
            default="20",
            minimum=1,
            meaning=(
                "requests per second to the routes anyone may call (`/items` reads, `/health`, `/openapi.json`),"
                " per client address (an IPv6 address counts by its /64)"
            ),
        )
    )
    public_burst: int = field(
        metadata=setting(env="PUBLIC_BURST", default="100", minimum=1, meaning="their burst per client address")
    )
    key_lookup_rate_per_s: int = field(
        metadata=setting(
            env="KEY_LOOKUP_RATE_PER_S",
            default="50",
            minimum=1,
            meaning=(
                "reads of keys not in the cache, per second across every API instance: past it, a key seen in the"
                " last KEY_STALE_TTL_S is still honoured and others get 503 (a flood of made-up tokens from many"
                " addresses cannot reach MySQL faster)"
            ),
        )
    )
    key_lookup_burst: int = field(
        metadata=setting(env="KEY_LOOKUP_BURST", default="100", minimum=1, meaning="their burst")
    )
    log_timestamp_max_age_s: int = field(
        metadata=setting(
            env="LOG_TIMESTAMP_MAX_AGE_S",
            default="604800",
            minimum=1,
            meaning="how far before the time received a client's `timestamp` may be",
        )
    )
    log_timestamp_max_ahead_s: int = field(
        metadata=setting(
            env="LOG_TIMESTAMP_MAX_AHEAD_S",
            default="300",
            meaning="how far after the time received a client's `timestamp` may be",
        )
    )
    logs_page_max_bytes: int = field(
        metadata=setting(
            env="LOGS_PAGE_MAX_BYTES",
            default="2097152",
            minimum=65536,
            meaning="the most JSON one `GET /logs` page carries",
        )
    )
    search_default_span_s: int = field(
        metadata=setting(
            env="SEARCH_DEFAULT_SPAN_S",
            default="3600",
            minimum=60,
            meaning="a search (`q`, `attr.*`) without `since` looks this far back from `until`",
        )
    )
    search_max_span_s: int = field(
        metadata=setting(
            env="SEARCH_MAX_SPAN_S",
            default="21600",
            minimum=60,
            meaning=(
                "the longest `since`..`until` a search may read, every row of it when nothing matches (6 h of 10M rows"
                " over 30 days: under 500 ms, `make bench-scale`): past it, 400; a search that outlasts"
                " MYSQL_STATEMENT_TIMEOUT_S answers 503 query_timeout"
            ),
        )
    )
    stats_max_buckets: int = field(
        metadata=setting(
            env="STATS_MAX_BUCKETS",
            default="2000",
            minimum=10,
            meaning="the most buckets one `GET /logs/stats` answers (a day at 1m is 1,440; 30 days at 1h, 720)",
        )
    )
    tail_max_commits: int = field(
        metadata=setting(
            env="TAIL_MAX_COMMITS",
            default="500",
            minimum=1,
            meaning=(
                "the most writer transactions one `GET /logs/tail` reads past its cursor (each holds up to a batch);"
                " its cursor moves past them even when the filters matched none"
            ),
        )
    )
    log_absent_ttl_s: int = field(
        metadata=setting(
            env="LOG_ABSENT_TTL_S",
            default="1",
            minimum=1,
            meaning="how long `GET /logs/{id}` remembers that an id is not stored",
        )
    )
    log_retention_days: int = field(
        metadata=setting(
            env="LOG_RETENTION_DAYS",
            default="30",
            minimum=1,
            meaning=(
                "a day's partition of `logs` is dropped once every row in it is this old (by `timestamp`);"
                " must exceed LOG_TIMESTAMP_MAX_AGE_S"
            ),
        )
    )
    log_partitions_ahead_days: int = field(
        metadata=setting(
            env="LOG_PARTITIONS_AHEAD_DAYS",
            default="7",
            minimum=1,
            meaning=(
                "days of partitions made ahead of today; must cover LOG_TIMESTAMP_MAX_AHEAD_S"
                " plus the hour between runs"
            ),
        )
    )
    log_id_window_days: int = field(
        metadata=setting(
            env="LOG_ID_WINDOW_DAYS",
            default="15",
            minimum=15,
            meaning="how long a stored id is remembered for idempotency (longer than SQS keeps a message, 14 days)",
        )
    )
    partition_lock_wait_s: int = field(
        metadata=setting(
            env="PARTITION_LOCK_WAIT_S",
            default="10",
            minimum=1,
            meaning=(
                "how long maintenance waits for the `logs` table's lock or a row lock (writers wait behind it"
                " meanwhile, each up to MYSQL_STATEMENT_TIMEOUT_S)"
            ),
        )
    )
    partition_statement_timeout_s: int = field(
        metadata=setting(
            env="PARTITION_STATEMENT_TIMEOUT_S",
            default="60",
            minimum=1,
            meaning=(
                "the longest one maintenance statement may run (below the maintenance function's 120 s): the server"
                " stops it on MariaDB; on MySQL 8 (a SELECT excepted) the client gives up 5 s later"
            ),
        )
    )
