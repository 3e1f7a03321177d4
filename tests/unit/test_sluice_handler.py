"""The Python client's logging handler (clients/python/sluice_client/handler.py), against a stand-in
for sluice's HTTP API: emit never waits, the queue is bounded, retries keep their ids, refusals drop
only what was refused."""

import json
import logging
import math
import os
import sys
import threading
from typing import Any

from sluice_client import SluiceError, SluiceHandler


class StandIn:
    """Records each batch sent; answers with the errors queued in `fail`, then stores."""

    def __init__(self, fail: list[SluiceError] | None = None, hold: threading.Event | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = list(fail or [])
        self.hold = hold
        self.lock = threading.Lock()

    def send_batch(self, entries):
        if self.hold is not None:
            self.hold.wait()
        with self.lock:
            self.batches.append([dict(e) for e in entries])
            if self.fail:
                raise self.fail.pop(0)
        return [e["id"] for e in entries]

    def stored(self) -> list[dict[str, Any]]:
        """The entries of the batches that were answered with success (the last of each retry)."""
        return [e for batch in self.batches for e in batch]


def logger_with(handler: SluiceHandler) -> logging.Logger:
    logger = logging.getLogger(f"test.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def make(client: StandIn, **options) -> SluiceHandler:
    return SluiceHandler("http://unused", "slk_unused", "web-1", client=client, backoff_s=(0.0, 0.0), **options)


def test_emit_never_waits_for_sluice_and_the_queue_drops_its_oldest():
    # GIVEN sluice that does not answer (the first batch hangs), and a queue of 1,000 entries
    hold = threading.Event()
    client = StandIn(hold=hold)
    handler = make(client, queue_size=1000, batch_entries=100)
    log = logger_with(handler)

    # WHEN the app logs 20,000 records
    def app_logs() -> None:
        for i in range(20_000):
            log.info("record %d", i)

    app = threading.Thread(target=app_logs)
    app.start()
    app.join(timeout=120)  # far longer than 20,000 emits take; only an emit that waits for sluice runs past it
    assert not app.is_alive(), "emit waited for sluice"
    # THEN at most the queue and the batch in flight are kept, the rest dropped and counted, the newest kept
    assert handler.pending <= 1000 + 100
    assert handler.dropped == 20_000 - handler.pending
    hold.set()
    handler.flush(timeout=30)
    assert handler.pending == 0
    messages = [e["message"] for e in client.stored()]
    assert messages[-1] == "record 19999"
    assert len(messages) + handler.dropped == 20_000
    handler.close()


def test_a_batch_sent_again_after_a_503_or_a_timeout_carries_the_same_ids():
    # GIVEN sluice answering 503 (with Retry-After 0), then unreachable, then storing
    client = StandIn(
        fail=[SluiceError(503, "queue_unavailable", "busy", retry_after_s=0), SluiceError(0, "unreachable", "x")]
    )
    handler = make(client)
    log = logger_with(handler)
    for i in range(10):
        log.warning("w%d", i)
    # WHEN it is flushed
    handler.flush(timeout=30)
    # THEN the batch was sent three times, each time with the same ids, and nothing was dropped
    ids = [[e["id"] for e in batch] for batch in client.batches]
    assert len(ids) == 3 and ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 10
    assert handler.dropped == 0
    handler.close()


def test_only_the_entries_sluice_refuses_are_dropped():
    # GIVEN sluice refusing entry 1 of a batch (400, with its index), then a 413 (the key's burst)
    refused = SluiceError(400, "invalid_request", "bad", details=[{"index": 1, "field": "timestamp", "message": "x"}])
    too_large = SluiceError(413, "payload_too_large", "burst")
    client = StandIn(fail=[refused, too_large])
    handler = make(client)
    log = logger_with(handler)
    for i in range(4):
        log.info("m%d", i)
    # WHEN it is flushed
    handler.flush(timeout=30)
    # THEN entry 1 is dropped, the other three sent again, split in halves after the 413, and stored
    assert [[e["message"] for e in b] for b in client.batches] == [
        ["m0", "m1", "m2", "m3"],
        ["m0", "m2", "m3"],
        ["m0"],
        ["m2", "m3"],
    ]
    assert handler.dropped == 1
    handler.close()


def test_a_refusal_for_the_whole_batch_is_not_retried():
    client = StandIn(fail=[SluiceError(403, "forbidden", "this key may not use the source")])
    handler = make(client)
    logger_with(handler).error("nope")
    handler.flush(timeout=30)
    assert len(client.batches) == 1 and handler.dropped == 1
    handler.close()


def test_a_record_becomes_an_entry_sluice_takes():
    # GIVEN records at each level, with extra fields (one not JSON, one NaN), an exception, a long message
    handler = make(StandIn())
    record = logging.LogRecord("app.web", logging.ERROR, __file__, 1, "x" * 10_000, (), None)
    record.user = "ada"
    record.duration = math.nan
    record.payload = object()
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = handler.entry(record)
    # THEN the level and source are sluice's, the message fits, the attributes are strict JSON
    assert (entry["level"], entry["source"]) == ("error", "web-1")
    assert len(entry["message"]) == 8192
    assert entry["attributes"]["logger"] == "app.web"
    assert entry["attributes"]["user"] == "ada"
    assert entry["attributes"]["duration"] == "nan"
    assert "ValueError: boom" in entry["attributes"]["exception"]
    assert entry["timestamp"].endswith("+00:00") and len(entry["id"]) == 36
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 5, 25]
    assert [handler.entry(logging.LogRecord("a", n, "", 1, "m", (), None))["level"] for n in levels] == [
        "debug",
        "info",
        "warning",
        "error",
        "critical",
        "debug",
        "info",
    ]
    handler.close()


def test_attributes_larger_than_sluice_takes_are_cut_to_fit():
    handler = make(StandIn())
    record = logging.LogRecord("a", logging.INFO, "", 1, "m", (), None)
    record.big = "y" * 20_000
    record.small = "kept"
    attributes = handler.entry(record)["attributes"]
    assert len(json.dumps(attributes, separators=(",", ":")).encode()) <= 8 * 1024
    assert attributes["small"] == "kept" and attributes["big"].endswith("...(cut)")
    handler.close()


def test_after_fork_the_child_has_its_own_queue_and_thread():
    # GIVEN a handler with a record queued and not yet sent (a batch leaves after an hour)
    client = StandIn()
    handler = make(client, max_age_s=3600)
    log = logger_with(handler)
    log.info("in the parent")
    # WHEN the process forks (as a pre-fork server's workers do) and the child logs
    pid = os.fork()
    if pid == 0:  # the child: report through its exit status only, whatever happens
        ok = False
        try:
            ok = handler.pending == 0  # the parent's record stays the parent's
            for i in range(5):
                log.info("in the child %d", i)
            handler.flush(timeout=30)
            ok = ok and [e["message"] for e in client.stored()] == [f"in the child {i}" for i in range(5)]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    # THEN the child sent only its own records, from its own thread, and the parent still sends its own
    assert os.waitstatus_to_exitcode(status) == 0
    handler.flush(timeout=30)
    assert [e["message"] for e in client.stored()] == ["in the parent"]
    handler.close()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


def test_a_record_whose_extra_cannot_be_read_is_dropped_and_the_rest_still_go(capsys):
    # GIVEN a handler, and a record whose `extra` value raises when made text, between two good ones
    stand_in = StandIn()
    handler = make(stand_in)
    log = logger_with(handler)
    log.info("before")
    log.info("broken", extra={"thing": Unprintable()})
    log.info("after")
    # WHEN it flushes, and more is logged and flushed
    handler.flush(timeout=10)
    log.info("later")
    handler.flush(timeout=10)
    # THEN the broken record is dropped and counted, and every other record is sent
    assert [e["message"] for e in stand_in.stored()] == ["before", "after", "later"]
    assert (handler.dropped, handler.pending) == (1, 0)
    assert "could not make an entry" in capsys.readouterr().err
    handler.close()


def test_a_batch_never_carries_more_json_than_batch_bytes():
    # GIVEN records whose `extra` values are large, which the queue's size estimate does not see
    stand_in = StandIn()
    handler = make(stand_in, batch_bytes=20_000)
    log = logger_with(handler)
    for i in range(10):
        log.info("m%d", i, extra={"blob": "é" * 1500})  # 1,500 characters, 9,000 bytes of JSON escapes
    # WHEN they are flushed
    handler.flush(timeout=10)
    # THEN every batch sent is within batch_bytes as JSON, and all ten are sent
    sizes = [len(json.dumps({"logs": batch}, separators=(",", ":"))) for batch in stand_in.batches]
    assert max(sizes) <= 20_000 and len(stand_in.stored()) == 10
    handler.close()
