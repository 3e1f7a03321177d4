"""The fault suite's workload: clients that write log entries and read items while faults happen,
recording every answer, and every entry acknowledged with 202.

Writers post single entries and batches; half the entries carry their own id. A writer that gets
a 503 (or a 429) retries (after Retry-After) with the ids the answer gives, or its own, as a careful client
does, so a 503 for an entry that was queued after all must not make it stored twice. Every entry
carries a unique marker in its message, so an entry stored under two ids is found.

Readers read hot items (cached), cold ones (absent), and an admin writes new versions of the hot
items; every read records the version it saw, so a stale copy served after a write is found.
"""

import http.client
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CLIENT_TIMEOUT_S = 60.0  # longer than the API function's timeout: every request gets an answer
MAX_ATTEMPTS = 90  # a writer's tries of one request (a retried 503, about a second apart), at most
HOT_ITEMS = 5


@dataclass
class Read:
    item: str
    started: float
    version: int | None  # None: not found, or no answer


@dataclass
class Write:
    item: str
    done: float
    version: int


@dataclass
class Record:
    """Everything the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)  # "POST /logs 202" -> count
    acked: dict[str, str] = field(default_factory=dict)  # marker -> the id acknowledged
    unanswered: int = 0  # requests that got no answer at all (a defect: the API has a timeout)
    reads: list[Read] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)  # how long each write request took

    def answer(self, what: str, status: int) -> None:
        with self.lock:
            self.answers[f"{what} {status}"] += 1


class Api:
    """One client's keep-alive connection to the API at `base_url` (chalice local's
    http://127.0.0.1:<port>, or a LocalStack API Gateway URL with its path)."""

    def __init__(self, base_url: str, key: str, admin_token: str) -> None:
        url = urllib.parse.urlsplit(base_url)
        self._host, self._port, self._prefix = url.hostname or "127.0.0.1", url.port or 80, url.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._admin = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, admin: bool = False) -> tuple[int, dict[str, Any], Any]:
        """(status, headers, JSON body); status 0 when no answer came."""
        return self.call_raw(method, path, json.dumps(body).encode() if body is not None else None, admin)

    def call_raw(
        self, method: str, path: str, data: bytes | None, admin: bool = False
    ) -> tuple[int, dict[str, Any], Any]:
        """The same with a body sent as it is."""
        headers = self._admin if admin else self._headers
        for _ in range(2):  # a kept-alive connection the server closed: once more on a new one
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=CLIENT_TIMEOUT_S)
            try:
                self._conn.request(method, self._prefix + path, body=data, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                continue
            except (TimeoutError, OSError):
                self.close()
                return 0, {}, None
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return response.status, dict(response.getheaders()), parsed
        return 0, {}, None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def entry(marker: str, with_id: bool, source: str = "faults") -> dict[str, Any]:
    """A log entry whose message is its marker; with its own id when `with_id`."""
    body: dict[str, Any] = {"level": "info", "source": source, "message": marker}
    if with_id:
        body["id"] = str(uuid.uuid4())
    return body


@dataclass(frozen=True)
class Rejects:
    """Every `every`-th entry of a writer goes to `source` (whose rows MySQL refuses), its marker
    starting with the source's name; 0: none."""

    every: int = 0
    source: str = ""


def _writer(api: Api, record: Record, name: str, stop: threading.Event, rng: random.Random, rejects: Rejects) -> None:
    n = 0
    while not stop.is_set():
        size = 1 if rng.random() < 0.7 else rng.randint(2, 20)
        entries = []
        for _ in range(size):
            n += 1
            if rejects.every and n % rejects.every == 0:
                entries.append(entry(f"{rejects.source}-{name}-{n}", with_id=True, source=rejects.source))
            else:
                entries.append(entry(f"{name}-{n}", with_id=rng.random() < 0.5))
        _post_until_answered(api, record, entries)


def _post_until_answered(api: Api, record: Record, entries: list[dict[str, Any]]) -> None:
    single = len(entries) == 1
    path, what = ("/logs", "POST /logs") if single else ("/logs/batch", "POST /logs/batch")
    for _ in range(MAX_ATTEMPTS):
        started = time.monotonic()
        status, headers, body = api.call("POST", path, entries[0] if single else {"logs": entries})
        record.answer(what, status)
        with record.lock:
            record.write_seconds.append(time.monotonic() - started)
        if status == 202:
            ids = [body["id"]] if single else body["ids"]
            with record.lock:
                for e, log_id in zip(entries, ids, strict=True):
                    record.acked[e["message"]] = log_id
            return
        if status == 0:
            with record.lock:
                record.unanswered += 1
        details = (body or {}).get("error", {}).get("details") if isinstance(body, dict) else None
        if isinstance(details, dict):  # the ids it may have queued: retry with them
            ids = [details["id"]] if "id" in details else details.get("ids", [])
            for e, log_id in zip(entries, ids, strict=False):
                e["id"] = log_id
        if status not in (0, 429, 503):
            return  # not worth retrying (recorded; the scenario judges it)
        time.sleep(float(headers.get("Retry-After", 1)))


def _reader(api: Api, record: Record, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        item = f"hot-{rng.randrange(HOT_ITEMS)}" if rng.random() < 0.8 else f"cold-{uuid.uuid4()}"
        started = time.monotonic()
        status, _, body = api.call("GET", f"/items/{item}")
        record.answer("GET /items/{id}", status)
        version = body.get("version") if status == 200 and isinstance(body, dict) else None
        with record.lock:
            record.reads.append(Read(item, started, version))


def _item_writer(api: Api, record: Record, stop: threading.Event, rng: random.Random, interval_s: float) -> None:
    while not stop.wait(interval_s):
        item = f"hot-{rng.randrange(HOT_ITEMS)}"
        status, _, body = api.call("PUT", f"/items/{item}", {"name": f"{item} at {time.time():.3f}"}, admin=True)
        record.answer("PUT /items/{id}", status)
        if status in (200, 201):
            with record.lock:
                record.writes.append(Write(item, time.monotonic(), int(body["version"])))


def seed_items(base_url: str, key: str, admin_token: str) -> None:
    """Create the hot items."""
    api = Api(base_url, key, admin_token)
    for i in range(HOT_ITEMS):
        status, _, _ = api.call("PUT", f"/items/hot-{i}", {"name": f"hot {i}"}, admin=True)
        if status not in (200, 201):
            raise RuntimeError(f"could not seed item hot-{i}: {status}")
    api.close()


@contextmanager
def running(
    base_url: str,
    key: str,
    admin_token: str,
    record: Record,
    *,
    writers: int,
    readers: int = 0,
    item_write_interval_s: float = 0.0,
    rejects: Rejects = Rejects(),
    seed: int = 1,
) -> Iterator[None]:
    """Run the clients while the block runs; stop and join them after it."""
    stop = threading.Event()
    rng = random.Random(seed)

    def client() -> Api:
        return Api(base_url, key, admin_token)

    threads = [
        threading.Thread(
            target=_writer,
            args=(client(), record, f"w{seed}.{i}", stop, random.Random(rng.random()), rejects),
        )
        for i in range(writers)
    ]
    threads += [
        threading.Thread(target=_reader, args=(client(), record, stop, random.Random(rng.random())))
        for _ in range(readers)
    ]
    if item_write_interval_s:
        threads.append(
            threading.Thread(
                target=_item_writer,
                args=(client(), record, stop, random.Random(rng.random()), item_write_interval_s),
            )
        )
    with threads_running(threads, stop, CLIENT_TIMEOUT_S * MAX_ATTEMPTS):
        yield


@contextmanager
def threads_running(threads: list[threading.Thread], stop: threading.Event, join_s: float) -> Iterator[None]:
    """Start the client threads; once the block ends, set `stop` and join them (each for at most `join_s`)."""
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=join_s)


def stale_reads(record: Record, bound_s: float) -> list[tuple[Read, Write]]:
    """Reads that began more than `bound_s` after a write of their item finished, yet saw an older version."""
    stale = []
    for read in record.reads:
        if read.version is None:
            continue
        for write in record.writes:
            if write.item == read.item and read.started > write.done + bound_s and read.version < write.version:
                stale.append((read, write))
                break
    return stale
