"""Items over HTTP: the contract's paths, statuses and shapes, with the cache in front of MySQL."""

import json
from datetime import datetime

from tests.functional.conftest import JSON, PLAIN, SETTINGS, body


def put(client, headers, item_id, data):
    return client.http.put(f"/items/{item_id}", headers=headers, body=json.dumps(data))


def test_put_creates_then_replaces_with_a_new_version(client, admin_headers):
    # WHEN an item is put for the first time THEN 201 with version 1
    created = put(client, admin_headers, "lamp", {"name": "Lamp", "attributes": {"watts": 40}})
    assert created.status_code == 201
    item = body(created)
    assert item["id"] == "lamp"
    assert item["version"] == 1
    assert item["description"] == ""
    assert datetime.fromisoformat(item["updated_at"]).tzinfo is not None
    # WHEN it is put again THEN 200, version 2, the new data
    replaced = put(client, admin_headers, "lamp", {"name": "Desk lamp", "description": "brass"})
    assert replaced.status_code == 200
    assert body(replaced)["version"] == 2
    assert body(replaced)["name"] == "Desk lamp"
    assert body(replaced)["attributes"] == {}


def test_get_misses_then_hits_the_cache(client, admin_headers):
    put(client, admin_headers, "chair", {"name": "Chair"})
    first = client.http.get("/items/chair")
    second = client.http.get("/items/chair")
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    assert (second.status_code, second.headers["X-Cache"]) == (200, "hit")
    assert body(first) == body(second)
    assert set(body(first)) == {"id", "name", "description", "attributes", "version", "updated_at"}


def test_a_put_invalidates_the_cached_copy(client, admin_headers):
    # GIVEN a cached item
    put(client, admin_headers, "desk", {"name": "Desk"})
    client.http.get("/items/desk")
    assert client.http.get("/items/desk").headers["X-Cache"] == "hit"
    # WHEN it is replaced
    put(client, admin_headers, "desk", {"name": "Standing desk"})
    # THEN the next GET reads the new data from MySQL
    after = client.http.get("/items/desk")
    assert after.headers["X-Cache"] == "miss"
    assert body(after)["name"] == "Standing desk"
    assert body(after)["version"] == 2


def test_absence_is_cached_briefly_and_a_put_ends_it(client, admin_headers, redis_client):
    # WHEN an absent item is read twice THEN both are 404 and the second is served from the cache
    first = client.http.get("/items/ghost")
    assert first.status_code == 404
    assert body(first)["error"]["code"] == "not_found"
    assert client.http.get("/items/ghost").status_code == 404
    key = f"{SETTINGS.redis_key_prefix}item:{{ghost}}:data"
    assert json.loads(redis_client.get(key))["v"] is None
    assert 0 < redis_client.pttl(key) <= SETTINGS.item_absent_ttl_s * 1000
    # WHEN it is created THEN it is visible at once
    put(client, admin_headers, "ghost", {"name": "Ghost"})
    assert client.http.get("/items/ghost").status_code == 200


def test_delete_then_404(client, admin_headers):
    put(client, admin_headers, "vase", {"name": "Vase"})
    client.http.get("/items/vase")
    deleted = client.http.delete("/items/vase", headers=admin_headers)
    assert deleted.status_code == 204
    assert client.http.get("/items/vase").status_code == 404
    again = client.http.delete("/items/vase", headers=admin_headers)
    assert again.status_code == 404


def test_list_pages_through_items_in_id_order(client, admin_headers):
    for item_id in ["b", "a", "d", "c", "e"]:
        put(client, admin_headers, item_id, {"name": item_id.upper()})
    page = body(client.http.get("/items?limit=2"))
    assert [i["id"] for i in page["items"]] == ["a", "b"]
    seen = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = body(client.http.get(f"/items?limit=2&cursor={page['next_cursor']}"))
        seen += [i["id"] for i in page["items"]]
    assert seen == ["a", "b", "c", "d", "e"]
    assert body(client.http.get("/items"))["next_cursor"] is None


def test_ids_are_case_sensitive(client, admin_headers):
    put(client, admin_headers, "Case", {"name": "upper"})
    put(client, admin_headers, "case", {"name": "lower"})
    assert body(client.http.get("/items/Case"))["name"] == "upper"
    assert body(client.http.get("/items/case"))["name"] == "lower"


def test_writes_need_the_admin_token(client, admin_headers):
    anonymous = client.http.put("/items/x", headers=PLAIN, body='{"name": "x"}')
    assert anonymous.status_code == 401
    assert body(anonymous)["error"]["code"] == "unauthorized"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.http.put("/items/x", headers={**JSON, "Authorization": "Bearer nope"}, body='{"name": "x"}')
    assert wrong.status_code == 403
    assert body(wrong)["error"]["code"] == "forbidden"
    assert client.http.delete("/items/x", headers={"Authorization": "Bearer nope"}).status_code == 403
    # THEN nothing was written
    assert client.http.get("/items/x").status_code == 404


def test_bad_input_is_a_json_4xx_and_changes_nothing(client, admin_headers):
    cases = [
        (put(client, admin_headers, "bad id!", {"name": "x"}), 400, "invalid_request"),
        (put(client, admin_headers, "x" * 65, {"name": "x"}), 400, "invalid_request"),
        (put(client, admin_headers, "ok", {"name": ""}), 400, "invalid_request"),
        (put(client, admin_headers, "ok", {"name": "x", "colour": "red"}), 400, "invalid_request"),
        (client.http.put("/items/ok", headers=admin_headers, body="{nope"), 400, "invalid_json"),
        (
            client.http.put("/items/ok", headers={**admin_headers, "Content-Type": "text/plain"}, body="x"),
            415,
            "unsupported_media_type",
        ),
        (
            client.http.put(
                "/items/ok", headers=admin_headers, body=json.dumps({"name": "x" * SETTINGS.max_body_bytes})
            ),
            413,
            "payload_too_large",
        ),
        (client.http.get("/items/bad%20id"), 400, "invalid_request"),
        (client.http.get("/items?limit=0"), 400, "invalid_request"),
        (client.http.get("/items?limit=101"), 400, "invalid_request"),
        (client.http.get("/items?cursor=forged"), 400, "invalid_request"),
        (client.http.get("/items?colour=red"), 400, "invalid_request"),
    ]
    for response, status, code in cases:
        assert (response.status_code, body(response)["error"]["code"]) == (status, code), body(response)
        assert body(response)["error"]["message"]
    assert body(client.http.get("/items"))["items"] == []


def test_a_bad_field_is_named_in_the_error(client, admin_headers):
    response = put(client, admin_headers, "ok", {"name": 5})
    assert body(response)["error"]["details"] == [{"field": "name", "message": "Input should be a valid string"}]
