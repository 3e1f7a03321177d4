"""sluice: cached reads, queued log writes, and a MySQL writer with a hard connection budget.

Routes only: each parses, calls chalicelib, returns. The clients and services come from
chalicelib/wiring.py, built once per process, so a warm Lambda environment reuses them.
"""

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from chalice.app import Chalice, CloudWatchEvent, Rate, Response, SQSEvent

from chalicelib import wiring
from chalicelib.database import custom_resource
from chalicelib.database.provision import provision_database
from chalicelib.database.revision import migration_properties
from chalicelib.keys.gate import Admission, Charge
from chalicelib.keys.model import SCOPE_READ, SCOPE_WRITE
from chalicelib.otlp import http as otlp_http
from chalicelib.web import http, openapi, viewer
from chalicelib.web.health import check_health

logger = Logger(service="sluice")
copy_config_to_registered_loggers(source_logger=logger, include={"chalicelib"})

app = Chalice(app_name="sluice", configure_logs=False)
app.api.binary_types.extend(otlp_http.BINARY_MEDIA_TYPES)  # OTLP's protobuf: base64 through API Gateway, both ways
app.register_middleware(http.normalize_chalice_errors, "http")
json_errors = http.json_errors(wiring.SETTINGS.retry_after_s, lambda: app.current_request)
BODY_ROUTE = {"content_types": ["*/*"]}  # read_json_body answers 415 in our error shape


def _request() -> Any:
    assert app.current_request is not None
    return app.current_request


def _admin() -> None:
    """Let only the admin token in."""
    request = _request()
    wiring.get_gate().admit_admin(http.bearer_token(request), http.client_address(request))


def _public() -> None:
    """Let anyone in, within their address's limit (PUBLIC_RATE_PER_S)."""
    wiring.get_callers().admit_public(http.client_address(_request()))


def _key(scope: str) -> Admission:
    """Let a request in by its key, for `scope`, before its body is read: one unit of the key's limit."""
    request = _request()
    return wiring.get_gate().admit_key(http.bearer_token(request), http.client_address(request), scope)


def _charge(admission: Admission) -> Charge:
    """What a service calls once the body is parsed: the entries' sources checked, the rest charged."""
    return functools.partial(wiring.get_gate().charge, admission)


def _answer(body: Any, admission: Admission, status: int) -> Response:
    """A /logs answer, with the key's RateLimit fields."""
    return Response(body=body, status_code=status, headers=dict(admission.headers()))


@app.route("/health", methods=["GET"])
@json_errors
def health() -> dict[str, str]:
    """Anyone, within PUBLIC_RATE_PER_S: the function answers (touches no dependency but the limit's Redis)."""
    _public()
    return {"status": "ok"}


@app.route("/health/dependencies", methods=["GET"])
@json_errors
def health_dependencies() -> Response:
    """The admin token: MySQL, Redis and SQS, each asked directly."""
    _admin()
    ok, body = check_health(wiring.get_database(), wiring.get_redis(), wiring.get_queue())
    headers: dict[str, str | list[str]] = {} if ok else {"Retry-After": str(wiring.SETTINGS.retry_after_s)}
    return Response(body=body, status_code=200 if ok else 503, headers=headers)


@app.route("/openapi.json", methods=["GET"])
@json_errors
def openapi_description() -> dict[str, Any]:
    """Anyone, within PUBLIC_RATE_PER_S: this API's OpenAPI 3.1 description (openapi.json)."""
    _public()
    return openapi.document()


@app.route("/items", methods=["GET"])
@json_errors
def list_items() -> dict[str, Any]:
    """Anyone, within PUBLIC_RATE_PER_S; a page is cached ITEMS_PAGE_CACHE_TTL_S."""
    _public()
    return wiring.get_items().list(http.query_params(_request()))


@app.route("/items/{item_id}", methods=["GET"])
@json_errors
def get_item(item_id: str) -> Response:
    """Anyone, within PUBLIC_RATE_PER_S."""
    _public()
    loaded = wiring.get_items().get(item_id)
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
    item, created = wiring.get_items().put(item_id, http.read_json_body(_request(), wiring.SETTINGS.max_body_bytes))
    return Response(body=item, status_code=201 if created else 200)


@app.route("/items/{item_id}", methods=["DELETE"])
@json_errors
def delete_item(item_id: str) -> Response:
    """The admin token."""
    _admin()
    wiring.get_items().delete(item_id)
    return Response(body="", status_code=204)


@app.route("/keys", methods=["POST"], **BODY_ROUTE)
@json_errors
def create_key() -> Response:
    """The admin token."""
    _admin()
    return Response(
        body=wiring.get_keys().create(http.read_json_body(_request(), wiring.SETTINGS.max_body_bytes)), status_code=201
    )


@app.route("/keys", methods=["GET"])
@json_errors
def list_keys() -> dict[str, Any]:
    """The admin token."""
    _admin()
    return wiring.get_keys().list()


@app.route("/keys/{key_id}", methods=["DELETE"])
@json_errors
def revoke_key(key_id: str) -> Response:
    """The admin token."""
    _admin()
    wiring.get_keys().revoke(key_id)
    return Response(body="", status_code=204)


