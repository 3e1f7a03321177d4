"""API keys on every /logs route: who gets in, what a key may touch, its rate limit, revocation,
and the limit on failed attempts per client address. The app through chalice.test.Client
against the real MariaDB, Redis and SQS."""

import json
import math
import time
import uuid
from typing import Any

import pytest
import redis

from chalicelib import wiring
from chalicelib.keys.model import token_hash
from chalicelib.logs.model import BATCH_MAX_ENTRIES
from tests.functional.conftest import JSON, PLAIN, SETTINGS, body, closed_port, queue_depth
from tests.support.mysql import Statements
from tests.support.waiting import wait_for

ENTRY = {"level": "info", "source": "web-1", "message": "hello"}
UNAUTHORIZED = {"code": "unauthorized", "message": "a valid API key is required: Authorization: Bearer <key>"}


def api_user() -> str:
    """The MySQL account the API's requests use."""
    return wiring.get_secrets().credentials("mysql_api").username


def make_key(client, admin_headers, **fields: Any) -> dict[str, Any]:
    response = client.http.post(
        "/keys", headers=admin_headers, body=json.dumps({"name": "t", "sources": ["*"], **fields})
    )
    assert response.status_code == 201, body(response)
    return dict(body(response))


def with_key(token: str) -> dict[str, str]:
    return {**PLAIN, "Authorization": f"Bearer {token}"}


def post(client, headers, entry=ENTRY, path="/logs"):
    return client.http.post(path, headers=headers, body=json.dumps(entry))


def error(response) -> dict[str, Any]:
    found = body(response)["error"]
    return {k: found[k] for k in ("code", "message")}


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer short", "Bearer slk_" + "x" * 43, "Bearer " + "y" * 60],
)
def test_every_logs_route_refuses_a_missing_malformed_or_unknown_key_alike(client, sqs, queue_urls, authorization):
    headers = {**PLAIN, **({"Authorization": authorization} if authorization else {})}
    answers = [
        post(client, headers),
        post(client, headers, {"logs": [ENTRY]}, "/logs/batch"),
        client.http.get("/logs", headers=headers),
        client.http.get(f"/logs/{uuid.uuid4()}", headers=headers),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert error(answer) == UNAUTHORIZED  # never which part was wrong
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="sluice"'
    assert queue_depth(sqs, queue_urls) == 0


def test_a_key_is_shown_once_listed_without_its_token_and_stored_as_a_hash(client, admin_headers, admin_db):
    made = make_key(client, admin_headers, name="web", sources=["web-1", "billing.*"], rate_per_s=7, burst=70)
    assert made["key"].startswith("slk_") and len(made["key"]) >= 4 + 43
    assert {k: made[k] for k in ("name", "scopes", "sources", "rate_per_s", "burst")} == {
        "name": "web",
        "scopes": ["logs:write"],  # the default: write only
        "sources": ["web-1", "billing.*"],
        "rate_per_s": 7,
        "burst": 70,
    }
    listed = body(client.http.get("/keys", headers=admin_headers))["keys"]
    mine = next(k for k in listed if k["id"] == made["id"])
    assert "key" not in mine and made["key"] not in json.dumps(listed)
    with admin_db.cursor() as cur:
        cur.execute("SELECT token_hash FROM api_keys WHERE id = %s", (made["id"],))
        assert cur.fetchone() == (token_hash(made["key"]),)
    # AND only the admin token may manage keys
    assert client.http.get("/keys", headers=JSON).status_code == 403
    assert client.http.post("/keys", headers=PLAIN, body='{"name": "x"}').status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scopes": ["logs:admin"]}, "scopes.0"),
        ({"scopes": []}, "scopes"),
        ({"sources": ["bad source"]}, "sources.0"),
        ({"sources": ["*x"]}, "sources.0"),
        ({"rate_per_s": 0}, "rate_per_s"),
        ({"burst": -1}, "burst"),
        ({"name": ""}, "name"),
        ({"token": "mine"}, "token"),
    ],
)
def test_a_bad_key_request_is_refused_and_makes_nothing(client, admin_headers, fields, field):
    before = len(body(client.http.get("/keys", headers=admin_headers))["keys"])
    made = {"name": "k", "sources": ["web-1"], **fields}
    response = client.http.post("/keys", headers=admin_headers, body=json.dumps(made))
    assert response.status_code == 400
    assert [d["field"] for d in body(response)["error"]["details"]] == [field]
    assert len(body(client.http.get("/keys", headers=admin_headers))["keys"]) == before


