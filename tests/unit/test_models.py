"""Validation of what clients send and what travels through the queue."""

import base64
import json
from datetime import UTC, datetime
from uuid import UUID

import pytest

from chalicelib.errors import InvalidJSONError, ValidationError
from chalicelib.items.model import ItemIn
from chalicelib.items.service import ItemService, check_item_id
from chalicelib.keys.model import looks_like_token
from chalicelib.keys.service import KeyService
from chalicelib.logs.model import LogEntryIn, LogListQuery, LogRecord, new_log_record, validate_log_batch
from chalicelib.validation import decode_cursor, encode_cursor, format_rfc3339, parse_json, parse_rfc3339, validate

KEY_ID = "key_0123456789abcdef"  # the key an entry was written with

GOOD = {"level": "info", "source": "web-1", "message": "hello"}


def fields(exc: ValidationError) -> set[str]:
    return {d["field"] for d in exc.details}


def test_a_minimal_entry_is_valid_and_gets_defaults():
    # GIVEN the three required fields WHEN validated THEN optional ones default to empty
    entry = validate(LogEntryIn, GOOD)
    assert entry.attributes == {}
    assert entry.timestamp is None
    assert entry.id is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "fatal"}, "level"),
        ({"source": "has space"}, "source"),
        ({"source": "x" * 65}, "source"),
        ({"message": ""}, "message"),
        ({"message": "x" * 8193}, "message"),
        ({"message": 42}, "message"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "2026-01-01"}, "timestamp"),
        ({"timestamp": 1767225600}, "timestamp"),
        ({"timestamp": "0999-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": "2026-02-30T00:00:00Z"}, "timestamp"),
        ({"attributes": ["not", "an", "object"]}, "attributes"),
        ({"attributes": {"big": "x" * 8200}}, "attributes"),
        ({"id": "not-a-uuid"}, "id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_each_bad_field_is_named(change, field):
    # GIVEN an entry with one bad field WHEN validated THEN the error names exactly that field
    with pytest.raises(ValidationError) as caught:
        validate(LogEntryIn, {**GOOD, **change})
    assert fields(caught.value) == {field}


def test_unknown_fields_are_reported_as_unknown():
    with pytest.raises(ValidationError) as caught:
        validate(LogEntryIn, {**GOOD, "extra": 1})
    assert caught.value.details == [{"field": "extra", "message": "unknown field"}]


def test_attributes_of_exactly_8_kib_fit():
    # GIVEN attributes whose compact JSON is exactly 8192 bytes
    attributes = {"k": "x" * (8192 - len('{"k":""}'))}
    assert len(json.dumps(attributes, separators=(",", ":"))) == 8192
    # THEN they are accepted
    assert validate(LogEntryIn, {**GOOD, "attributes": attributes}).attributes == attributes


def test_timestamps_with_offsets_are_normalised_to_utc():
    assert parse_rfc3339("2026-03-01T12:00:00.5+02:00") == datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert parse_rfc3339("2026-03-01t12:00:00z") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert format_rfc3339(datetime(2026, 3, 1, 10, tzinfo=UTC)) == "2026-03-01T10:00:00.000000Z"


def test_a_new_record_keeps_the_client_id_and_defaults_its_timestamp_to_arrival():
    # GIVEN an entry with an id but no timestamp
    entry = validate(LogEntryIn, {**GOOD, "id": "6F9619FF-8B86-D011-B42D-00C04FC964FF"})
    received = datetime(2026, 5, 1, tzinfo=UTC)
    # WHEN it is completed
    record = new_log_record(entry, received, KEY_ID)
    # THEN the id is kept (canonical form) and the timestamp is the arrival time
    assert str(record.id) == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert record.timestamp == received == record.received_at


def test_a_record_survives_the_trip_through_a_message():
    record = new_log_record(validate(LogEntryIn, {**GOOD, "attributes": {"ü": [1, 2]}}), datetime.now(UTC), KEY_ID)
    assert LogRecord.model_validate(json.loads(json.dumps(record.to_message()))) == record


def test_a_queued_record_needs_every_field():
    with pytest.raises(ValueError):
        LogRecord.model_validate({**GOOD, "id": str(UUID(int=1))})


def test_batch_errors_name_each_bad_entry_by_index():
    # GIVEN a batch whose entries 1 and 3 are invalid
    batch = {"logs": [GOOD, {**GOOD, "level": "x"}, GOOD, {"message": "m"}]}
    # WHEN validated THEN the error lists both indexes and each bad field
    with pytest.raises(ValidationError) as caught:
        validate_log_batch(batch)
    assert {d["index"] for d in caught.value.details} == {1, 3}
    assert {(d["index"], d["field"]) for d in caught.value.details} >= {(1, "level"), (3, "level"), (3, "source")}
    assert "nothing was queued" in caught.value.message


@pytest.mark.parametrize("batch", [{"logs": []}, {"logs": [GOOD] * 501}, {"logs": "x"}, {"entries": [GOOD]}, [GOOD]])
def test_batches_must_hold_1_to_500_entries_under_logs(batch):
    with pytest.raises(ValidationError):
        validate_log_batch(batch)


def test_a_batch_of_500_is_accepted():
    assert len(validate_log_batch({"logs": [GOOD] * 500})) == 500


@pytest.mark.parametrize("raw", [b"{", b'{"s":"\\ud800"}', b'{"s":"\xff"}', b"[1,]"])
def test_bodies_that_are_not_strict_json_are_refused(raw):
    with pytest.raises(InvalidJSONError):
        parse_json(raw)


def test_items_need_a_name_and_refuse_unknown_fields():
    assert validate(ItemIn, {"name": "n"}).description == ""
    with pytest.raises(ValidationError) as caught:
        validate(ItemIn, {"description": "d", "version": 3})
    assert fields(caught.value) == {"name", "version"}


def test_query_limits_are_bounded():
    assert validate(LogListQuery, {"limit": "500"}).limit == 500
    with pytest.raises(ValidationError):
        validate(LogListQuery, {"limit": "501"})
    with pytest.raises(ValidationError):
        validate(LogListQuery, {"limit": "0"})


def test_cursors_round_trip_and_forgeries_are_refused():
    cursor = encode_cursor({"ts": "2026-01-01T00:00:00.000000Z", "id": "abc"})
    assert decode_cursor(cursor, ("ts", "id")) == {"ts": "2026-01-01T00:00:00.000000Z", "id": "abc"}
    for forged in ["!!!", encode_cursor({"after": "x"}), encode_cursor({"ts": 1, "id": "a"}), "e30"]:
        with pytest.raises(ValidationError) as caught:
            decode_cursor(forged, ("ts", "id"))
        assert fields(caught.value) == {"cursor"}


@pytest.mark.parametrize(
    "check",
    [
        lambda: check_item_id("lamp\n"),
        lambda: KeyService(None, None, None).revoke("key_0123456789abcdef\n"),  # type: ignore[arg-type]
    ],
    ids=["item id", "key id"],
)
def test_a_value_with_a_trailing_newline_does_not_pass_a_pattern(check):
    # GIVEN a valid value with a newline after it (Python's `$` matches before a final newline)
    # WHEN it is checked THEN it is refused as invalid input, not taken and not a 500
    with pytest.raises((ValidationError, ValueError)):
        check()
    assert not looks_like_token("slk_" + "a" * 43 + "\n")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_timestamp_whose_offset_carries_it_past_the_range_of_dates_is_invalid(value):
    with pytest.raises(ValueError, match="range of dates"):
        parse_rfc3339(value)


def test_a_cursor_nested_too_deep_is_refused_as_forged():
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    with pytest.raises(ValidationError):
        decode_cursor(deep, ("id",))


def test_an_items_cursor_that_names_no_possible_item_id_is_forged():
    # GIVEN a well-formed cursor whose position no item id can have (MySQL cannot compare such text with ids)
    forged = encode_cursor({"after": "\U0001f600 and ünïcode"})
    # WHEN a page after it is asked for THEN it is a 400 naming the cursor, before any query
    with pytest.raises(ValidationError) as refused:
        ItemService(None, None, None).list({"cursor": forged})  # type: ignore[arg-type]
    assert fields(refused.value) == {"cursor"}
