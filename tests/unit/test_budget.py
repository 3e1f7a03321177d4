"""The connection budget formula and the AWS rules for the queue settings."""

from dataclasses import replace

import pytest

from chalicelib.database.budget import BudgetInputs, budget_lines, budget_problems

FITS = BudgetInputs(
    max_connections=30,
    writer_concurrency=4,
    read_slots=8,
    admin_reserve=4,
    batch_size=100,
    batching_window_s=1,
    visibility_timeout_s=360,
    consumer_timeout_s=60,
    consumer_reserved_concurrency=None,
    api_timeout_s=29,
    api_reserved_concurrency=50,
    api_throttle_rate=500,
    api_throttle_burst=1000,
    slot_lease_s=30,
    mysql_read_timeout_s=20,
    mysql_statement_timeout_s=5,
    consumer_retry_max_ms=2000,
    redelivery_delay_base_s=5,
    redelivery_delay_max_s=300,
    maintenance_timeout_s=120,
    partition_statement_timeout_s=60,
    partition_lock_wait_s=10,
    migrate_timeout_s=120,
    mysql_admin_read_timeout_s=90,
    retention_days=30,
    partitions_ahead_days=7,
    timestamp_max_age_s=604_800,
    timestamp_max_ahead_s=300,
)


def test_a_budget_below_max_connections_with_aws_rules_kept_has_no_problems():
    assert budget_problems(FITS) == []
    lines = "\n".join(budget_lines(FITS))
    assert "total      16" in lines and "below max_connections 30" in lines and "spare      13" in lines
    assert "500 requests/s (burst 1000" in lines and "at most 250,000 entries/s" in lines
    assert "at most 50 (reserved concurrency)" in lines
    assert budget_problems(replace(FITS, api_reserved_concurrency=None)) == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"max_connections": 16}, "does not fit"),
        ({"read_slots": 22}, "does not fit"),
        ({"writer_concurrency": 1}, "2..1000"),
        ({"admin_reserve": 0}, "partition maintenance's one connection"),
        ({"partition_lock_wait_s": 60}, "stopped while it waits for the lock"),
        ({"partition_statement_timeout_s": 115}, "maintenance function's timeout"),
        ({"retention_days": 7}, "a day already dropped"),
        ({"partitions_ahead_days": 0, "timestamp_max_ahead_s": 0}, "an hour between maintenance runs"),
        ({"writer_concurrency": 1001, "max_connections": 2000}, "2..1000"),
        ({"visibility_timeout_s": 359}, "6 x"),
        ({"consumer_retry_max_ms": 60_000}, "CONSUMER_RETRY_MAX_MS 60000 is not shorter"),
        ({"redelivery_delay_max_s": 361}, "never lengthens it"),
        ({"redelivery_delay_base_s": 301}, "never lengthens it"),
        ({"consumer_reserved_concurrency": 3}, "reserved_concurrency 3 is below W 4"),
        ({"batch_size": 11, "batching_window_s": 0}, "over 10"),
        ({"batch_size": 10_001}, "1..10000"),
        ({"api_throttle_rate": 10_001}, "1..10000 requests/s"),
        ({"api_throttle_burst": 5_001}, "API_THROTTLE_BURST is 5001"),
        ({"api_reserved_concurrency": 7}, "reserved_concurrency 7 is below R 8"),
        ({"batching_window_s": 301}, "0..300"),
        ({"slot_lease_s": 10}, "SLOT_LEASE_S"),
    ],
)
def test_each_broken_rule_is_explained(change, needle):
    problems = budget_problems(replace(FITS, **change))
    assert len(problems) == 1
    assert needle in problems[0]


def test_the_budget_must_stay_strictly_below_max_connections():
    assert budget_problems(replace(FITS, max_connections=17)) == []
    assert budget_problems(replace(FITS, max_connections=16))


def test_reserved_concurrency_equal_to_w_and_batch_10_without_window_are_fine():
    assert budget_problems(replace(FITS, consumer_reserved_concurrency=4, batch_size=10, batching_window_s=0)) == []


def test_a_read_timeout_as_long_as_a_function_timeout_is_a_problem():
    problems = budget_problems(replace(FITS, mysql_read_timeout_s=29))
    assert len(problems) == 1
    assert "MYSQL_READ_TIMEOUT_S 29s is not shorter than the shortest function timeout 29s" in problems[0]


def test_without_a_known_server_the_rules_are_checked_but_not_the_fit():
    unknown = replace(FITS, max_connections=None, read_slots=1000, api_reserved_concurrency=None)
    assert budget_problems(unknown) == []
    assert "checked against the server at migration" in "\n".join(budget_lines(unknown))


def test_a_statement_timeout_as_long_as_the_read_timeout_is_a_problem():
    problems = budget_problems(replace(FITS, mysql_statement_timeout_s=20))
    assert problems == [
        "MYSQL_STATEMENT_TIMEOUT_S 20s is not shorter than MYSQL_READ_TIMEOUT_S 20s: the server must stop a slow"
        " statement before the client gives up on it"
    ]


def test_the_migrations_statement_wait_ends_before_it_must_answer_cloudformation():
    # GIVEN a migrate function of 120 s, which keeps the last seconds to answer CloudFormation
    # WHEN the administrator's read timeout reaches into those seconds THEN the budget refuses it
    (problem,) = budget_problems(replace(FITS, mysql_admin_read_timeout_s=110))
    assert "MYSQL_ADMIN_READ_TIMEOUT_S 110s is not shorter than the migrate function's timeout 120s" in problem
    assert budget_problems(replace(FITS, mysql_admin_read_timeout_s=100)) == []