def test_a_key_for_every_source_is_asked_for_by_name(client, admin_headers):
    # GIVEN a key request that names no sources
    before = len(body(client.http.get("/keys", headers=admin_headers))["keys"])
    response = client.http.post("/keys", headers=admin_headers, body=json.dumps({"name": "k"}))
    # THEN it is refused, naming the field, rather than made for every source
    assert response.status_code == 400
    assert [d["field"] for d in body(response)["error"]["details"]] == ["sources"]
    assert len(body(client.http.get("/keys", headers=admin_headers))["keys"]) == before
    # AND "*" asked for by name makes one
    every = make_key(client, admin_headers, sources=["*"])
    assert every["sources"] == ["*"]


def test_a_key_writes_and_reads_only_its_scopes_and_sources(client, admin_headers, consume, sqs, queue_urls):
    writer = make_key(client, admin_headers, sources=["web-1", "billing.*"])
    reader = make_key(client, admin_headers, scopes=["logs:read"], sources=["billing.*"])
    w, r = with_key(writer["key"]), with_key(reader["key"])
    # WHEN the writer posts to its sources THEN 202; another source is 403 and nothing of that batch is queued
    assert post(client, w).status_code == 202
    assert post(client, w, {**ENTRY, "source": "billing.eu"}).status_code == 202
    refused = post(
        client, w, {"logs": [{**ENTRY, "source": "billing.eu"}, {**ENTRY, "source": "web-2"}]}, "/logs/batch"
    )
    assert (refused.status_code, error(refused)) == (
        403,
        {"code": "forbidden", "message": "this key may not use the source 'web-2'"},
    )
    # AND a read-only key may not write, a write-only key may not read
    assert post(client, r, {**ENTRY, "source": "billing.eu"}).status_code == 403
    assert client.http.get("/logs", headers=w).status_code == 403
    consume()
    assert queue_depth(sqs, queue_urls) == 0
    # THEN the reader sees its sources only, and nothing of another source, not even by id
    seen = body(client.http.get("/logs", headers=r))["logs"]
    assert [x["source"] for x in seen] == ["billing.eu"]
    assert client.http.get("/logs?source=web-1", headers=r).status_code == 403
    web_id = body(client.http.get("/logs?source=web-1", headers=JSON))["logs"][0]["id"]
    assert client.http.get(f"/logs/{web_id}", headers=r).status_code == 404
    assert client.http.get(f"/logs/{seen[0]['id']}", headers=r).status_code == 200


def test_a_prefix_matches_literally(client, admin_headers, consume):
    # GIVEN a key for billing_* ("_" is a LIKE wildcard in SQL: here it must match itself only)
    key = with_key(make_key(client, admin_headers, scopes=["logs:read"], sources=["billing_*"])["key"])
    for source in ("billing_eu", "billingXeu"):
        assert post(client, JSON, {**ENTRY, "source": source}).status_code == 202
    consume()
    assert [x["source"] for x in body(client.http.get("/logs", headers=key))["logs"]] == ["billing_eu"]


