"""Logs over HTTP: queued in the real SQS, stored by the real consumer, read back from MySQL."""

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.functional.conftest import JSON, SETTINGS, body, queue_depth, received_messages
from tests.support.waiting import wait_for

ENTRY = {"level": "info", "source": "web-1", "message": "GET /items/lamp 200"}


def database_now(admin_db) -> datetime:
    """MySQL's clock (UTC), to compare with what MySQL wrote."""
    with admin_db.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        now: datetime = cur.fetchone()[0]
    return now.replace(tzinfo=UTC)


def post(client, entry, path="/logs"):
    return client.http.post(path, headers=JSON, body=json.dumps(entry))


def test_a_posted_entry_is_queued_then_stored_and_readable(client, consume, admin_db):
    # WHEN an entry is posted THEN 202 with its new id
    host_before = datetime.now(UTC)
    response = post(client, {**ENTRY, "attributes": {"status": 200, "path": "/items/lamp"}})
    host_after = datetime.now(UTC)
    assert response.status_code == 202
    accepted = body(response)
    assert accepted["status"] == "queued"
    log_id = str(uuid.UUID(accepted["id"]))
    # AND it is not readable (nor in MySQL) before the consumer ran
    before = client.http.get(f"/logs/{log_id}", headers=JSON)
    assert before.status_code == 404
    assert body(before)["error"]["code"] == "not_found"
    with admin_db.cursor() as cur:
        assert cur.execute("SELECT 1 FROM logs") == 0
    # WHEN the consumer drains the queue
    db_before = database_now(admin_db)
    assert consume() == {"batchItemFailures": [], "stored": 1, "duplicates": 0, "rejected": 0}
    db_after = database_now(admin_db)
    # THEN it is readable (once the brief cache of its absence, LOG_ABSENT_TTL_S, lapsed),
    # with when it was received and stored
    found = wait_for(
        lambda: (r := client.http.get(f"/logs/{log_id}", headers=JSON)).status_code == 200 and r,
        timeout_s=SETTINGS.log_absent_ttl_s + 5,
        interval_s=0.1,
    )
    stored = body(found)
    assert stored["id"] == log_id
    assert stored["attributes"] == {"status": 200, "path": "/items/lamp"}
    assert stored["timestamp"] == stored["received_at"]
    # (received_at is the API's clock, stored_at MySQL's: each is compared with its own clock)
    received, saved = datetime.fromisoformat(stored["received_at"]), datetime.fromisoformat(stored["stored_at"])
    assert host_before <= received <= host_after
    assert db_before <= saved <= db_after


def test_a_client_timestamp_with_an_offset_is_stored_in_utc(client, consume):
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=250000)
    local = an_hour_ago.astimezone(timezone(timedelta(hours=2))).isoformat()
    log_id = body(post(client, {**ENTRY, "timestamp": local}))["id"]
    consume()
    stored = body(client.http.get(f"/logs/{log_id}", headers=JSON))["timestamp"]
    assert stored == an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S.250000Z")


def test_a_client_id_makes_retries_safe(client, consume, admin_db):
    # GIVEN a client that posts the same entry (same id) three times, as retries after timeouts would
    log_id = str(uuid.uuid4())
    for _ in range(3):
        response = post(client, {**ENTRY, "id": log_id})
        assert body(response)["id"] == log_id
    # WHEN everything is consumed THEN it is stored once
    result = consume()
    assert result == {"batchItemFailures": [], "stored": 1, "duplicates": 2, "rejected": 0}
    with admin_db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM logs WHERE id = %s", (log_id,))
        assert cur.fetchone() == (1,)


def test_invalid_entries_are_refused_with_the_field_named_and_nothing_queued(client, sqs, queue_urls):
    cases = [
        ({**ENTRY, "level": "fatal"}, "level"),
        ({**ENTRY, "source": "white space"}, "source"),
        ({**ENTRY, "message": ""}, "message"),
        ({**ENTRY, "message": "x" * 8193}, "message"),
        ({**ENTRY, "timestamp": "yesterday"}, "timestamp"),
        ({**ENTRY, "attributes": {"k": "v" * 9000}}, "attributes"),
        ({**ENTRY, "id": "123"}, "id"),
        ({**ENTRY, "user": "bob"}, "user"),
    ]
    for entry, field in cases:
        response = post(client, entry)
        assert response.status_code == 400
        error = body(response)["error"]
        assert error["code"] == "invalid_request"
        assert [d["field"] for d in error["details"]] == [field]
    assert queue_depth(sqs, queue_urls) == 0


def test_bodies_that_are_not_json_are_refused(client, sqs, queue_urls):
    not_json = client.http.post("/logs", headers={**JSON, "Content-Type": "text/plain"}, body="hello")
    broken = client.http.post("/logs", headers=JSON, body='{"level": ')
    too_big = client.http.post("/logs", headers=JSON, body=json.dumps({**ENTRY, "pad": "x" * SETTINGS.max_body_bytes}))
    assert (not_json.status_code, body(not_json)["error"]["code"]) == (415, "unsupported_media_type")
    assert (broken.status_code, body(broken)["error"]["code"]) == (400, "invalid_json")
    assert (too_big.status_code, body(too_big)["error"]["code"]) == (413, "payload_too_large")
    assert queue_depth(sqs, queue_urls) == 0


