"""Scenario: GET /logs and the writer as the logs table grows (issue: a log store you can run for a year).

    python -m bench.scale --sizes 1000000,10000000      # make bench-scale; report in bench/results/<timestamp>-scale/

Loads entries into a database of its own (`sluice_bench_scale`, partitioned by day as the app's
migrations make it, maintained as the hourly function does) with LOAD DATA: spread over 30 days,
1,000 sources and every level; log_ids holds the ids of the last LOG_ID_WINDOW_DAYS, as the
hourly maintenance leaves it. At each size it measures, through the app's GET /logs handler
(chalice.test.Client, no network; no key, so no source filter), every filter combination: none,
source, level, source+level; without and with a one-day time range; the first page and a page
20 deep through the cursor. `REQUESTS` requests each, with random sources, levels and days:
p50 and p99, and the EXPLAIN of each combination. Then the writer's path (claim ids, insert) for
`INGEST_ROWS` new rows in batches of 1,000, against the rate on an empty table: once straight
after the load, while InnoDB still owes the load's page writes, and then (median of
`INGEST_RUNS`) after those pages are written, as a table that grew over months would be; with
the ids the API makes (time-ordered) and with random ids (a client naming its own entries).
The loaded entries carry ids the API would have made at their time.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.logs.ids import uuid7

BENCH_DB = "sluice_bench_scale"
DAYS = 30
SOURCES = 1000
LEVELS = ["debug", "info", "info", "info", "info", "warning", "error", "critical"]
REQUESTS = 40  # per combination and size
DEEP_PAGE = 20  # the deep page's number (limit 100 each)
INGEST_ROWS = 20_000
INGEST_RUNS = 3  # the settled writer rate is the median of this many runs
FLUSH_WAIT_S = 900  # the longest the scenario waits for InnoDB to write a load's dirty pages
FLUSHED_PAGES = 1000  # dirty pages left that count as written (the page cleaner keeps a few)
FLUSH_NOW = {"innodb_io_capacity_max": 40000, "innodb_io_capacity": 20000, "innodb_max_dirty_pages_pct": 0}
LOAD_CHUNK = 250_000
# InnoDB for this scenario, as a server holding 10M rows would be sized (RDS gives InnoDB 3/4 of the
# memory): a buffer pool for the rows and their indexes (about 6 GiB), and a redo log large enough
# that loading them is not one checkpoint after another (measured: 96 MiB held the load to about
# 4,000 rows/s). The local MariaDB's own values are put back afterwards.
SERVER_SIZING = {"innodb_buffer_pool_size": 8 << 30, "innodb_log_file_size": 2 << 30}
WORDS = 1000  # each message carries one word of this many: a word is in 0.1% of the entries
STATUSES = [200] * 90 + [404] * 8 + [500] * 2  # the `status` attribute's values, as a web server's
SEARCH_REQUESTS = 20  # per search, count and tail scenario and size
COMBINATIONS = [
    (filters, ranged, deep)
    for filters in ("none", "source", "level", "source+level")
    for ranged in (False, True)
    for deep in (False, True)
]


def configure() -> None:
    """The bench stage's settings on a database and accounts of this scenario's own."""
    from tools.stage import apply_stage_environment

    apply_stage_environment("bench")
    os.environ.update(
        {
            "MYSQL_DATABASE": BENCH_DB,
            "MYSQL_API_USER": "sluice_scale_api",
            "MYSQL_API_PASSWORD": "scale-api-password",
            "MYSQL_WRITER_USER": "sluice_scale_writer",
            "MYSQL_WRITER_PASSWORD": "scale-writer-password",
            "MYSQL_MAINTAINER_USER": "sluice_scale_maintainer",
            "MYSQL_MAINTAINER_PASSWORD": "scale-maintainer-password",
            "REDIS_KEY_PREFIX": "sluice:bench-scale:",
            "API_KEYS_REQUIRED": "false",
            "LOG_RETENTION_DAYS": "60",
            "MYSQL_READ_TIMEOUT_S": "20",
            "MYSQL_STATEMENT_TIMEOUT_S": "15",
        }
    )


def prepare(settings: Any) -> None:
    """An empty scale database: migrated, accounts made, days partitioned 35 back to 7 ahead."""
    from chalicelib.database.partitions import maintain
    from tools.admin import admin_connection
    from tools.devstack.bootstrap import bootstrap_mysql

    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    bootstrap_mysql(settings)
    today = datetime.now(UTC).date()
    with admin_connection(BENCH_DB) as conn:
        for day in (today - timedelta(days=DAYS + 5), today):
            maintain(conn, day, retention_days=60, ahead_days=7, id_window_days=15, lock_wait_s=10)


def load(rows: int, rng: random.Random, id_window_days: int) -> float:
    """LOAD DATA `rows` entries, and into log_ids the ids the app would still remember: those of
    the last `id_window_days`, each on the day it was stored (the hourly maintenance forgets the
    older ones); rows/s."""
    import pymysql

    from bench.writer import connect

    now = datetime.now(UTC).replace(tzinfo=None)
    minutes: Counter[tuple[datetime, str, str]] = Counter()  # the counts the writer would have kept
    conn = connect("127.0.0.1", 3307, "root", "")
    conn.select_db(BENCH_DB)
    started = time.perf_counter()
    try:
        for start in range(0, rows, LOAD_CHUNK):
            count = min(LOAD_CHUNK, rows - start)
            with (
                tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as logs,
                tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as ids,
            ):
                for _ in range(count):
                    ts = now - timedelta(seconds=rng.random() * DAYS * 86400)
                    log_id = str(uuid7(int(ts.replace(tzinfo=UTC).timestamp() * 1000)))  # as the API names it
                    source = f"svc-{rng.randrange(SOURCES):03d}"
                    level = rng.choice(LEVELS)
                    stamp = ts.strftime("%Y-%m-%d %H:%M:%S.%f")
                    status = rng.choice(STATUSES)
                    message = (
                        f"GET /items/{rng.randrange(10_000)} {status} in {rng.randrange(500)} ms;"
                        f" {word(rng.randrange(WORDS))} " + "x" * 70
                    )
                    attributes = json.dumps({"status": status, "route": f"/items/{rng.randrange(100)}"})
                    logs.write(f"{log_id}\t{level}\t{source}\t{message}\t{stamp}\t{attributes}\t{stamp}\t{stamp}\n")
                    minutes[(ts.replace(second=0, microsecond=0), source, level)] += 1
                    if ts >= now - timedelta(days=id_window_days):
                        ids.write(f"{log_id}\t0\t{ts:%Y-%m-%d}\n")
            with conn.cursor() as cur:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{logs.name}' INTO TABLE logs"
                    " (id, level, source, message, ts, attributes, received_at, stored_at)"
                )
                cur.execute(f"LOAD DATA LOCAL INFILE '{ids.name}' INTO TABLE log_ids (id, claim, seen_on)")
                add_loaded_counts(cur, minutes)
            conn.commit()
            minutes.clear()
            os.unlink(logs.name)
            os.unlink(ids.name)
    except pymysql.err.MySQLError:
        conn.rollback()
        raise
    finally:
        conn.close()
    return rows / (time.perf_counter() - started)


def word(n: int) -> str:
    """The n-th word of the messages' vocabulary."""
    return f"w{n:04d}zq"


