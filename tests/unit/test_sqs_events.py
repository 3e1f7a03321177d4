"""Reading a partial batch response as Lambda's SQS event source does."""

from tools.devstack.sqs_events import succeeded

MESSAGES = [{"MessageId": m} for m in ("a", "b", "c")]


def test_no_failures_named_means_every_message_succeeded():
    answers: list[object] = [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"stored": 3}]
    for answer in answers:
        assert succeeded(MESSAGES, answer) == MESSAGES


def test_the_named_failures_are_kept_and_the_rest_deleted():
    answer = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert [m["MessageId"] for m in succeeded(MESSAGES, answer)] == ["a", "c"]


def test_an_answer_naming_an_unknown_or_malformed_failure_fails_the_whole_batch():
    for failures in ([{"itemIdentifier": "zzz"}], [{"itemIdentifier": ""}], [{"id": "a"}], ["a"]):
        assert succeeded(MESSAGES, {"batchItemFailures": failures}) == []
