"""The benchmark's report: Markdown tables, the targets checked against the figures, and PNG plots."""

import itertools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import report_clients
from bench.tables import table as _table

COLORS = {"direct": "#d62728", "celery": "#1f77b4", "sluice": "#2ca02c", "sluice (LocalStack)": "#9467bd"}


def lag_table(results: dict[str, Any]) -> str:
    """End-to-end lag in the cliff run (stored minus received, per entry), where the system records both."""
    rows = [
        [name, lag["p50"], lag["p90"], lag["p99"], lag["max"]]
        for name, run in results["cliff"]["systems"].items()
        if (lag := run["summary"].get("lag_ms"))
    ]
    if not rows:
        return "Lag: no system of this run records when it received each entry."
    return "End-to-end lag, stored minus received, per entry (ms):\n\n" + _table(
        ["system", "p50", "p90", "p99", "max"], rows
    )


def cliff_table(results: dict[str, Any]) -> str:
    rows = []
    for name, run in results["cliff"]["systems"].items():
        s = run["summary"]
        other = sum(n for kind, n in s["errors"].items() if "1040" not in kind)
        rows.append(
            [
                name,
                s["clients"],
                s["acknowledged_per_s"],
                s["p50_ms"],
                s["p95_ms"],
                s["p99_ms"],
                s["errors_1040"],
                s["errors_5xx"],
                other,
                s["max_used_connections"],
                s["peak_threads_connected"],
                s["acknowledged"],
                s["stored"],
                s["lost"],
                s["duplicated"],
                s["drain_s"],
            ]
        )
    headers = [
        "system",
        "clients",
        "acked/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "1040 errors",
        "5xx",
        "errors (all but 1040)",
        "Max_used_connections",
        "peak Threads_connected",
        "acknowledged",
        "stored",
        "lost",
        "duplicated",
        "drain s",
    ]
    return _table(headers, rows)


def writer_table(results: dict[str, Any]) -> str:
    rates = results["writer"]["rows_per_s"]
    floor, ceiling = rates["floor"], rates["load_data"]
    rows = [[name, rate, f"{rate / floor:.1f}×", f"{rate / ceiling:.0%}"] for name, rate in rates.items()]
    return _table(["write path", "rows/s", "× floor", "of LOAD DATA"], rows)


def drain_table(results: dict[str, Any]) -> str:
    rows = [
        [
            r["writers"],
            r["backlog"],
            r["entries_per_message"],
            r["drain_s"],
            r["insert_window_s"],
            r["rows_per_s"],
            r["peak_threads_connected"],
            r["max_used_connections"],
            "yes" if r["completed"] else "NO",
        ]
        for r in results["drain"]
    ]
    headers = [
        "W",
        "backlog",
        "entries/message",
        "drain s (from start)",
        "insert window s",
        "rows/s",
        "peak Threads_connected",
        "Max_used_connections",
        "all stored",
    ]
    return _table(headers, rows)


