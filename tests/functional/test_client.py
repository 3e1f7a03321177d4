"""The Python client (clients/python) against the app as make up serves it: every record an app
logs through SluiceHandler is stored exactly once, and the Client's errors carry sluice's code and
request id."""

import logging
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sluice_client import Client, SluiceError, SluiceHandler

from tests.functional.conftest import TEST_KEY, queue_depth
from tests.support.waiting import wait_for

SOURCE = "client-test"
ROOT = Path(__file__).resolve().parents[2]


def test_every_record_an_app_logs_is_stored_exactly_once(server, consume, admin_db, sqs, queue_urls):
    # GIVEN an app's logger with SluiceHandler, batches of at most 100 entries
    handler = SluiceHandler(server, TEST_KEY, SOURCE, batch_entries=100)
    log = logging.getLogger("test_client.app")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        # WHEN it logs 1,000 records, with extra fields, and the handler is flushed
        for i in range(1000):
            log.info("request %d", i, extra={"path": f"/orders/{i}", "status": 200})
        handler.flush(timeout=60)
        assert (handler.pending, handler.dropped) == (0, 0)
    finally:
        log.removeHandler(handler)
        handler.close()
    # AND the consumer has drained the queue (nothing waiting or in flight)
    while consume() is not None:
        pass
    assert queue_depth(sqs, queue_urls) == 0
    # THEN each record is stored once, with its message and attributes
    with admin_db.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT message) FROM logs WHERE source = %s", (SOURCE,)
        )
        assert cur.fetchone() == (1000, 1000, 1000)
        cur.execute(
            "SELECT level, JSON_VALUE(attributes, '$.path'), JSON_VALUE(attributes, '$.logger') FROM logs"
            " WHERE source = %s AND message = 'request 7'",
            (SOURCE,),
        )
        assert cur.fetchone() == ("info", "/orders/7", "test_client.app")


def test_the_client_sends_reads_back_and_names_sluices_refusals(server, consume):
    client = Client(server, TEST_KEY)
    # GIVEN an entry sent and stored
    log_id = client.send({"level": "warning", "source": SOURCE, "message": "disk at 91%"})
    consume()
    # WHEN it is read back THEN it is there
    page = client.query(source=SOURCE)
    assert [(e["id"], e["message"]) for e in page["logs"]] == [(log_id, "disk at 91%")]
    # AND a refusal carries sluice's status, code and request id
    with pytest.raises(SluiceError) as refused:
        Client(server, "slk_" + "x" * 43).send({"level": "info", "source": SOURCE, "message": "m"})
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert refused.value.request_id and not refused.value.retryable


def readme_block(heading: str) -> str:
    """The python block under a heading of the client's README."""
    text = (ROOT / "clients" / "python" / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_flask_example_logs_each_request_once(server, consume, admin_db):
    # GIVEN the README's Flask app as written, pointed at this API with the test key
    code = readme_block("A Flask app under gunicorn")
    code = code.replace("http://127.0.0.1:8000", server).replace('"slk_..."', repr(TEST_KEY))
    example: dict[str, Any] = {"__name__": "flask_example"}
    exec(compile(code, "clients/python/README.md", "exec"), example)
    handler = example["log"].handlers[-1]
    try:
        # WHEN 20 requests reach it
        with example["app"].test_client() as web:
            answers = [web.post("/orders") for _ in range(20)]
        handler.flush(timeout=60)
    finally:
        example["log"].removeHandler(handler)
        handler.close()
    # THEN each was answered, and each request's record is stored once with its path
    assert [a.status_code for a in answers] == [201] * 20
    while consume() is not None:
        pass
    with admin_db.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM logs"
            " WHERE source = 'web-1' AND message = 'order received' AND JSON_VALUE(attributes, '$.path') = '/orders'"
        )
        assert cur.fetchone() == (20, 20)


def test_the_flask_example_under_a_pre_fork_server_stores_each_record_once(server, consume, admin_db, tmp_path):
    # GIVEN the README's Flask app as a module that also logs once at import, served by gunicorn with
    # two workers forked from a master that loaded it (--preload): the master's handler has started
    # its thread and may hold a queued record when the workers are forked
    code = readme_block("A Flask app under gunicorn")
    code = code.replace("http://127.0.0.1:8000", server).replace('"slk_..."', repr(TEST_KEY))
    (tmp_path / "orders_app.py").write_text(code + '\nlog.info("loaded before the fork")\n')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gunicorn = [str(ROOT / ".venv" / "bin" / "gunicorn"), "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen([*gunicorn, "--chdir", str(tmp_path), "orders_app:app"], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/orders") == 201, timeout_s=60)
        # WHEN 40 more requests reach the workers
        statuses = [_answers(f"http://127.0.0.1:{port}/orders") for _ in range(40)]
        assert statuses == [201] * 40

        # THEN the workers' own threads send their records: 41 requests stored, each once, and the
        # master's record once (a worker does not send the copy of the queue it was forked with)
        def stored() -> tuple[int, int, int] | None:
            while consume() is not None:
                pass
            with admin_db.cursor() as cur:
                cur.execute(
                    "SELECT SUM(message = 'order received'), COUNT(DISTINCT id),"
                    " SUM(message = 'loaded before the fork') FROM logs WHERE source = 'web-1'"
                )
                row = cur.fetchone()
            requests, ids, master = (int(n or 0) for n in row)
            return (requests, ids, master) if requests >= 41 and master >= 1 else None

        assert wait_for(stored, timeout_s=60) == (41, 42, 1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> int:
    """The status of a POST, or 0 when nothing answers yet."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0
