"""The composition root: the stage's Settings, and every client and service built from them.

Each get_*() builds its object once per process, on first use (chalicelib/lazy.py), so a warm
Lambda environment reuses it and an invocation that needs no Redis never connects to it. Tests
replace SETTINGS (monkeypatch) and call reset_clients(); they reach collaborators through these
getters and the objects' public properties, never through private attributes.
"""

import dataclasses
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib import aws
from chalicelib.config import Settings, load_settings
from chalicelib.consumer.consumer import LogConsumer, RetryPolicy
from chalicelib.consumer.writer import LogWriter
from chalicelib.database.budget import READ_TIMEOUT_MARGIN_S
from chalicelib.database.partitions import PartitionMaintainer
from chalicelib.items.service import ItemService
from chalicelib.items.store import ItemStore
from chalicelib.keys.gate import Gate
from chalicelib.keys.service import KeyService
from chalicelib.keys.store import KeyStore
from chalicelib.lazy import once
from chalicelib.logs.queue import LogQueue
from chalicelib.logs.reading import LogReading
from chalicelib.logs.service import LogService
from chalicelib.logs.stats import StatsStore
from chalicelib.logs.store import LogStore
from chalicelib.logs.tail import TailStore
from chalicelib.metrics import PipelineMetrics
from chalicelib.mysql.connector import Database, MySQLConnector
from chalicelib.otlp.service import OtlpService
from chalicelib.redis.cache import Cache
from chalicelib.redis.circuit import RedisCircuit
from chalicelib.redis.ratelimit import Limiter
from chalicelib.redis.slots import SlotPool
from chalicelib.secrets import SecretStore
from chalicelib.tls import bundle_path
from chalicelib.web.callers import CallerLimits

SETTINGS: Settings = load_settings()


@once
def get_secrets() -> SecretStore:
    return SecretStore(SETTINGS.secrets, lambda: aws.client("secretsmanager", SETTINGS.aws_region))


@once
def get_redis() -> redis.Redis:
    secrets = get_secrets()
    auth = secrets.credentials("redis") if secrets.has("redis") else None
    tls: dict[str, Any] = {}
    if SETTINGS.redis_ca_bundle:
        tls = {"ssl_ca_certs": str(bundle_path(SETTINGS.redis_ca_bundle, "REDIS_CA_BUNDLE"))}
    # A bounded pool that waits for a free connection (redis-py's default pool raises past 100,
    # and a threaded server with more requests than that in flight would read it as Redis down).
    pool = redis.BlockingConnectionPool.from_url(
        SETTINGS.redis_url,
        max_connections=SETTINGS.redis_max_connections,
        timeout=SETTINGS.redis_timeout_s,
        username=auth.username if auth else None,
        password=auth.password if auth else None,
        socket_timeout=SETTINGS.redis_timeout_s,
        socket_connect_timeout=SETTINGS.redis_timeout_s,
        retry=Retry(NoBackoff(), 0),  # fail fast; the circuit breaker decides when to try again
        health_check_interval=30,
        **tls,
    )
    return redis.Redis(connection_pool=pool)


@once
def get_circuit() -> RedisCircuit:
    return RedisCircuit(SETTINGS.redis_cooldown_s)


@once
def get_cache() -> Cache:
    return Cache(
        get_redis(),
        SETTINGS.redis_key_prefix,
        get_circuit(),
        single_flight_wait_ms=SETTINGS.single_flight_wait_ms,
        enabled=SETTINGS.cache_enabled,
    )


@once
def get_key_cache() -> Cache:
    # Keys are always cached (CACHE_ENABLED is about items): a valid request costs no MySQL read.
    return Cache(
        get_redis(), SETTINGS.redis_key_prefix, get_circuit(), single_flight_wait_ms=SETTINGS.single_flight_wait_ms
    )


@once
def get_api_connector() -> MySQLConnector:
    return MySQLConnector(
        SETTINGS.mysql, get_secrets().source("mysql_api"), statement_timeout_s=SETTINGS.mysql.statement_timeout_s
    )


def _api_database(slots_name: str, slots: int) -> Database:
    """The API's MySQL account within its own share of the R read slots."""
    pool = SlotPool(
        get_redis(), f"{SETTINGS.redis_key_prefix}{slots_name}", slots, SETTINGS.slot_lease_s, get_circuit()
    )
    return Database(get_api_connector(), pool, SETTINGS.slot_wait_ms)


@once
def get_database() -> Database:
    """`GET /logs`, the admin's work and the health check: the read slots neither keys nor anonymous reads use."""
    shared = SETTINGS.api_read_slots - SETTINGS.api_key_read_slots - SETTINGS.api_public_read_slots
    return _api_database("read-slots", shared)


@once
def get_key_database() -> Database:
    """Key lookups: API_KEY_READ_SLOTS of their own, which no other read can hold."""
    return _api_database("key-read-slots", SETTINGS.api_key_read_slots)


