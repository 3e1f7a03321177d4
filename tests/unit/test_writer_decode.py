"""The consumer sets aside what it cannot read instead of failing the batch."""

import json

from chalicelib.consumer.writer import decode_batch
from chalicelib.logs.model import LogEntryIn, new_log_record
from chalicelib.logs.packing import pack_messages
from chalicelib.validation import utc_now, validate

KEY_ID = "key_0123456789abcdef"  # the key an entry was written with


def message(message_id: str, body: str) -> dict[str, str]:
    return {"messageId": message_id, "body": body}


def good_body(n: int) -> tuple[str, list[str]]:
    entry = validate(LogEntryIn, {"level": "info", "source": "s", "message": "m"})
    records = [new_log_record(entry, utc_now(), KEY_ID) for _ in range(n)]
    return pack_messages([r.to_message() for r in records], 262_144)[0], [str(r.id) for r in records]


def test_good_entries_are_decoded_with_where_they_came_from():
    body, ids = good_body(3)
    decoded = decode_batch([message("m1", body)])
    assert [str(r.id) for r in decoded.records] == ids
    assert decoded.origin[(ids[2], "s")] == ("m1", 2)
    assert decoded.rejects == []


def test_malformed_messages_and_invalid_entries_are_set_aside_beside_good_ones():
    # GIVEN a good message, a message that is not JSON, and one with an invalid entry among valid ones
    good, _ = good_body(2)
    mixed = json.loads(good_body(2)[0])
    mixed["logs"].insert(1, {"id": "00000000-0000-0000-0000-000000000001", "level": "loud"})
    # WHEN decoded
    decoded = decode_batch([message("a", good), message("b", "{not json"), message("c", json.dumps(mixed))])
    # THEN the 4 valid entries remain, and the two bad things are set aside with their reasons
    assert len(decoded.records) == 4
    assert [(r.message_id, r.entry_index) for r in decoded.rejects] == [("b", -1), ("c", 1)]
    assert decoded.rejects[1].log_id == "00000000-0000-0000-0000-000000000001"
    assert "level" in decoded.rejects[1].reason
