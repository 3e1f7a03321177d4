"""The flood: clients that try to starve the API for its honest callers. Anonymous readers of random
items, and writers of invalid 5 MiB batches with made-up keys, each as fast as the API answers;
beside them, honest readers whose every answer is timed.
"""

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from faults.workload import Api

FLOOD_BODY_BYTES = 5 * 2**20 - 4096  # just under MAX_BATCH_BODY_BYTES: the largest body the API takes


@dataclass
class Timings:
    """Answers by kind and status, and how long each took (s), shared by the clients' threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, what: str, status: int, elapsed_s: float) -> None:
        with self.lock:
            self.answers[f"{what} {status}"] += 1
            self.seconds.setdefault(what, []).append(elapsed_s)

    def percentile_ms(self, what: str, p: float) -> float | None:
        with self.lock:
            values = sorted(self.seconds.get(what, []))
        if not values:
            return None
        return 1000 * values[min(len(values) - 1, int(p / 100 * len(values)))]


def invalid_batch() -> bytes:
    """A batch body just under the size cap whose every entry is invalid: work for a parser."""
    one = json.dumps({"level": "loud", "source": "?", "message": "x" * 200})
    count = (FLOOD_BODY_BYTES - 20) // (len(one) + 1)
    return ('{"logs": [' + ",".join([one] * count) + "]}").encode()


def _anonymous(api: Api, timings: Timings, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        status, _, _ = api.call("GET", f"/items/{uuid.uuid4().hex}")
        timings.add("flood GET /items/{random}", status, time.monotonic() - started)


def _made_up(base_url: str, body: bytes, timings: Timings, stop: threading.Event) -> None:
    while not stop.is_set():
        api = Api(base_url, "slk_" + uuid.uuid4().hex * 2, "")  # a new made-up key each time
        started = time.monotonic()
        status, _, _ = api.call_raw("POST", "/logs/batch", body)
        timings.add("flood POST /logs/batch (made-up key)", status, time.monotonic() - started)
        api.close()


HONEST_READ_INTERVAL_S = 0.1  # a person or a dashboard reading its logs, not a loop as fast as it can


def _honest_reader(api: Api, timings: Timings, stop: threading.Event) -> None:
    while not stop.wait(HONEST_READ_INTERVAL_S):
        started = time.monotonic()
        status, _, _ = api.call("GET", "/logs?source=faults&limit=20")
        timings.add("honest GET /logs", status, time.monotonic() - started)


@contextmanager
def flooding(base_url: str, timings: Timings, *, anonymous: int, made_up: int) -> Iterator[None]:
    """Run the flood's clients while the block runs."""
    stop = threading.Event()
    body = invalid_batch()
    threads = [
        threading.Thread(target=_anonymous, args=(Api(base_url, "", ""), timings, stop)) for _ in range(anonymous)
    ]
    threads += [threading.Thread(target=_made_up, args=(base_url, body, timings, stop)) for _ in range(made_up)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)


@contextmanager
def honest_readers(base_url: str, keys: list[str], timings: Timings) -> Iterator[None]:
    """One reader of GET /logs per key while the block runs."""
    stop = threading.Event()
    threads = [threading.Thread(target=_honest_reader, args=(Api(base_url, k, ""), timings, stop)) for k in keys]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
