"""GET /logs/stats: counts per bucket from the writer's counts, exact for what is stored."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.functional.conftest import JSON, SETTINGS, body, deliver, received_messages
from tests.functional.test_keys import make_key, with_key
from tests.functional.test_search import entry, store


def stats(client, headers: dict[str, str] = JSON, **params: str) -> dict[str, Any]:
    response = client.http.get(f"/logs/stats?{urlencode(params)}", headers=headers)
    assert response.status_code == 200, body(response)
    return dict(body(response))


def at(minute: datetime, second: int, message: str, level: str = "info", source: str = "web-1") -> dict[str, Any]:
    return {**entry(message), "level": level, "source": source, "timestamp": minute.replace(second=second).isoformat()}


def test_counts_per_minute_by_level_are_what_was_stored(client, consume):
    # GIVEN entries in two minutes of an hour ago, of two levels
    minute = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    nxt = minute + timedelta(minutes=1)
    store(client, consume, [at(minute, 1, "a"), at(minute, 59, "b", "error"), at(nxt, 0, "c"), at(nxt, 30, "d")])
    # WHEN counted over those minutes at 1m
    answer = stats(client, since=minute.isoformat(), until=(nxt + timedelta(minutes=1)).isoformat(), interval="1m")
    # THEN each minute has its counts by level, and the total is every entry
    assert [b["counts"] for b in answer["buckets"]] == [{"info": 1, "error": 1}, {"info": 2}]
    assert answer["total"] == 4
    assert answer["buckets"][0]["start"] == minute.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    # AND at 1h, the hour holds all four; by source, one source has them
    hourly = stats(client, since=minute.isoformat(), until=nxt.isoformat(), interval="1h", by="source")
    assert sum(b["counts"].get("web-1", 0) for b in hourly["buckets"]) == 4


def test_a_redelivered_batch_is_not_counted_twice(client, consume, sqs, queue_urls):
    # GIVEN a batch stored once
    minute = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    client.http.post("/logs/batch", headers=JSON, body=json.dumps({"logs": [at(minute, 5, "x"), at(minute, 6, "y")]}))
    messages = received_messages(sqs, queue_urls.queue_url)
    assert deliver(client, sqs, queue_urls.queue_url, messages)["stored"] == 2
    # WHEN SQS delivers the same messages again (a redelivery)
    again = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN nothing more is stored, and the counts still say two
    assert (again["stored"], again["duplicates"]) == (0, 2)
    answer = stats(client, since=minute.isoformat(), until=(minute + timedelta(minutes=1)).isoformat())
    assert answer["total"] == 2


def test_the_range_is_widened_to_whole_buckets_and_every_bucket_is_answered(client):
    # GIVEN a range that starts and ends inside minutes, with nothing stored
    start = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    answer = stats(client, since=start.isoformat(), until=(start + timedelta(minutes=2)).isoformat())
    # THEN it covers 10:00 to 10:03, three empty buckets
    assert (answer["since"], answer["until"]) == ("2026-01-01T10:00:00.000000Z", "2026-01-01T10:03:00.000000Z")
    assert [b["counts"] for b in answer["buckets"]] == [{}, {}, {}]
    assert answer["total"] == 0


def test_more_buckets_than_allowed_are_refused(client):
    # WHEN a range holds more 1m buckets than STATS_MAX_BUCKETS THEN 400 naming since
    until = datetime(2026, 1, 10, tzinfo=UTC)
    since = until - timedelta(minutes=SETTINGS.stats_max_buckets + 1)
    response = client.http.get(
        f"/logs/stats?{urlencode({'since': since.isoformat(), 'until': until.isoformat()})}", headers=JSON
    )
    assert response.status_code == 400
    assert body(response)["error"]["details"][0]["field"] == "since"


def test_counts_are_of_the_keys_sources_only(client, consume, admin_headers):
    # GIVEN entries of two sources, and a read key for one
    minute = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    store(client, consume, [at(minute, 1, "a"), at(minute, 2, "b", source="billing"), at(minute, 3, "c")])
    key = make_key(client, admin_headers, scopes=["logs:read"], sources=["billing"])["key"]
    # THEN its counts hold only its source
    answer = stats(client, with_key(key), since=minute.isoformat(), by="source")
    assert answer["total"] == 1
    assert {name for b in answer["buckets"] for name in b["counts"]} == {"billing"}