def add_loaded_counts(cur: Any, minutes: Counter[tuple[datetime, str, str]]) -> None:
    """Add a loaded chunk's entries to the minute and hour counts, as the writer does for its rows."""
    hours: Counter[tuple[datetime, str, str]] = Counter()
    for (minute, source, level), n in minutes.items():
        hours[(minute.replace(minute=0), source, level)] += n
    for table, counts in (("log_counts", minutes), ("log_counts_hourly", hours)):
        rows = [(bucket, source, level, n) for (bucket, source, level), n in counts.items()]
        for start in range(0, len(rows), 5000):
            cur.executemany(
                f"INSERT INTO {table} (bucket, source, level, entries) VALUES (%s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE entries = entries + VALUES(entries)",
                rows[start : start + 5000],
            )


def params_for(filters: str, ranged: bool, rng: random.Random) -> dict[str, str]:
    params: dict[str, str] = {"limit": "100"}
    if "source" in filters:
        params["source"] = f"svc-{rng.randrange(SOURCES):03d}"
    if "level" in filters:
        params["level"] = rng.choice(["warning", "error", "info"])
    if ranged:
        day = datetime.now(UTC).date() - timedelta(days=rng.randrange(1, DAYS))
        params["since"] = f"{day:%Y-%m-%d}T00:00:00Z"
        params["until"] = f"{day + timedelta(days=1):%Y-%m-%d}T00:00:00Z"
    return params


