"""Schemathesis against the running API (chalice local and the local event source, stage `test`),
from openapi.json: every check on (no 5xx but the documented 503s, every answer matching its
schema, auth not ignored, invalid data refused), a bounded number of examples per operation,
then every entry answered 202 found stored.

    make fuzz   (part of make test; FUZZ_EXAMPLES sets the examples per operation, default 50)
"""

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from schemathesis.config import SchemathesisConfig

from chalicelib.web.openapi import ADMIN, KEY
from tests.support.waiting import wait_for
from tools.admin import admin_connection
from tools.devstack.bootstrap import bootstrap
from tools.devstack.processes import Processes, wait_http
from tools.ops.openapi import PATH
from tools.ops.reset import empty_tables
from tools.stage import ROOT, stage_environment, stage_settings

STAGE = "test"
PORT = 8600
BASE_URL = f"http://127.0.0.1:{PORT}"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
ENV = stage_environment(STAGE)
TOKENS = {KEY: ENV["DEV_API_KEY"], ADMIN: ENV["ADMIN_TOKEN"]}

# A log entry's timestamp must fall in a window around the time received, which a schema cannot
# say: generated date-times fall inside it (an hour within each edge), taken from the clock when each
# is drawn (not at import), so valid data is accepted however long the run takes.
_SETTINGS = stage_settings(STAGE)
schemathesis.openapi.format(
    "date-time",
    st.floats(
        min_value=-_SETTINGS.log_timestamp_max_age_s + 3600, max_value=_SETTINGS.log_timestamp_max_ahead_s / 2
    ).map(lambda offset_s: (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()),
)


def _any_values(depth: int = 2) -> st.SearchStrategy[AnyValue]:
    """OTLP attribute values at every extreme protobuf allows: int64's ends, NaN and infinities, any text."""
    scalars = st.one_of(
        st.builds(AnyValue, string_value=st.text(max_size=40)),
        st.builds(AnyValue, bool_value=st.booleans()),
        st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
        st.builds(AnyValue, double_value=st.floats(allow_nan=True, allow_infinity=True)),
        st.builds(AnyValue, bytes_value=st.binary(max_size=20)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return scalars
    inner = st.lists(_any_values(depth - 1), max_size=3)
    pairs = st.lists(st.builds(KeyValue, key=st.text(max_size=10), value=_any_values(depth - 1)), max_size=3)
    return st.one_of(
        scalars,
        inner.map(lambda values: AnyValue(array_value=ArrayValue(values=values))),
        pairs.map(lambda values: AnyValue(kvlist_value=KeyValueList(values=values))),
    )


_NOW_NS = st.builds(time.time_ns)
_RECORD = st.builds(
    LogRecord,
    time_unix_nano=st.one_of(st.just(0), _NOW_NS, st.integers(0, 2**64 - 1)),
    observed_time_unix_nano=st.one_of(st.just(0), _NOW_NS),
    severity_number=st.integers(0, 30),
    severity_text=st.text(max_size=10),
    body=_any_values(),
    attributes=st.lists(st.builds(KeyValue, key=st.text(max_size=20), value=_any_values()), max_size=4),
    trace_id=st.binary(min_size=16, max_size=16) | st.just(b""),
    span_id=st.binary(min_size=8, max_size=8) | st.just(b""),
    event_name=st.text(max_size=20),
)
_SERVICE = st.one_of(st.sampled_from(["web-1", "billing"]), st.text(max_size=30))
# Whole ExportLogsServiceRequests, as an exporter would send them (a valid message, so 200 with
# the refused records counted): the protobuf body of POST /v1/logs.
schemathesis.openapi.media_type(
    "application/x-protobuf",
    st.builds(
        lambda service, records: ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]),
                    scope_logs=[ScopeLogs(log_records=records)],
                )
            ]
        ).SerializeToString(),
        _SERVICE,
        st.lists(_RECORD, max_size=5),
    ),
)


@schemathesis.hook
def filter_query(ctx: object, query: dict[str, Any] | None) -> bool:
    """Drop a case with a query value that the HTTP client sends as nothing (None, an empty list or
    object): its "schema-violating" parameter never reaches the API, which rightly answers 200."""
    return not query or all(value not in (None, [], {}) for value in query.values())


@schemathesis.deserializer("application/x-protobuf")
def _export_response(ctx: object, response: Any) -> str:
    """A protobuf answer must be an ExportLogsServiceResponse (shown as its text form)."""
    try:
        return str(ExportLogsServiceResponse.FromString(response.content))
    except DecodeError as exc:
        raise ValueError(f"not an ExportLogsServiceResponse: {exc}") from None


schema = schemathesis.openapi.from_path(
    PATH, config=SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
)
schema.config.update(base_url=BASE_URL)
queued: set[str] = set()
queued_lock = threading.Lock()


@pytest.fixture(scope="module", autouse=True)
def live_api() -> Iterator[None]:
    """The stage's API and consumer as `make up` runs them, on empty tables."""
    bootstrap(STAGE)
    with admin_connection(_SETTINGS.mysql.database) as conn:
        empty_tables(conn)
    processes = Processes(ROOT / ".data" / "fuzz")
    python = str(ROOT / ".venv" / "bin" / "python")
    # Failed attempts and anonymous requests are limited per address (2/s and 20/s): the fuzzer's many
    # requests from one address would then get 429 where it checks what the route does. The limits
    # are tested in tests/functional.
    unlimited = [
        *("--env=AUTH_FAILURE_RATE_PER_S=100000", "--env=AUTH_FAILURE_BURST=1000000"),
        *("--env=PUBLIC_RATE_PER_S=100000", "--env=PUBLIC_BURST=1000000"),
    ]
    processes.start(
        "api", [python, "-m", "tools.devstack.chalice_local", "--stage", STAGE, "--port", str(PORT), *unlimited]
    )
    processes.start("consumer", [python, "-m", "tools.devstack.local_consumer", "--stage", STAGE])
    try:
        wait_http(f"{BASE_URL}/health")
        yield
    finally:
        processes.stop()


def token_for(operation: object) -> dict[str, str]:
    """The credential an operation's security names (none for a public one)."""
    security = getattr(operation, "definition", None)
    raw = security.raw if security is not None else {}
    names = [name for requirement in raw.get("security", []) for name in requirement]
    return {"Authorization": f"Bearer {TOKENS[names[0]]}"} if names else {}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_description(case):
    # WHEN fuzzed inputs reach each operation THEN every answer passes every check
    response = case.call_and_validate(headers=token_for(case.operation))
    if response.status_code == 202:
        answer = response.json()
        with queued_lock:
            queued.update(answer.get("ids") or [answer["id"]])


def test_every_entry_answered_202_is_stored():
    # (runs after the fuzzing: pytest keeps the module's order)
    assert queued, "the fuzzing queued nothing"

    def stored() -> bool:
        with admin_connection(_SETTINGS.mysql.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM logs")
            return queued <= {row[0] for row in cur.fetchall()}

    wait_for(stored, timeout_s=120)
