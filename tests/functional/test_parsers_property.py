"""Every parser of client input, across its whole domain and just past it, through the app: no
answer is a 5xx. Hypothesis draws timestamps (in bodies and query strings), both cursors, ids,
limits and OTLP fields, with the services all up (so a 503 would be a fault too)."""

import base64
import json
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import JSON, body

# A few hundred requests a property: the whole suite stays within make test's time.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
ENTRY = {"level": "info", "source": "web-1", "message": "hello"}


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """RFC 3339 date-times field by field, each field from below its range to above it; and
    variations of the separators, fractions and offsets."""
    year = draw(st.integers(0, 10_000))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    fraction = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=25).map(lambda d: "." + d)))
    offset = draw(
        st.one_of(
            st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+23:59", "-23:59", "+24:00", "+99:99"]),
            st.tuples(st.sampled_from("+-"), st.integers(0, 25), st.integers(0, 61)).map(
                lambda o: f"{o[0]}{o[1]:02d}:{o[2]:02d}"
            ),
        )
    )
    separator = draw(st.sampled_from(["T", "t", " ", "_"]))
    return f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


# The ends of Python's datetime range, where an offset carries the time past it in UTC.
EDGE_TIMES = [
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59.999999999+23:59",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-12-31T23:59:60Z",
]


@st.composite
def near_now(draw: st.DrawFn) -> str:
    """A time within a day of the clock (read when drawn), in any offset: the window entries must fall in."""
    seconds = draw(st.integers(-86_400, 86_400))
    offset_min = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    zone = timezone(timedelta(minutes=offset_min))
    return (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(zone).isoformat()


TIMES = st.one_of(rfc3339(), near_now(), st.sampled_from(EDGE_TIMES), st.text(max_size=40))
INTEGERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
)
NUMBERS_AS_TEXT = st.one_of(
    INTEGERS.map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=20)
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


def cursor_of(value: Any) -> str:
    """A cursor as this API writes one, around any JSON."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


LOGS_POSITIONS = st.fixed_dictionaries(
    {"ts": st.one_of(TIMES, JSON_VALUES), "id": st.one_of(st.text(max_size=40), JSON_VALUES)}
)
LOGS_CURSORS = st.one_of(LOGS_POSITIONS.map(cursor_of), JSON_VALUES.map(cursor_of), st.text(max_size=60))
ITEMS_CURSORS = st.one_of(
    st.fixed_dictionaries({"after": st.one_of(st.text(max_size=80), JSON_VALUES)}).map(cursor_of),
    JSON_VALUES.map(cursor_of),
    st.text(max_size=60),
)
IDS = st.text(min_size=1, max_size=80)


def answered(response: Any) -> int:
    """The status, after checking that it is not a 5xx and that any error has the house shape."""
    assert response.status_code < 500, (response.status_code, response.body[:500])
    if response.status_code >= 400:
        assert set(body(response)["error"]) >= {"code", "message", "request_id"}
    return int(response.status_code)


def query(**params: Any) -> str:
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


def path_part(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def test_timestamps_in_a_posted_entry_never_get_a_5xx(client):
    @PROPERTY
    @given(timestamp=TIMES)
    @example(timestamp=EDGE_TIMES[0])
    @example(timestamp=EDGE_TIMES[2])
    def check(timestamp: str) -> None:
        answered(client.http.post("/logs", headers=JSON, body=json.dumps({**ENTRY, "timestamp": timestamp})))

    check()


def test_the_logs_query_never_gets_a_5xx(client):
    @PROPERTY
    @given(
        since=st.one_of(st.none(), TIMES),
        until=st.one_of(st.none(), TIMES),
        limit=st.one_of(st.none(), NUMBERS_AS_TEXT),
        cursor=st.one_of(st.none(), LOGS_CURSORS),
        level=st.one_of(st.none(), st.text(max_size=10)),
        source=st.one_of(st.none(), st.text(max_size=70)),
    )
    def check(**params: Any) -> None:
        answered(client.http.get("/logs?" + query(**params), headers=JSON))

    check()


def test_items_ids_cursors_and_limits_never_get_a_5xx(client, override_settings):
    override_settings(public_rate_per_s=100_000, public_burst=100_000)  # the parsers, not the per-address limit

    @PROPERTY
    @given(
        item_id=IDS,
        cursor=st.one_of(st.none(), ITEMS_CURSORS),
        limit=st.one_of(st.none(), NUMBERS_AS_TEXT),
    )
    def check(item_id: str, cursor: str | None, limit: str | None) -> None:
        answered(client.http.get(f"/items/{path_part(item_id)}"))
        answered(client.http.get("/items?" + query(cursor=cursor, limit=limit)))

    check()


def test_log_and_key_ids_never_get_a_5xx(client, admin_headers):
    @PROPERTY
    @given(log_id=IDS, key_id=IDS)
    def check(log_id: str, key_id: str) -> None:
        answered(client.http.get(f"/logs/{path_part(log_id)}", headers=JSON))
        answered(client.http.delete(f"/keys/{path_part(key_id)}", headers=admin_headers))

    check()


OTLP_RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "timeUnixNano": st.one_of(INTEGERS, NUMBERS_AS_TEXT),
        "observedTimeUnixNano": st.one_of(INTEGERS, NUMBERS_AS_TEXT),
        "severityNumber": st.one_of(INTEGERS, NUMBERS_AS_TEXT),
        "severityText": st.one_of(st.text(max_size=20), JSON_VALUES),
        "body": st.one_of(JSON_VALUES, st.fixed_dictionaries({"stringValue": st.text(max_size=50)})),
        "traceId": st.one_of(st.text("0123456789abcdefABCDEF", max_size=40), JSON_VALUES),
        "spanId": st.one_of(st.text("0123456789abcdef", max_size=20), JSON_VALUES),
        "flags": st.one_of(INTEGERS, NUMBERS_AS_TEXT),
        "attributes": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"key": st.one_of(st.text(max_size=10), JSON_VALUES)},
                    optional={
                        "value": st.one_of(
                            JSON_VALUES,
                            st.fixed_dictionaries({"intValue": st.one_of(INTEGERS, NUMBERS_AS_TEXT)}),
                            st.fixed_dictionaries({"doubleValue": st.one_of(INTEGERS, NUMBERS_AS_TEXT)}),
                        )
                    },
                ),
                max_size=3,
            ),
            JSON_VALUES,
        ),
    },
)


def test_otlp_json_fields_never_get_a_5xx(client):
    @PROPERTY
    @given(
        record=OTLP_RECORDS,
        service=st.one_of(st.text(max_size=70), JSON_VALUES),
    )
    def check(record: dict[str, Any], service: Any) -> None:
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
        export = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
        answered(client.http.post("/v1/logs", headers=JSON, body=json.dumps(export)))

    check()
