"""The real OpenTelemetry Python SDK (pinned in requirements-dev.txt) logging to sluice as make up
serves it: its OTLP/HTTP protobuf exporter and its JSON exporter, each with gzip off and on. Every
record is stored once with the mapped fields; records of a source the key may not write are
refused without failing the export."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.conftest import TEST_KEY, queue_depth
from tests.functional.test_otlp import key_for
from tests.support.otel import DEPRECATED_HANDLER, FLUSH_MS, App, exporter

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings(DEPRECATED_HANDLER)


@pytest.fixture
def apps() -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        app.close()


def drain(consume, sqs, queue_urls) -> None:
    """The consumer runs until the queue is empty, nothing visible or in flight."""
    while consume() is not None:
        pass
    assert queue_depth(sqs, queue_urls) == 0


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_every_record_an_otel_app_logs_is_stored_once(encoding, gzip, server, apps, consume, admin_db, sqs, queue_urls):
    # GIVEN an app whose OpenTelemetry logs go to sluice through the real exporter
    app = App(f"otel.{encoding}.{gzip}", "web-1", exporter(encoding, gzip, server, TEST_KEY))
    apps.append(app)
    tracer = TracerProvider().get_tracer("checkout")
    # WHEN it logs 250 records, one of them an error inside a span, and flushes
    for i in range(249):
        app.log.info("request %d", i, extra={"path": f"/orders/{i}"})
    with tracer.start_as_current_span("pay") as span:
        app.log.error("payment failed", extra={"order": 42, "amount": 9.5})
    results = app.flush()
    # THEN every export succeeded
    assert results and set(results) == {LogRecordExportResult.SUCCESS}
    # AND once the queue is empty each record is stored once, with its level, source and attributes
    drain(consume, sqs, queue_urls)
    with admin_db.cursor() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT message) FROM logs WHERE source = 'web-1'")
        assert cur.fetchone() == (250, 250, 250)
        cur.execute("SELECT level, attributes FROM logs WHERE message = 'payment failed'")
        level, attributes = cur.fetchone()
    attributes = json.loads(attributes)
    context = span.get_span_context()
    assert level == "error"
    assert (attributes["order"], attributes["amount"], attributes["resource.deployment"]) == (42, 9.5, "test")
    assert (attributes["trace_id"], attributes["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert attributes["severity_text"] == "ERROR"


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_a_source_the_key_may_not_write_is_refused_without_failing_the_export(
    encoding, server, client, admin_headers, apps, consume, admin_db, sqs, queue_urls
):
    # GIVEN a key for web-* only, used by an app whose service is billing, and another whose service is web-2
    key = key_for(client, admin_headers, ["web-*"])["Authorization"].removeprefix("Bearer ")
    billing = App(f"otel.billing.{encoding}", "billing", exporter(encoding, False, server, key))
    web = App(f"otel.web.{encoding}", "web-2", exporter(encoding, False, server, key))
    apps.extend([billing, web])
    # WHEN both log and flush
    for i in range(20):
        billing.log.warning("invoice %d", i)
        web.log.warning("page %d", i)
    billing_results, web_results = billing.flush(), web.flush()
    # THEN both exports are answered 200 (refused records are reported, not retried), and only web-2's are stored
    assert set(billing_results) == set(web_results) == {LogRecordExportResult.SUCCESS}
    drain(consume, sqs, queue_urls)
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, COUNT(*) FROM logs GROUP BY source")
        assert cur.fetchall() == (("web-2", 20),)


def test_the_readmes_opentelemetry_example_logs_to_sluice(server, consume, admin_db, sqs, queue_urls):
    # GIVEN the README's OpenTelemetry setup as written, pointed at this API with the test key
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From your app\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```")[0] for block in section.split("```python\n")[1:]]
    code = next(block for block in blocks if "opentelemetry" in block)
    code = code.replace("http://127.0.0.1:8000", server).replace("Bearer slk_...", f"Bearer {TEST_KEY}")
    root = logging.getLogger()
    before = list(root.handlers)
    example: dict[str, Any] = {}
    try:
        exec(compile(code, "README.md", "exec"), example)
        # WHEN the app logs a warning and its provider flushes
        logging.getLogger("readme.app").warning("from the README's setup")
        assert example["provider"].force_flush(FLUSH_MS)
    finally:
        for handler in set(root.handlers) - set(before):
            root.removeHandler(handler)
        if "provider" in example:
            example["provider"].shutdown()
    # THEN, once the queue is empty, it is stored once under the service's name
    drain(consume, sqs, queue_urls)
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, level FROM logs WHERE message = %s", ("from the README's setup",))
        assert cur.fetchall() == (("web-1", "warning"),)
