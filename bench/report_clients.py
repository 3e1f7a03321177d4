"""The report's sections on real clients: OTLP ingestion (bench/otlp.py) and the app's side of
logging (bench/clients.py), with their targets."""

from typing import Any

from bench.clients import CONDITIONS, HANDLERS
from bench.otlp import ROUTES
from bench.tables import table as _table

NATIVE = next(iter(ROUTES))  # the native batch route, which OTLP is measured against
OTLP_SHARE = 0.8  # OTLP's records/s at least this share of the native batch route's, same run
EMIT_P99_US = 100.0  # SluiceHandler's emit p99, whether sluice is up, slow or down


def targets(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """OTLP's share of the native route; the handler's emit p99; every record not dropped stored once."""
    checks: list[tuple[str, bool, str]] = []
    if "otlp" in results:
        routes = results["otlp"]["routes"]
        native = routes[NATIVE]["records_per_s"]
        for name, run in routes.items():
            if name == NATIVE:
                continue
            share = run["records_per_s"] / native if native else 0.0
            checks.append(
                (
                    f"{name}: ≥ {OTLP_SHARE:.0%} of the native batch route's records/s",
                    share >= OTLP_SHARE,
                    f"{run['records_per_s']:,} vs {native:,} records/s ({share:.0%})",
                )
            )
        exact = all(r["lost"] == 0 and r["duplicated"] == 0 for r in routes.values())
        counts = ", ".join(f"{r['lost']} lost, {r['duplicated']} twice" for r in routes.values())
        checks.append(("OTLP and native: every acknowledged record stored exactly once", exact, counts))
    if "clients" in results:
        runs = results["clients"]["runs"]["sluice"]
        p99s = {c: runs[c]["emit_us"]["p99"] for c in CONDITIONS}
        checks.append(
            (
                f"SluiceHandler: emit p99 < {EMIT_P99_US:.0f} µs with sluice up, slow and down",
                all(p is not None and p < EMIT_P99_US for p in p99s.values()),
                ", ".join(f"{c} {p} µs" for c, p in p99s.items()),
            )
        )
        stored_once = all(
            runs[c]["stored"] == runs[c]["logged"] - (runs[c]["dropped"] or 0) and runs[c]["stored_twice"] == 0
            for c in ("up", "slow")
        )
        checks.append(
            (
                "SluiceHandler: every record not dropped stored exactly once (up, slow)",
                stored_once,
                ", ".join(
                    f"{c}: {runs[c]['stored']} of {runs[c]['logged']} ({runs[c]['dropped']} dropped,"
                    f" {runs[c]['stored_twice']} twice)"
                    for c in ("up", "slow")
                ),
            )
        )
    return checks


def otlp_section(results: dict[str, Any]) -> list[str]:
    run = results["otlp"]
    rows = [
        [name, r["records_per_request"], r["records_per_s"], r["p50_ms"], r["p99_ms"], r["lost"], r["duplicated"]]
        for name, r in run["routes"].items()
    ]
    cost = [[name, us] for name, us in run["decode_us_per_record"].items()]
    return [
        f"## 7. OTLP ingestion: {run['clients']} clients for {run['duration_s']} s per route",
        "",
        "The routes one after the other against the same sluice (chalice local, a key whose limit the load"
        " never reaches), each request carrying the same number of records; each route's records counted in"
        " MySQL once drained. Latency is per request.",
        "",
        _table(["route", "records/request", "records/s", "p50 ms", "p99 ms", "lost", "twice"], rows),
        "",
        "CPU to turn one record of a request body into a validated entry, in one process (no HTTP), µs:",
        "",
        _table(["route", "µs per record"], cost),
        "",
    ]


def clients_section(results: dict[str, Any]) -> list[str]:
    run = results["clients"]
    rows = []
    for handler, conditions in run["runs"].items():
        for condition, r in conditions.items():
            stored = r.get("stored")
            rows.append(
                [
                    HANDLERS[handler],
                    condition,
                    r["logged"],
                    r["logged_per_s"],
                    r["emit_us"]["p50"],
                    r["emit_us"]["p99"],
                    r["emit_us"]["max"],
                    r["rss_growth_kib"],
                    r["dropped"],
                    None if stored is None else f"{stored:,} ({r['stored_twice']} twice)",
                ]
            )
    return [
        f"## 8. The app's side: {run['records']:,} records at {run['rate']:,.0f}/s from one process",
        "",
        f"Each app logs at a steady rate for at most {run['max_s']:.0f} s, then flushes; slow: a proxy holds every"
        f" request {run['slow_delay_s']} s; down: nothing listens. logged/s is how fast the app could log;"
        " emit is the time of one `log.info` call in the app's thread; memory is the growth of the process's"
        " resident memory while logging; dropped as the handler counts it (none shown where it keeps no count). Stored:"
        " the app's rows in MySQL once the queue drained.",
        "",
        _table(
            [
                *("handler", "sluice", "logged", "logged/s", "emit p50 µs", "p99 µs", "max µs"),
                "memory KiB",
                "dropped",
                "stored",
            ],
            rows,
        ),
        "",
    ]
