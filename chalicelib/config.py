"""Every tunable of sluice, read from the environment in one place.

The values live in `.chalice/config.json` (per stage). Chalice puts them into the
environment before it imports `app.py`, both in Lambda and for `chalice local`,
`chalice deploy` and `chalice package`, so the SQS decorator can read them at import.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.errors import ConfigError

SECRETS_FROM_ENV = "env"  # local stages: plain values in environment variables
SECRETS_FROM_SECRETS_MANAGER = "secretsmanager"  # deployed stacks: AWS Secrets Manager

# Each secret a function may need, with its fields and, for the `env` source, the variable
# holding each field. With `secretsmanager`, <NAME>_SECRET_ID names the secret (an ARN), whose
# value is a JSON object with these fields (the shape RDS gives its own secrets).
SECRET_FIELDS: dict[str, dict[str, str]] = {
    "mysql_api": {"username": "MYSQL_API_USER", "password": "MYSQL_API_PASSWORD"},
    "mysql_writer": {"username": "MYSQL_WRITER_USER", "password": "MYSQL_WRITER_PASSWORD"},
    "mysql_admin": {"username": "MYSQL_ADMIN_USER", "password": "MYSQL_ADMIN_PASSWORD"},
    "mysql_maintainer": {"username": "MYSQL_MAINTAINER_USER", "password": "MYSQL_MAINTAINER_PASSWORD"},
    "admin_token": {"token": "ADMIN_TOKEN"},
    "redis": {"username": "REDIS_USERNAME", "password": "REDIS_PASSWORD"},
}


def secret_id_variable(name: str) -> str:
    """The environment variable naming the Secrets Manager secret `name` (mysql_api -> MYSQL_API_SECRET_ID)."""
    return f"{name.upper()}_SECRET_ID"


@dataclass(frozen=True)
class SecretSettings:
    """Where the function's secrets come from. Only the secrets a function needs are configured."""

    source: str  # SECRETS_FROM_ENV or SECRETS_FROM_SECRETS_MANAGER
    ids: Mapping[str, str] = field(default_factory=dict)  # secretsmanager: name -> secret ARN or name
    plain: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # env: name -> fields


@dataclass(frozen=True)
class MySQLSettings:
    host: str
    port: int
    database: str
    tls: bool
    ca_bundle: str | None  # with TLS: the CA bundle to verify the server against
    connect_timeout_s: float
    read_timeout_s: float
    statement_timeout_s: float  # the server stops an API statement after this (max_statement_time)


@dataclass(frozen=True)
class Settings:
    stage: str
    mysql: MySQLSettings
    secrets: SecretSettings
    redis_url: str
    redis_ca_bundle: str | None
    redis_key_prefix: str
    redis_timeout_s: float
    redis_max_connections: int
    redis_cooldown_s: float
    cache_enabled: bool
    sqs_endpoint_url: str | None
    aws_region: str
    log_queue_name: str
    log_queue_url: str | None
    log_dlq_name: str
    queue_max_receive_count: int
    queue_visibility_timeout_s: int
    sqs_message_max_bytes: int
    sqs_batch_max_bytes: int
    consumer_batch_size: int
    consumer_batch_window_s: int
    consumer_max_concurrency: int
    insert_chunk_rows: int
    consumer_retry_first_ms: int
    consumer_retry_max_ms: int
    redelivery_delay_base_s: int
    redelivery_delay_max_s: int
    api_read_slots: int
    admin_reserve_connections: int
    slot_wait_ms: int
    slot_lease_s: int
    retry_after_s: int
    item_cache_ttl_s: int
    item_stale_ttl_s: int
    item_absent_ttl_s: int
    log_cache_ttl_s: int
    single_flight_wait_ms: int
    max_body_bytes: int
    max_batch_body_bytes: int
    max_error_details: int
    api_keys_required: bool
    key_cache_ttl_s: int
    key_stale_ttl_s: int
    key_absent_ttl_s: int
    key_default_rate_per_s: int
    key_default_burst: int
    key_last_used_interval_s: int
    auth_failure_rate_per_s: int
    auth_failure_burst: int
    log_timestamp_max_age_s: int
    log_timestamp_max_ahead_s: int
    logs_page_max_bytes: int
    log_absent_ttl_s: int
    log_retention_days: int  # partitions older than this are dropped (chalicelib/database/partitions.py)
    log_partitions_ahead_days: int  # days created ahead of today
    log_id_window_days: int  # how long a stored id is remembered (longer than SQS keeps a message)
    partition_lock_wait_s: int  # how long maintenance waits for the logs table's lock
    partition_statement_timeout_s: int  # the longest one maintenance statement may run


