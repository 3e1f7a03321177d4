"""The OpenAPI description (openapi.json) is what the code does: every route described, the
description served, and answers that match their schemas. (That openapi.json is what
chalicelib/web/openapi.py generates is `make lint`'s check: python -m tools.ops.openapi --check.)"""

import json
from typing import Any

import jsonschema

import app as sluice_app
from chalicelib.web.openapi import ADMIN, KEY, OPERATIONS, document
from tests.functional.conftest import JSON, TEST_KEY, body
from tools.ops.openapi import PATH


def test_every_route_is_described_and_nothing_else():
    # GIVEN the app's routes, and the operations the description is written from (a hand-kept list)
    # THEN they are the same: no route undescribed, no description of a route that is not there
    routes = {(path, method.lower()) for path, methods in sluice_app.app.routes.items() for method in methods}
    described = {(op.path, op.method) for op in OPERATIONS}
    assert routes == described


def test_the_api_serves_its_description(client):
    # WHEN /openapi.json is asked for THEN the committed description is served
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert body(response) == json.loads(PATH.read_text())


def answer_schema(path: str, method: str, status: int) -> dict[str, Any]:
    """The schema of one answer, resolvable against the whole document."""
    doc = document()
    ref = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**ref, "components": doc["components"]}


def check(response: Any, path: str, method: str) -> None:
    schema = answer_schema(path, method, response.status_code)
    jsonschema.validate(body(response), schema, cls=jsonschema.Draft202012Validator)


def test_answers_match_their_schemas(client, admin_headers, consume):
    # WHEN the main routes answer, with success and with errors
    check(client.http.put("/items/a", headers=admin_headers, body=json.dumps({"name": "A"})), "/items/{item_id}", "put")
    check(client.http.get("/items/a"), "/items/{item_id}", "get")
    check(client.http.get("/items?limit=1"), "/items", "get")
    check(client.http.get("/items/none"), "/items/{item_id}", "get")
    check(client.http.get("/items?limit=0"), "/items", "get")
    check(client.http.get("/health"), "/health", "get")
    check(client.http.get("/health/dependencies", headers=admin_headers), "/health/dependencies", "get")
    queued = client.http.post("/logs", headers=JSON, body=json.dumps({"level": "info", "source": "s", "message": "m"}))
    check(queued, "/logs", "post")
    batch = {"logs": [{"level": "info", "source": "s", "message": "m"}]}
    check(client.http.post("/logs/batch", headers=JSON, body=json.dumps(batch)), "/logs/batch", "post")
    check(client.http.post("/logs", headers=JSON, body="{}"), "/logs", "post")
    check(client.http.post("/logs", body="{}"), "/logs", "post")
    consume()
    check(client.http.get("/logs", headers=JSON), "/logs", "get")
    check(client.http.get(f"/logs/{body(queued)['id']}", headers=JSON), "/logs/{log_id}", "get")
    made = client.http.post("/keys", headers=admin_headers, body=json.dumps({"name": "k", "sources": ["*"]}))
    check(made, "/keys", "post")
    check(client.http.get("/keys", headers=admin_headers), "/keys", "get")
    # THEN (check) every answer matched the schema of its status


def test_a_declared_content_type_other_than_json_gets_a_described_415_on_every_route(client, admin_headers):
    # (found by the fuzzer: a GET with a random Content-Type; Chalice refuses it before any route runs,
    # and a route that takes a body refuses it once the caller is let in)
    described = document()["paths"]
    tokens = {ADMIN: admin_headers["Authorization"], KEY: f"Bearer {TEST_KEY}", None: ""}
    for op in OPERATIONS:
        path = op.path.replace("{item_id}", "lamp").replace("{log_id}", "0" * 8 + "-0000-0000-0000-" + "0" * 12)
        path = path.replace("{key_id}", "key_0123456789abcdef")
        headers = {"Content-Type": "text/plain", "Authorization": tokens[op.security]}
        response = client.http.request(op.method.upper(), path, headers=headers, body=b"x")
        assert response.status_code == 415, (op.method, op.path, response.body)
        assert body(response)["error"]["code"] == "unsupported_media_type"
        assert "415" in described[op.path][op.method]["responses"], (op.method, op.path)
