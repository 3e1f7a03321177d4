"""The SQS consumer with real messages from LocalStack writing into the real MariaDB."""

import json
import math
import threading
import time
import uuid

import pytest

import app as sluice_app
import chalicelib.consumer.insert
from chalicelib import wiring
from tests.functional.conftest import JSON, SETTINGS, body, closed_port, deliver, queue_arn, received_messages
from tests.support.mysql import connections_of, global_variable
from tests.support.waiting import wait_for
from tools.devstack.local_consumer import LocalEventSource
from tools.devstack.sqs_events import lambda_event, receive

ENTRY = {"level": "warning", "source": "worker", "message": "slow query"}


def post(client, entry):
    response = client.http.post("/logs", headers=JSON, body=json.dumps(entry))
    assert response.status_code == 202
    return body(response)["id"]


def count_rows(admin_db, table="logs") -> int:
    with admin_db.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cur.fetchone()[0])


def test_a_redelivered_batch_inserts_nothing_new(client, sqs, queue_urls, admin_db):
    # GIVEN three queued entries, received once
    for i in range(3):
        post(client, {**ENTRY, "message": f"m{i}"})
    messages = received_messages(sqs, queue_urls.queue_url)
    event = lambda_event(messages, queue_arn(sqs, queue_urls.queue_url), SETTINGS.aws_region)
    # WHEN the same batch is delivered twice (as after a lost delete or a timeout)
    first = client.lambda_.invoke("consume_logs", event).payload
    second = client.lambda_.invoke("consume_logs", event).payload
    # THEN the second delivery stores nothing new
    assert first == {"batchItemFailures": [], "stored": 3, "duplicates": 0, "rejected": 0}
    assert second == {"batchItemFailures": [], "stored": 0, "duplicates": 3, "rejected": 0}
    assert count_rows(admin_db) == 3


def test_a_poison_message_never_blocks_the_good_ones(client, sqs, queue_urls, admin_db):
    # GIVEN good entries, a message that is not ours, and a message with one invalid entry among good ones
    good_ids = [post(client, {**ENTRY, "message": f"good {i}"}) for i in range(3)]
    sqs.send_message(QueueUrl=queue_urls.queue_url, MessageBody="this is not JSON")
    mixed_good = str(uuid.uuid4())
    mixed = {
        "logs": [
            {"id": str(uuid.uuid4()), "level": "info"},  # missing fields
            {
                **ENTRY,
                "id": mixed_good,
                "timestamp": "2026-01-01T00:00:00Z",
                "attributes": {},
                "received_at": "2026-01-01T00:00:01Z",
                "key_id": "key_0123456789abcdef",
            },
        ]
    }
    sqs.send_message(QueueUrl=queue_urls.queue_url, MessageBody=json.dumps(mixed))
    messages = received_messages(sqs, queue_urls.queue_url)
    assert len(messages) == 5
    # WHEN the batch is consumed
    result = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN the batch succeeds, the 4 valid entries are stored, and the 2 bad things are set aside with reasons
    assert result == {"batchItemFailures": [], "stored": 4, "duplicates": 0, "rejected": 2}
    with admin_db.cursor() as cur:
        cur.execute("SELECT id FROM logs")
        assert {row[0] for row in cur.fetchall()} == {*good_ids, mixed_good}
        cur.execute("SELECT entry_index, reason, body FROM log_rejects ORDER BY entry_index")
        rejects = cur.fetchall()
    assert [r[0] for r in rejects] == [-1, 0]
    assert "not JSON" in rejects[0][1]
    assert rejects[0][2] == "this is not JSON"
    assert "source" in rejects[1][1]
    # AND redelivering the same batch records nothing twice
    assert count_rows(admin_db, "log_rejects") == 2


def test_an_entry_that_names_no_key_is_set_aside_as_forged(client, sqs, queue_urls, admin_db):
    # GIVEN messages sent to the queue past the API: entries well formed but for the key that wrote them
    forged = {**ENTRY, "timestamp": "2026-01-01T00:00:00Z", "attributes": {}, "received_at": "2026-01-01T00:00:01Z"}
    without, null = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"logs": [{**forged, "id": without}, {**forged, "id": null, "key_id": None}]}
    sqs.send_message(QueueUrl=queue_urls.queue_url, MessageBody=json.dumps(body))
    # WHEN the batch is consumed
    result = deliver(client, sqs, queue_urls.queue_url, received_messages(sqs, queue_urls.queue_url))
    # THEN neither is stored: both are set aside, with why
    assert result == {"batchItemFailures": [], "stored": 0, "duplicates": 0, "rejected": 2}
    assert count_rows(admin_db) == 0
    with admin_db.cursor() as cur:
        cur.execute("SELECT log_id, reason FROM log_rejects ORDER BY entry_index")
        rejects = cur.fetchall()
    assert [r[0] for r in rejects] == [without, null]
    assert "key_id" in rejects[0][1] and "no key id" in rejects[1][1]