class _Reader:
    """Reads typed values from an environment mapping, naming the variable on error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        """The value, or None when the variable is unset or empty."""
        return self._environ.get(name) or None

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        value = self._environ.get(name)
        if value is None:
            raise ConfigError(f"environment variable {name} is not set")
        if not value and not allow_empty:
            raise ConfigError(f"environment variable {name} is empty")
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int:
        raw = self.text(name)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None
        if value < minimum:
            raise ConfigError(f"environment variable {name}={value} is below {minimum}")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in choices:
            raise ConfigError(f"environment variable {name}={value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, name: str) -> float:
        raw = self.text(name)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None
        if value <= 0:
            raise ConfigError(f"environment variable {name}={value} must be positive")
        return value

    def flag(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment variable {name}={raw!r} is not a boolean")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment; raise ConfigError naming what is missing or wrong."""
    source = os.environ if environ is None else environ
    env = _Reader(source)
    region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION") or "us-east-1"
    return Settings(
        stage=env.text("SLUICE_STAGE"),
        mysql=_mysql_settings(env),
        secrets=_secret_settings(env),
        redis_url=env.text("REDIS_URL"),
        redis_ca_bundle=env.optional("REDIS_CA_BUNDLE"),
        redis_key_prefix=env.text("REDIS_KEY_PREFIX"),
        redis_timeout_s=env.number("REDIS_TIMEOUT_S"),
        redis_max_connections=env.integer("REDIS_MAX_CONNECTIONS", minimum=1),
        redis_cooldown_s=env.number("REDIS_COOLDOWN_S"),
        cache_enabled=env.flag("CACHE_ENABLED"),
        sqs_endpoint_url=env.text("SQS_ENDPOINT_URL", allow_empty=True) or None,
        aws_region=region,
        log_queue_name=env.text("LOG_QUEUE_NAME"),
        log_queue_url=env.optional("LOG_QUEUE_URL"),
        log_dlq_name=env.text("LOG_DLQ_NAME"),
        queue_max_receive_count=env.integer("QUEUE_MAX_RECEIVE_COUNT", minimum=1),
        queue_visibility_timeout_s=env.integer("QUEUE_VISIBILITY_TIMEOUT_S"),
        sqs_message_max_bytes=env.integer("SQS_MESSAGE_MAX_BYTES", minimum=131072),
        sqs_batch_max_bytes=env.integer("SQS_BATCH_MAX_BYTES", minimum=131072),
        consumer_batch_size=env.integer("CONSUMER_BATCH_SIZE", minimum=1),
        consumer_batch_window_s=env.integer("CONSUMER_BATCH_WINDOW_S"),
        consumer_max_concurrency=env.integer("CONSUMER_MAX_CONCURRENCY", minimum=1),
        insert_chunk_rows=env.integer("INSERT_CHUNK_ROWS", minimum=1),
        consumer_retry_first_ms=env.integer("CONSUMER_RETRY_FIRST_MS", minimum=1),
        consumer_retry_max_ms=env.integer("CONSUMER_RETRY_MAX_MS", minimum=1),
        redelivery_delay_base_s=env.integer("REDELIVERY_DELAY_BASE_S"),
        redelivery_delay_max_s=env.integer("REDELIVERY_DELAY_MAX_S"),
        api_read_slots=env.integer("API_READ_SLOTS", minimum=1),
        admin_reserve_connections=env.integer("ADMIN_RESERVE_CONNECTIONS"),
        slot_wait_ms=env.integer("SLOT_WAIT_MS"),
        slot_lease_s=env.integer("SLOT_LEASE_S", minimum=1),
        retry_after_s=env.integer("RETRY_AFTER_S", minimum=1),
        item_cache_ttl_s=env.integer("ITEM_CACHE_TTL_S", minimum=1),
        item_stale_ttl_s=env.integer("ITEM_STALE_TTL_S"),
        item_absent_ttl_s=env.integer("ITEM_ABSENT_TTL_S", minimum=1),
        log_cache_ttl_s=env.integer("LOG_CACHE_TTL_S", minimum=1),
        single_flight_wait_ms=env.integer("SINGLE_FLIGHT_WAIT_MS"),
        max_body_bytes=env.integer("MAX_BODY_BYTES", minimum=1024),
        max_batch_body_bytes=env.integer("MAX_BATCH_BODY_BYTES", minimum=1024),
        max_error_details=env.integer("MAX_ERROR_DETAILS", minimum=1),
        api_keys_required=_api_keys_required(env),
        key_cache_ttl_s=env.integer("KEY_CACHE_TTL_S", minimum=1),
        key_stale_ttl_s=env.integer("KEY_STALE_TTL_S"),
        key_absent_ttl_s=env.integer("KEY_ABSENT_TTL_S", minimum=1),
        key_default_rate_per_s=env.integer("KEY_DEFAULT_RATE_PER_S", minimum=1),
        key_default_burst=env.integer("KEY_DEFAULT_BURST", minimum=1),
        key_last_used_interval_s=env.integer("KEY_LAST_USED_INTERVAL_S", minimum=1),
        auth_failure_rate_per_s=env.integer("AUTH_FAILURE_RATE_PER_S", minimum=1),
        auth_failure_burst=env.integer("AUTH_FAILURE_BURST", minimum=1),
        log_timestamp_max_age_s=env.integer("LOG_TIMESTAMP_MAX_AGE_S", minimum=1),
        log_timestamp_max_ahead_s=env.integer("LOG_TIMESTAMP_MAX_AHEAD_S"),
        logs_page_max_bytes=env.integer("LOGS_PAGE_MAX_BYTES", minimum=65536),
        log_absent_ttl_s=env.integer("LOG_ABSENT_TTL_S", minimum=1),
        log_retention_days=env.integer("LOG_RETENTION_DAYS", minimum=1),
        log_partitions_ahead_days=env.integer("LOG_PARTITIONS_AHEAD_DAYS", minimum=1),
        log_id_window_days=env.integer("LOG_ID_WINDOW_DAYS", minimum=15),
        partition_lock_wait_s=env.integer("PARTITION_LOCK_WAIT_S", minimum=1),
        partition_statement_timeout_s=env.integer("PARTITION_STATEMENT_TIMEOUT_S", minimum=1),
    )


