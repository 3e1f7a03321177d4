"""System "celery": the usual fix. Flask (gunicorn, gevent workers) hands each entry to Celery
with `.delay()` through a Redis broker; a Celery worker with concurrency W inserts one row per task
on a connection each worker process keeps.

    gunicorn -k gevent -w 2 -b 127.0.0.1:8300 bench.systems.celery_app:app
    celery -A bench.systems.celery_app worker --pool prefork --concurrency W
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from flask import Flask, request

from bench.systems.common import connect, insert

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6380/2")

celery = Celery("bench", broker=BROKER_URL)
celery.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
_connection: Any = None


@worker_process_init.connect
def _open_connection(**_: Any) -> None:
    global _connection
    _connection = connect()


@celery.task(name="bench.insert_log")
def insert_log(entry: dict[str, Any]) -> None:
    insert(_connection, "celery_logs", entry)


app = Flask(__name__)


@app.post("/logs")
def post_log():  # type: ignore[no-untyped-def]
    entry = request.get_json()
    insert_log.delay(entry)
    return {"id": entry["id"], "status": "queued"}, 202