@once
def get_public_database() -> Database:
    """Reads anyone may cause (`GET /items`): API_PUBLIC_READ_SLOTS, and no more."""
    return _api_database("public-read-slots", SETTINGS.api_public_read_slots)


@once
def get_item_store() -> ItemStore:
    """Item reads (anyone's)."""
    return ItemStore(get_public_database())


@once
def get_item_writes() -> ItemStore:
    """Item writes (the admin's), beside GET /logs: a flood of anonymous reads cannot hold them up."""
    return ItemStore(get_database())


@once
def get_log_store() -> LogStore:
    return LogStore(get_database())


@once
def get_reading() -> LogReading:
    return LogReading(StatsStore(get_database()), TailStore(get_database(), SETTINGS.tail_max_commits), SETTINGS)


@once
def get_key_store() -> KeyStore:
    return KeyStore(get_key_database())


@once
def get_sqs() -> Any:
    return aws.client("sqs", SETTINGS.aws_region, SETTINGS.sqs_endpoint_url)


@once
def get_queue() -> LogQueue:
    return LogQueue(
        get_sqs(),
        SETTINGS.log_queue_name,
        SETTINGS.sqs_message_max_bytes,
        SETTINGS.sqs_batch_max_bytes,
        queue_url=SETTINGS.log_queue_url,
    )


@once
def get_items() -> ItemService:
    return ItemService(get_item_store(), get_cache(), SETTINGS, writes=get_item_writes())


@once
def get_logs() -> LogService:
    return LogService(get_queue(), get_log_store(), get_cache(), SETTINGS, get_metrics())


@once
def get_otlp() -> OtlpService:
    return OtlpService(get_queue(), SETTINGS, get_metrics())


@once
def get_limiter() -> Limiter:
    return Limiter(get_redis(), get_circuit())


@once
def get_callers() -> CallerLimits:
    return CallerLimits(get_limiter(), SETTINGS)


@once
def get_gate() -> Gate:
    return Gate(
        get_redis(),
        get_circuit(),
        get_key_cache(),
        get_key_store(),
        SETTINGS,
        admin_token=lambda: get_secrets().token("admin_token"),
        limiter=get_limiter(),
        callers=get_callers(),
    )


@once
def get_keys() -> KeyService:
    return KeyService(get_key_store(), get_gate(), SETTINGS)


@once
def get_writer() -> LogWriter:
    # No server statement cap (a batch's INSERT may take its time); its lock waits end at MYSQL_STATEMENT_TIMEOUT_S.
    connector = MySQLConnector(
        SETTINGS.mysql, get_secrets().source("mysql_writer"), lock_wait_s=SETTINGS.mysql.statement_timeout_s
    )
    return LogWriter(
        connector,
        SETTINGS.insert_chunk_rows,
        connect_wait_s=SETTINGS.slot_wait_ms / 1000,
        keys_required=SETTINGS.api_keys_required,
    )


@once
def get_metrics() -> PipelineMetrics:
    return PipelineMetrics(SETTINGS.stage)


@once
def get_maintainer() -> PartitionMaintainer:
    # Its own limits: a partition split may take longer than any request's query.
    limit = SETTINGS.partition_statement_timeout_s
    mysql = dataclasses.replace(SETTINGS.mysql, statement_timeout_s=limit, read_timeout_s=limit + READ_TIMEOUT_MARGIN_S)
    connector = MySQLConnector(
        mysql,
        get_secrets().source("mysql_maintainer"),
        statement_timeout_s=limit,
        lock_wait_s=SETTINGS.partition_lock_wait_s,
    )
    return PartitionMaintainer(connector, SETTINGS)


@once
def get_consumer() -> LogConsumer:
    policy = RetryPolicy(
        first_delay_s=SETTINGS.consumer_retry_first_ms / 1000,
        max_delay_s=SETTINGS.consumer_retry_max_ms / 1000,
        attempt_s=SETTINGS.mysql.connect_timeout_s + SETTINGS.mysql.read_timeout_s,
        redelivery_base_s=SETTINGS.redelivery_delay_base_s,
        redelivery_max_s=SETTINGS.redelivery_delay_max_s,
    )
    return LogConsumer(get_writer(), get_queue(), policy, get_metrics())


GETTERS = (
    get_secrets,
    get_redis,
    get_circuit,
    get_cache,
    get_key_cache,
    get_api_connector,
    get_database,
    get_key_database,
    get_public_database,
    get_item_store,
    get_item_writes,
    get_log_store,
    get_key_store,
    get_sqs,
    get_queue,
    get_items,
    get_logs,
    get_otlp,
    get_limiter,
    get_callers,
    get_gate,
    get_keys,
    get_writer,
    get_metrics,
    get_maintainer,
    get_consumer,
)


def reset_clients() -> None:
    """Forget every built client (tests use it after changing SETTINGS)."""
    for getter in GETTERS:
        getter.cache_clear()