def measure_queries(client: Any, rng: random.Random) -> dict[str, Any]:
    """p50/p99 per combination, through the GET /logs handler."""
    from urllib.parse import urlencode

    results = {}
    for filters, ranged, deep in COMBINATIONS:
        timings = []
        for _ in range(REQUESTS):
            params = params_for(filters, ranged, rng)
            if deep:  # walk the cursor to the deep page, then time that one
                for _ in range(DEEP_PAGE - 1):
                    page = json.loads(client.http.get(f"/logs?{urlencode(params)}").body)
                    if not page["next_cursor"]:
                        break
                    params["cursor"] = page["next_cursor"]
            started = time.perf_counter()
            response = client.http.get(f"/logs?{urlencode(params)}")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.body
        timings.sort()
        results[name(filters, ranged, deep)] = {
            "p50_ms": round(statistics.median(timings), 2),
            "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
        }
    return results


def read_scenarios(rng: random.Random, search_max_span_s: int) -> dict[str, Callable[[], str]]:
    """Each search, count and tail scenario: a function that gives one request's path."""
    from urllib.parse import urlencode

    def day() -> tuple[str, str]:
        start = datetime.now(UTC).date() - timedelta(days=rng.randrange(1, DAYS))
        return f"{start:%Y-%m-%d}T00:00:00Z", f"{start + timedelta(days=1):%Y-%m-%d}T00:00:00Z"

    def logs(**params: str) -> str:
        return f"/logs?{urlencode({'limit': '100', **params})}"

    def one_word() -> str:
        return word(rng.randrange(WORDS))

    def past(span_s: int, **params: str) -> str:
        """A search of `span_s` ending at a random time of the loaded days (not the writer's runs, which
        put thousands of rows in the last minutes)."""
        until = datetime.now(UTC) - timedelta(hours=2) - timedelta(seconds=rng.random() * (DAYS - 2) * 86400)
        return logs(since=(until - timedelta(seconds=span_s)).isoformat(), until=until.isoformat(), **params)

    now = datetime.now(UTC)
    last_30_days = (now - timedelta(days=DAYS)).isoformat()
    return {
        "q, one hour": lambda: past(3600, q=one_word()),
        "q matching nothing, one hour": lambda: past(3600, q="nowhere-at-all"),
        "q, the longest span": lambda: past(search_max_span_s, q=one_word()),
        "q matching nothing, the longest span (every row read)": lambda: past(search_max_span_s, q="nowhere-at-all"),
        "attr.status=500, one hour": lambda: past(3600, **{"attr.status": "500"}),
        "attr.status=500, the longest span": lambda: past(search_max_span_s, **{"attr.status": "500"}),
        "stats, one day at 1m": lambda: (
            "/logs/stats?" + urlencode(dict(zip(("since", "until"), day(), strict=True)) | {"interval": "1m"})
        ),
        "stats, 30 days at 1h": lambda: f"/logs/stats?{urlencode({'since': last_30_days, 'interval': '1h'})}",
        "stats, 30 days at 1h by source": lambda: (
            "/logs/stats?" + urlencode({"since": last_30_days, "interval": "1h", "by": "source"})
        ),
    }


def measure_reads(client: Any, rng: random.Random, search_max_span_s: int) -> dict[str, Any]:
    """p50/p99 of each search, count and tail scenario, through the app's handlers."""
    results = {}
    for label, path in read_scenarios(rng, search_max_span_s).items():
        results[label] = _timed(client, [path() for _ in range(SEARCH_REQUESTS)])
    results.update(measure_tail(client))
    return results


def measure_tail(client: Any) -> dict[str, Any]:
    """A follower's polls: one that finds up to 100 new entries (two writer commits behind the
    head), and one that finds nothing new (at the head)."""
    from urllib.parse import urlencode

    from chalicelib.validation import encode_cursor

    head = json.loads(client.http.get("/logs/tail?limit=1").body)["next_cursor"]
    seq = int(json.loads(_decoded(head))["seq"])
    behind = encode_cursor({"seq": str(max(seq - 2, 0)), "id": "~"})
    return {
        "tail poll, 100 new": _timed(client, [f"/logs/tail?{urlencode({'cursor': behind})}"] * SEARCH_REQUESTS),
        "tail poll, nothing new": _timed(client, [f"/logs/tail?{urlencode({'cursor': head})}"] * SEARCH_REQUESTS),
    }


