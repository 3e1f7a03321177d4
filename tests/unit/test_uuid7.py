"""Time-ordered ids for the entries the API names: valid version 7 UUIDs, ordered by their time."""

from datetime import UTC, datetime
from uuid import UUID

import pytest

from chalicelib.logs.ids import unix_ms, uuid7
from chalicelib.logs.model import LogEntryIn, new_log_record


def test_a_uuid7_carries_its_time_version_and_variant():
    value = uuid7(1_764_201_600_123)
    assert (value.version, value.variant) == (7, "specified in RFC 4122")
    assert unix_ms(value) == 1_764_201_600_123
    assert UUID(str(value)) == value  # round-trips as text


def test_ids_of_later_milliseconds_sort_after_earlier_ones_and_never_repeat():
    ids = [uuid7(ms) for ms in range(1_000, 1_200) for _ in range(5)]
    assert len(set(ids)) == len(ids)
    assert [unix_ms(i) for i in sorted(ids, key=str)] == sorted(unix_ms(i) for i in ids)  # text order is time order


@pytest.mark.parametrize("ms", [-1, 1 << 48])
def test_a_time_outside_48_bits_is_refused(ms):
    with pytest.raises(ValueError, match="48-bit"):
        uuid7(ms)


def test_an_entry_without_an_id_gets_one_of_the_time_it_arrived_and_a_clients_id_is_kept():
    received = datetime(2026, 11, 27, 12, 0, 0, 250_000, tzinfo=UTC)
    made = new_log_record(LogEntryIn.model_validate({"level": "info", "source": "s", "message": "m"}), received, None)
    assert (made.id.version, unix_ms(made.id)) == (7, int(received.timestamp() * 1000))
    own = "0b1bb1c4-3c5f-4e4e-9b0a-5a4c7f6d2e11"
    kept = new_log_record(
        LogEntryIn.model_validate({"id": own, "level": "info", "source": "s", "message": "m"}), received, None
    )
    assert str(kept.id) == own
