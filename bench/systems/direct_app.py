"""System "direct": the design that fails. Each request opens its own MySQL connection and inserts
the row itself, as the original Flask app did. Served by gunicorn with gevent workers.

    gunicorn -k gevent -w 2 -b 127.0.0.1:8200 bench.systems.direct_app:app
"""

import pymysql
from flask import Flask, request

from bench.systems.common import connect, error_body, insert

app = Flask(__name__)


@app.post("/logs")
def post_log():  # type: ignore[no-untyped-def]
    entry = request.get_json()
    try:
        conn = connect()
        try:
            insert(conn, "direct_logs", entry)
        finally:
            conn.close()
    except pymysql.err.MySQLError as exc:
        return error_body(exc), 500
    return {"id": entry["id"], "status": "stored"}, 201
