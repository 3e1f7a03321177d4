"""The benchmark: sluice against the design that fails (direct) and the usual fix (celery), on the
MariaDB, Redis and LocalStack of this machine. Bounded in count and time; traffic to 127.0.0.1 only.

    python -m bench.run --profile full    # make bench: about 15 minutes
    python -m bench.run --profile quick   # make bench-quick: under 2 minutes
    python -m bench.run --profile smoke   # inside make test: seconds, checks the harness works

Results go to bench/results/<timestamp>/ (or --out): results.json, report.md and the plots.
Needs the services up (the Makefile runs it under `tools.devstack run`).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import clients, cliff, drain, keys, otlp, reads, report, writer
from bench.sampler import set_max_connections
from bench.systems import runners
from tools.admin import admin_connection
from tools.deploy.localstack import delete as undeploy
from tools.deploy.localstack import deploy
from tools.devstack.processes import wait_http
from tools.stage import ROOT, stage_settings


@dataclass(frozen=True)
class Profile:
    name: str
    clients: int
    duration_s: float
    localstack_clients: int  # 0: no LocalStack row
    drain_timeout_s: float
    writer_rows: int
    writer_repeats: int
    drain_writers: tuple[int, ...]
    # entries per SQS message (1 as POST /logs queues them, 100 as batches would) -> backlog in entries
    drain_backlogs: dict[int, int]
    read_clients: int
    read_duration_s: float
    cold_clients: int
    key_cost_s: float  # one client, without keys and with a key, this long each
    limit_clients: int  # per key, in the limits run
    limit_s: float
    scale_sizes: tuple[int, ...] = ()  # GET /logs and the writer at these table sizes (bench/scale.py)
    otlp_clients: int = 200  # OTLP ingestion (bench/otlp.py): the cliff's load,
    otlp_s: float = 30  # this long per route
    client_records: int = 20_000  # the app's side (bench/clients.py): records per app run,
    client_rate: float = 2_000  # logged at this rate,
    client_max_s: float = 20  # for at most this long


PROFILES = {
    "full": Profile(
        "full",
        200,
        60,
        200,
        240,
        20_000,
        3,
        (1, 2, 4, 8),
        {1: 50_000, 100: 200_000},
        50,
        10,
        200,
        30,
        10,
        20,
        (1_000_000, 10_000_000),
    ),
    "quick": Profile(
        "quick",
        100,
        10,
        0,
        60,
        5_000,
        3,
        (1, 2, 4, 8),
        {100: 50_000},
        30,
        3,
        200,
        9,
        10,
        5,
        (100_000,),
        otlp_clients=100,
        otlp_s=5,
        client_records=4_000,
        client_max_s=5,
    ),
    "smoke": Profile(
        "smoke",
        10,
        2,
        0,
        60,
        300,
        1,
        (1, 2),
        {1: 300},
        4,
        1,
        20,
        1.5,
        2,
        1,
        otlp_clients=10,
        otlp_s=1.5,
        client_records=300,
        client_rate=1_000,
        client_max_s=2,
    ),
}
LIMITED_RATE = 100  # entries/s of key A in the limits run
MAX_CONNECTIONS = 30


def machine() -> dict[str, Any]:
    def first_line(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unknown"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    localstack = first_line(
        [
            str(ROOT / ".venv-localstack" / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('localstack-core'))",
        ]
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mariadb": f"MariaDB {row[0] if row else '?'}",
        "redis": first_line(["redis-server", "--version"]).split(" v=")[-1].split()[0],
        "localstack": localstack,
    }


class Progress:
    """A progress bar over the run's steps, with what is happening now."""

    def __init__(self, steps: int) -> None:
        self.bar = tqdm(total=steps, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.current = ""

    def step(self, what: str) -> None:
        if self.current:
            self.bar.update(1)
        self.current = what
        self.bar.set_description(what[:70])

    def note(self, what: str) -> None:
        self.bar.set_description(what[:70])

    def close(self) -> None:
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


def run(profile: Profile, out: Path, command: str, only: list[str] | None = None) -> dict[str, Any]:
    budget_settings = stage_settings(runners.BENCH_STAGE)
    writers = budget_settings.consumer_max_concurrency
    logs = out / "logs"
    systems = ["direct", "celery", "sluice", "sluice (keys)"] + (
        ["sluice (LocalStack)"] if profile.localstack_clients else []
    )
    systems = [name for name in systems if only is None or name in only]
    progress = Progress(
        len(systems) + 1 + len(profile.drain_writers) * len(profile.drain_backlogs) + 4 + bool(profile.scale_sizes)
    )
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "config": {
            "profile": profile.name,
            "command": command,
            "max_connections": MAX_CONNECTIONS,
            "budget": {
                "writers": writers,
                "read_slots": budget_settings.api_read_slots,
                "reserve": budget_settings.admin_reserve_connections,
            },
            "cliff": {
                "clients": profile.clients,
                "duration_s": profile.duration_s,
                "localstack_clients": profile.localstack_clients,
            },
            "drain": {"batch_size": budget_settings.consumer_batch_size},
        },
        "cliff": {"systems": {}},
    }
    settings = runners.prepare_databases(writer_cap=writers)
    # The cliff's limit, which direct runs into; left alone without direct (a run as background load).
    previous_max = set_max_connections(MAX_CONNECTIONS) if "direct" in systems else None
    try:
        for name in systems:
            progress.step(f"cliff: {name}")
            runners.empty_everything(settings)
            burst_clients = profile.localstack_clients if name == "sluice (LocalStack)" else profile.clients
            with _system(name, logs, settings, writers) as system:
                system.name = name
                results["cliff"]["systems"][name] = cliff.measure(
                    system, burst_clients, profile.duration_s, profile.drain_timeout_s, progress.note
                )
    finally:
        if previous_max is not None:
            set_max_connections(previous_max)

    progress.step("writer throughput")
    with admin_connection() as admin:
        admin.autocommit(True)
        results["writer"] = writer.run(
            admin,
            lambda: writer.connect("127.0.0.1", settings.mysql.port, "root", ""),
            profile.writer_rows,
            profile.writer_repeats,
        )

    drain_results: list[dict[str, Any]] = []
    for packing, backlog in profile.drain_backlogs.items():
        for w in profile.drain_writers:
            progress.step(f"drain: W={w}, {packing} per message")
            drain_results += drain.run(logs, backlog, [w], packing, profile.drain_timeout_s, progress.note)
    results["drain"] = drain_results

    progress.step("reads")
    results["reads"] = reads.run(
        logs, profile.read_clients, profile.read_duration_s, profile.cold_clients, progress.note
    )

    progress.step("keys")
    runners.empty_everything(settings)
    results["keys"] = {
        "cost": keys.cost(logs, profile.key_cost_s, progress.note),
        "limits": keys.limits(logs, profile.limit_clients, profile.limit_s, LIMITED_RATE, progress.note),
    }

    progress.step("OTLP ingestion")
    with runners.sluice_on_empty(logs, settings, writers, 8102, "otlp") as system:
        results["otlp"] = {
            **otlp.ingest(
                system,
                "http://127.0.0.1:8102",
                profile.otlp_clients,
                profile.otlp_s,
                profile.drain_timeout_s,
                progress.note,
            ),
            "decode_us_per_record": otlp.decode_cost(),
        }

    progress.step("the app's side: logging handlers")
    with runners.sluice_on_empty(logs, settings, writers, 8103, "clients") as system:
        results["clients"] = clients.compare(
            "http://127.0.0.1:8103",
            system.headers["Authorization"].removeprefix("Bearer "),
            system.table,
            profile.client_records,
            profile.client_rate,
            profile.client_max_s,
            profile.drain_timeout_s,
            progress.note,
        )
    runners.prepare_databases(writer_cap=writers)  # leave the bench stage as configured

    if profile.scale_sizes:
        progress.step(f"scale: GET /logs at {', '.join(f'{n:,}' for n in profile.scale_sizes)} rows")
        sizes = ",".join(str(n) for n in profile.scale_sizes)
        subprocess.run(
            [sys.executable, "-m", "bench.scale", "--sizes", sizes, "--out", str(out / "scale")],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results["scale"] = json.loads((out / "scale" / "scale.json").read_text())
    progress.close()
    return results


def _system(name: str, logs: Path, settings: Any, writers: int) -> Any:
    if name == "direct":
        return runners.direct(logs)
    if name == "celery":
        return runners.celery(logs, writers)
    if name == "sluice":
        return runners.sluice_local(logs, settings, writers, env=runners.WITHOUT_KEYS)
    if name == "sluice (keys)":
        return runners.sluice_local(logs, settings, writers, port=8101, headers=runners.unlimited_key("cliff"))
    return localstack_system(settings)


class localstack_system:
    """The bench stage deployed into LocalStack for one run, removed afterwards."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def __enter__(self) -> runners.System:
        deployment = deploy(runners.BENCH_STAGE)
        wait_http(f"{deployment.api_url}health", timeout_s=120)
        return runners.System(
            "sluice (LocalStack)",
            f"{deployment.api_url}logs",
            f"{self.settings.mysql.database}.logs",
            runners.sqs_depth(self.settings),
            runners.unlimited_key("cliff through LocalStack"),
        )

    def __exit__(self, *exc: object) -> None:
        undeploy(runners.BENCH_STAGE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--out", type=Path, help="default: bench/results/<timestamp>")
    parser.add_argument(
        "--systems", help="comma-separated cliff systems (default: all); without direct, max_connections is left alone"
    )
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    out = args.out or ROOT / "bench" / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    command = f"python -m bench.run --profile {profile.name}"
    started = time.monotonic()
    try:
        results = run(profile, out, command, args.systems.split(",") if args.systems else None)
    except Exception:
        traceback.print_exc()
        print(f"\nthe benchmark failed; process logs are in {out / 'logs'}", file=sys.stderr)
        return 1
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    path = report.write(results, out)
    print(f"\n{path.read_text().split('## 1.')[0]}\nreport: {path}  ({results['elapsed_s']:.0f} s)")
    problems = incomplete(results, out)
    for problem in problems:
        print(f"INCOMPLETE: {problem}", file=sys.stderr)
    return 1 if problems else 0


def incomplete(results: dict[str, Any], out: Path) -> list[str]:
    """What a run that worked must have produced, whatever the figures (no timing is checked)."""
    problems = []
    for name, cliff_run in results["cliff"]["systems"].items():
        s = cliff_run["summary"]
        if s["requests"] == 0:
            problems.append(f"cliff: {name} answered no request")
        if name.startswith("sluice") and (s["lost"] or s["duplicated"] or s["drain_s"] is None):
            problems.append(f"cliff: {name} lost {s['lost']}, duplicated {s['duplicated']}, drained: {s['drain_s']}")
        if not cliff_run["series"]["t"]:
            problems.append(f"cliff: no MySQL samples for {name}")
    if any(rate <= 0 for rate in results["writer"]["rows_per_s"].values()):
        problems.append("writer: a method wrote nothing")
    problems += [f"drain: W={r['writers']} did not store its backlog" for r in results["drain"] if not r["completed"]]
    if results["reads"]["cold_key"]["requests"] == 0:
        problems.append("reads: no cold-key answers")
    for name, route in results.get("otlp", {}).get("routes", {}).items():
        if not route["records_acknowledged"] or route["lost"] or route["duplicated"]:
            problems.append(f"OTLP: {name} acknowledged {route['records_acknowledged']}, lost {route['lost']}")
    for condition, app in results.get("clients", {}).get("runs", {}).get("sluice", {}).items():
        if not app["logged"] or (condition == "up" and app["stored"] != app["logged"]):
            problems.append(f"clients: SluiceHandler ({condition}) logged {app['logged']}, stored {app.get('stored')}")
    problems += [f"missing {name}" for name in ("report.md", "writer.png") if not (out / name).exists()]
    return problems


if __name__ == "__main__":
    sys.exit(main())
