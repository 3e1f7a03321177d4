"""The API's OpenAPI 3.1 description, generated from the models the code validates with
(requests) and chalicelib/web/answers.py (answers). `python -m tools.ops.openapi` writes it to
openapi.json; GET /openapi.json serves it; a test keeps it in step with the routes.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.items.model import ITEM_ID_PATTERN, ItemIn, ItemListQuery
from chalicelib.keys.model import KEY_ID_PATTERN, KeyIn
from chalicelib.logs.model import LogEntryIn, LogListQuery
from chalicelib.logs.reading import TailQuery
from chalicelib.logs.stats import StatsQuery
from chalicelib.web import answers, viewer

KEY = "apiKey"  # Authorization: Bearer slk_...
ADMIN = "adminToken"  # Authorization: Bearer <the stage's admin token>
_BODY_ENCODINGS = (
    "JSON; it may be compressed (Content-Encoding: gzip or deflate) and sent in chunks"
    " (Transfer-Encoding: chunked). The size limit holds before and after inflating (413)."
)
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    security: str | None  # None: anyone
    body: type[BaseModel] | dict[str, Any] | None = None
    query: type[BaseModel] | None = None
    answers: dict[int, type[BaseModel] | None] = field(default_factory=dict)  # status -> body (None: empty)
    binary: dict[str, Any] | None = None  # a binary media type taken and answered besides JSON: its schema
    content: dict[str, Any] | None = None  # a success that is not JSON (the viewer's files): media type -> schema


_WRITE_ERRORS: tuple[int, ...] = (400, 401, 403, 413, 415, 429, 503)
_READ_ERRORS: tuple[int, ...] = (400, 401, 403, 429, 503)
_BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"logs": {"type": "array", "items": {"$ref": _REF.format(model="LogEntryIn")}, "minItems": 1}},
    "required": ["logs"],
    "additionalProperties": False,
}
# An ExportLogsServiceRequest in OTLP/JSON (opentelemetry-proto): its records are checked one by one.
_OTLP_BODY: dict[str, Any] = {
    "type": "object",
    # null is the empty list, as in protobuf's JSON mapping
    "properties": {"resourceLogs": {"type": ["array", "null"], "items": {"type": "object"}}},
}

# The same in protobuf: answered in protobuf when the Accept header takes it (docs/api.md).
_OTLP_PROTOBUF: dict[str, Any] = {
    "application/x-protobuf": {
        "schema": {"type": "string", "contentMediaType": "application/x-protobuf"},
    }
}

# The log viewer's page and files: text, not JSON.
_PAGE = {"text/html": {"schema": {"type": "string"}}}
_ASSETS = {media.split(";")[0]: {"schema": {"type": "string"}} for media in viewer.ASSETS.values()}

OPERATIONS: tuple[Operation, ...] = (
    Operation("/health", "get", "The function answers (asks no dependency)", None, answers={200: answers.Health}),
    Operation(
        "/health/dependencies",
        "get",
        "MySQL, Redis and SQS, each asked",
        ADMIN,
        answers={200: answers.Dependencies, 401: answers.Error, 403: answers.Error, 503: answers.Dependencies},
    ),
    Operation(
        "/items",
        "get",
        "Items by id",
        None,
        query=ItemListQuery,
        answers={200: answers.ItemPage, 400: answers.Error, 503: answers.Error},
    ),
    Operation(
        "/items/{item_id}",
        "get",
        "One item, through the cache",
        None,
        answers={200: answers.Item, 400: answers.Error, 404: answers.Error, 503: answers.Error},
    ),
    Operation(
        "/items/{item_id}",
        "put",
        "Create or replace an item",
        ADMIN,
        body=ItemIn,
        answers={200: answers.Item, 201: answers.Item, **dict.fromkeys((400, 401, 403, 413, 415, 503), answers.Error)},
    ),
    Operation(
        "/items/{item_id}",
        "delete",
        "Delete an item",
        ADMIN,
        answers={204: None, **dict.fromkeys((400, 401, 403, 404, 503), answers.Error)},
    ),
    Operation(
        "/keys",
        "post",
        "Make an API key (its token is shown once)",
        ADMIN,
        body=KeyIn,
        answers={201: answers.KeyCreated, **dict.fromkeys((400, 401, 403, 413, 415, 503), answers.Error)},
    ),
    Operation(
        "/keys",
        "get",
        "Every key, without tokens",
        ADMIN,
        answers={200: answers.KeyList, **dict.fromkeys((401, 403, 503), answers.Error)},
    ),
    Operation(
        "/keys/{key_id}",
        "delete",
        "Revoke a key",
        ADMIN,
        answers={204: None, **dict.fromkeys((401, 403, 404, 503), answers.Error)},
    ),
    Operation(
        "/logs",
        "post",
        "Queue one log entry (202 once SQS has it)",
        KEY,
        body=LogEntryIn,
        answers={202: answers.LogQueued, **dict.fromkeys(_WRITE_ERRORS, answers.Error)},
    ),
    Operation(
        "/logs/batch",
        "post",
        "Queue up to 500 log entries, all or none",
        KEY,
        body=_BATCH_BODY,
        answers={202: answers.LogsQueued, **dict.fromkeys(_WRITE_ERRORS, answers.Error)},
    ),
    Operation(
        "/v1/logs",
        "post",
        "OTLP/HTTP logs, protobuf or JSON (an OpenTelemetry exporter); records refused one by one",
        KEY,
        body=_OTLP_BODY,
        binary=_OTLP_PROTOBUF,
        answers={200: answers.OtlpExported, **dict.fromkeys(_WRITE_ERRORS, answers.Error)},
    ),
    Operation(
        "/logs",
        "get",
        "Stored entries of the key's sources, newest first; q= and attr.<name>= search a bounded time range",
        KEY,
        query=LogListQuery,
        answers={200: answers.LogPage, **dict.fromkeys(_READ_ERRORS, answers.Error)},
    ),
    Operation(
        "/logs/stats",
        "get",
        "Entries stored per interval of their timestamp, by level or source (the key's sources)",
        KEY,
        query=StatsQuery,
        answers={200: answers.LogStats, **dict.fromkeys(_READ_ERRORS, answers.Error)},
    ),
    Operation(
        "/logs/tail",
        "get",
        "Entries stored after the cursor, in the order they were stored (follow mode); attr.<name>= filters too",
        KEY,
        query=TailQuery,
        answers={200: answers.LogTail, **dict.fromkeys(_READ_ERRORS, answers.Error)},
    ),
    Operation(
        "/logs/{log_id}",
        "get",
        "One stored entry",
        KEY,
        answers={200: answers.LogEntry, 404: answers.Error, **dict.fromkeys(_READ_ERRORS, answers.Error)},
    ),
    Operation(
        "/openapi.json",
        "get",
        "This description",
        None,
        answers={200: None},
    ),
    Operation(
        "/ui",
        "get",
        "The log viewer: a page that reads GET /logs, /logs/stats and /logs/tail with a key the user pastes",
        None,
        answers={200: None},
        content=_PAGE,
    ),
    Operation(
        "/ui/{asset}",
        "get",
        "The log viewer's script and stylesheet",
        None,
        answers={200: None, 404: answers.Error},
        content=_ASSETS,
    ),
)

_PATH_PARAMETERS = {
    "asset": {"type": "string", "enum": sorted(viewer.ASSETS)},
    "item_id": {"type": "string", "pattern": ITEM_ID_PATTERN},
    "key_id": {"type": "string", "pattern": KEY_ID_PATTERN},
    "log_id": {"type": "string", "format": "uuid"},
}


def document(version: str = "1") -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    models: list[type[BaseModel]] = [LogEntryIn, ItemIn, KeyIn]
    models += [m for op in OPERATIONS for m in op.answers.values() if m is not None]
    _, schemas = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)], ref_template=_REF, title="sluice"
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sluice",
            "version": version,
            "description": "Log ingestion through SQS into MySQL under a hard connection budget; items read"
            ' through a Redis cache. Every error is {"error": {"code", "message", "request_id", "details"?}}.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                KEY: {"type": "http", "scheme": "bearer", "description": "an API key (slk_...), POST /keys"},
                ADMIN: {"type": "http", "scheme": "bearer", "description": "the stage's admin token"},
            },
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method}_{_name(op.path)}"}
    out["security"] = [{op.security: []}] if op.security else []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in _PATH_PARAMETERS.items()
        if f"{{{name}}}" in op.path
    ]
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template=_REF)
        for name, schema in query_schema["properties"].items():
            parameters.append({"name": name, "in": "query", "required": False, "schema": _without_title(schema)})
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        schema = op.body if isinstance(op.body, dict) else {"$ref": _REF.format(model=op.body.__name__)}
        out["requestBody"] = {
            "required": True,
            "description": _BODY_ENCODINGS,
            "content": {"application/json": {"schema": schema}, **(op.binary or {})},
        }
    statuses = dict(op.answers)
    if parameters or op.body is not None:  # any input can be invalid
        statuses[400] = answers.Error
    if op.security:  # a missing or wrong key or token
        statuses.update(dict.fromkeys((401, 403), answers.Error))
    # Every route is limited: a key by its rate, anyone else (and failed attempts) per client address.
    statuses[429] = answers.Error
    # A declared Content-Type other than JSON, on any route (GET too): Chalice refuses it before the route runs.
    statuses[415] = answers.Error
    out["responses"] = {
        str(status): {"description": _DESCRIPTIONS.get(status, "answer"), **_content(op, status, model)}
        for status, model in sorted(statuses.items())
    }
    return out


def _content(op: Operation, status: int, model: type[BaseModel] | None) -> dict[str, Any]:
    """An answer's content: its JSON model (and the operation's binary type, for a success), or
    the operation's own non-JSON content for a success without a model."""
    if model:
        json_content = {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}
        return {"content": {**json_content, **((op.binary or {}) if status < 300 else {})}}
    if op.content and status < 300:
        return {"content": op.content}
    return {}


def _without_title(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


def _name(path: str) -> str:
    return "_".join(p.strip("{}") for p in path.strip("/").split("/")).replace(".", "_") or "root"


_DESCRIPTIONS = {
    200: "OK",
    201: "created",
    202: "queued: SQS has it",
    204: "done",
    400: "invalid request or JSON (nothing changed)",
    401: "no valid key or token",
    403: "not allowed for this key or token",
    404: "not found",
    413: "body too large (or a batch above the key's burst)",
    415: "a Content-Type other than application/json was declared (checked on every route, GET included)",
    429: "over a rate limit: the key's, or its client address's (Retry-After, RateLimit headers)",
    503: "a dependency is unavailable (Retry-After); write errors carry the ids to retry with",
}