def reads_table(results: dict[str, Any]) -> str:
    reads = results["reads"]
    rows = []
    for name in ("with_cache", "cache_disabled", "redis_down"):
        r = reads[name]
        rows.append(
            [
                name.replace("_", " "),
                r["acknowledged_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r["errors_5xx"],
                r["mysql_selects"],
            ]
        )
    return _table(["hot key GET", "answers/s (2xx)", "p50 ms", "p99 ms", "5xx", "MySQL SELECTs"], rows)


def keys_tables(results: dict[str, Any]) -> tuple[str, str]:
    """The cost of a key's check (one client) and the limits run (two keys at once)."""
    keys = results["keys"]
    cost = keys["cost"]
    cost_rows = [[name, r["requests"], r["p50_ms"], r["p99_ms"]] for name, r in cost.items() if isinstance(r, dict)]
    cost_rows.append(["added by the key", "", cost["p50_added_ms"], cost["p99_added_ms"]])
    limits = keys["limits"]
    limit_rows = [
        [name, r["requests"], r["accepted"], r["accepted_per_s"], r["refused_429"], r["other_errors"]]
        for name, r in limits.items()
        if isinstance(r, dict)
    ]
    return (
        _table(["POST /logs, one client", "requests", "p50 ms", "p99 ms"], cost_rows),
        _table(["key", "requests", "accepted (202)", "accepted/s", "429", "other errors"], limit_rows),
    )


def targets(results: dict[str, Any], budget: dict[str, int]) -> list[tuple[str, bool, str]]:
    """Each target of the issue, whether this run met it, and the figures."""
    checks: list[tuple[str, bool, str]] = []
    systems = results["cliff"]["systems"]
    sluice, direct, celery = systems.get("sluice"), systems.get("direct"), systems.get("celery")
    limit = budget["writers"] + budget["read_slots"] + budget["reserve"] + 1
    if sluice:
        s = sluice["summary"]
        checks.append(("sluice: zero 1040 errors", s["errors_1040"] == 0, f"{s['errors_1040']}"))
        checks.append(("sluice: zero 5xx", s["errors_5xx"] == 0, f"{s['errors_5xx']}"))
        checks.append(
            (
                "sluice: Max_used_connections ≤ W + R + reserve + 1",
                s["max_used_connections"] <= limit,
                f"{s['max_used_connections']} ≤ {limit}",
            )
        )
        exact = s["lost"] == 0 and s["duplicated"] == 0 and s["drain_s"] is not None
        checks.append(
            (
                "sluice: every acknowledged entry stored exactly once",
                exact,
                f"{s['acknowledged']} acknowledged, {s['lost']} lost, {s['duplicated']} duplicated",
            )
        )
    if direct:
        d = direct["summary"]
        checks.append(
            ("direct: the cliff reproduced (1040 errors)", d["errors_1040"] > 0, f"{d['errors_1040']} errors 1040")
        )
    if sluice and direct:
        s, d = sluice["summary"], direct["summary"]
        checks.append(("sluice p99 < direct p99", s["p99_ms"] < d["p99_ms"], f"{s['p99_ms']} ms vs {d['p99_ms']} ms"))
    if sluice and celery:
        s, c = sluice["summary"], celery["summary"]
        checks.append(("sluice p99 ≤ celery p99", s["p99_ms"] <= c["p99_ms"], f"{s['p99_ms']} ms vs {c['p99_ms']} ms"))
    rates = results["writer"]["rows_per_s"]
    checks.append(
        (
            "writer: batch 100 ≥ 10× the floor",
            rates["batch_100"] >= 10 * rates["floor"],
            f"{rates['batch_100']:,} vs {rates['floor']:,} rows/s ({rates['batch_100'] / rates['floor']:.1f}×)",
        )
    )
    checks.append(
        (
            "writer: batch 1000 ≥ ½ LOAD DATA",
            rates["batch_1000"] >= rates["load_data"] / 2,
            f"{rates['batch_1000']:,} vs {rates['load_data']:,} rows/s"
            f" ({rates['batch_1000'] / rates['load_data']:.0%})",
        )
    )
    cold = results["reads"]["cold_key"]
    checks.append(
        (
            f"{cold['concurrent_requests']} concurrent cold reads → exactly 1 MySQL query",
            cold["mysql_queries"] == 1,
            f"{cold['mysql_queries']} queries",
        )
    )
    slots = results["reads"]["slots_exhausted"]["stale_copy"]
    stale_ok = slots["errors_5xx"] == 0 and any("+stale" in k for k in slots["responses"])
    checks.append(("read slots exhausted → stale copies, no 5xx", stale_ok, str(slots["responses"])))
    keyed = systems.get("sluice (keys)")
    if keyed:
        k = keyed["summary"]
        checks.append(
            (
                "sluice (keys): zero 5xx, every acknowledged entry stored exactly once",
                k["errors_5xx"] == 0 and k["lost"] == 0 and k["duplicated"] == 0 and k["drain_s"] is not None,
                f"{k['acknowledged']} acknowledged, {k['lost']} lost, {k['duplicated']} duplicated",
            )
        )
    if "keys" in results:
        cost = results["keys"]["cost"]
        checks.append(
            (
                "a key's check and limit add ≤ 2 ms at p50 (one client)",
                cost["p50_added_ms"] <= 2,
                f"{cost['p50_added_ms']} ms ({cost['without keys']['p50_ms']} → {cost['with a key']['p50_ms']} ms)",
            )
        )
        limits = results["keys"]["limits"]
        a, b = limits["A (limited)"], limits["B (unlimited)"]
        ceiling = limits["rate_per_s"] + limits["burst"] / limits["seconds"]
        checks.append(
            (
                f"key A over {limits['rate_per_s']}/s gets 429s and no more than its rate",
                a["refused_429"] > 0 and a["accepted_per_s"] <= ceiling * 1.05,
                f"{a['accepted_per_s']}/s accepted (≤ {ceiling:.0f}), {a['refused_429']} refused",
            )
        )
        checks.append(
            (
                "key B, beside it, is never refused",
                b["refused_429"] == 0 and b["other_errors"] == 0 and b["accepted"] > 0,
                f"{b['accepted']} accepted, {b['refused_429']} 429, {b['other_errors']} other errors",
            )
        )
    return checks


def plot_threads(results: dict[str, Any], max_connections: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, run in results["cliff"]["systems"].items():
        series = run["series"]
        start = run["burst"][0]
        ax.plot(
            [t - start for t in series["t"]], series["threads_connected"], label=name, color=COLORS.get(name), lw=1.2
        )
    ax.axhline(max_connections, color="black", ls="--", lw=1, label=f"max_connections = {max_connections}")
    ax.set_xlabel("seconds since the burst began")
    ax.set_ylabel("MySQL Threads_connected")
    ax.set_title("The cliff: MySQL connections during the burst and the drain (sampled every 100 ms)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rate(t: list[float], cumulative: list[int]) -> tuple[list[float], list[float]]:
    """Per-second rate of a cumulative counter, one point per whole second."""
    points: dict[int, int] = {}
    for when, value in zip(t, cumulative, strict=True):
        points[int(when)] = value
    seconds = sorted(points)
    return [s + 0.5 for s in seconds[1:]], [points[b] - points[a] for a, b in itertools.pairwise(seconds)]


def plot_spread(results: dict[str, Any], path: Path, system: str = "sluice") -> None:
    run = results["cliff"]["systems"][system]
    series, start = run["series"], run["burst"][0]
    offset = run["requests"]["offset_s"][0] - start
    fig, ax = plt.subplots(figsize=(10, 4.5))
    acked = run["requests"]["acknowledged"]
    ax.plot([offset + i + 0.5 for i in range(len(acked))], acked, label="requests acknowledged /s", color="#ff7f0e")
    xs, ys = _rate([t - start for t in series["t"]], series["rows_inserted"])
    ax.plot(xs, ys, label="rows inserted into MySQL /s", color="#2ca02c")
    ax.set_xlabel("seconds since the burst began")
    ax.set_ylabel("per second")
    ax2 = ax.twinx()
    ax2.plot(
        [t - start for t in series["depth_t"]], series["depth"], label="queue depth (messages)", color="#7f7f7f", ls=":"
    )
    ax2.set_ylabel("messages in the queue")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.set_title(f"{system}: the peak spread over time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_writer(results: dict[str, Any], path: Path) -> None:
    rates = results["writer"]["rows_per_s"]
    batches = [name for name in rates if name.startswith("batch_")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(
        [name.removeprefix("batch_") for name in batches],
        [rates[n] for n in batches],
        color="#2ca02c",
        label="consumer path",
    )
    ax.axhline(rates["floor"], color="#d62728", ls="--", label=f"floor: a row per INSERT ({rates['floor']:,}/s)")
    ax.axhline(rates["load_data"], color="#1f77b4", ls="--", label=f"ceiling: LOAD DATA ({rates['load_data']:,}/s)")
    ax.set_xlabel("rows per transaction (batch size)")
    ax.set_ylabel("rows/s")
    ax.set_title("Writer throughput into MySQL")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scale(results: dict[str, Any], path: Path) -> None:
    """p99 of each GET /logs combination against the table's size."""
    sizes = sorted(int(n) for n in results["scale"]["sizes"])
    combos = list(results["scale"]["sizes"][str(sizes[0])]["queries"])
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for combo in combos:
        ax.plot(
            sizes,
            [results["scale"]["sizes"][str(n)]["queries"][combo]["p99_ms"] for n in sizes],
            marker="o",
            label=combo,
        )
    ax.axhline(50, color="#d62728", ls="--", label="target: p99 50 ms")
    ax.set_xscale("log")
    ax.set_xlabel("rows in logs")
    ax.set_ylabel("p99 ms")
    ax.set_title("GET /logs p99 by filter combination against table size")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale_section(results: dict[str, Any]) -> list[str]:
    """The scale scenario: GET /logs and the writer at each table size, with each query's plan."""
    scale = results["scale"]
    sizes = sorted(int(n) for n in scale["sizes"])
    first = scale["sizes"][str(sizes[0])]
    rows = []
    for combo in first["queries"]:
        row: list[Any] = [combo]
        for n in sizes:
            q = scale["sizes"][str(n)]["queries"][combo]
            row += [q["p50_ms"], q["p99_ms"]]
        plan = scale["sizes"][str(sizes[-1])]["explain"][combo][0]
        row.append(
            f"{plan['type']} on {plan['key']}, ~{plan['rows']} rows{'; ' + plan['Extra'] if plan['Extra'] else ''}"
        )
        rows.append(row)
    headers = ["combination", *[f"{label} at {n:,}" for n in sizes for label in ("p50 ms", "p99 ms")], "plan (largest)"]
    empty = scale["ingest_empty_rows_per_s"]
    empty_api = scale.get("ingest_empty_api_ids_rows_per_s")

    def against(rate: int | None, base: int | None) -> str:
        return "-" if rate is None or not base else f"{100 * (rate - base) / base:+.0f}%"

    ingest = []
    for n in sizes:
        at = scale["sizes"][str(n)]
        api = at.get("ingest_api_ids_rows_per_s")
        ingest.append(
            [
                f"{n:,}",
                "-" if api is None else api,
                against(api, empty_api),
                at["ingest_rows_per_s"],
                against(at["ingest_rows_per_s"], empty),
                at.get("ingest_after_load_rows_per_s", "-"),
                at.get("flush_s", "-"),
                at["load_rows_per_s"],
            ]
        )
    return [
        f"## 6. Scale: GET /logs and the writer at {', '.join(f'{n:,}' for n in sizes)} rows",
        "",
        "Entries over 30 days, 1,000 sources, every level, loaded with LOAD DATA into the partitioned table"
        " (and into log_ids the ids of the last LOG_ID_WINDOW_DAYS, as the hourly maintenance keeps it);"
        " each combination timed through the GET /logs handler (no network), random sources, levels and days;"
        " a deep page is the 20th through the cursor. Plans: MariaDB's EXPLAIN of the same SELECT.",
        "",
        _table(headers, rows),
        "",
        "The writer's path (claim ids, insert; 20,000 rows in batches of 1,000, median of 3), once InnoDB has"
        " written the load's dirty pages (MariaDB's page cleaner waits until the redo log is nearly full, so"
        " straight after a load the writer also pays for the load's flushing), with the ids the API makes"
        f" (time-ordered UUIDv7: {f'{empty_api:,}' if empty_api else '-'} rows/s on an empty table) and with random"
        f" ids, as a client naming its own entries sends ({empty:,} rows/s on an empty table):",
        "",
        _table(
            [
                "rows",
                "API's ids rows/s",
                "against empty",
                "random ids rows/s",
                "against empty",
                "random, straight after the load",
                "flush s",
                "LOAD DATA rows/s (to reach it)",
            ],
            ingest,
        ),
        "",
        *_reads_section(scale, sizes),
    ]


# The targets: a bounded search under 500 ms p99 at 10M rows, counts under 100 ms p99.
READ_TARGETS_MS = {"q": 500, "attr": 500, "stats": 100, "tail": 500}


def _reads_section(scale: dict[str, Any], sizes: list[int]) -> list[str]:
    """Search, counts and the tail at each size, against their targets; the writer with and without
    the counts and the commit order it now keeps."""
    if not all("reads" in scale["sizes"][str(n)] for n in sizes):
        return []
    rows = []
    for label in scale["sizes"][str(sizes[0])]["reads"]:
        row: list[Any] = [label]
        for n in sizes:
            measured = scale["sizes"][str(n)]["reads"][label]
            row += [measured["p50_ms"], measured["p99_ms"], measured["not_200"]]
        largest = scale["sizes"][str(sizes[-1])]["reads"][label]
        target = None if "by source" in label else READ_TARGETS_MS[label.split(" ")[0].split(".")[0].rstrip(",")]
        if target is None:  # counts by source over a month read a row per source and hour: no target set
            rows.append([*row, "-"])
            continue
        met = "met" if largest["p99_ms"] < target and not largest["not_200"] else "**missed**"
        rows.append([*row, f"< {target} ({met})"])
    headers = [
        "read",
        *[f"{label} at {n:,}" for n in sizes for label in ("p50 ms", "p99 ms", "not 200")],
        "p99 target ms (largest size)",
    ]
    writer = []
    for n in sizes:
        at = scale["sizes"][str(n)]
        before, after = at.get("ingest_api_ids_rows_only_per_s"), at.get("ingest_api_ids_rows_per_s")
        change = "-" if not before or after is None else f"{100 * (after - before) / before:+.0f}%"
        writer.append([f"{n:,}", before, after, change])
    return [
        "### Search, counts over time and the tail",
        "",
        "Each through its handler (no network), 20 requests: `q` with a word that is in 0.1% of the messages"
        " (one of 1,000), newest first, 100 to a page; a search that matches nothing reads every row of its span;"
        " `attr.status=500` is 2% of the entries. Counts come from the minute and hour counts the writer keeps;"
        " a tail poll reads the commit order (two writer commits of 1,000 rows behind the head, or at it)."
        ' "not 200": answers that were not 200 (503 `query_timeout` when a statement reached its cap).',
        "",
        _table(headers, rows),
        "",
        "The writer with the API's ids, without and with what it now keeps in the same transaction (the minute"
        " and hour counts, and its place in the commit order); median of 3 runs of 20,000 rows:",
        "",
        _table(["rows", "rows only rows/s", "with counts and commit order rows/s", "change"], writer),
        "",
    ]


def _keys_section(results: dict[str, Any]) -> list[str]:
    cost_table, limits_table = keys_tables(results)
    cliff = results["cliff"]["systems"]
    plain, keyed = cliff.get("sluice"), cliff.get("sluice (keys)")
    at_load = (
        f"At the cliff's load the same comparison (sluice without keys, then with a key and its limit) gave"
        f" p50 {plain['summary']['p50_ms']} → {keyed['summary']['p50_ms']} ms and p99"
        f" {plain['summary']['p99_ms']} → {keyed['summary']['p99_ms']} ms; there the latency is the server's"
        " queue, so the difference is mostly its run-to-run spread."
        if plain and keyed
        else ""
    )
    return [
        "## 5. Keys",
        "",
        "What a key's check and rate limit (one Redis script, no MySQL) add to `POST /logs`: one client,"
        " alternating between a server with `API_KEYS_REQUIRED=false` and one with a key.",
        "",
        cost_table,
        "",
        at_load,
        "",
        "Two keys posting at once: A limited to its rate (burst = rate), B unlimited.",
        "",
        limits_table,
        "",
    ]


def write(results: dict[str, Any], out: Path) -> Path:
    """Write report.md and the plots into `out`; return the report's path."""
    config = results["config"]
    budget = config["budget"]
    plots = []
    if results["cliff"]["systems"]:
        plot_threads(results, config["max_connections"], out / "threads_connected.png")
        plots.append(("threads_connected.png", "(a) MySQL Threads_connected over time"))
    if "sluice" in results["cliff"]["systems"]:
        plot_spread(results, out / "sluice_spread.png")
        plots.append(("sluice_spread.png", "(b) sluice: requests, inserts and queue depth over time"))
    plot_writer(results, out / "writer.png")
    plots.append(("writer.png", "(c) writer rows/s by batch size"))
    if results.get("scale"):
        plot_scale(results, out / "scale.png")
        plots.append(("scale.png", "(d) GET /logs p99 against table size"))
    checks = targets(results, budget) + report_clients.targets(results)
    machine = results["machine"]
    lines = [
        f"# sluice benchmark ({config['profile']}, {results['started']})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['kernel']};"
        f" {machine['mariadb']}, Redis {machine['redis']}, LocalStack {machine['localstack']},"
        f" Python {machine['python']}.",
        f"Command: `{config['command']}`. Everything ran on this one machine, traffic to 127.0.0.1 only.",
        "",
        "## Targets",
        "",
        *[f"- {'✅' if ok else '❌'} {name}: {figures}" for name, ok, figures in checks],
        "",
        f"## 1. The cliff: {config['cliff']['clients']} clients for {config['cliff']['duration_s']} s,"
        f" max_connections = {config['max_connections']}",
        "",
        f"sluice budget: W = {budget['writers']}, R = {budget['read_slots']}, reserve = {budget['reserve']}"
        " (+1: the sampler's own connection). celery: worker concurrency W. direct: a connection per request."
        " Latencies over all requests, failed ones included. Drain: from the end of the burst until every"
        " acknowledged entry was stored.",
        "",
        cliff_table(results),
        "",
        lag_table(results),
        "",
        *[
            f"Errors of {name}: {run['summary']['errors'] or 'none'}"
            for name, run in results["cliff"]["systems"].items()
        ],
        "",
        f"## 2. Writer throughput ({results['writer']['rows']:,} rows of ~300 B,"
        f" median of {results['writer']['repeats']})",
        "",
        "floor: one row per INSERT and a commit after each, on a reused connection (how the seed app wrote);"
        " batch N: the consumer's path (`chalicelib.consumer.insert.insert_log_rows`), one transaction per N rows;"
        " ceiling: `LOAD DATA LOCAL INFILE` of the same rows.",
        "",
        writer_table(results),
        "",
        "## 3. Cap vs drain rate",
        "",
        "The backlog is queued first, then the local event source runs with W workers (batch size"
        f" {config['drain']['batch_size']}). rows/s is over the insert window (first to last row).",
        "",
        drain_table(results),
        "",
        "## 4. Reads",
        "",
        reads_table(results),
        "",
        f"Cold key: {results['reads']['cold_key']['concurrent_requests']} concurrent GETs of an uncached item →"
        f" {results['reads']['cold_key']['mysql_queries']} MySQL queries;"
        f" answers {results['reads']['cold_key']['responses']}.",
        "",
        f"Every read slot taken ({results['reads']['slots_exhausted']['slots_held']} of"
        f" {results['reads']['slots_exhausted']['read_slots']}): an item with a stale copy →"
        f" {results['reads']['slots_exhausted']['stale_copy']['responses']}; an item without →"
        f" {results['reads']['slots_exhausted']['no_copy']['responses']}.",
        "",
        *(_keys_section(results) if "keys" in results else []),
        *(scale_section(results) if results.get("scale") else []),
        *(report_clients.otlp_section(results) if "otlp" in results else []),
        *(report_clients.clients_section(results) if "clients" in results else []),
        "## Plots",
        "",
        *[f"![{caption}]({name})\n" for name, caption in plots],
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
