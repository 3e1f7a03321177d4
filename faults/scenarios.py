"""The fault scenarios. Each runs a workload against the `faults` stage, injects its fault,
recovers, waits for the queue to drain, reconciles, and states what it expects; a check that
fails fails the run.
"""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import declared_default
from faults import workload
from faults.client_app import LoggingApp, emit_summary
from faults.flood import HONEST_READ_INTERVAL_S, Timings, flooding, honest_readers
from faults.harness import SHORT_VISIBILITY, STANDARD, ConsumerProfile, Target
from faults.inject import MySQLHog, connections_by_user, kill_service, pause_service, start_service
from faults.proxy import FaultProxy
from faults.reconcile import BacklogWatch, Reconciliation, queue_depth, reconcile, wait_until_settled
from faults.workload import Record
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.devstack.services import find_service

REJECTED_SOURCE = "reject.me"
RECOVERY_BOUND_S = 10.0  # after a dependency returns, its backlog is stored within this


@dataclass(frozen=True)
class Profile:
    name: str
    outage_s: float  # how long MariaDB is down, SQS refuses or answers late
    hang_s: float  # how long MariaDB is stopped (SIGSTOP)
    lead_s: float  # workload before the fault
    tail_s: float  # workload after recovery
    writers: int
    readers: int
    scenarios: tuple[str, ...]  # against chalice local
    client_records: int = 20_000  # what the app logs through the Python client in client-mariadb-killed
    deployed: tuple[str, ...] = ()  # against the LocalStack deployment


@dataclass
class Check:
    what: str
    passed: bool
    detail: str = ""


@dataclass
class Outcome:
    name: str
    target: str
    fault: str
    workload: str
    expected: str
    reconciliation: Reconciliation | None = None
    answers: dict[str, int] = field(default_factory=dict)
    recover_s: float | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def check(self, what: str, passed: bool, detail: Any = "") -> None:
        self.checks.append(Check(what, bool(passed), str(detail)))