def _decoded(cursor: str) -> str:
    import base64

    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def _timed(client: Any, paths: list[str]) -> dict[str, Any]:
    """p50 and p99 of the requests, and how many did not answer 200 (503 query_timeout: the cap)."""
    timings, refused = [], 0
    for path in paths:
        started = time.perf_counter()
        response = client.http.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        refused += response.status_code != 200
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
        "not_200": refused,
    }


def name(filters: str, ranged: bool, deep: bool) -> str:
    return f"{filters}{' +range' if ranged else ''}{' deep' if deep else ''}"


def explain_all(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """EXPLAIN of each combination's SELECT (a deep page: with a cursor position)."""
    from chalicelib.logs.store import LogFilter, logs_query
    from tools.admin import admin_connection

    plans = {}
    with admin_connection(BENCH_DB) as conn, conn.cursor() as cur:
        for filters, ranged, deep in COMBINATIONS:
            p = params_for(filters, ranged, rng)
            since = datetime.fromisoformat(p["since"]) if "since" in p else None
            until = datetime.fromisoformat(p["until"]) if "until" in p else None
            before = (datetime.now(UTC) - timedelta(days=3), "8" + "0" * 35) if deep else None
            wanted = LogFilter(
                limit=100, source=p.get("source"), level=p.get("level"), since=since, until=until, before=before
            )
            sql, args = logs_query(wanted)
            cur.execute("EXPLAIN " + sql, args)
            columns = [d[0] for d in cur.description]
            plans[name(filters, ranged, deep)] = [
                {k: v for k, v in zip(columns, row, strict=True) if k in ("table", "type", "key", "rows", "Extra")}
                for row in cur.fetchall()
            ]
    return plans


def flush_dirty_pages() -> float:
    """Have InnoDB write every dirty page now (the load's), wait for it; seconds waited.

    MariaDB's page cleaner stays idle until the dirty share passes innodb_max_dirty_pages_pct or the
    redo log nears full; then the writers themselves wait on flushing. Straight after a load the
    writer's rate measures that debt, not the table's size; a limit of 0 (and an I/O capacity for
    this machine's disk, not the default 200 pages/s) makes the cleaner pay it now.
    """
    from tools.admin import admin_connection

    started = time.monotonic()
    with server_variables(FLUSH_NOW), admin_connection() as conn, conn.cursor() as cur:
        dirty = FLUSHED_PAGES + 1
        while dirty > FLUSHED_PAGES:
            if time.monotonic() - started > FLUSH_WAIT_S:
                raise RuntimeError(f"InnoDB still had {dirty} dirty pages after {FLUSH_WAIT_S} s")
            time.sleep(1)
            cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
            status = cur.fetchone()
            assert status is not None
            dirty = int(status[1])
    return time.monotonic() - started


@dataclass(frozen=True)
class WriterRates:
    api_ids: float  # rows/s with the ids the API makes (time-ordered, chalicelib/logs/ids.py)
    client_ids: float  # rows/s with random ids, as a client that names its own entries sends
    flush_s: float
    api_ids_rows_only: float  # the API's ids, without the counts and the commit order (the writer before them)


def settled_ingest_rates() -> WriterRates:
    """The writer's rows/s once the dirty pages are written (each the median of INGEST_RUNS), with
    the ids the API makes and with random ones; and the seconds the flush took."""
    flushed_s = flush_dirty_pages()
    api_ids = statistics.median(ingest_rate(uuid7) for _ in range(INGEST_RUNS))
    client_ids = statistics.median(ingest_rate(uuid.uuid4) for _ in range(INGEST_RUNS))
    rows_only = statistics.median(ingest_rate(uuid7, counted=False) for _ in range(INGEST_RUNS))
    return WriterRates(api_ids, client_ids, flushed_s, rows_only)


def ingest_rate(new_id: Callable[[], uuid.UUID], counted: bool = True) -> float:
    """rows/s of the writer's path (claim ids, insert, counts and commit order unless not `counted`,
    commit) for INGEST_ROWS in batches of 1,000."""
    from bench.writer import connect, make_records
    from chalicelib.consumer.insert import insert_log_rows
    from chalicelib.consumer.writer import record_stored

    records = make_records(INGEST_ROWS, new_id)  # timestamped now, as entries arrive
    conn = connect("127.0.0.1", 3307, "root", "")
    conn.select_db(BENCH_DB)
    started = time.perf_counter()
    try:
        for start in range(0, INGEST_ROWS, 1000):
            outcome = insert_log_rows(conn, records[start : start + 1000], 1000, 1 << 22)
            if counted:
                record_stored(conn, outcome)
            conn.commit()
    finally:
        conn.close()
    return INGEST_ROWS / (time.perf_counter() - started)


def run(sizes: list[int], out: Path) -> dict[str, Any]:
    configure()
    from chalice.test import Client

    import app as sluice_app

    rng = random.Random(7)
    with server_variables(SERVER_SIZING):
        return _run(sizes, out, sluice_app, Client, rng)


@contextmanager
def server_variables(values: dict[str, int]) -> Iterator[None]:
    """MariaDB's global variables set (online), in order, while the block runs; then put back in
    the reverse order (innodb_io_capacity may not pass innodb_io_capacity_max on the way)."""
    from tools.admin import admin_connection, global_variables

    with admin_connection() as conn, global_variables(conn, values):
        yield


def _run(sizes: list[int], out: Path, sluice_app: Any, Client: Any, rng: random.Random) -> dict[str, Any]:
    from chalicelib import wiring  # after configure(), as app.py is

    prepare(wiring.SETTINGS)
    empty = settled_ingest_rates()
    results: dict[str, Any] = {
        "sizes": {},
        "ingest_empty_rows_per_s": round(empty.client_ids),
        "ingest_empty_api_ids_rows_per_s": round(empty.api_ids),
        "ingest_empty_api_ids_rows_only_per_s": round(empty.api_ids_rows_only),
    }
    loaded = INGEST_ROWS * INGEST_RUNS * 3
    with Client(sluice_app.app, stage_name="bench") as client:
        for size in sizes:
            print(f"scale: loading to {size:,} rows", flush=True)
            window = wiring.SETTINGS.log_id_window_days
            load_rate = load(size - loaded, rng, window) if size > loaded else None
            loaded = max(size, loaded)
            after_load = ingest_rate(uuid.uuid4)
            print(f"scale: {size:,} rows: writing the dirty pages, then the writer", flush=True)
            settled = settled_ingest_rates()
            print(f"scale: {size:,} rows: queries", flush=True)
            queries = measure_queries(client, rng)
            print(f"scale: {size:,} rows: searches, counts and the tail", flush=True)
            reads = measure_reads(client, rng, wiring.SETTINGS.search_max_span_s)
            results["sizes"][str(size)] = {
                "load_rows_per_s": None if load_rate is None else round(load_rate),
                "queries": queries,
                "reads": reads,
                "ingest_api_ids_rows_only_per_s": round(settled.api_ids_rows_only),
                "explain": explain_all(rng),
                "ingest_after_load_rows_per_s": round(after_load),
                "flush_s": round(settled.flush_s, 1),
                "ingest_rows_per_s": round(settled.client_ids),
                "ingest_api_ids_rows_per_s": round(settled.api_ids),
            }
            loaded += INGEST_ROWS * (1 + 3 * INGEST_RUNS)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--out", type=Path, help="default: bench/results/<timestamp>-scale")
    args = parser.parse_args(argv)
    if args.out is None:
        from tools.stage import ROOT

        args.out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-scale"
    started = time.monotonic()
    results = run([int(s) for s in args.sizes.split(",")], args.out)
    write_report(results, args.out, time.monotonic() - started)
    print(f"scale: report in {args.out / 'report.md'}")
    return 0


def write_report(results: dict[str, Any], out: Path, elapsed_s: float) -> None:
    """report.md and scale.png in `out`, as bench.report writes the scenario in the full report."""
    from bench import report

    report.plot_scale({"scale": results}, out / "scale.png")
    lines = [
        f"# sluice benchmark: scale ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed_s / 60:.0f} min)",
        "",
        *report.scale_section({"scale": results}),
        "![GET /logs p99 against table size](scale.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
