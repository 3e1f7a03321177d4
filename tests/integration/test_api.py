"""Every endpoint through LocalStack's API Gateway and the deployed API function, over HTTP."""

import re
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.integration.conftest import SETTINGS, rows
from tests.integration.otel_checks import check_otel_exports_are_stored_once
from tests.support.otel import DEPRECATED_HANDLER
from tests.support.waiting import wait_for
from tools.ops.queues import queue_depth

pytestmark = pytest.mark.usefixtures("clean_state")

ENTRY = {"level": "info", "source": "web-1", "message": "GET / 200"}


def test_health(api, admin_headers):
    assert (api.get("/health").status, api.get("/health").body) == (200, {"status": "ok"})
    deep = api.get("/health/dependencies", headers=admin_headers)
    assert deep.status == 200
    assert deep.body == {"status": "ok", "checks": {"mysql": "ok", "redis": "ok", "queue": "ok"}}
    assert api.get("/health/dependencies").status == 401


def test_items_lifecycle(api, admin_headers):
    created = api.put("/items/lamp", {"name": "Lamp", "attributes": {"watts": 40}}, headers=admin_headers)
    assert created.status == 201
    assert created.body["version"] == 1
    assert api.get("/items/lamp").headers["x-cache"] == "miss"
    hit = api.get("/items/lamp")
    assert (hit.status, hit.headers["x-cache"], hit.body["name"]) == (200, "hit", "Lamp")
    replaced = api.put("/items/lamp", {"name": "Desk lamp"}, headers=admin_headers)
    assert (replaced.status, replaced.body["version"]) == (200, 2)
    assert api.get("/items/lamp").body["name"] == "Desk lamp"
    api.put("/items/chair", {"name": "Chair"}, headers=admin_headers)
    page = api.get("/items?limit=1")
    assert [i["id"] for i in page.body["items"]] == ["chair"]
    assert [i["id"] for i in api.get(f"/items?limit=1&cursor={page.body['next_cursor']}").body["items"]] == ["lamp"]
    assert api.delete("/items/lamp", headers=admin_headers).status == 204
    gone = api.get("/items/lamp")
    assert (gone.status, gone.body["error"]["code"]) == (404, "not_found")


def test_item_errors(api, admin_headers):
    assert api.put("/items/x", {"name": "x"}).status == 401
    assert api.put("/items/x", {"name": "x"}, headers={"Authorization": "Bearer wrong"}).status == 403
    bad_id = api.put("/items/bad.id", {"name": "x"}, headers=admin_headers)
    assert (bad_id.status, bad_id.body["error"]["details"][0]["field"]) == (400, "id")
    not_json = api.put("/items/x", b"name=x", headers={**admin_headers, "Content-Type": "text/plain"})
    assert (not_json.status, not_json.body["error"]["code"]) == (415, "unsupported_media_type")
    too_big = api.put("/items/x", {"name": "x", "description": "d" * SETTINGS.max_body_bytes}, headers=admin_headers)
    assert (too_big.status, too_big.body["error"]["code"]) == (413, "payload_too_large")
    assert api.get("/items/x").status == 404


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/nope", {}),
        ("GET", "/nope", {"Authorization": "Bearer anything"}),
        ("PATCH", "/logs", {}),  # a method the path lacks: API Gateway has no route for it either
    ],
)
def test_what_has_no_route_answers_404_in_the_error_shape(api, method, path, headers):
    # WHEN a path (or a path's method) no route has is asked for, with or without a token (API
    # Gateway's default: a 403 "Missing Authentication Token", or a complaint about the header)
    nope = api.request(method, path, headers=headers)
    # THEN the deployment's gateway response answers (tools/deploy/gateway_responses.py), with the request id
    assert (nope.status, nope.body["error"]["code"]) == (404, "not_found"), nope
    assert nope.body["error"]["request_id"]