def test_compressed_bodies_are_inflated_within_the_cap(client, sqs, queue_urls):
    # GIVEN an entry gzip-compressed, the same deflated, and a small gzip body that inflates past the cap
    gzipped = gzip.compress(json.dumps(ENTRY).encode())
    deflated = zlib.compress(json.dumps(ENTRY).encode())
    bomb = gzip.compress(json.dumps({**ENTRY, "pad": "x" * 10 * SETTINGS.max_body_bytes}).encode())
    # WHEN each is posted with its Content-Encoding
    sent = [
        client.http.post("/logs", headers={**JSON, "Content-Encoding": encoding}, body=raw)
        for encoding, raw in (("gzip", gzipped), ("deflate", deflated), ("gzip", bomb), ("br", gzipped))
    ]
    # THEN the first two are queued, the bomb is too large, and an encoding it does not speak is a 415
    assert [r.status_code for r in sent] == [202, 202, 413, 415]
    assert [body(r)["error"]["code"] for r in sent[2:]] == ["payload_too_large", "unsupported_media_type"]
    assert queue_depth(sqs, queue_urls) == 2


def test_a_batch_is_queued_in_few_messages_and_stored(client, sqs, queue_urls, consume, admin_db):
    # WHEN 500 entries are posted as one batch
    entries = [{**ENTRY, "message": f"request {i}"} for i in range(500)]
    response = post(client, {"logs": entries}, "/logs/batch")
    # THEN 202 with 500 ids in order, packed into one SQS message
    assert response.status_code == 202
    accepted = body(response)
    assert accepted["status"] == "queued"
    assert len(set(accepted["ids"])) == 500
    assert queue_depth(sqs, queue_urls) == 1
    # AND once consumed every entry is stored
    assert consume() == {"batchItemFailures": [], "stored": 500, "duplicates": 0, "rejected": 0}
    with admin_db.cursor() as cur:
        cur.execute("SELECT id, message FROM logs")
        stored = dict(cur.fetchall())
    assert stored == {log_id: f"request {i}" for i, log_id in enumerate(accepted["ids"])}


def test_a_batch_of_large_entries_is_split_within_sqs_limits(client, sqs, queue_urls, consume):
    # GIVEN 100 entries of ~16 KB each (1.6 MB: more than one message and one SendMessageBatch can hold)
    entries = [{**ENTRY, "message": "é" * 8000, "attributes": {"pad": "p" * 4000}} for _ in range(100)]
    response = post(client, {"logs": entries}, "/logs/batch")
    assert response.status_code == 202
    messages = received_messages(sqs, queue_urls.queue_url)
    assert 1 < len(messages) < 100
    assert all(len(m["Body"]) <= SETTINGS.sqs_message_max_bytes for m in messages)
    assert sum(len(json.loads(m["Body"])["logs"]) for m in messages) == 100


def test_a_batch_with_invalid_entries_names_each_and_queues_nothing(client, sqs, queue_urls):
    entries = [ENTRY, {**ENTRY, "level": "loud"}, ENTRY, {**ENTRY, "extra": True}]
    response = post(client, {"logs": entries}, "/logs/batch")
    assert response.status_code == 400
    error = body(response)["error"]
    assert [(d["index"], d["field"]) for d in error["details"]] == [(1, "level"), (3, "extra")]
    assert "index 1, 3" in error["message"]
    assert queue_depth(sqs, queue_urls) == 0
    bad_batches: list[dict[str, Any]] = [{"logs": []}, {"logs": [ENTRY] * 501}, {"entries": [ENTRY]}]
    for bad in bad_batches:
        assert post(client, bad, "/logs/batch").status_code == 400
    assert queue_depth(sqs, queue_urls) == 0


def test_logs_are_listed_newest_first_with_filters_and_pages(client, consume):
    base = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(7):
        entry = {
            "level": "error" if i % 2 else "info",
            "source": "api" if i < 5 else "worker",
            "message": f"m{i}",
            "timestamp": (base + timedelta(minutes=i)).isoformat(),
        }
        assert post(client, entry).status_code == 202
    consume()
    everything = body(client.http.get("/logs", headers=JSON))
    assert [log["message"] for log in everything["logs"]] == [f"m{i}" for i in reversed(range(7))]
    assert everything["next_cursor"] is None
    # pages of 3, newest first
    seen: list[str] = []
    page = body(client.http.get("/logs?limit=3", headers=JSON))
    while True:
        seen += [log["message"] for log in page["logs"]]
        if not page["next_cursor"]:
            break
        page = body(client.http.get(f"/logs?limit=3&cursor={page['next_cursor']}", headers=JSON))
    assert seen == [f"m{i}" for i in reversed(range(7))]
    # filters: source, level, and the [since, until) window
    assert [x["message"] for x in body(client.http.get("/logs?source=worker", headers=JSON))["logs"]] == ["m6", "m5"]
    assert [x["message"] for x in body(client.http.get("/logs?level=error&source=api", headers=JSON))["logs"]] == [
        "m3",
        "m1",
    ]
    since, until = (f"{(base + timedelta(minutes=m)).strftime('%Y-%m-%dT%H:%M:%SZ')}" for m in (2, 4))
    window = f"since={since}&until={until}"
    assert [x["message"] for x in body(client.http.get(f"/logs?{window}", headers=JSON))["logs"]] == ["m3", "m2"]


def test_bad_log_queries_are_400(client):
    for query in ["level=fatal", "since=yesterday", "limit=0", "limit=501", "cursor=forged", "source=a%20b", "x=1"]:
        response = client.http.get(f"/logs?{query}", headers=JSON)
        assert response.status_code == 400, query
        assert body(response)["error"]["code"] == "invalid_request"
    bad_id = client.http.get("/logs/not-a-uuid", headers=JSON)
    assert (bad_id.status_code, body(bad_id)["error"]["details"][0]["field"]) == (400, "id")
