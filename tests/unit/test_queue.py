"""How entries are packed into SQS messages and batches, and how sending fails."""

import json
import threading
from typing import Any

import pytest

from chalicelib.errors import QueueUnavailableError
from chalicelib.logs.model import LogEntryIn, new_log_record
from chalicelib.logs.packing import group_for_batches, pack_messages, unpack_message
from chalicelib.logs.queue import GroupSender, LogQueue
from chalicelib.validation import utc_now, validate
from tests.support.waiting import wait_for

KEY_ID = "key_0123456789abcdef"  # the key an entry was written with

MAX = 262_144


def entries(n: int, message_size: int = 100) -> list[dict[str, Any]]:
    return [{"n": i, "message": "m" * message_size} for i in range(n)]


def test_one_entry_makes_one_message_that_unpacks_to_it():
    bodies = pack_messages(entries(1), MAX)
    assert len(bodies) == 1
    assert unpack_message(bodies[0]) == entries(1)


def test_500_small_entries_fit_in_one_message():
    assert len(pack_messages(entries(500), MAX)) == 1


def test_large_entries_spread_over_messages_in_order_and_within_the_limit():
    # GIVEN 500 entries of ~40 KB (about 6 fit in 256 KiB)
    batch = entries(500, 40_000)
    # WHEN packed
    bodies = pack_messages(batch, MAX)
    # THEN every message is within the limit, messages are nearly full, and order is kept
    assert all(len(b) <= MAX for b in bodies)
    assert len(bodies) == -(-500 // (MAX // 40_020))
    assert [e for b in bodies for e in unpack_message(b)] == batch


def test_non_ascii_is_escaped_so_sqs_never_sees_forbidden_characters():
    body = pack_messages([{"message": "snow ☃ \uffff"}], MAX)[0]
    assert body.isascii()
    assert unpack_message(body) == [{"message": "snow ☃ \uffff"}]


def test_an_entry_larger_than_a_message_is_refused():
    with pytest.raises(ValueError):
        pack_messages(entries(1, MAX), MAX)


def test_batches_hold_at_most_ten_messages_and_the_byte_limit():
    bodies = ["x" * 100_000] * 25
    groups = group_for_batches(bodies, 1_048_576)
    assert [len(g) for g in groups] == [10, 10, 5]
    groups = group_for_batches(["x" * 300_000] * 7, 1_048_576)
    assert [len(g) for g in groups] == [3, 3, 1]


@pytest.mark.parametrize("body", ["not json", "[]", '{"logs": 3}', '{"other": []}'])
def test_foreign_bodies_are_recognised(body):
    with pytest.raises(ValueError):
        unpack_message(body)


class FakeSQS:
    """Stands in for the SQS API in unit tests: records calls, answers as scripted."""

    def __init__(self, batch_answers: list[dict[str, Any]] | None = None) -> None:
        self.batch_answers = batch_answers or []
        self.sent: list[Any] = []
        self.bodies: list[str] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.sent.append([e["Id"] for e in Entries])
        self.bodies.extend(e["MessageBody"] for e in Entries)
        if self.batch_answers:
            return self.batch_answers.pop(0)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def records(n: int, size: int) -> list[Any]:
    entry = validate(LogEntryIn, {"level": "info", "source": "s", "message": "m" * size})
    return [new_log_record(entry, utc_now(), KEY_ID) for _ in range(n)]


def test_a_batch_that_fits_one_message_costs_one_request():
    sqs = FakeSQS()
    assert LogQueue(sqs, "q", MAX, 1_048_576).send(records(500, 100)) == 1
    assert sqs.sent == [["0"]]
    assert len(json.loads(sqs.bodies[0])["logs"]) == 500


def test_entries_sqs_failed_on_its_side_are_sent_again():
    # GIVEN SQS fails message "1" of a batch once, on its side
    sqs = FakeSQS(
        [{"Successful": [{"Id": "0"}], "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}]}]
    )
    # WHEN two messages' worth of entries are sent
    LogQueue(sqs, "q", 131_072, 1_048_576).send(records(16, 8192))
    # THEN only the failed one is sent again
    assert sqs.sent == [["0", "1"], ["1"]]


def test_a_refused_message_fails_the_send():
    sqs = FakeSQS([{"Successful": [], "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]}])
    with pytest.raises(QueueUnavailableError):
        LogQueue(sqs, "q", 131_072, 1_048_576).send(records(16, 8192))


def test_concurrent_single_messages_share_sendmessagebatch_calls():
    # GIVEN an SQS whose first call is slow, and 25 callers arriving while it is in flight
    first_call_started = threading.Event()
    release_first_call = threading.Event()
    calls: list[int] = []

    def send_batch(bodies: list[str]) -> None:
        calls.append(len(bodies))
        if len(calls) == 1:
            first_call_started.set()
            release_first_call.wait(5)

    sender = GroupSender(send_batch, max_batch_bytes=1_048_576)
    first = threading.Thread(target=sender.send, args=("first",))
    first.start()
    first_call_started.wait(5)
    others = [threading.Thread(target=sender.send, args=(f"m{i}",)) for i in range(25)]
    for t in others:
        t.start()
    wait_for(lambda: sender.waiting == 25, timeout_s=10, interval_s=0.01)  # all queued behind the first call
    # WHEN the first call returns
    release_first_call.set()
    for t in [first, *others]:
        t.join(5)
    # THEN the 25 went out in full batches of ten, and every caller returned
    assert calls == [1, 10, 10, 5]
    assert not any(t.is_alive() for t in [first, *others])


def test_a_failed_batch_fails_each_of_its_callers():
    def send_batch(bodies: list[str]) -> None:
        raise QueueUnavailableError("SQS is down")

    sender = GroupSender(send_batch, max_batch_bytes=1_048_576)
    with pytest.raises(QueueUnavailableError, match="SQS is down"):
        sender.send("m")


def test_a_caller_does_not_wait_forever():
    # GIVEN an SQS call that never returns (until the test ends)
    stuck = threading.Event()

    def never_returns(bodies: list[str]) -> None:
        stuck.wait(30)

    sender = GroupSender(never_returns, max_batch_bytes=1_048_576, wait_s=0.05)
    # WHEN a message is sent THEN the caller gives up after wait_s with a 503's error
    try:
        with pytest.raises(QueueUnavailableError, match="within"):
            sender.send("m")
    finally:
        stuck.set()