@pytest.fixture
def reject_trigger(admin_db):
    """A trigger that makes MySQL itself refuse rows from source 'reject.me' (a real server-side rejection)."""
    with admin_db.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_reject_marked")
        cur.execute(
            "CREATE TRIGGER test_reject_marked BEFORE INSERT ON logs FOR EACH ROW"
            " IF NEW.source = 'reject.me' THEN"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by test trigger'; END IF"
        )
    yield
    with admin_db.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_reject_marked")


class CountingStatements:
    """Counts the multi-row INSERT statements the consumer runs (chalicelib.consumer.insert._insert_splitting runs
    one per call, halving through itself): only this test's, unlike the server's global Com_insert."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        real = chalicelib.consumer.insert._insert_splitting

        def counting(conn, rows, outcome):
            self.count += 1
            return real(conn, rows, outcome)

        monkeypatch.setattr(chalicelib.consumer.insert, "_insert_splitting", counting)


def test_a_row_mysql_rejects_is_found_by_splitting_not_row_by_row(
    client, sqs, queue_urls, admin_db, reject_trigger, monkeypatch
):
    # GIVEN a batch of 100 entries in which MySQL refuses two rows
    entries = [{**ENTRY, "message": f"m{i}"} for i in range(100)]
    entries[17]["source"] = entries[83]["source"] = "reject.me"
    ids = body(client.http.post("/logs/batch", headers=JSON, body=json.dumps({"logs": entries})))["ids"]
    messages = received_messages(sqs, queue_urls.queue_url)
    statements = CountingStatements(monkeypatch)
    # WHEN it is consumed
    result = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN the 98 others are stored, the two are set aside with MySQL's reason, and the batch succeeds
    assert result == {"batchItemFailures": [], "stored": 98, "duplicates": 0, "rejected": 2}
    with admin_db.cursor() as cur:
        cur.execute("SELECT log_id, entry_index, reason FROM log_rejects ORDER BY entry_index")
        rejects = cur.fetchall()
    assert [(r[0], r[1]) for r in rejects] == [(ids[17], 17), (ids[83], 83)]
    assert all("refused by test trigger" in r[2] for r in rejects)
    # AND it took a few statements: halving costs at most 2 per level per bad row (plus the first
    # statement), where a statement per row would take 100
    assert statements.count <= 1 + 2 * 2 * math.ceil(math.log2(100))
    print(f"100 rows with 2 bad ones: {statements.count} INSERT statements")


@pytest.fixture
def failing_trigger(admin_db):
    """A trigger that makes MySQL fail rows from source 'fail.me' with an error that is neither a
    row's fault nor an outage (1030, "got error from storage engine")."""
    with admin_db.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_fail_marked")
        cur.execute(
            "CREATE TRIGGER test_fail_marked BEFORE INSERT ON logs FOR EACH ROW"
            " IF NEW.source = 'fail.me' THEN"
            " SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'failed by test trigger', MYSQL_ERRNO = 1030; END IF"
        )
    yield
    with admin_db.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_fail_marked")


def test_a_row_mysql_fails_on_gives_back_its_message_alone(client, sqs, queue_urls, admin_db, failing_trigger):
    # GIVEN three queued messages, one of which MySQL fails on for a reason that is not the row's data
    good = [post(client, {**ENTRY, "message": f"good {i}"}) for i in range(2)]
    post(client, {**ENTRY, "source": "fail.me"})
    messages = received_messages(sqs, queue_urls.queue_url)
    bad_message = next(m["MessageId"] for m in messages if "fail.me" in m["Body"])
    # WHEN the batch is consumed
    result = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN the two innocent entries are stored and only the bad message goes back to SQS (not set aside)
    assert result == {
        "batchItemFailures": [{"itemIdentifier": bad_message}],
        "stored": 2,
        "duplicates": 0,
        "rejected": 0,
    }
    with admin_db.cursor() as cur:
        cur.execute("SELECT id FROM logs")
        assert {row[0] for row in cur.fetchall()} == set(good)
    assert count_rows(admin_db, "log_rejects") == 0
    # AND it alone is delivered again
    again = wait_for(lambda: receive(sqs, queue_urls.queue_url, 10, 1), timeout_s=SETTINGS.redelivery_delay_max_s + 30)
    assert [m["MessageId"] for m in again] == [bad_message]


