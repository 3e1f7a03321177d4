"""sluice: cached reads, queued log writes, and a MySQL writer with a hard connection budget.

Wiring only: each route parses, calls chalicelib, returns. Clients are built lazily, once, by the
get_*() functions, so a warm Lambda environment reuses them.
"""

import dataclasses
import functools
from typing import Any

import boto3
import botocore.config
import redis
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from chalice.app import Chalice, CloudWatchEvent, Rate, Response, SQSEvent
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib import custom_resource, http, openapi
from chalicelib.apikeys import SCOPE_READ, SCOPE_WRITE
from chalicelib.auth import Admission, Gate
from chalicelib.budget import READ_TIMEOUT_MARGIN_S
from chalicelib.cache import Cache, RedisCircuit
from chalicelib.config import Settings, load_settings
from chalicelib.consumer import LogConsumer, RetryPolicy
from chalicelib.db import Database, MySQLConnector
from chalicelib.health import check_health
from chalicelib.items import ItemService
from chalicelib.keys import KeyService
from chalicelib.keystore import KeyStore
from chalicelib.lazy import once
from chalicelib.logs import LogService
from chalicelib.metrics import PipelineMetrics
from chalicelib.partitions import PartitionMaintainer
from chalicelib.provision import provision_database
from chalicelib.queue import LogQueue
from chalicelib.secrets import SecretStore
from chalicelib.slots import SlotPool
from chalicelib.tls import bundle_path
from chalicelib.writer import LogWriter

SETTINGS: Settings = load_settings()

logger = Logger(service="sluice")
copy_config_to_registered_loggers(source_logger=logger, include={"chalicelib"})

app = Chalice(app_name="sluice", configure_logs=False)
app.register_middleware(http.normalize_chalice_errors, "http")
json_errors = http.json_errors(SETTINGS.retry_after_s, lambda: app.current_request)
BODY_ROUTE = {"content_types": ["*/*"]}  # read_json_body answers 415 in our error shape
# AWS calls fail fast, well inside the API's 29 s: the client sees a 503 rather than a timeout.
AWS_CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=1, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
)


def _aws_client(service: str, endpoint_url: str | None = None) -> Any:
    return boto3.client(service, region_name=SETTINGS.aws_region, endpoint_url=endpoint_url, config=AWS_CLIENT_CONFIG)


@once
def get_secrets() -> SecretStore:
    return SecretStore(SETTINGS.secrets, lambda: _aws_client("secretsmanager"))


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
def get_database() -> Database:
    connector = MySQLConnector(
        SETTINGS.mysql, get_secrets().source("mysql_api"), statement_timeout_s=SETTINGS.mysql.statement_timeout_s
    )
    slots = SlotPool(
        get_redis(),
        f"{SETTINGS.redis_key_prefix}read-slots",
        SETTINGS.api_read_slots,
        SETTINGS.slot_lease_s,
        get_circuit(),
    )
    return Database(connector, slots, SETTINGS.slot_wait_ms)


@once
def get_sqs() -> Any:
    return _aws_client("sqs", SETTINGS.sqs_endpoint_url)


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
    return ItemService(get_database(), get_cache(), SETTINGS)


@once
def get_logs() -> LogService:
    return LogService(get_queue(), get_database(), get_cache(), SETTINGS, get_metrics())


@once
def get_gate() -> Gate:
    return Gate(
        get_redis(),
        get_circuit(),
        get_key_cache(),
        KeyStore(get_database()),
        SETTINGS,
        admin_token=lambda: get_secrets().token("admin_token"),
    )


@once
def get_keys() -> KeyService:
    return KeyService(KeyStore(get_database()), get_gate(), SETTINGS)


@once
def get_writer() -> LogWriter:
    connector = MySQLConnector(SETTINGS.mysql, get_secrets().source("mysql_writer"))
    return LogWriter(connector, SETTINGS.insert_chunk_rows, connect_wait_s=SETTINGS.slot_wait_ms / 1000)


@once
def get_metrics() -> PipelineMetrics:
    return PipelineMetrics(SETTINGS.stage)


@once
def get_maintainer() -> PartitionMaintainer:
    # Its own limits: a partition split may take longer than any request's query.
    limit = SETTINGS.partition_statement_timeout_s
    mysql = dataclasses.replace(SETTINGS.mysql, statement_timeout_s=limit, read_timeout_s=limit + READ_TIMEOUT_MARGIN_S)
    return PartitionMaintainer(MySQLConnector(mysql, get_secrets().source("mysql_maintainer")), SETTINGS)


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
    get_database,
    get_sqs,
    get_queue,
    get_items,
    get_logs,
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


def _request() -> Any:
    assert app.current_request is not None
    return app.current_request


def _admin() -> None:
    """Let only the admin token in."""
    request = _request()
    get_gate().admit_admin(http.bearer_token(request), http.client_address(request))


def _key(scope: str) -> http.Admit:
    """What lets a /logs request in: the caller's key, for `scope`, charged per entry."""
    request = _request()
    token = get_gate().check_token(http.bearer_token(request), http.client_address(request))

    def admit(cost: int, sources: list[str]) -> Admission:
        return get_gate().admit_key(token, http.client_address(request), scope, cost, sources)

    return admit


def _answer(body: Any, admission: Admission, status: int) -> Response:
    """A /logs answer, with the key's RateLimit fields."""
    return Response(body=body, status_code=status, headers=dict(admission.headers()))


