"""Hostile but valid values round-trip exactly through the whole path (API, SQS, consumer, MySQL,
API again); the extremes just past what the format allows get a 400 and change nothing."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.logs.model import MESSAGE_MAX_CHARS
from chalicelib.validation import ATTRIBUTES_MAX_BYTES
from tests.functional.conftest import JSON, SETTINGS, body, queue_depth

CONTROL = "".join(chr(c) for c in range(0x20)) + "\x7f"
HOSTILE_TEXTS = [
    CONTROL,
    "\x00",
    "'\"\\ \\' \\\\ \\\" %_ `;--",
    "\u202eevil\u202c \u200f\u200e \u2066isolated\u2069",
    "😀 \U0001d54f \U00020000 🏳️\u200d🌈 \U0010ffff",
    "\ufeff BOM \u2028 line \u2029 paragraph \ufffe \uffff",
    "a" * MESSAGE_MAX_CHARS,
    "😀" * MESSAGE_MAX_CHARS,
]
HOSTILE_SOURCES = ["x", "a" * 64, "_.:/-" * 12 + "abcd", "0"]
NUMBERS = {
    "max": 1.7976931348623157e308,
    "min": -1.7976931348623157e308,
    "tiny": 5e-324,
    "negative_zero": -0.0,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "beyond_int64": 10**30,
    "fraction": 0.1,
}


def post(client: Any, entry: Any, path: str = "/logs") -> Any:
    return client.http.post(path, headers=JSON, body=json.dumps(entry, ensure_ascii=False).encode())


def attributes_of_exactly(size: int) -> dict[str, str]:
    """Attributes whose compact JSON is exactly `size` bytes."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    return {"k": "v" * (size - overhead)}


def test_hostile_values_round_trip_exactly(client, consume):
    # GIVEN entries of every hostile text, the longest and oddest sources, the extremes of JSON
    # numbers, attributes of exactly the maximum size, and timestamps at the window's edges
    now = datetime.now(UTC)
    entries: list[dict[str, Any]] = [
        {"level": "info", "source": "web", "message": text, "attributes": {"text": text} if len(text) < 1000 else {}}
        for text in HOSTILE_TEXTS
    ]
    entries += [{"level": "debug", "source": source, "message": "m"} for source in HOSTILE_SOURCES]
    entries.append({"level": "critical", "source": "web", "message": "numbers", "attributes": NUMBERS})
    entries.append(
        {
            "level": "error",
            "source": "web",
            "message": "full",
            "attributes": attributes_of_exactly(ATTRIBUTES_MAX_BYTES),
        }
    )
    oldest = now - timedelta(seconds=SETTINGS.log_timestamp_max_age_s - 60)
    newest = now + timedelta(seconds=SETTINGS.log_timestamp_max_ahead_s - 60)
    for moment, offset in ((oldest, "+14:00"), (newest, "-12:00")):
        local = moment.astimezone(datetime.strptime(offset, "%z").tzinfo).replace(microsecond=123456)
        entries.append({"level": "warning", "source": "web", "message": f"at {offset}", "timestamp": local.isoformat()})
    ids = []
    for entry in entries:
        response = post(client, entry)
        assert response.status_code == 202, (entry["message"][:40], body(response))
        ids.append(body(response)["id"])
    # WHEN they are stored
    consume()
    # THEN each reads back exactly as sent (texts code point for code point, numbers to the bit)
    for entry, log_id in zip(entries, ids, strict=True):
        stored = body(client.http.get(f"/logs/{log_id}", headers=JSON))
        assert stored["message"] == entry["message"]
        assert stored["source"] == entry["source"]
        assert json.dumps(stored["attributes"], sort_keys=True) == json.dumps(
            entry.get("attributes", {}), sort_keys=True
        )
        if "timestamp" in entry:
            assert datetime.fromisoformat(stored["timestamp"]) == datetime.fromisoformat(entry["timestamp"])


def test_hostile_item_values_round_trip_exactly(client, admin_headers):
    for i, text in enumerate(HOSTILE_TEXTS):
        item = {"name": text[:200], "description": text[:10_000], "attributes": {"text": text[:1000], **NUMBERS}}
        put = client.http.put(f"/items/h{i}", headers=admin_headers, body=json.dumps(item, ensure_ascii=False).encode())
        assert put.status_code == 201, body(put)
        got = body(client.http.get(f"/items/h{i}"))
        assert (got["name"], got["description"]) == (item["name"], item["description"])
        assert json.dumps(got["attributes"], sort_keys=True) == json.dumps(item["attributes"], sort_keys=True)


def valid() -> dict[str, Any]:
    return {"level": "info", "source": "web", "message": "m"}


class SecondsFromNow(float):
    """A timestamp this many seconds from the moment the request is made (not when tests are collected)."""

    def isoformat(self) -> str:
        return (datetime.now(UTC) + timedelta(seconds=self)).isoformat()


TOO_FAR = [
    SecondsFromNow(-(SETTINGS.log_timestamp_max_age_s + 60)),
    SecondsFromNow(SETTINGS.log_timestamp_max_ahead_s + 60),
]


@pytest.mark.parametrize(
    "change",
    [
        {"message": ""},
        {"message": "a" * (MESSAGE_MAX_CHARS + 1)},
        {"message": "😀" * (MESSAGE_MAX_CHARS + 1)},
        {"source": ""},
        {"source": "a" * 65},
        {"source": "has space"},
        {"source": "ünï"},
        {"level": "INFO"},
        {"level": "fatal"},
        {"timestamp": "2026-02-30T00:00:00Z"},
        {"timestamp": "0000-01-01T00:00:00Z"},
        {"timestamp": "9999-12-31T23:59:59Z"},
        {"timestamp": "2026-11-27T08:00:00"},
        {"timestamp": "2026-12-31T23:59:60Z"},
        {"timestamp": 1764230400},
        {"timestamp": TOO_FAR[0]},
        {"timestamp": TOO_FAR[1]},
        {"attributes": attributes_of_exactly(ATTRIBUTES_MAX_BYTES + 1)},
        {"attributes": []},
        {"id": "not-a-uuid"},
        {"extra": 1},
    ],
    ids=lambda change: next(iter(change)) + "=" + repr(next(iter(change.values())))[:30],
)
def test_values_just_past_the_limits_are_400_and_queue_nothing(client, sqs, queue_urls, change):
    change = {k: v.isoformat() if isinstance(v, SecondsFromNow) else v for k, v in change.items()}
    response = post(client, {**valid(), **change})
    assert response.status_code == 400, body(response)
    assert body(response)["error"]["code"] == "invalid_request"
    assert queue_depth(sqs, queue_urls) == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"level": "info", "source": "web", "message": "m", "attributes": {"n": NaN}}', "invalid_json"),
        ('{"level": "info", "source": "web", "message": "m", "attributes": {"n": -Infinity}}', "invalid_json"),
        ('{"level": "info", "source": "web", "message": "m", "attributes": {"n": 1e400}}', "invalid_request"),
        ('{"level": "info", "source": "web", "message": "m\\ud800"}', "invalid_json"),
    ],
)
def test_numbers_and_text_json_cannot_carry_are_400(client, sqs, queue_urls, raw, code):
    # (1e400 is valid JSON, but beyond a double: it would be stored as infinity)
    response = client.http.post("/logs", headers=JSON, body=raw)
    assert response.status_code == 400
    assert body(response)["error"]["code"] == code
    assert queue_depth(sqs, queue_urls) == 0
