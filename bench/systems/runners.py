"""Start and stop the systems under test as processes on 127.0.0.1 (bench-only code)."""

import dataclasses
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.systems.common import DATABASE, PASSWORD, TABLE_DDL, TABLES, USER
from chalicelib.config import Settings
from chalicelib.keys.model import SCOPES, ApiKey, new_key_id, new_token, token_hash
from chalicelib.keys.store import insert_key
from chalicelib.validation import utc_now
from tools.admin import admin_connection
from tools.aws import aws_client
from tools.devstack.bootstrap import bootstrap_mysql, bootstrap_queues
from tools.devstack.processes import Processes, wait_http
from tools.ops.queues import queue_depth
from tools.ops.reset import empty_tables, forget_redis_keys, purge_queues
from tools.stage import ROOT, stage_settings

BENCH_STAGE = "bench"
VENV = ROOT / ".venv" / "bin"
BENCH_VENV = ROOT / ".venv-bench" / "bin"
CELERY_BROKER = "redis://127.0.0.1:6380/2"


@dataclass
class System:
    name: str
    url: str  # POST log entries here
    table: str  # where they end up, in DATABASE or sluice_bench
    queue_depth: Callable[[], int] | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # sent with every request (a key)


# sluice with API_KEYS_REQUIRED off: the baseline that the run with keys and limits is compared with.
WITHOUT_KEYS = {"API_KEYS_REQUIRED": "false"}


def bench_key(name: str, rate_per_s: int, burst: int) -> dict[str, str]:
    """A new key of the bench stage (every scope and source), as the headers that present it."""
    token = new_token()
    key = ApiKey(
        id=new_key_id(),
        name=name,
        scopes=list(SCOPES),
        sources=["*"],
        rate_per_s=rate_per_s,
        burst=burst,
        created_at=utc_now(),
        token_hash=token_hash(token),
    )
    with admin_connection(stage_settings(BENCH_STAGE).mysql.database) as conn:
        insert_key(conn, key)
    return {"Authorization": f"Bearer {token}"}


def unlimited_key(name: str) -> dict[str, str]:
    """A key whose limits the load never reaches: its check runs, it never refuses."""
    return bench_key(name, 1_000_000, 1_000_000)


def prepare_databases(writer_cap: int) -> Settings:
    """The bench stage's schema, users (writer capped at `writer_cap`) and queues, and the seed tables."""
    settings = dataclasses.replace(stage_settings(BENCH_STAGE), consumer_max_concurrency=writer_cap)
    bootstrap_mysql(settings)
    bootstrap_queues(settings)
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cur.execute(f"USE {DATABASE}")
        for table in TABLES:
            cur.execute(TABLE_DDL.format(table=table))
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (USER, PASSWORD))
        cur.execute(f"GRANT SELECT, INSERT ON {DATABASE}.* TO %s@'%%'", (USER,))
    return settings


def empty_everything(settings: Settings) -> None:
    """Empty every system's table, sluice's queues and Redis keys (its API keys too: each run makes
    its own), and Celery's broker."""
    with admin_connection() as conn, conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"TRUNCATE TABLE {DATABASE}.{table}")
    with admin_connection(settings.mysql.database) as conn:
        empty_tables(conn, truncate=True)
        with conn.cursor() as cur:
            cur.execute("TRUNCATE TABLE api_keys")
    sqs = aws_client("sqs", settings)
    names = (settings.log_queue_name, settings.log_dlq_name)
    purge_queues(sqs, [sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in names])
    forget_redis_keys(settings.redis_url, settings.redis_key_prefix)
    redis.Redis.from_url(CELERY_BROKER).flushdb()


def sqs_depth(settings: Settings) -> Callable[[], int]:
    sqs = aws_client("sqs", settings)
    url = sqs.get_queue_url(QueueName=settings.log_queue_name)["QueueUrl"]

    return functools.partial(queue_depth, sqs, url)


