"""What failed, back into the pipeline: dead letters to the log queue (both ways), and set-aside
entries replayed once their cause is fixed; each stored once, whatever is repeated."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import wiring
from tests.functional.conftest import JSON, body
from tests.support.waiting import wait_for
from tools.ops.dead_letters import DeadLetters
from tools.ops.queues import queue_depth
from tools.ops.replay import NO_KEY, RejectReplay


def entry(source: str = "web") -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "id": str(uuid.uuid4()),
        "level": "info",
        "source": source,
        "message": "came back",
        "timestamp": now,
        "attributes": {},
        "received_at": now,
        "key_id": "key_0123456789abcdef",
    }


def put_dead_letters(sqs: Any, dlq_url: str, count: int) -> list[str]:
    """`count` messages of one entry each, straight into the DLQ; their entries' ids."""
    entries = [entry() for _ in range(count)]
    sqs.send_message_batch(
        QueueUrl=dlq_url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"logs": [e]})} for i, e in enumerate(entries)],
    )
    return [e["id"] for e in entries]


def stored(admin_db, ids: list[str]) -> list[str]:
    with admin_db.cursor() as cur:
        cur.execute(f"SELECT id FROM logs WHERE id IN ({','.join(['%s'] * len(ids))})", ids)
        return sorted(row[0] for row in cur.fetchall())


def test_a_dry_run_shows_the_dead_letters_and_moves_nothing(sqs, queue_urls):
    ids = put_dead_letters(sqs, queue_urls.dlq_url, 3)
    report = DeadLetters(sqs, queue_urls.queue_url, queue_urls.dlq_url).dry_run()
    assert (report.method, report.waiting, report.moved) == ("dry run", 3, 0)
    assert sorted(i for message in report.sample for i in message["ids"]) == sorted(ids)
    # THEN they are all still in the DLQ, and none reached the log queue
    assert queue_depth(sqs, queue_urls.dlq_url) == 3
    assert queue_depth(sqs, queue_urls.queue_url) == 0


@pytest.mark.parametrize("method", ["task", "copy"])
def test_redrive_moves_every_dead_letter_back_and_each_is_stored_once(method, consume, sqs, queue_urls, admin_db):
    # GIVEN five dead letters
    ids = put_dead_letters(sqs, queue_urls.dlq_url, 5)
    dead = DeadLetters(sqs, queue_urls.queue_url, queue_urls.dlq_url)
    # WHEN they are redriven (SQS's move task, or receive-send-delete)
    report = dead.move_with_task() if method == "task" else dead.move_by_copy()
    # THEN all five are in the log queue, none in the DLQ, and the consumer stores them
    assert (report.moved, report.status) == (5, "completed" if method == "task" else "done")
    wait_for(lambda: queue_depth(sqs, queue_urls.dlq_url) == 0, timeout_s=30)
    assert consume()["stored"] == 5
    assert stored(admin_db, ids) == sorted(ids)