def _mysql_settings(env: _Reader) -> MySQLSettings:
    tls = env.flag("MYSQL_TLS")
    ca_bundle = env.optional("MYSQL_CA_BUNDLE")
    if tls and ca_bundle is None:
        # Never fall back to the system's CA store (RDS certificates chain to Amazon RDS's own CA)
        # or to no verification at all.
        raise ConfigError("MYSQL_TLS is on but MYSQL_CA_BUNDLE is not set: name the CA bundle to verify MySQL with")
    return MySQLSettings(
        host=env.text("MYSQL_HOST"),
        port=env.integer("MYSQL_PORT", minimum=1),
        database=env.text("MYSQL_DATABASE"),
        tls=tls,
        ca_bundle=ca_bundle,
        connect_timeout_s=env.number("MYSQL_CONNECT_TIMEOUT_S"),
        read_timeout_s=env.number("MYSQL_READ_TIMEOUT_S"),
        statement_timeout_s=env.number("MYSQL_STATEMENT_TIMEOUT_S"),
    )


def _api_keys_required(env: _Reader) -> bool:
    required = env.flag("API_KEYS_REQUIRED")
    if not required and env.text("SECRETS_SOURCE") == SECRETS_FROM_SECRETS_MANAGER:
        raise ConfigError("API_KEYS_REQUIRED is off in a deployed stack: only a local stage may run /logs without keys")
    return required


def _secret_settings(env: _Reader) -> SecretSettings:
    source = env.choice("SECRETS_SOURCE", (SECRETS_FROM_ENV, SECRETS_FROM_SECRETS_MANAGER))
    if source == SECRETS_FROM_SECRETS_MANAGER:
        ids = {name: env.optional(secret_id_variable(name)) for name in SECRET_FIELDS}
        return SecretSettings(source, ids={name: value for name, value in ids.items() if value})
    plain: dict[str, dict[str, str]] = {}
    for name, fields in SECRET_FIELDS.items():
        values = {key: env.optional(variable) for key, variable in fields.items()}
        if any(values.values()):
            plain[name] = {key: value or "" for key, value in values.items()}
    return SecretSettings(source, plain=plain)