def gunicorn(processes: Processes, name: str, app: str, port: int) -> None:
    processes.start(
        name,
        [
            str(BENCH_VENV / "gunicorn"),
            "-k",
            "gevent",
            "--workers",
            "2",
            "--worker-connections",
            "1000",
            "--backlog",
            "1024",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
    )


@contextmanager
def direct(log_dir: Path, port: int = 8200) -> Iterator[System]:
    processes = Processes(log_dir)
    try:
        gunicorn(processes, "direct-gunicorn", "bench.systems.direct_app:app", port)
        wait_http(f"http://127.0.0.1:{port}/")
        yield System("direct", f"http://127.0.0.1:{port}/logs", f"{DATABASE}.direct_logs")
    finally:
        processes.stop()


@contextmanager
def celery(log_dir: Path, writers: int, port: int = 8300) -> Iterator[System]:
    processes = Processes(log_dir)
    broker = redis.Redis.from_url(CELERY_BROKER)
    try:
        processes.start(
            "celery-worker",
            [
                str(BENCH_VENV / "celery"),
                "-A",
                "bench.systems.celery_app:celery",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(writers),
                "--loglevel",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        gunicorn(processes, "celery-gunicorn", "bench.systems.celery_app:app", port)
        wait_http(f"http://127.0.0.1:{port}/")
        yield System(
            "celery", f"http://127.0.0.1:{port}/logs", f"{DATABASE}.celery_logs", lambda: int(broker.llen("celery"))
        )
    finally:
        processes.stop()


@contextmanager
def sluice_local(
    log_dir: Path,
    settings: Settings,
    writers: int,
    port: int = 8100,
    env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[System]:
    """sluice through chalice local (tools.devstack.chalice_local) with the local SQS event source."""
    processes = Processes(log_dir)
    overrides = [f"--env={k}={v}" for k, v in {"CONSUMER_MAX_CONCURRENCY": str(writers), **(env or {})}.items()]
    try:
        cmd = [str(VENV / "python"), "-m", "tools.devstack.chalice_local", "--stage", BENCH_STAGE, "--port", str(port)]
        processes.start("sluice-api", cmd + overrides)
        consumer = [str(VENV / "python"), "-m", "tools.devstack.local_consumer", "--stage", BENCH_STAGE]
        processes.start("sluice-consumer", consumer + overrides)
        wait_http(f"http://127.0.0.1:{port}/health")
        yield System(
            "sluice",
            f"http://127.0.0.1:{port}/logs",
            f"{settings.mysql.database}.logs",
            sqs_depth(settings),
            headers or {},
        )
    finally:
        processes.stop()


@contextmanager
def sluice_on_empty(log_dir: Path, settings: Settings, writers: int, port: int, key_name: str) -> Iterator[System]:
    """Everything emptied, then sluice_local with a new key whose limits the load never reaches."""
    empty_everything(settings)
    with sluice_local(log_dir, settings, writers, port=port, headers=unlimited_key(key_name)) as system:
        yield system


@contextmanager
def sluice_api_only(log_dir: Path, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Only sluice's API through chalice local (for the read scenarios); yields its base URL."""
    processes = Processes(log_dir)
    overrides = [f"--env={k}={v}" for k, v in (env or {}).items()]
    try:
        cmd = [str(VENV / "python"), "-m", "tools.devstack.chalice_local", "--stage", BENCH_STAGE, "--port", str(port)]
        processes.start(f"sluice-api-{port}", cmd + overrides)
        wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop()


@contextmanager
def local_consumer(log_dir: Path, writers: int, batch_size: int | None = None) -> Iterator[Processes]:
    processes = Processes(log_dir)
    env = {"CONSUMER_MAX_CONCURRENCY": str(writers)}
    if batch_size is not None:
        env["CONSUMER_BATCH_SIZE"] = str(batch_size)
    try:
        cmd = [str(VENV / "python"), "-m", "tools.devstack.local_consumer", "--stage", BENCH_STAGE]
        processes.start(f"consumer-w{writers}", cmd + [f"--env={k}={v}" for k, v in env.items()])
        yield processes
    finally:
        processes.stop()


def stored_ids(table: str) -> dict[str, int]:
    """Every stored log id in `table` with how many times it is there."""
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, COUNT(*) FROM {table} GROUP BY id")
        return {row[0]: int(row[1]) for row in cur.fetchall()}


def lag_ms(table: str) -> dict[str, float] | None:
    """Stored minus received per entry (p50, p90, p99, max, in ms), for a table that records when
    each entry was received (sluice's); None for one that does not (direct, celery)."""
    schema, _, name = table.rpartition(".")
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
            " AND COLUMN_NAME = 'received_at'",
            (schema or DATABASE, name),
        )
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute(f"SELECT TIMESTAMPDIFF(MICROSECOND, received_at, stored_at) / 1000 FROM {table}")
        lags = sorted(float(r[0]) for r in cur.fetchall())
    if not lags:
        return None

    def at(q: float) -> float:
        return round(lags[min(len(lags) - 1, int(q * len(lags)))], 1)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(lags[-1], 1)}


def row_count(table: str) -> int:
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        row = cur.fetchone()
        return int(row[0]) if row else 0
