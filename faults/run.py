"""The fault suite: every scenario against the real services, reconciled, with a report.

    python -m faults.run --profile full     about 10 minutes; report in faults/results/<timestamp>/
    python -m faults.run --profile short    about 1.5 minutes (part of `make test`)
    python -m faults.run --only mariadb-killed,sqs-slow [--target local|deployed]

The full profile runs every scenario against chalice local (faults/harness.py), then those where
the deployed path differs against the LocalStack deployment (faults/deployed.py). MariaDB, Redis
and LocalStack must be running (`make faults` starts them). The suite kills and restarts MariaDB
and Redis, so nothing else should use them meanwhile. Traffic goes to 127.0.0.1 only; every
scenario is bounded in time. Exit status 1 if any scenario's checks fail.
"""

import argparse
import dataclasses
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faults.deployed import Deployed
from faults.harness import STAGE, Sluice, Target
from faults.proxy import FaultProxy
from faults.reconcile import Reconciliation
from faults.scenarios import SCENARIOS, Outcome, Profile, run_scenario
from tools.stage import ROOT, stage_settings

NONE = "\N{EN DASH}"  # a cell with nothing to show

PROFILES = {
    "full": Profile(
        name="full",
        outage_s=20,
        hang_s=10,
        lead_s=5,
        tail_s=5,
        writers=8,
        readers=4,
        scenarios=tuple(SCENARIOS),
        deployed=("mariadb-killed", "consumer-killed-before-commit", "data-errors"),
    ),
    "short": Profile(
        name="short",
        outage_s=8,
        hang_s=5,
        lead_s=3,
        tail_s=3,
        writers=4,
        readers=2,
        scenarios=(
            "mariadb-killed",
            "client-mariadb-killed",
            "consumer-killed-after-commit",
            "sqs-slow",
            "data-errors",
            "redis-killed",
        ),
        client_records=4_000,
    ),
}


# Clients of the LocalStack deployment: each concurrent request there may start an execution
# environment of its own, and LocalStack spends 30 to 55 ms of its one core on each request
# (docs/testing.md: latency through LocalStack), so fewer clients than against chalice local keep the run
# about the fault rather than about LocalStack's queue.
DEPLOYED_WRITERS = 4
DEPLOYED_READERS = 2


def run(profile: Profile, local: tuple[str, ...], deployed: tuple[str, ...], out: Path) -> list[Outcome]:
    """The `local` scenarios against chalice local, then the `deployed` ones against LocalStack."""
    outcomes = []
    if local:
        settings = stage_settings(STAGE)
        port = int((settings.sqs_endpoint_url or "").rsplit(":", 1)[1])
        proxy = FaultProxy(port, stage_settings("local").sqs_endpoint_url or "")
        proxy.start()
        try:
            outcomes += _run_all(Sluice(out / "logs", proxy), profile, local)
        finally:
            proxy.stop()
    if deployed:
        target = Deployed()
        try:
            smaller = dataclasses.replace(profile, writers=DEPLOYED_WRITERS, readers=DEPLOYED_READERS)
            outcomes += _run_all(target, smaller, deployed)
        finally:
            target.close()
    return outcomes


def _run_all(target: Target, profile: Profile, names: tuple[str, ...]) -> list[Outcome]:
    outcomes = []
    for name in names:
        print(f"--- {name} ({target.name})", flush=True)
        outcome = run_scenario(SCENARIOS[name], target, profile)
        for check in outcome.checks:
            print(f"  {'ok  ' if check.passed else 'FAIL'} {check.what}: {check.detail}", flush=True)
        outcomes.append(outcome)
    return outcomes


def write_report(profile: Profile, outcomes: list[Outcome], out: Path, command: str, elapsed_s: float) -> Path:
    """report.md and results.json in `out`."""
    rows = []
    for o in outcomes:
        r = o.reconciliation
        cells = [
            o.name,
            o.target,
            "✅" if o.passed else "❌",
            o.fault,
            o.workload,
            *(_counts(r) if r else [NONE] * 7),
            ", ".join(f"{k}: {v}" for k, v in o.answers.items()),
            NONE if o.recover_s is None else f"{o.recover_s:g}",
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines = [
        f"# sluice fault suite ({profile.name}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command}`. {len(outcomes)} scenarios in {elapsed_s:.0f} s on this machine (2 cores). Target",
        "chalice local: the `faults` stage served as `make up` serves it (chalice local and the local SQS",
        "event source), with SQS behind the suite's fault proxy. Target LocalStack: the `faults-deployed`",
        "stage deployed as `make up-localstack` deploys it (API Gateway, Lambda on the host executor, the",
        f"SQS event source mapping), with {DEPLOYED_WRITERS} writers and {DEPLOYED_READERS} readers. Every",
        "scenario runs clients that record every acknowledged entry, injects its fault, recovers, waits",
        "for the queue to drain, then reconciles MySQL, the rejects table and the dead-letter queue",
        "against what the clients were told.",
        "",
        f"Outages: MariaDB and SQS {profile.outage_s:g} s, Redis {profile.outage_s / 2:g} s, MariaDB hung "
        f"{profile.hang_s:g} s; workload {profile.lead_s:g} s before the fault and {profile.tail_s:g} s after.",
        "Recover s: from the dependency's return (or the start, where nothing returns) until every",
        "acknowledged entry was stored and the queue empty.",
        "",
        "| scenario | target | passed | fault | workload | acknowledged | stored | lost | duplicated |"
        " wrongly rejected | rejected as meant | dead-lettered | answers by status | recover s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "## Each scenario's expectation and checks",
        "",
    ]
    for o in outcomes:
        lines += [f"### {o.name}, {o.target} ({o.elapsed_s:g} s)", "", f"Expected: {o.expected}.", ""]
        lines += [f"- {'✅' if c.passed else '❌'} {c.what}: {c.detail}" for c in o.checks]
        lines += [f"- note: {n}" for n in o.notes]
        lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "profile": dataclasses.asdict(profile),
                "elapsed_s": elapsed_s,
                "scenarios": [_plain(o) for o in outcomes],
            },
            indent=1,
        )
        + "\n"
    )
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _counts(r: Reconciliation) -> list[str]:
    counts = [r.acknowledged, r.stored, r.lost, r.duplicated, r.rejected_wrongly, r.rejected_rightly, r.dead_lettered]
    return [str(n) for n in counts]


def _plain(outcome: Outcome) -> dict[str, Any]:
    data = dataclasses.asdict(outcome)
    data["passed"] = outcome.passed
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument(
        "--target", choices=["local", "deployed", "both"], help="with --only: where to run them (default local)"
    )
    parser.add_argument("--out", type=Path, help="default: faults/results/<timestamp>")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    local, deployed = profile.scenarios, profile.deployed
    if args.only:
        names = tuple(args.only.split(","))
        local = names if args.target in (None, "local", "both") else ()
        deployed = names if args.target in ("deployed", "both") else ()
    unknown = [n for n in local + deployed if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {unknown}; known: {sorted(SCENARIOS)}")
    out = args.out or ROOT / "faults" / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = " ".join(["python -m faults.run", *(argv if argv is not None else sys.argv[1:])])
    started = time.monotonic()
    outcomes = run(profile, local, deployed, out)
    path = write_report(profile, outcomes, out, command, time.monotonic() - started)
    failed = [o.name for o in outcomes if not o.passed]
    print(f"\nreport: {path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(outcomes)} scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
