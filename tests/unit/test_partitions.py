"""What partition maintenance decides to create and drop, from the partitions that exist."""

from datetime import date, timedelta

import pytest

from chalicelib.database.partitions import BEFORE, FUTURE, Partition, _bound, day_name, plan
from chalicelib.errors import MigrationError

TODAY = date(2026, 11, 27)


def days(first: date, count: int) -> list[Partition]:
    return [Partition(day_name(first + timedelta(i)), first + timedelta(i + 1), 0) for i in range(count)]


def test_the_first_run_puts_what_exists_before_today_and_creates_today_and_the_days_ahead():
    # GIVEN the table as the migration leaves it: one catch-all partition
    todo = plan([Partition(FUTURE, None, 1000)], TODAY, retention_days=30, ahead_days=7)
    # THEN today and the next 7 days are created, after a p_before for everything older
    assert todo.first_split
    assert todo.create == tuple(TODAY + timedelta(i) for i in range(8))
    assert todo.drop == ()


def test_a_run_the_same_day_changes_nothing():
    existing = [Partition(BEFORE, TODAY, 5), *days(TODAY, 8), Partition(FUTURE, None, 0)]
    todo = plan(existing, TODAY, retention_days=30, ahead_days=7)
    assert todo.create == () and todo.drop == () and not todo.first_split


def test_the_next_day_adds_one_day_ahead():
    existing = [*days(TODAY, 8), Partition(FUTURE, None, 0)]
    todo = plan(existing, TODAY + timedelta(1), retention_days=30, ahead_days=7)
    assert todo.create == (TODAY + timedelta(8),)


def test_a_day_is_dropped_only_once_every_row_in_it_is_older_than_retention():
    # GIVEN days from 40 days ago
    existing = [
        Partition(BEFORE, TODAY - timedelta(40), 3),
        *days(TODAY - timedelta(40), 48),
        Partition(FUTURE, None, 0),
    ]
    todo = plan(existing, TODAY, retention_days=30, ahead_days=7)
    cutoff = TODAY - timedelta(30)
    # THEN p_before and the days that end at or before the cutoff go; the cutoff's own day stays
    assert todo.drop == (BEFORE, *(day_name(TODAY - timedelta(40 - i)) for i in range(10)))
    assert day_name(cutoff) not in todo.drop
    assert day_name(cutoff - timedelta(1)) in todo.drop


def test_maintenance_missed_for_days_catches_up():
    existing = [*days(TODAY - timedelta(10), 3), Partition(FUTURE, None, 12)]
    todo = plan(existing, TODAY, retention_days=30, ahead_days=2)
    assert todo.create[0] == TODAY - timedelta(7) and todo.create[-1] == TODAY + timedelta(2)


def test_a_table_that_is_not_partitioned_is_refused_by_name():
    with pytest.raises(MigrationError, match="not partitioned as migration 0003 leaves it"):
        plan([], TODAY, retention_days=30, ahead_days=7)


@pytest.mark.parametrize(
    ("description", "expected"),
    [("'2026-11-28 00:00:00'", date(2026, 11, 28)), ("'2026-11-28'", date(2026, 11, 28)), ("MAXVALUE", None)],
)
def test_partition_bounds_are_read_as_information_schema_shows_them(description, expected):
    assert _bound(description) == expected


def test_days_made_while_catching_up_are_dropped_when_already_past_retention():
    # GIVEN maintenance that last ran 45 days ago
    existing = [
        Partition(BEFORE, TODAY - timedelta(45), 0),
        *days(TODAY - timedelta(45), 8),
        Partition(FUTURE, None, 9),
    ]
    todo = plan(existing, TODAY, retention_days=30, ahead_days=7)
    # THEN the days it makes that are already past retention go too (their rows move, then drop)
    assert todo.create[0] == TODAY - timedelta(37)
    assert day_name(TODAY - timedelta(31)) in todo.drop and day_name(TODAY - timedelta(30)) not in todo.drop