@app.route("/logs", methods=["POST"], **BODY_ROUTE)
@json_errors
def post_log() -> Response:
    """A key with logs:write (checked, and charged a unit, before the body is read), for the entry's source."""
    admission = _key(SCOPE_WRITE)
    body = http.read_json_body(_request(), wiring.SETTINGS.max_body_bytes)
    return _answer(*wiring.get_logs().ingest(body, _charge(admission)), 202)


@app.route("/logs/batch", methods=["POST"], **BODY_ROUTE)
@json_errors
def post_log_batch() -> Response:
    """A key with logs:write (charged a unit before the body is read), for every entry's source; a unit per entry."""
    admission = _key(SCOPE_WRITE)
    body = http.read_json_body(_request(), wiring.SETTINGS.max_batch_body_bytes)
    return _answer(*wiring.get_logs().ingest_batch(body, _charge(admission)), 202)


@app.route("/v1/logs", methods=["POST"], **BODY_ROUTE)
@json_errors
def post_otlp_logs() -> Response:
    """An OpenTelemetry exporter (OTLP/HTTP, protobuf or JSON), a key with logs:write; a unit per record sent."""
    admission = _key(SCOPE_WRITE)
    settings = wiring.SETTINGS
    body, as_protobuf = otlp_http.read_export(_request(), settings.max_batch_body_bytes, settings.otlp_max_records)
    result, admission = wiring.get_otlp().export(body, _charge(admission))
    return otlp_http.answer(result, as_protobuf, _request(), dict(admission.headers()))


@app.route("/logs", methods=["GET"])
@json_errors
def query_logs() -> Response:
    """A key with logs:read; entries of its sources only."""
    admission = _key(SCOPE_READ)
    return _answer(wiring.get_logs().query(http.query_params(_request()), admission.principal), admission, 200)


@app.route("/logs/stats", methods=["GET"])
@json_errors
def log_stats() -> Response:
    """A key with logs:read; counts of its sources only, from the writer's counts (one read per call)."""
    admission = _key(SCOPE_READ)
    return _answer(wiring.get_reading().stats(http.query_params(_request()), admission.principal), admission, 200)


@app.route("/logs/tail", methods=["GET"])
@json_errors
def tail_logs() -> Response:
    """A key with logs:read; entries of its sources stored after the cursor (at most TAIL_MAX_COMMITS read)."""
    admission = _key(SCOPE_READ)
    return _answer(wiring.get_reading().tail(http.query_params(_request()), admission.principal), admission, 200)


@app.route("/logs/{log_id}", methods=["GET"])
@json_errors
def get_log(log_id: str) -> Response:
    """A key with logs:read; an entry of another source is not found."""
    admission = _key(SCOPE_READ)
    return _answer(wiring.get_logs().get(log_id, admission.principal), admission, 200)


@app.route("/ui", methods=["GET"])
@json_errors
def viewer_page() -> Response:
    """Anyone, within PUBLIC_RATE_PER_S: the log viewer's page (it holds no data; the user pastes a read key)."""
    _public()
    return viewer.page()


@app.route("/ui/{asset}", methods=["GET"])
@json_errors
def viewer_asset(asset: str) -> Response:
    """Anyone, within PUBLIC_RATE_PER_S: the viewer's script or stylesheet."""
    _public()
    return viewer.asset(asset)


@app.on_sqs_message(
    queue=wiring.SETTINGS.log_queue_name,
    batch_size=wiring.SETTINGS.consumer_batch_size,
    maximum_batching_window_in_seconds=wiring.SETTINGS.consumer_batch_window_s,
    maximum_concurrency=wiring.SETTINGS.consumer_max_concurrency,
)
def consume_logs(event: SQSEvent) -> dict[str, Any]:
    """Store a batch; answer with the messages to deliver again (ReportBatchItemFailures)."""
    context: Any = event.context  # Lambda's context object (Chalice types it loosely)
    answer = wiring.get_consumer().consume([record.to_dict() for record in event], context.get_remaining_time_in_millis)
    logger.info("batch written", extra={k: v for k, v in answer.items() if k != "batchItemFailures"})
    return answer


@app.lambda_function(name="migrate")
def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Bring the database to this code's schema and accounts: run by the stack after each deploy
    (a CloudFormation custom resource) or by `make migrate`."""
    run = functools.partial(provision_database, wiring.SETTINGS, wiring.get_secrets())
    if custom_resource.is_request(event):
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        physical_id = f"{wiring.SETTINGS.mysql.database}-schema"
        own = functools.partial(migration_properties, wiring.SETTINGS)
        return custom_resource.handle(event, physical_id, run, remaining, own)
    return run()


@app.schedule(Rate(1, unit=Rate.HOURS), name="maintain_partitions")
def maintain_partitions(event: CloudWatchEvent) -> dict[str, Any]:
    """Every hour: create the coming days' partitions, drop those past retention, forget old ids."""
    return wiring.get_maintainer().run()
