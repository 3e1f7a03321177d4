"""The flood: clients that try to starve the API for its honest callers. Anonymous readers of random
items, and writers of invalid 5 MiB batches with made-up keys, each as fast as the API answers, in
a process of their own; beside them, honest readers whose every answer is timed.
"""

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from faults.workload import Api, threads_running

FLOOD_BODY_BYTES = 5 * 2**20 - 4096  # just under MAX_BATCH_BODY_BYTES: the largest body the API takes
JOIN_S = 120.0  # longest wait for a client thread to end (its request's answer comes well before)


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


def _clients(
    base_url: str, anonymous: int, made_up: int, timings: Timings, stop: threading.Event
) -> list[threading.Thread]:
    """The flood's client threads (not started)."""
    body = invalid_batch()
    threads = [
        threading.Thread(target=_anonymous, args=(Api(base_url, "", ""), timings, stop)) for _ in range(anonymous)
    ]
    return threads + [threading.Thread(target=_made_up, args=(base_url, body, timings, stop)) for _ in range(made_up)]


@contextmanager
def flooding(base_url: str, timings: Timings, *, anonymous: int, made_up: int) -> Iterator[None]:
    """Run the flood while the block runs, in a process of its own (its 100 threads must not share an
    interpreter with the honest clients and the fault proxy they are measured through); its answers
    are added to `timings` when it ends."""
    cmd = [sys.executable, "-m", "faults.flood", base_url, str(anonymous), str(made_up)]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        out, _ = child.communicate("stop\n", timeout=300)  # it floods until told to stop
    with timings.lock:
        timings.answers.update(json.loads(out))


def main(argv: list[str]) -> int:
    """`python -m faults.flood BASE_URL ANONYMOUS MADE_UP`: flood until a line comes on stdin, then
    print the answers by kind and status as JSON."""
    timings, stop = Timings(), threading.Event()
    with threads_running(_clients(argv[0], int(argv[1]), int(argv[2]), timings, stop), stop, JOIN_S):
        sys.stdin.readline()
    print(json.dumps(dict(timings.answers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


@contextmanager
def honest_readers(base_url: str, keys: list[str], timings: Timings) -> Iterator[None]:
    """One reader of GET /logs per key while the block runs."""
    stop = threading.Event()
    threads = [threading.Thread(target=_honest_reader, args=(Api(base_url, k, ""), timings, stop)) for k in keys]
    with threads_running(threads, stop, JOIN_S):
        yield