class CutShortAfterSending:
    """The SQS client of a redrive cut short once, after the log queue took the messages and
    before the DLQ deleted them (as a crash there would)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def delete_message_batch(self, **kwargs: Any) -> Any:
        if not self.cut:
            self.cut = True
            raise KeyboardInterrupt("cut short after sending")
        return self._sqs.delete_message_batch(**kwargs)


def test_a_copy_cut_short_moves_the_message_again_and_it_is_still_stored_once(
    consume, sqs, queue_urls, admin_db, monkeypatch
):
    # GIVEN a dead letter, and a copy cut short after the log queue took it (hidden for 1 s meanwhile)
    monkeypatch.setattr("tools.ops.dead_letters.COPY_VISIBILITY_S", 1)
    ids = put_dead_letters(sqs, queue_urls.dlq_url, 1)
    with pytest.raises(KeyboardInterrupt):
        DeadLetters(CutShortAfterSending(sqs), queue_urls.queue_url, queue_urls.dlq_url).move_by_copy()
    # WHEN the next run finds it in the DLQ again and moves it again
    dead = DeadLetters(sqs, queue_urls.queue_url, queue_urls.dlq_url)
    moved = wait_for(lambda: dead.move_by_copy().moved, timeout_s=30)
    assert moved == 1
    # THEN the log queue held it twice, and it is stored once
    assert consume() == {"batchItemFailures": [], "stored": 1, "duplicates": 1, "rejected": 0}
    assert stored(admin_db, ids) == ids


@pytest.fixture
def refusing_trigger(admin_db):
    """MySQL refusing rows of source reject.me (a data error: set aside), until the test drops it."""
    with admin_db.cursor() as cur:
        cur.execute(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON logs FOR EACH ROW IF NEW.source = 'reject.me'"
            " THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF"
        )

    def fix() -> None:
        with admin_db.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS test_refuse")

    yield fix
    fix()


def replay(admin_db, **kwargs: Any) -> dict[str, Any]:
    return RejectReplay(admin_db, wiring.get_queue()).run(**kwargs).to_dict()


def replayed_at(admin_db) -> list[Any]:
    with admin_db.cursor() as cur:
        cur.execute("SELECT replayed_at FROM log_rejects ORDER BY rejected_at")
        return [row[0] for row in cur.fetchall()]


def test_an_entry_set_aside_is_replayed_once_its_cause_is_fixed(client, consume, admin_db, refusing_trigger):
    # GIVEN an entry MySQL refused, set aside by the consumer
    api_entry = {"level": "info", "source": "reject.me", "message": "refused until the fix"}
    log_id = body(client.http.post("/logs", headers=JSON, body=json.dumps(api_entry)))["id"]
    assert consume()["rejected"] == 1
    # WHEN the cause is fixed and a dry run looks first
    refusing_trigger()
    assert replay(admin_db, dry_run=True) == {
        "dry_run": True,
        "candidates": 1,
        "sent": 1,
        "still_invalid": 0,
        "reasons": {},
    }
    assert replayed_at(admin_db) == [None]
    # AND then it is replayed
    assert replay(admin_db, dry_run=False)["sent"] == 1
    # THEN the consumer stores it under its own id, the row is marked, and a second replay sends nothing
    assert consume()["stored"] == 1
    assert stored(admin_db, [log_id]) == [log_id]
    assert replayed_at(admin_db)[0] is not None
    assert replay(admin_db, dry_run=False) == {
        "dry_run": False,
        "candidates": 0,
        "sent": 0,
        "still_invalid": 0,
        "reasons": {},
    }


def test_an_entry_this_code_still_refuses_is_counted_with_its_reason_and_not_sent(admin_db, sqs, queue_urls):
    # GIVEN a set-aside entry whose level no version of the model accepts
    bad = {**entry(), "level": "loud"}
    with admin_db.cursor() as cur:
        cur.execute(
            "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
            " VALUES ('m-1', 0, %s, 'invalid entry', %s, UTC_TIMESTAMP(6))",
            (bad["id"], json.dumps(bad)),
        )
    # WHEN it is replayed THEN it is not sent, stays unreplayed, and the report says why
    report = replay(admin_db, dry_run=False)
    assert (report["candidates"], report["sent"], report["still_invalid"]) == (1, 0, 1)
    assert list(report["reasons"]) == ["level: Input should be 'debug', 'info', 'warning', 'error' or 'critical'"]
    assert replayed_at(admin_db) == [None]
    assert queue_depth(sqs, queue_urls.queue_url) == 0


def test_an_entry_that_names_no_key_is_replayed_only_with_the_operators_key(admin_db, sqs, queue_urls):
    # GIVEN entries set aside for naming no key: one without the field (an older version's), one null
    old = {k: v for k, v in entry().items() if k != "key_id"}
    null = {**entry(), "key_id": None}
    with admin_db.cursor() as cur:
        for index, body in enumerate((old, null)):
            cur.execute(
                "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
                " VALUES ('m-3', %s, %s, 'no key id', %s, UTC_TIMESTAMP(6))",
                (index, body["id"], json.dumps(body)),
            )
    # WHEN they are replayed without a key THEN neither is sent, and the report says how to
    plain = replay(admin_db, dry_run=False)
    assert (plain["sent"], plain["still_invalid"]) == (0, 2)
    assert any("key_id" in reason for reason in plain["reasons"]) and NO_KEY in plain["reasons"]
    assert queue_depth(sqs, queue_urls.queue_url) == 0
    # WHEN they are replayed naming the key that wrote them THEN both go back, naming it
    key_id = "key_00000000000000aa"
    named = RejectReplay(admin_db, wiring.get_queue(), key_id=key_id).run(dry_run=False).to_dict()
    assert (named["sent"], named["still_invalid"]) == (2, 0)
    got = wait_for(lambda: sqs.receive_message(QueueUrl=queue_urls.queue_url, WaitTimeSeconds=1).get("Messages"), 30)
    sent = [e for m in got for e in json.loads(m["Body"])["logs"]]
    assert sorted((e["id"], e["key_id"]) for e in sent) == sorted((b["id"], key_id) for b in (old, null))


def test_a_whole_message_set_aside_is_replayed_as_it_came(admin_db, sqs, queue_urls):
    # GIVEN a whole message set aside (entry_index -1), its body kept as it came
    message = json.dumps({"logs": [entry()]})
    with admin_db.cursor() as cur:
        cur.execute(
            "INSERT INTO log_rejects (message_id, entry_index, log_id, reason, body, rejected_at)"
            " VALUES ('m-2', -1, NULL, 'could not decode the message', %s, UTC_TIMESTAMP(6))",
            (message,),
        )
    # WHEN it is replayed THEN the log queue gets that very body
    assert replay(admin_db, dry_run=False)["sent"] == 1
    got = wait_for(lambda: sqs.receive_message(QueueUrl=queue_urls.queue_url, WaitTimeSeconds=1).get("Messages"), 30)
    assert [m["Body"] for m in got] == [message]
