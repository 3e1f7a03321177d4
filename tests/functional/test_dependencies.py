"""Health, and what each endpoint does when MySQL, Redis or SQS is down (real refused connections).
GET /health answers without touching anything; GET /health/dependencies (admin) asks each."""

import json
import uuid

from tests.functional.conftest import JSON, SETTINGS, body, closed_port

ENTRY = {"level": "info", "source": "web", "message": "hello"}


def test_health_reports_every_check_ok(client, admin_headers):
    response = client.http.get("/health/dependencies", headers=admin_headers)
    assert response.status_code == 200
    assert body(response) == {"status": "ok", "checks": {"mysql": "ok", "redis": "ok", "queue": "ok"}}


def test_public_health_touches_nothing_and_the_deep_check_needs_the_admin_token(client, override_settings):
    # GIVEN every dependency down
    down = f"127.0.0.1:{closed_port()}"
    override_settings(
        sqs_endpoint_url=f"http://{down}", redis_url=f"redis://{down}/0", mysql={"port": int(down.split(":")[1])}
    )
    # THEN the public health check still answers ok (it costs no connection), and the deep one is refused to anyone else
    assert (client.http.get("/health").status_code, body(client.http.get("/health"))) == (200, {"status": "ok"})
    assert client.http.get("/health/dependencies").status_code == 401
    assert client.http.get("/health/dependencies", headers=JSON).status_code == 403


def test_with_sqs_down_writes_get_503_and_nothing_is_acknowledged(client, admin_headers, override_settings):
    # GIVEN SQS refuses connections
    override_settings(sqs_endpoint_url=f"http://127.0.0.1:{closed_port()}")
    # WHEN a client posts an entry and a batch
    single = client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY))
    batch = client.http.post("/logs/batch", headers=JSON, body=json.dumps({"logs": [ENTRY, ENTRY]}))
    # THEN both are 503 with Retry-After, and each error gives the ids to retry with (SQS may have
    # taken a message whose answer was lost: a retry with the same id stores it once)
    for response in (single, batch):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(SETTINGS.retry_after_s)
        assert body(response)["error"]["code"] == "queue_unavailable"
    assert uuid.UUID(body(single)["error"]["details"]["id"])
    assert len(body(batch)["error"]["details"]["ids"]) == 2
    # AND health names the queue
    health = client.http.get("/health/dependencies", headers=admin_headers)
    assert health.status_code == 503
    assert body(health)["checks"] == {"mysql": "ok", "redis": "ok", "queue": "unavailable"}
    assert body(health)["error"]["message"].startswith("queue unavailable")


def test_with_sqs_down_reads_still_work(client, admin_headers, override_settings):
    client.http.put("/items/a", headers=admin_headers, body='{"name": "A"}')
    override_settings(sqs_endpoint_url=f"http://127.0.0.1:{closed_port()}")
    assert client.http.get("/items/a").status_code == 200


def test_with_mysql_down_uncached_reads_get_503_but_logs_are_still_accepted(client, admin_headers, override_settings):
    # GIVEN one cached item and a key used a moment ago, then MySQL refusing connections
    client.http.put("/items/cached", headers=admin_headers, body='{"name": "C"}')
    client.http.get("/items/cached")
    assert client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY)).status_code == 202
    override_settings(mysql={"port": closed_port()})
    # THEN the cached item is still served, an uncached read is a 503, and log writes are queued as usual
    assert client.http.get("/items/cached").status_code == 200
    uncached = client.http.get("/items/other")
    assert uncached.status_code == 503
    assert uncached.headers["Retry-After"] == str(SETTINGS.retry_after_s)
    assert body(uncached)["error"]["code"] == "database_unavailable"
    # (its key is still known: a key seen in the last KEY_STALE_TTL_S needs no MySQL)
    assert client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY)).status_code == 202
    health = client.http.get("/health/dependencies", headers=admin_headers)
    assert health.status_code == 503
    assert body(health)["checks"]["mysql"] == "unavailable"


def test_with_redis_down_health_names_redis(client, admin_headers, override_settings):
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    health = client.http.get("/health/dependencies", headers=admin_headers)
    assert health.status_code == 503
    assert body(health)["checks"] == {"mysql": "ok", "redis": "unavailable", "queue": "ok"}