def test_a_reject_that_does_not_fit_its_columns_is_still_recorded(client, sqs, queue_urls, admin_db):
    # GIVEN a message whose invalid entry has an id far longer than a log id, and a good message
    good = post(client, ENTRY)
    odd = {"logs": [{"id": "x" * 5000, "level": "info"}]}
    sqs.send_message(QueueUrl=queue_urls.queue_url, MessageBody=json.dumps(odd))
    messages = received_messages(sqs, queue_urls.queue_url)
    # WHEN the batch is consumed
    result = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN the good entry is stored and the odd one set aside (its id left out), nothing given back
    assert result == {"batchItemFailures": [], "stored": 1, "duplicates": 0, "rejected": 1}
    with admin_db.cursor() as cur:
        cur.execute("SELECT id FROM logs")
        assert [row[0] for row in cur.fetchall()] == [good]
        cur.execute("SELECT log_id, entry_index, body FROM log_rejects")
        (log_id, index, stored_body), *rest = cur.fetchall()
    assert (log_id, index, rest) == (None, 0, [])
    assert json.loads(stored_body)["id"] == "x" * 5000


@pytest.fixture
def small_packets(admin_db):
    """The server's max_allowed_packet at 1 MiB for new connections; put back however the test ends."""
    with global_variable(admin_db, "max_allowed_packet", 1048576):
        yield 1048576


def test_inserts_are_held_to_the_servers_max_allowed_packet(client, sqs, queue_urls, admin_db, small_packets):
    # GIVEN 100 entries of the largest message (8,192 four-byte characters: 32 KiB of UTF-8 each),
    # 3.2 MiB in all, where the server takes statements of at most 1 MiB
    message = "\U0001f600" * 8192
    entries = [{**ENTRY, "message": message} for _ in range(100)]
    request = json.dumps({"logs": entries}, ensure_ascii=False).encode()
    response = client.http.post("/logs/batch", headers=JSON, body=request)
    assert response.status_code == 202
    messages = received_messages(sqs, queue_urls.queue_url)
    # WHEN they are consumed in one invocation
    result = deliver(client, sqs, queue_urls.queue_url, messages)
    # THEN every one is stored (in several statements), none refused
    assert result == {"batchItemFailures": [], "stored": 100, "duplicates": 0, "rejected": 0}
    with admin_db.cursor() as cur:
        cur.execute("SELECT COUNT(*), MIN(CHAR_LENGTH(message)), MAX(LENGTH(message)) FROM logs")
        assert cur.fetchone() == (100, 8192, 4 * 8192)


def test_a_batch_uses_one_connection_and_keeps_none(client, sqs, queue_urls, admin_db, monkeypatch):
    writer = wiring.get_writer()
    connects = 0
    real_connect = writer.connector.connect

    def counting_connect():
        nonlocal connects
        connects += 1
        return real_connect()

    monkeypatch.setattr(writer.connector, "connect", counting_connect)
    # GIVEN 25 queued entries
    for i in range(25):
        post(client, {**ENTRY, "message": f"m{i}"})
    # WHEN they are consumed in one invocation THEN they are stored over one connection
    result = deliver(client, sqs, queue_urls.queue_url, received_messages(sqs, queue_urls.queue_url))
    assert result["stored"] == 25
    assert connects == 1
    # AND after the invocation the writer holds no connection (closed ones may linger for a moment:
    # the deadline is far past that moment, so only a connection kept open fails it)
    writer_user = wiring.get_secrets().credentials("mysql_writer").username
    wait_for(lambda: connections_of(admin_db, writer_user) == 0, timeout_s=30, interval_s=0.05)