def test_over_its_rate_a_key_gets_429_and_nothing_is_queued_while_another_key_is_unaffected(
    client, admin_headers, sqs, queue_urls
):
    # GIVEN a slow key of 1 entry/s with a burst of 500, and another key
    slow = with_key(make_key(client, admin_headers, rate_per_s=1, burst=BATCH_MAX_ENTRIES)["key"])
    other = with_key(make_key(client, admin_headers, rate_per_s=1, burst=10)["key"])
    # WHEN the slow key spends its whole burst in one batch
    spent = post(client, slow, {"logs": [ENTRY] * BATCH_MAX_ENTRIES}, "/logs/batch")
    assert spent.status_code == 202
    assert spent.headers["RateLimit-Policy"] == '"key";q=500;w=500'
    assert spent.headers["RateLimit"].startswith('"key";r=0;')
    depth = queue_depth(sqs, queue_urls)
    # THEN its next batch of 100 is refused with when to come back, and not queued: 100 entries
    # come back in 100 s at its rate, far more than these steps take (no race with the clock)
    refused = post(client, slow, {"logs": [ENTRY] * 100}, "/logs/batch")
    assert (refused.status_code, body(refused)["error"]["code"]) == (429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == '"key";q=500;w=500'
    assert queue_depth(sqs, queue_urls) == depth
    # AND the other key's entries all pass
    assert all(post(client, other).status_code == 202 for _ in range(10))
    # AND a batch bigger than a key's burst could never pass: 413 (once the key's one unit for the
    # request is there), not a 429 to retry forever
    small = with_key(make_key(client, admin_headers, rate_per_s=1, burst=10)["key"])
    too_big = post(client, small, {"logs": [ENTRY] * 11}, "/logs/batch")
    assert (too_big.status_code, body(too_big)["error"]["code"]) == (413, "payload_too_large")
    assert queue_depth(sqs, queue_urls) == depth + 10


def test_a_revoked_key_is_refused_at_once(client, admin_headers):
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert post(client, key).status_code == 202  # now cached in Redis
    started = time.monotonic()
    assert client.http.delete(f"/keys/{made['id']}", headers=admin_headers).status_code == 204
    refused = post(client, key)
    assert (refused.status_code, error(refused)) == (401, UNAUTHORIZED)
    print(f"refused {time.monotonic() - started:.3f}s after DELETE /keys/{{id}}")
    listed = body(client.http.get("/keys", headers=admin_headers))["keys"]
    assert next(k for k in listed if k["id"] == made["id"])["revoked_at"] is not None
    assert client.http.delete("/keys/key_0000000000000000", headers=admin_headers).status_code == 404


def test_a_revocation_redis_cannot_take_answers_503_and_a_retry_completes_it(
    client, admin_headers, admin_db, override_settings
):
    # GIVEN a key in use (cached in Redis)
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert post(client, key).status_code == 202
    # WHEN it is revoked while Redis cannot be reached
    redis_url = SETTINGS.redis_url
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    failed = client.http.delete(f"/keys/{made['id']}", headers=admin_headers)
    # THEN the answer is 503, not a 204 that would hide a key still honoured from the cache, and the
    # key is revoked in MySQL all the same
    assert (failed.status_code, body(failed)["error"]["code"]) == (503, "dependency_unavailable")
    with admin_db.cursor() as cur:
        cur.execute("SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE id = %s", (made["id"],))
        assert cur.fetchone() == (1,)
    # AND once Redis is back, the retry answers 204 and the key is refused
    override_settings(redis_url=redis_url)
    assert client.http.delete(f"/keys/{made['id']}", headers=admin_headers).status_code == 204
    assert post(client, key).status_code == 401


def test_a_revoked_key_is_not_honoured_from_a_stale_copy_while_mysql_is_down(client, admin_headers, override_settings):
    # GIVEN a key in use, revoked, and its old copy (not revoked) back in the cache past its fresh
    # period, as a load that began before the revocation could have left it; and the test key in use
    assert post(client, JSON).status_code == 202
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert post(client, key).status_code == 202
    cache = wiring.get_key_cache()
    old = cache.lookup("apikey", token_hash(made["key"])).entry
    assert old is not None and old.value is not None and not old.value["revoked"]
    assert client.http.delete(f"/keys/{made['id']}", headers=admin_headers).status_code == 204
    generation = cache.lookup("apikey", token_hash(made["key"])).generation
    assert cache.fill("apikey", token_hash(made["key"]), old.value, generation, 0, 600)
    # WHEN MySQL cannot be reached (the stale copy would let a known key write to the queue)
    override_settings(mysql={"port": closed_port()})
    # THEN the revoked key is still refused: the revocation mark is read before any copy
    refused = post(client, key)
    assert (refused.status_code, error(refused)) == (401, UNAUTHORIZED)
    # AND a key that was not revoked still writes from its stale copy (the mark is what differs)
    assert post(client, JSON).status_code == 202


def test_a_revoked_key_is_refused_while_redis_is_down(client, admin_headers, override_settings):
    # GIVEN a key in use, then revoked
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert post(client, key).status_code == 202
    assert client.http.delete(f"/keys/{made['id']}", headers=admin_headers).status_code == 204
    # WHEN Redis cannot be reached (each instance then reads keys from MySQL itself)
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    # THEN the revoked key is refused, and a key that was not revoked still writes
    refused = post(client, key)
    assert (refused.status_code, error(refused)) == (401, UNAUTHORIZED)
    assert post(client, JSON).status_code == 202


def test_a_key_revoked_behind_the_caches_back_is_refused_within_key_cache_ttl(
    client, admin_headers, admin_db, redis_client
):
    # GIVEN a key in use (cached), revoked in MySQL without the API's invalidation (a missed one)
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert post(client, key).status_code == 202
    with admin_db.cursor() as cur:
        cur.execute("UPDATE api_keys SET revoked_at = UTC_TIMESTAMP(6) WHERE id = %s", (made["id"],))
    started = time.monotonic()
    # THEN its cached copy is fresh for KEY_CACHE_TTL_S at most (the stated bound) ...
    cached = redis_client.get(f"{SETTINGS.redis_key_prefix}apikey:{{{token_hash(made['key'])}}}:data")
    copy = json.loads(cached)
    assert copy["fresh_until"] - copy["at"] <= SETTINGS.key_cache_ttl_s
    # ... and it is refused once that copy is older (a deadline far past the bound: no race with it)
    wait_for(lambda: post(client, key).status_code == 401, timeout_s=SETTINGS.key_cache_ttl_s + 30, interval_s=0.1)
    print(
        f"refused {time.monotonic() - started:.2f}s after the revocation (KEY_CACHE_TTL_S={SETTINGS.key_cache_ttl_s})"
    )


def test_a_valid_request_costs_no_mysql_read(client, monkeypatch):
    # GIVEN a key read once and cached
    assert post(client, JSON).status_code == 202
    statements = Statements(monkeypatch, api_user())
    # WHEN it makes 20 more requests
    for _ in range(20):
        assert post(client, JSON).status_code == 202
    # THEN the API's MySQL account ran no SELECT for them (its own statements, not the server's count)
    assert statements.selects() == []


def test_failed_attempts_are_limited_per_client_address(client, redis_client, override_settings):
    # GIVEN failed attempts refilled at one unit in 68 minutes (below the settings' floor of 1/s; the
    # GCRA arithmetic takes any positive rate): the test's own steps cannot refill the burst
    rate = 2**-12
    override_settings(auth_failure_rate_per_s=rate)
    assert post(client, JSON).status_code == 202  # a valid key, read once (one unit of the address's bucket)
    # WHEN one address keeps trying unknown keys THEN the rest of its burst are 401s ...
    guesses = [post(client, with_key("slk_" + uuid.uuid4().hex * 2)) for _ in range(SETTINGS.auth_failure_burst + 3)]
    statuses = [g.status_code for g in guesses]
    assert statuses[: SETTINGS.auth_failure_burst - 1] == [401] * (SETTINGS.auth_failure_burst - 1)
    # ... then 429s (refilled at AUTH_FAILURE_RATE_PER_S): guessing is slow, and costs MySQL nothing
    limited = next(g for g in guesses if g.status_code == 429)
    assert body(limited)["error"]["code"] == "rate_limited"
    window = math.ceil(SETTINGS.auth_failure_burst / rate)
    assert limited.headers["RateLimit-Policy"] == f'"address";q={SETTINGS.auth_failure_burst};w={window}'
    # AND a known key from the same address still works (it needs no lookup to pay for)
    assert post(client, JSON).status_code == 202
    assert list(redis_client.scan_iter(match=f"{SETTINGS.redis_key_prefix}address:*"))  # shared by every instance


def test_with_redis_down_keys_are_read_from_mysql_and_limits_apply_per_instance(
    client, admin_headers, override_settings
):
    # GIVEN a key of 1 entry/s with a burst of 300, and Redis down
    made = make_key(client, admin_headers, rate_per_s=1, burst=300)
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    key = with_key(made["key"])
    # WHEN it sends four batches of 100 THEN this instance's own limit refuses the fourth: 100 entries
    # come back in 100 s at its rate, far more than these steps take (no race with the clock)
    answers = [post(client, key, {"logs": [ENTRY] * 100}, "/logs/batch").status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    assert post(client, with_key("slk_" + uuid.uuid4().hex * 2)).status_code == 401


def test_too_many_problems_are_cut_to_a_few_with_a_count_of_the_rest(client):
    entries = [{"level": "loud", "source": "bad source", "message": ""}] * 500
    response = post(client, JSON, {"logs": entries}, "/logs/batch")
    assert response.status_code == 400
    details = body(response)["error"]["details"]
    assert len(details) == SETTINGS.max_error_details + 1
    assert details[-1] == {"field": "...", "message": f"{1500 - SETTINGS.max_error_details} more problems"}
    assert body(response)["error"]["message"].startswith("500 invalid entries")
    wide = post(client, JSON, {**ENTRY, **{f"unknown{i}": i for i in range(1000)}})
    assert wide.status_code == 400 and len(body(wide)["error"]["details"]) == SETTINGS.max_error_details + 1


@pytest.mark.parametrize(
    "timestamp",
    ["1000-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
)
def test_a_timestamp_outside_the_window_around_now_is_refused(client, sqs, queue_urls, timestamp):
    response = post(client, JSON, {**ENTRY, "timestamp": timestamp})
    assert response.status_code == 400
    assert body(response)["error"]["details"][0]["field"] == "timestamp"
    batch = post(client, JSON, {"logs": [ENTRY, {**ENTRY, "timestamp": timestamp}]}, "/logs/batch")
    assert (batch.status_code, body(batch)["error"]["details"][0]["index"]) == (400, 1)
    assert queue_depth(sqs, queue_urls) == 0


def test_a_page_of_big_entries_is_cut_by_bytes_and_continues_by_cursor(client, consume, override_settings):
    # GIVEN 20 entries of about 8 KB and pages of at most 64 KiB
    big = [{**ENTRY, "message": f"{i:02d}" + "x" * 8000} for i in range(20)]
    assert post(client, JSON, {"logs": big}, "/logs/batch").status_code == 202
    consume()
    override_settings(logs_page_max_bytes=65536)
    # WHEN all are asked for in one page THEN fewer come, each page under the cap, and the cursor gets the rest
    seen: list[str] = []
    page = client.http.get("/logs?limit=500", headers=JSON)
    while True:
        assert len(page.body) <= 65536 + 200
        data = body(page)
        seen += [x["message"][:2] for x in data["logs"]]
        assert len(data["logs"]) < 20
        if not data["next_cursor"]:
            break
        page = client.http.get(f"/logs?limit=500&cursor={data['next_cursor']}", headers=JSON)
    assert sorted(seen) == [f"{i:02d}" for i in range(20)]


def test_a_random_log_id_costs_one_mysql_read_per_log_absent_ttl(client, monkeypatch):
    # GIVEN a log id that was never stored, and the key already cached
    missing = str(uuid.uuid4())
    assert post(client, JSON).status_code == 202
    statements = Statements(monkeypatch, api_user())
    # WHEN it is asked for 10 times
    for _ in range(10):
        assert client.http.get(f"/logs/{missing}", headers=JSON).status_code == 404
    # THEN the API's MySQL account looked it up at most once (twice if LOG_ABSENT_TTL_S lapsed)
    assert len(statements.selects()) <= 2, statements.selects()


def test_redis_keeps_what_a_request_needs_in_one_slot(client, admin_headers, redis_client):
    # GIVEN a slow key (its rate bucket lives a second after each entry)
    token = make_key(client, admin_headers, rate_per_s=1, burst=5)["key"]
    assert post(client, with_key(token)).status_code == 202
    # THEN its cached copy, rate bucket and last-used mark share a hash tag (one cluster slot)
    tag = f"{{{token_hash(token)}}}"
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{SETTINGS.redis_key_prefix}apikey:{tag}*"))
    assert {k.rsplit(":", 1)[1] for k in keys} >= {"data", "rate", "used"}


def test_redis_client_sees_no_secret(redis_client: redis.Redis):
    # THEN Redis holds hashes of tokens, never a token
    from tests.functional.conftest import TEST_KEY

    for key in redis_client.scan_iter(match=f"{SETTINGS.redis_key_prefix}*"):
        assert TEST_KEY.encode() not in key
        value = redis_client.get(key) if redis_client.type(key) == b"string" else b""
        assert TEST_KEY.encode() not in (value or b"")


def test_a_stored_entry_says_which_key_wrote_it(client, admin_headers, consume):
    # GIVEN a key of its own that writes an entry
    made = make_key(client, admin_headers, scopes=["logs:write", "logs:read"], sources=["web-*"])
    key = with_key(made["key"])
    log_id = body(post(client, key))["id"]
    consume()
    # THEN a reader sees the key's id on the entry, by id and in a page
    assert body(client.http.get(f"/logs/{log_id}", headers=key))["key_id"] == made["id"]
    page = body(client.http.get("/logs?source=web-1", headers=key))["logs"]
    assert [(e["id"], e["key_id"]) for e in page] == [(log_id, made["id"])]


def test_an_id_belongs_to_the_source_that_used_it_first(client, admin_headers, consume, admin_db):
    # GIVEN two tenants' keys, each for its own source, and an id tenant A used first
    a = with_key(make_key(client, admin_headers, scopes=["logs:write", "logs:read"], sources=["a"])["key"])
    b = with_key(make_key(client, admin_headers, scopes=["logs:write", "logs:read"], sources=["b"])["key"])
    shared = str(uuid.uuid4())
    assert post(client, a, {**ENTRY, "source": "a", "id": shared, "message": "a's"}).status_code == 202
    consume()
    # WHEN tenant B sends an entry with the same id (twice: a retry) and A retries its own
    for _ in range(2):
        assert post(client, b, {**ENTRY, "source": "b", "id": shared, "message": "b's"}).status_code == 202
    assert post(client, a, {**ENTRY, "source": "a", "id": shared, "message": "a's"}).status_code == 202
    consume()
    # THEN A's entry is stored once, B's is set aside with why (not dropped in silence), A's retry
    # is a duplicate, and B cannot read A's entry
    assert body(client.http.get(f"/logs/{shared}", headers=a))["message"] == "a's"
    assert client.http.get(f"/logs/{shared}", headers=b).status_code == 404
    with admin_db.cursor() as cur:
        cur.execute("SELECT source, message FROM logs WHERE id = %s", (shared,))
        assert cur.fetchall() == (("a", "a's"),)
        cur.execute("SELECT reason, body FROM log_rejects WHERE log_id = %s", (shared,))
        rejects = cur.fetchall()
    assert rejects and all("already another source's ('a')" in r[0] and '"b\'s"' in r[1] for r in rejects)


def test_two_sources_with_one_id_in_one_batch_keep_the_first_and_set_aside_the_other(
    client, admin_headers, consume, admin_db
):
    # GIVEN entries of two sources with one id, queued before any is stored (one consumer batch)
    key = with_key(make_key(client, admin_headers, sources=["a", "b"])["key"])
    shared = str(uuid.uuid4())
    assert post(client, key, {**ENTRY, "source": "a", "id": shared}).status_code == 202
    assert post(client, key, {**ENTRY, "source": "b", "id": shared}).status_code == 202
    # WHEN they are consumed together
    result = consume()
    # THEN one is stored and the other set aside, naming the source that has the id
    assert (result["stored"], result["rejected"]) == (1, 1)
    with admin_db.cursor() as cur:
        cur.execute("SELECT source FROM logs WHERE id = %s", (shared,))
        (stored,) = cur.fetchone()
        cur.execute("SELECT reason FROM log_rejects WHERE log_id = %s", (shared,))
        (reason,) = cur.fetchone()
    assert f"already another source's ({stored!r})" in reason