def test_a_posted_entry_is_stored_exactly_once_through_the_event_source_mapping(keyed_api, admin_db, sqs, queue_urls):
    api = keyed_api
    # WHEN an entry is posted (with a client id, twice, as a retrying client would)
    log_id = str(uuid.uuid4())
    for _ in range(2):
        accepted = api.post("/logs", {**ENTRY, "id": log_id})
        assert (accepted.status, accepted.body) == (202, {"id": log_id, "status": "queued"})
    # THEN LocalStack's event source mapping runs the consumer until both messages are consumed
    # (the queue empty: none waiting, none in flight), and the row is there once
    wait_for(lambda: rows(admin_db, "SELECT id FROM logs") and queue_depth(sqs, queue_urls["queue"]) == 0, 60)
    stored = wait_for(lambda: api.get(f"/logs/{log_id}").body if api.get(f"/logs/{log_id}").status == 200 else None, 30)
    assert stored["message"] == ENTRY["message"]
    assert rows(admin_db, "SELECT COUNT(*) FROM logs WHERE id = %s", (log_id,)) == [(1,)]


def test_a_batch_is_stored_and_queryable(keyed_api, admin_db):
    api = keyed_api
    entries = [{**ENTRY, "message": f"m{i}", "level": "error" if i % 2 else "info"} for i in range(20)]
    accepted = api.post("/logs/batch", {"logs": entries})
    assert accepted.status == 202
    wait_for(lambda: rows(admin_db, "SELECT COUNT(*) FROM logs") == [(20,)], timeout_s=60)
    errors = api.get("/logs?level=error&limit=500")
    assert errors.status == 200
    assert len(errors.body["logs"]) == 10
    assert {log["id"] for log in api.get("/logs?limit=500").body["logs"]} == set(accepted.body["ids"])


def test_log_errors(keyed_api, api, sqs, queue_urls, admin_db):
    # WHEN entries are posted without a key, invalid, or as something other than JSON
    # THEN each is refused with its status
    assert api.post("/logs", ENTRY).status == 401  # no key
    assert api.get("/logs").status == 401
    api = keyed_api
    invalid = api.post("/logs", {**ENTRY, "level": "loud"})
    assert (invalid.status, invalid.body["error"]["details"][0]["field"]) == (400, "level")
    batch = api.post("/logs/batch", {"logs": [ENTRY, {"message": "x"}]})
    assert batch.status == 400
    assert {d["index"] for d in batch.body["error"]["details"]} == {1}
    not_json = api.post("/logs", b"hello", headers={"Content-Type": "text/plain"})  # with the key
    assert not_json.status == 415
    assert api.get(f"/logs/{uuid.uuid4()}").status == 404
    assert api.get("/logs?limit=9999").status == 400
    # AND none was queued: once the queue is empty (none waiting, none in flight with the event
    # source mapping), nothing was stored or set aside
    wait_for(lambda: queue_depth(sqs, queue_urls["queue"]) == 0, timeout_s=60)
    assert rows(admin_db, "SELECT COUNT(*) FROM logs") == [(0,)]
    assert rows(admin_db, "SELECT COUNT(*) FROM log_rejects") == [(0,)]


@pytest.mark.filterwarnings(DEPRECATED_HANDLER)
def test_opentelemetry_exporters_through_api_gateway(keyed_api, admin_db, sqs, queue_urls):
    check_otel_exports_are_stored_once(
        keyed_api,
        stored=lambda source: rows(admin_db, "SELECT COUNT(*) FROM logs WHERE source = %s", (source,))[0][0],
        queue_empty=lambda: queue_depth(sqs, queue_urls["queue"]) == 0,
    )


def test_the_log_viewer_is_served_under_the_stages_base_path(api):
    # GIVEN the API deployed behind LocalStack's API Gateway, under its stage's base path
    page_url = f"{api.base_url}/ui"
    # WHEN the page is fetched THEN it is HTML with its strict Content-Security-Policy
    with urllib.request.urlopen(page_url, timeout=30) as page:
        html = page.read().decode()
        assert page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    # AND every file it names, resolved relative to the page as a browser would, is served from there
    references = re.findall(r'(?:src|href)="(ui/[^"]+)"', html)
    assert sorted(references) == ["ui/viewer.css", "ui/viewer.js"]
    for reference in references:
        with urllib.request.urlopen(urllib.parse.urljoin(page_url, reference), timeout=30) as asset:
            assert asset.status == 200
            assert asset.headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css")