Runner = Callable[[Target, Profile, Outcome], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str
    expected: str
    consumer: ConsumerProfile
    run: Runner
    api_env: dict[str, str] = field(default_factory=dict)  # over the stage's settings, for this scenario
    workload: str = ""  # what its clients do, when not the shared workload


# --- shared steps ----------------------------------------------------------------------------

ALLOWED = {
    "POST /logs": {202, 503},
    "POST /logs/batch": {202, 503},
    "GET /items/{id}": {200, 404, 503},
    "PUT /items/{id}": {200, 201, 503},
}


def _workload_text(profile: Profile, readers: bool = True) -> str:
    text = f"{profile.writers} writers (single and batch posts, half with their own ids, 503s and 429s retried)"
    if readers:
        text += f", {profile.readers} readers of hot and absent items, an admin writing the hot items"
    return text


@contextmanager
def _clients(sluice: Target, profile: Profile, record: Record, *, readers: bool = True, **kw: Any) -> Iterator[None]:
    with workload.running(
        sluice.base_url,
        sluice.key,
        sluice.admin_token,
        record,
        writers=profile.writers,
        readers=profile.readers if readers else 0,
        item_write_interval_s=0.5 if readers else 0.0,
        **kw,
    ):
        # The fault comes once the app is in use (its key cached, the deployed path's environments
        # started): a key first seen during a MySQL outage is refused with 503, as documented.
        _wait(lambda: bool(record.acked), 120, "the first acknowledged write")
        yield


def _recovered(sluice: Target, record: Record, timeout_s: float = 120) -> BacklogWatch:
    """The dependency is back: start timing how long its backlog takes to be stored."""
    with record.lock:
        backlog = set(record.acked)
    return BacklogWatch(sluice.settings, backlog, timeout_s)


def _settle_and_reconcile(
    sluice: Target,
    record: Record,
    outcome: Outcome,
    recovery: BacklogWatch | None,
    *,
    timeout_s: float,
    bound_s: float | None = RECOVERY_BOUND_S,
    dead_letters_expected: bool = False,
) -> None:
    """Wait for the drain, reconcile, and run the checks every scenario shares."""
    queue_url, dlq_url = sluice.queue_urls()
    wait_until_settled(sluice.settings, set(record.acked), timeout_s)
    outcome.notes.append(f"messages left in the queue when settled: {queue_depth(sluice.settings, queue_url)()}")
    result = reconcile(record, sluice.settings, dlq_url, lambda m: m.startswith(REJECTED_SOURCE))
    outcome.reconciliation = result
    outcome.answers = dict(sorted(record.answers.items()))
    if recovery is not None:
        outcome.recover_s = recovery.result()
    outcome.check("clients got acknowledgements", result.acknowledged > 0, result.acknowledged)
    outcome.check("0 lost", result.lost == 0, result.lost)
    outcome.check("0 duplicated", result.duplicated == 0, result.duplicated)
    outcome.check("0 valid entries set aside", result.rejected_wrongly == 0, result.rejected_wrongly)
    if not dead_letters_expected:
        outcome.check("nothing in the dead-letter queue", result.dead_lettered == 0, result.dead_lettered)
    outcome.check("every request answered", record.unanswered == 0, record.unanswered)
    unexpected = {
        a: n for a, n in record.answers.items() if int(a.rsplit(" ", 1)[1]) not in ALLOWED[a.rsplit(" ", 1)[0]]
    }
    outcome.check("no answer but 2xx, 404 and 503", not unexpected, unexpected or "")
    if bound_s is not None:
        bound_s += sluice.drain_allowance_s
    if bound_s is not None and recovery is not None:
        outcome.check(
            f"the backlog stored within {bound_s:.0f} s of recovery",
            outcome.recover_s is not None and outcome.recover_s <= bound_s,
            f"{outcome.recover_s} s",
        )


def _stale_check(record: Record, outcome: Outcome, bound_s: float) -> None:
    """The documented bound (a missed invalidation lives until ITEM_CACHE_TTL_S), and what was seen."""
    stale = workload.stale_reads(record, bound_s)
    outcome.check(f"no item read older than a write finished more than {bound_s:g} s before", not stale, len(stale))
    seen = workload.stale_reads(record, 0.0)
    worst = max((read.started - write.done for read, write in seen), default=0.0)
    outcome.notes.append(
        f"item reads begun after a write's answer that saw an older version: {len(seen)} (worst {worst:.1f} s after)"
    )


# --- the scenarios ---------------------------------------------------------------------------


def _service_killed(sluice: Target, profile: Profile, outcome: Outcome, name: str, outage_s: float) -> None:
    """Writers, readers and item writes; the service SIGKILLed, started again after `outage_s`."""
    record = Record()
    workload.seed_items(sluice.base_url, sluice.key, sluice.admin_token)
    with _clients(sluice, profile, record):
        time.sleep(profile.lead_s)
        kill_service(name)
        time.sleep(outage_s)
        start_service(name)
        recovered_at = _recovered(sluice, record)
        time.sleep(profile.tail_s)
    _settle_and_reconcile(sluice, record, outcome, recovered_at, timeout_s=120)
    outcome.notes.append(f"{len(record.writes)} item writes, {len(record.reads)} item reads")
    _stale_check(record, outcome, sluice.settings.item_cache_ttl_s)


def mariadb_killed(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    _service_killed(sluice, profile, outcome, "mariadb", profile.outage_s)


def client_mariadb_killed(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    """An app logs through the Python client while MariaDB is killed, then started again."""
    record = Record()
    duration_s = profile.lead_s + profile.outage_s + profile.tail_s
    outcome.workload = (
        f"one app logging {profile.client_records:,} records evenly over {duration_s:g} s through SluiceHandler"
    )
    app = LoggingApp(sluice.base_url, sluice.key, profile.client_records, duration_s)
    app.start()
    time.sleep(profile.lead_s)
    kill_service("mariadb")
    time.sleep(profile.outage_s)
    start_service("mariadb")
    recovery = BacklogWatch(sluice.settings, app.logged_so_far(), 120)
    app.finish()
    record.acked = dict.fromkeys(app.markers, "")  # every record the app logged must be stored once
    outcome.check("the app logged every record", len(app.markers) == profile.client_records, len(app.markers))
    outcome.check("the handler dropped nothing", app.handler.dropped == 0, app.handler.dropped)
    outcome.check("the handler's queue was sent", app.handler.pending == 0, app.handler.pending)
    _settle_and_reconcile(sluice, record, outcome, recovery, timeout_s=120)
    outcome.notes.append(f"emit (the app's cost of a log call): {emit_summary(app.emit_ns)}")


def mariadb_hung(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    workload.seed_items(sluice.base_url, sluice.key, sluice.admin_token)
    with _clients(sluice, profile, record):
        time.sleep(profile.lead_s)
        pause_service("mariadb", True)
        try:
            time.sleep(profile.hang_s)
        finally:
            pause_service("mariadb", False)
        recovered_at = _recovered(sluice, record)
        time.sleep(profile.tail_s)
    _settle_and_reconcile(sluice, record, outcome, recovered_at, timeout_s=120)
    _stale_check(record, outcome, sluice.settings.item_cache_ttl_s)


def _writer_inserts_waiting(sluice: Target) -> bool:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s AND INFO LIKE 'INSERT INTO logs%%'",
            (sluice.settings.secrets.plain["mysql_writer"]["username"],),
        )
        row = cur.fetchone()
        return bool(row and row[0])


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _settle_within_visibility(
    sluice: Target, record: Record, outcome: Outcome, recovered_at: BacklogWatch, why: str
) -> None:
    """Messages left in flight (`why`) come back only when the visibility timeout ends: the
    bound is that timeout, plus the usual."""
    visibility = sluice.settings.queue_visibility_timeout_s
    outcome.notes.append(f"{why} come back after the queue's visibility timeout ({visibility} s)")
    _settle_and_reconcile(
        sluice, record, outcome, recovered_at, timeout_s=visibility + 60, bound_s=visibility + RECOVERY_BOUND_S
    )


def consumer_killed_before_commit(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    with admin_connection(sluice.settings.mysql.database) as lock, lock.cursor() as cur:
        # GIVEN the logs table locked by another session: the consumer's inserts wait, uncommitted
        cur.execute("LOCK TABLES logs WRITE")
        try:
            with _clients(sluice, profile, record, readers=False):
                time.sleep(profile.lead_s)
                _wait(lambda: _writer_inserts_waiting(sluice), 30, "a consumer insert waiting on the lock")
                # WHEN the consumer is killed in the middle of those batches
                sluice.kill_consumers()
        finally:
            cur.execute("UNLOCK TABLES")
    sluice.start_consumer()
    recovered_at = _recovered(sluice, record, timeout_s=120)
    _settle_within_visibility(sluice, record, outcome, recovered_at, "batches in flight")


def consumer_killed_after_commit(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    # GIVEN the consumer's deletes held at the proxy: a batch is committed, its messages not yet deleted
    _proxy(sluice).hold("DeleteMessageBatch")
    with _clients(sluice, profile, record, readers=False):
        time.sleep(profile.lead_s)
        _wait(lambda: _proxy(sluice).held() > 0, 30, "a committed batch's delete")
    committed = _rows(sluice)
    # WHEN the consumer is killed before SQS deletes the batch
    sluice.kill_consumers()
    _proxy(sluice).drop_held()
    sluice.start_consumer()
    recovered_at = _recovered(sluice, record, timeout_s=120)
    outcome.notes.append(f"{committed} rows were committed when the consumer died")
    _settle_within_visibility(sluice, record, outcome, recovered_at, "their messages")
    outcome.check("some batches were committed before the kill", committed > 0, committed)


def _proxy(sluice: Target) -> FaultProxy:
    if sluice.proxy is None:
        raise RuntimeError(f"this scenario needs the fault proxy, which the {sluice.name} target does not have")
    return sluice.proxy


def _rows(sluice: Target) -> int:
    with admin_connection(sluice.settings.mysql.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM logs")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def redis_killed(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    _service_killed(sluice, profile, outcome, "redis", profile.outage_s / 2)


def sqs_refused(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    with _clients(sluice, profile, record, readers=False):
        time.sleep(profile.lead_s)
        _proxy(sluice).refuse()
        time.sleep(profile.outage_s / 2)
        _proxy(sluice).restore()
        recovered_at = _recovered(sluice, record)
        time.sleep(profile.tail_s)
    _settle_within_visibility(
        sluice, record, outcome, recovered_at, "messages taken by a receive whose answer was lost"
    )
    refused = record.answers["POST /logs 503"] + record.answers["POST /logs/batch 503"]
    outcome.check("writes were refused with 503 while SQS was down", refused > 0, refused)


def sqs_slow(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    with _clients(sluice, profile, record, readers=False):
        time.sleep(profile.lead_s)
        # Calls reach SQS, but answers come after the app's read timeout (5 s): sent, yet failed.
        # At least 15 s, so that the app's two tries of a call (and its 15 s wait) run out.
        _proxy(sluice).delay_responses(6.0)
        time.sleep(max(profile.outage_s, 15))
        _proxy(sluice).restore()
        recovered_at = _recovered(sluice, record)
        time.sleep(profile.tail_s)
    _settle_within_visibility(
        sluice, record, outcome, recovered_at, "messages taken by a receive whose answer was lost"
    )
    refused = record.answers["POST /logs 503"] + record.answers["POST /logs/batch 503"]
    outcome.check("writes got 503 while SQS was slow (retried with the ids they gave)", refused > 0, refused)
    unacked = outcome.reconciliation.unacknowledged_stored if outcome.reconciliation else 0
    outcome.notes.append(f"{unacked} entries stored whose client never got a 202 (a 503 after SQS had taken them)")


def duplicate_deliveries(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    # GIVEN 300 messages each sent twice (as SQS's at-least-once delivery may), read by two consumers
    record = Record()
    queue_url, _ = sluice.queue_urls()
    sqs = aws_client("sqs", sluice.settings)
    bodies = []
    for i in range(300):
        entries = [workload.entry(f"dup-{i}-{j}", with_id=True) for j in range(1 + i % 5)]
        for e in entries:
            e.update({"timestamp": "2026-01-01T00:00:00Z", "attributes": {}, "received_at": "2026-01-01T00:00:01Z"})
            e["key_id"] = "key_00000000000000d0"  # as the API names the key that wrote an entry
            record.acked[e["message"]] = e["id"]
        bodies.append(json.dumps({"logs": entries}))
    sluice.kill_consumers()
    for copy in range(2):
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": f"{copy}-{i}", "MessageBody": b} for i, b in enumerate(chunk)]
            )
    # WHEN two consumer processes drain the queue at once
    sluice.start_consumer()
    sluice.start_consumer()
    _settle_and_reconcile(sluice, record, outcome, _recovered(sluice, record), timeout_s=120, bound_s=None)
    outcome.answers = {"SendMessageBatch (the suite)": 2 * ((len(bodies) + 9) // 10)}


def data_errors(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    # GIVEN MySQL refusing every row of one source (a trigger's SIGNAL: a data error, not an outage)
    with admin_connection(sluice.settings.mysql.database) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TRIGGER faults_reject BEFORE INSERT ON logs FOR EACH ROW"
            f" IF NEW.source = '{REJECTED_SOURCE}' THEN"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the fault suite'; END IF"
        )
    record = Record()
    with _clients(sluice, profile, record, readers=False, rejects=workload.Rejects(7, REJECTED_SOURCE)):
        time.sleep(profile.lead_s + profile.tail_s)
    _settle_and_reconcile(sluice, record, outcome, _recovered(sluice, record), timeout_s=120, bound_s=None)
    result = outcome.reconciliation
    assert result is not None
    meant = sum(1 for m in record.acked if m.startswith(REJECTED_SOURCE))
    outcome.check(
        "every refused row set aside with its reason",
        result.rejected_rightly == meant,
        f"{result.rejected_rightly} of {meant}",
    )


def max_connections_taken(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    record = Record()
    workload.seed_items(sluice.base_url, sluice.key, sluice.admin_token)
    with _clients(sluice, profile, record):
        time.sleep(profile.lead_s)
        # WHEN a foreign client takes every connection MySQL has left, and each one freed
        with MySQLHog(sluice.settings.mysql.port) as hog:
            if not hog.full.wait(60):
                raise RuntimeError("the foreign client could not take every connection within 60 s")
            time.sleep(profile.outage_s / 2)
            outcome.notes.append(f"connections by user at the end of the outage: {connections_by_user()}")
        recovered_at = _recovered(sluice, record)
        outcome.notes.append(
            f"the foreign client held up to {hog.peak} connections; refusals by error: {dict(hog.refusals)}"
        )
        time.sleep(profile.tail_s)
    _settle_and_reconcile(sluice, record, outcome, recovered_at, timeout_s=120)


FLOOD_ANONYMOUS = 50  # anonymous readers of random items
FLOOD_MADE_UP = 50  # writers of invalid 5 MiB batches with made-up keys
HONEST_WRITERS = 2  # per honest key


def _honest_key(sluice: Target, name: str) -> str:
    """A key of its own for an honest caller: both scopes, the workload's source, a rate no test reaches."""
    api = workload.Api(sluice.base_url, "", sluice.admin_token)
    body = {"name": name, "scopes": ["logs:write", "logs:read"], "sources": ["faults"]}
    status, _, made = api.call("POST", "/keys", {**body, "rate_per_s": 100_000, "burst": 100_000}, admin=True)
    api.close()
    if status != 201:
        raise RuntimeError(f"could not make the key {name}: {status} {made}")
    return str(made["key"])


def _p(values: list[float], p: float) -> str:
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]:.0f} ms" if ordered else NO_VALUE


NO_VALUE = "none"


def api_flood(sluice: Target, profile: Profile, outcome: Outcome) -> None:
    """Two honest keys write and read for a while alone, then beside the flood; compare."""
    record, calm, flooded = Record(), Timings(), Timings()
    keys = [_honest_key(sluice, "honest-a"), _honest_key(sluice, "honest-b")]
    phase_s = profile.lead_s + profile.outage_s
    writers = [
        workload.running(sluice.base_url, k, sluice.admin_token, record, writers=HONEST_WRITERS, seed=n + 1)
        for n, k in enumerate(keys)
    ]
    with writers[0], writers[1]:
        _wait(lambda: bool(record.acked), 120, "the first acknowledged write")
        with honest_readers(sluice.base_url, keys, calm):
            time.sleep(phase_s)
        calm_writes = len(record.write_seconds)
        cpu_before = sluice.api_cpu_s()
        with (
            honest_readers(sluice.base_url, keys, flooded),
            flooding(sluice.base_url, flooded, anonymous=FLOOD_ANONYMOUS, made_up=FLOOD_MADE_UP),
        ):
            time.sleep(phase_s)
        cpu_after = sluice.api_cpu_s()
        flood_writes = len(record.write_seconds)
    _settle_and_reconcile(sluice, record, outcome, None, timeout_s=120)
    answers = dict(flooded.answers)
    honest = {a: n for a, n in {**record.answers, **calm.answers, **answers}.items() if not a.startswith("flood")}
    outcome.check(
        "the honest keys got only 2xx, before and during the flood",
        all(a.endswith((" 200", " 202")) for a in honest),
        honest,
    )
    anonymous = {a: n for a, n in answers.items() if a.startswith("flood GET")}
    made_up = {a: n for a, n in answers.items() if a.startswith("flood POST")}
    # A flood request past its address's limit gets 429; one within it may find its own share of the
    # read slots (anonymous reads', or key lookups') full and get 503: never anyone else's.
    outcome.check(
        "the anonymous flood got 429s (otherwise 404, or 503 when its own read slots were full)",
        anonymous.get("flood GET /items/{random} 429", 0) > 0
        and all(a.endswith((" 404", " 429", " 503")) for a in anonymous),
        anonymous,
    )
    outcome.check(
        "the made-up keys' batches were refused unread (401, 429, or 503 from the key lookups' own slots; never 400)",
        made_up.get("flood POST /logs/batch (made-up key) 429", 0) > 0
        and all(a.endswith((" 401", " 429", " 503")) for a in made_up),
        made_up,
    )
    with record.lock:
        writes_calm, writes_flood = record.write_seconds[:calm_writes], record.write_seconds[calm_writes:flood_writes]
    outcome.notes.append(
        f"honest writes p50/p99: {_p(writes_calm, 50)} / {_p(writes_calm, 99)} alone,"
        f" {_p(writes_flood, 50)} / {_p(writes_flood, 99)} beside the flood"
        f" ({len(writes_calm)} and {len(writes_flood)} requests)"
    )
    reads_calm, reads_flood = calm.seconds.get("honest GET /logs", []), flooded.seconds.get("honest GET /logs", [])
    outcome.notes.append(
        f"honest GET /logs p50/p99: {_p(reads_calm, 50)} / {_p(reads_calm, 99)} alone,"
        f" {_p(reads_flood, 50)} / {_p(reads_flood, 99)} beside the flood"
        f" ({len(reads_calm)} and {len(reads_flood)} requests)"
    )
    flood_count = sum(anonymous.values()) + sum(made_up.values())
    outcome.notes.append(
        f"the flood: {sum(anonymous.values())} anonymous reads, {sum(made_up.values())} invalid 5 MiB batches"
        f" in {phase_s:g} s"
    )
    if cpu_before is not None and cpu_after is not None and flood_count:
        outcome.notes.append(
            f"the API's CPU during the flood: {cpu_after - cpu_before:.1f} s for {flood_count} flood requests"
            f" and the honest ones beside them ({1000 * (cpu_after - cpu_before) / flood_count:.2f} ms a request)"
        )


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "mariadb-killed",
            "MariaDB SIGKILLed during the writes, started again after the outage",
            "writes keep getting 202 (SQS holds them); uncached reads 503, cached ones 200; the consumer retries "
            "inside its invocation; every entry stored once, within 10 s of MariaDB's return; no DLQ",
            STANDARD,
            mariadb_killed,
        ),
        Scenario(
            "client-mariadb-killed",
            "MariaDB SIGKILLed while an app logs through the Python client (SluiceHandler), started again",
            "sluice keeps answering 202 (SQS holds the writes), so the handler never retries and drops nothing;"
            " the app's log calls never wait; every record stored once, within 10 s of MariaDB's return; no DLQ",
            STANDARD,
            client_mariadb_killed,
        ),
        Scenario(
            "mariadb-hung",
            "MariaDB stopped (SIGSTOP), then resumed",
            "requests wait at most their MySQL timeouts, then 503; every entry stored once, within 10 s; no DLQ",
            STANDARD,
            mariadb_hung,
        ),
        Scenario(
            "consumer-killed-before-commit",
            "the consumer SIGKILLed while its inserts wait, uncommitted (logs table locked)",
            "nothing of the killed batches is stored; their messages come back after the visibility timeout "
            "and are stored once",
            SHORT_VISIBILITY,
            consumer_killed_before_commit,
        ),
        Scenario(
            "consumer-killed-after-commit",
            "the consumer SIGKILLed after its commit, before SQS deleted the batch (deletes held at the proxy)",
            "the batch comes back and its entries are found already stored: each stored once",
            SHORT_VISIBILITY,
            consumer_killed_after_commit,
        ),
        Scenario(
            "redis-killed",
            "Redis SIGKILLed during hot and cold reads and item writes, started again (empty)",
            "reads fall back to MySQL within the read budget (503 when it is full, never 500); no stale item "
            "after a write; writes unaffected",
            STANDARD,
            redis_killed,
        ),
        Scenario(
            "sqs-refused",
            "SQS refusing connections (the fault proxy stops listening)",
            "never a 202 for an entry SQS did not take; 503 with the ids to retry with; each stored once",
            SHORT_VISIBILITY,
            sqs_refused,
        ),
        Scenario(
            "sqs-slow",
            "SQS answering 6 s late (the fault proxy), after the app's 5 s read timeout: calls land, answers are lost",
            "503 with the ids; the clients' retries with those ids store each entry once",
            SHORT_VISIBILITY,
            sqs_slow,
        ),
        Scenario(
            "duplicate-deliveries",
            "every message sent twice (same entries, same ids), drained by two consumers at once",
            "each entry stored once; no error, no DLQ",
            STANDARD,
            duplicate_deliveries,
        ),
        Scenario(
            "data-errors",
            f"MySQL refusing every row of source {REJECTED_SOURCE} (a trigger's SIGNAL), among good entries",
            "the refused rows set aside with MySQL's reason; every other entry stored once; no DLQ",
            STANDARD,
            data_errors,
        ),
        Scenario(
            "api-flood",
            f"{FLOOD_ANONYMOUS} clients reading random items anonymously and {FLOOD_MADE_UP} posting invalid 5 MiB"
            " batches with made-up keys, beside two honest keys that write and read (the per-address limits at"
            " their defaults; every client is 127.0.0.1)",
            "the flood gets 429s, its batches refused unread (401/429, never 400); the honest keys' answers stay"
            " 2xx (p99 reported beside a run without the flood); every acknowledged entry stored once",
            STANDARD,
            api_flood,
            workload=f"two honest keys, each with {HONEST_WRITERS} writers (as above) and a reader of GET /logs"
            f" every {HONEST_READ_INTERVAL_S:g} s; alone, then beside the flood, for the same time",
            api_env={
                "PUBLIC_RATE_PER_S": declared_default("PUBLIC_RATE_PER_S"),
                "PUBLIC_BURST": declared_default("PUBLIC_BURST"),
            },
        ),
        Scenario(
            "max-connections",
            "a foreign client holding every connection MySQL has left (max_connections reached)",
            "uncached reads 503; writes 202; the consumer waits and retries; every entry stored once within 10 s "
            "of the connections' release",
            STANDARD,
            max_connections_taken,
        ),
    )
}


def run_scenario(scenario: Scenario, sluice: Target, profile: Profile) -> Outcome:
    """Prepare, start the app, run the scenario, stop the app; errors become a failed check."""
    outcome = Outcome(scenario.name, sluice.name, scenario.fault, "", scenario.expected)
    outcome.workload = scenario.workload or _workload_text(
        profile, readers=scenario.name not in {"sqs-refused", "sqs-slow"}
    )
    started = time.monotonic()
    try:
        sluice.prepare(scenario.consumer)
        sluice.start(api_env=scenario.api_env)
        scenario.run(sluice, profile, outcome)
    except Exception as exc:  # the scenario could not run: that fails it, with why
        outcome.check("the scenario ran", False, f"{type(exc).__name__}: {exc}")
    finally:
        sluice.stop()
        for name in ("mariadb", "redis"):
            service = find_service(name)
            if service.pid() is None:
                service.start()
    outcome.elapsed_s = round(time.monotonic() - started, 1)
    return outcome