def test_a_mysql_outage_longer_than_an_invocation_gives_the_batch_back_soon_then_dead_letters_it(
    client, sqs, queue_urls, admin_db, override_settings
):
    # GIVEN a queued entry, a consumer whose MySQL refuses connections and has no time to retry
    # inside its invocation (the test client gives 3 s), and redelivery delays of 1 s, then 2 s
    log_id = post(client, ENTRY)
    override_settings(mysql={"port": closed_port()}, redelivery_delay_base_s=1, redelivery_delay_max_s=2)
    arn = queue_arn(sqs, queue_urls.queue_url)
    # WHEN it is delivered and fails, again and again
    for attempt in range(1, SETTINGS.queue_max_receive_count + 1):
        messages = wait_for(lambda: receive(sqs, queue_urls.queue_url, 10, 1), timeout_s=30, interval_s=0)
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        answer = client.lambda_.invoke("consume_logs", lambda_event(messages, arn, SETTINGS.aws_region)).payload
        # THEN each time the answer gives the message back (a partial batch failure), storing nothing,
        # and it returns after its short delay (wait_for above), not the queue's visibility timeout
        assert answer == {
            "batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}],
            "stored": 0,
            "duplicates": 0,
            "rejected": 0,
        }
    # AND after maxReceiveCount receives SQS moves it, unchanged, to the dead-letter queue
    dead = wait_for(
        lambda: not receive(sqs, queue_urls.queue_url, 10, 1) and received_messages(sqs, queue_urls.dlq_url),
        timeout_s=30,
        interval_s=0,
    )
    assert [json.loads(m["Body"])["logs"][0]["id"] for m in dead] == [log_id]
    assert count_rows(admin_db) == 0


def event_source(sqs, queue_url, handler) -> LocalEventSource:
    """The local event source with batches of at most 10 and at most 2 invocations at once."""
    return LocalEventSource(
        sqs,
        queue_url,
        handler,
        batch_size=10,
        batching_window_s=1,
        max_concurrency=2,
        function_timeout_s=60,
        region=SETTINGS.aws_region,
    )


def test_the_local_event_source_honours_batch_size_and_the_concurrency_cap(client, sqs, queue_urls, admin_db):
    # GIVEN 60 queued entries, one message each
    ids = {post(client, {**ENTRY, "message": f"m{i}"}) for i in range(60)}
    batch_sizes: list[int] = []
    in_flight = peak = 0
    lock = threading.Lock()

    def handler(event, context):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            batch_sizes.append(len(event["Records"]))
        try:
            time.sleep(0.05)  # long enough for workers to overlap
            return sluice_app.consume_logs(event, context)
        finally:
            with lock:
                in_flight -= 1

    source = event_source(sqs, queue_urls.queue_url, handler)
    runner = threading.Thread(target=source.run)
    # WHEN it runs until everything is stored
    runner.start()
    try:
        wait_for(lambda: count_rows(admin_db) >= 60, timeout_s=30, interval_s=0.1)
    finally:
        source.stopping.set()
        runner.join(timeout=10)
    # THEN all 60 are stored, no batch exceeded 10, never more than 2 ran at once, and the queue is empty
    with admin_db.cursor() as cur:
        cur.execute("SELECT id FROM logs")
        assert {row[0] for row in cur.fetchall()} == ids
    assert max(batch_sizes) <= 10
    assert sum(batch_sizes) == 60
    assert peak <= 2
    assert received_messages(sqs, queue_urls.queue_url, wait_s=0) == []


def test_the_local_event_source_leaves_a_failed_batch_in_the_queue(sqs, queue_urls):
    sqs.send_message(QueueUrl=queue_urls.queue_url, MessageBody='{"logs": []}')

    def failing(event, context):
        raise RuntimeError("consumer crashed")

    source = event_source(sqs, queue_urls.queue_url, failing)
    messages = receive(sqs, queue_urls.queue_url, 10, 1, visibility_timeout_s=0)
    assert source.invoke(messages) is False
    # the message was not deleted: it is received again
    again = receive(sqs, queue_urls.queue_url, 10, 1)
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in messages]


def test_every_character_survives_the_write_path(client, consume):
    # GIVEN entries whose text would break a carelessly built statement
    tricky = [
        'it\'s "quoted"',
        "back\\slash \\' \\\\",
        "nul\x00byte",
        "tab\tnew\nline\r",
        "😀 ünïcødé ☃",
        "'); DROP TABLE logs; --",
    ]
    ids = {}
    for text in tricky:
        entry = {**ENTRY, "message": text, "attributes": {"text": text, "nested": {"k'": [text]}}}
        ids[post(client, entry)] = text
    # WHEN they are stored THEN each reads back exactly as sent
    assert consume() == {"batchItemFailures": [], "stored": len(tricky), "duplicates": 0, "rejected": 0}
    for log_id, text in ids.items():
        stored = body(client.http.get(f"/logs/{log_id}", headers=JSON))
        assert stored["message"] == text
        assert stored["attributes"] == {"text": text, "nested": {"k'": [text]}}