@app.route("/health", methods=["GET"])
@json_errors
def health() -> dict[str, str]:
    """Anyone: the function answers (touches no dependency)."""
    return {"status": "ok"}


@app.route("/health/dependencies", methods=["GET"])
@json_errors
def health_dependencies() -> Response:
    """The admin token: MySQL, Redis and SQS, each asked directly."""
    _admin()
    ok, body = check_health(get_database(), get_redis(), get_queue())
    headers: dict[str, str | list[str]] = {} if ok else {"Retry-After": str(SETTINGS.retry_after_s)}
    return Response(body=body, status_code=200 if ok else 503, headers=headers)


@app.route("/openapi.json", methods=["GET"])
@json_errors
def openapi_description() -> dict[str, Any]:
    """Anyone: this API's OpenAPI 3.1 description (openapi.json)."""
    return openapi.document()


@app.route("/items", methods=["GET"])
@json_errors
def list_items() -> dict[str, Any]:
    """Anyone."""
    return get_items().list(http.query_params(_request()))


@app.route("/items/{item_id}", methods=["GET"])
@json_errors
def get_item(item_id: str) -> Response:
    """Anyone."""
    loaded = get_items().get(item_id)
    headers: dict[str, str | list[str]] = {"X-Cache": "miss" if loaded.source == "miss" else "hit"}
    headers["Age"] = str(int(loaded.age_s))
    if loaded.source == "stale":
        headers["X-Cache-Stale"] = "true"
    return Response(body=loaded.value, status_code=200, headers=headers)


@app.route("/items/{item_id}", methods=["PUT"], **BODY_ROUTE)
@json_errors
def put_item(item_id: str) -> Response:
    """The admin token."""
    _admin()
    item, created = get_items().put(item_id, http.read_json_body(_request(), SETTINGS.max_body_bytes))
    return Response(body=item, status_code=201 if created else 200)


@app.route("/items/{item_id}", methods=["DELETE"])
@json_errors
def delete_item(item_id: str) -> Response:
    """The admin token."""
    _admin()
    get_items().delete(item_id)
    return Response(body="", status_code=204)


@app.route("/keys", methods=["POST"], **BODY_ROUTE)
@json_errors
def create_key() -> Response:
    """The admin token."""
    _admin()
    return Response(body=get_keys().create(http.read_json_body(_request(), SETTINGS.max_body_bytes)), status_code=201)


@app.route("/keys", methods=["GET"])
@json_errors
def list_keys() -> dict[str, Any]:
    """The admin token."""
    _admin()
    return get_keys().list()


@app.route("/keys/{key_id}", methods=["DELETE"])
@json_errors
def revoke_key(key_id: str) -> Response:
    """The admin token."""
    _admin()
    get_keys().revoke(key_id)
    return Response(body="", status_code=204)


@app.route("/logs", methods=["POST"], **BODY_ROUTE)
@json_errors
def post_log() -> Response:
    """A key with logs:write, for the entry's source; one unit of its rate limit."""
    admit = _key(SCOPE_WRITE)
    body = http.read_json_body(_request(), SETTINGS.max_body_bytes)
    return _answer(*get_logs().ingest(body, admit), 202)


@app.route("/logs/batch", methods=["POST"], **BODY_ROUTE)
@json_errors
def post_log_batch() -> Response:
    """A key with logs:write, for every entry's source; one unit of its rate limit per entry."""
    admit = _key(SCOPE_WRITE)
    body = http.read_json_body(_request(), SETTINGS.max_batch_body_bytes)
    return _answer(*get_logs().ingest_batch(body, admit), 202)


@app.route("/logs", methods=["GET"])
@json_errors
def query_logs() -> Response:
    """A key with logs:read; entries of its sources only."""
    admission = _key(SCOPE_READ)(1, [])
    return _answer(get_logs().query(http.query_params(_request()), admission.principal), admission, 200)


@app.route("/logs/{log_id}", methods=["GET"])
@json_errors
def get_log(log_id: str) -> Response:
    """A key with logs:read; an entry of another source is not found."""
    admission = _key(SCOPE_READ)(1, [])
    return _answer(get_logs().get(log_id, admission.principal), admission, 200)


@app.on_sqs_message(
    queue=SETTINGS.log_queue_name,
    batch_size=SETTINGS.consumer_batch_size,
    maximum_batching_window_in_seconds=SETTINGS.consumer_batch_window_s,
    maximum_concurrency=SETTINGS.consumer_max_concurrency,
)
def consume_logs(event: SQSEvent) -> dict[str, Any]:
    """Store a batch; answer with the messages to deliver again (ReportBatchItemFailures)."""
    context: Any = event.context  # Lambda's context object (Chalice types it loosely)
    answer = get_consumer().consume([record.to_dict() for record in event], context.get_remaining_time_in_millis)
    logger.info("batch written", extra={k: v for k, v in answer.items() if k != "batchItemFailures"})
    return answer


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Bring the database to this code's schema and accounts: run by the stack after each deploy
    (a CloudFormation custom resource) or by `make migrate`."""
    run = functools.partial(provision_database, SETTINGS, get_secrets())
    if custom_resource.is_request(event):
        return custom_resource.handle(event, f"{SETTINGS.mysql.database}-schema", run)
    return run()


@app.schedule(Rate(1, unit=Rate.HOURS), name="maintain_partitions")
def maintain_partitions(event: CloudWatchEvent) -> dict[str, Any]:
    """Every hour: create the coming days' partitions, drop those past retention, forget old ids."""
    return get_maintainer().run()
